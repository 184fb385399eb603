"""Colab forms as notebook parameters: ``NAME = value  #@param ...`` lines, found and bound.

A Colab form is a code line assigning a value, with a ``#@param`` (or
``# @param``) comment that says how Colab shows it::

    lr = 0.001  #@param {type:"number"}
    epochs = 10  #@param {type:"slider", min:1, max:100, step:1}
    model = "resnet"  #@param ["resnet", "vit"]
    optimizer = "adam"  #@param ["adam", "sgd"] {allow-input: true}
    use_amp = True  #@param {type:"boolean"}
    x = 5  #@param

Types: ``number``, ``integer``, ``slider`` (``min``, ``max``, optional
``step``), ``boolean``, ``string``, ``date`` (``YYYY-MM-DD``), ``raw`` (Python
code, inserted as written), and the dropdown (a list of options, with
``allow-input: true`` for values outside it). A line with no type takes a
string when its value is a string, else Python code. ``#@title`` and
``#@markdown`` lines are not fields.

papermill binds ``-p NAME VALUE`` by injecting a cell after the cell tagged
``parameters``; a notebook written on Colab has forms instead. When a notebook
has no ``parameters`` cell, :func:`bind_form_parameters` checks each value
against its form field's type and writes it in place of the value on the
form's line, the ``#@param`` comment kept (on Colab it is still a form):
strings as Python string literals, numbers as numbers, booleans as ``True``
or ``False``, raw values as written.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import datetime
import io
import json
import math
import re
import shlex
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from drivelab._atomic import write_bytes_atomic
from drivelab.errors import JobError, NotebookParameterError

__all__ = ["FORM_TYPES", "FormField", "bind_form_parameters", "find_form_fields", "has_parameters_cell"]

FORM_TYPES = ("number", "integer", "slider", "boolean", "string", "date", "raw", "dropdown")
"""The kinds of form field (:attr:`FormField.type`)."""

_ASSIGNMENT = re.compile(r"\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
_PARAM = re.compile(r"#\s*@param\b")
_TITLE = re.compile(r"\s*#\s*@title\b(?P<title>[^{]*)")
_OBJECT_ENTRY = re.compile(r"""\s*(?P<key>"[^"]*"|'[^']*'|[A-Za-z_][\w-]*)\s*:\s*(?P<value>"[^"]*"|'[^']*'|[^,}]+?)\s*(?:,|$)""")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")
_KIND = {
    "number": "a number field",
    "integer": "an integer field",
    "slider": "a slider",
    "boolean": "a boolean checkbox",
    "dropdown": "a dropdown",
    "string": "a string field",
    "date": "a date field",
    "raw": "a raw field (Python code)",
}

Number = int | float


@dataclass(frozen=True)
class FormField:
    """One ``NAME = value  #@param ...`` line of a notebook."""

    name: str
    type: str
    """One of :data:`FORM_TYPES`; a line with no type is ``string`` when its value is a string literal, else ``raw``."""
    default: str
    """The value on the line, as source text (``"resnet"`` with its quotes, ``0.001``)."""
    cell: int
    """Index of its cell in the notebook (from 0, markdown cells counted)."""
    line: int
    """Its line in the cell (from 1)."""
    options: tuple[Any, ...] = ()
    """A dropdown's options, as the list holds them (strings, numbers)."""
    allow_input: bool = False
    """A dropdown that also takes values outside its options (``{allow-input: true}``)."""
    value_type: str = ""
    """A dropdown's declared ``type`` (``string``, ``raw``, ``integer``, ``number``), if any."""
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    """A slider's bounds and step (``None`` when the form gives none)."""
    title: str = ""
    """The ``#@title`` of its cell, if the form has one."""

    @property
    def allowed(self) -> str:
        """What values it takes, in words."""
        if self.type == "dropdown":
            listed = "one of " + ", ".join(_show_option(o, self.value_type) for o in self.options)
            if not self.allow_input:
                return listed
            other = _ALLOWED.get(self.value_type) or ("a number" if _numeric_options(self.options) else "any text")
            return f"{listed}, or {other}"
        if self.type == "slider":
            bounds = ""
            if self.min is not None and self.max is not None:
                bounds = f" from {_show_number(self.min)} to {_show_number(self.max)}"
            elif self.min is not None:
                bounds = f" of at least {_show_number(self.min)}"
            elif self.max is not None:
                bounds = f" of at most {_show_number(self.max)}"
            return f"a number{bounds}" + (f" in steps of {_show_number(self.step)}" if self.step else "")
        return _ALLOWED[self.type]

    @property
    def summary(self) -> str:
        """``epochs (slider from 1 to 100 in steps of 1)``: the field as a list of fields shows it."""
        if self.type == "dropdown":
            return f"{self.name} (dropdown: {self.allowed.removeprefix('one of ')})"
        if self.type == "slider":
            return f"{self.name} (slider{self.allowed.removeprefix('a number')})"
        return f"{self.name} ({self.type})"

    @property
    def example(self) -> str:
        """Its value in the notebook, as one would type it after ``-p NAME``."""
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(self.default)
            if isinstance(value, str):
                return shlex.quote(value)
        return shlex.quote(self.default)


_ALLOWED = {
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false (also True/False, yes/no, 1/0)",
    "string": "any text",
    "date": "a date YYYY-MM-DD",
    "raw": "a Python expression on one line",
}


# --- reading a notebook ------------------------------------------------------------------


def _load(notebook: Mapping[str, Any] | str | Path) -> Mapping[str, Any]:
    if isinstance(notebook, Mapping):
        return notebook
    try:
        if isinstance(notebook, str) and notebook.lstrip().startswith("{"):
            data = json.loads(notebook)
        else:
            data = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise JobError(f"{notebook} is not a readable notebook: {exc}", hint="open it in Jupyter and save it again") from exc
    if not isinstance(data, dict):
        raise JobError(f"{notebook} is not a notebook: its JSON is not an object", hint="open it in Jupyter and save it again")
    return data


def _cells(nb: Mapping[str, Any]) -> list[Any]:
    cells = nb.get("cells")
    return cells if isinstance(cells, list) else []


def _source(cell: Any) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(source) if isinstance(source, list) else str(source)


def has_parameters_cell(notebook: Mapping[str, Any] | str | Path) -> bool:
    """A cell is tagged ``parameters``: papermill binds ``-p`` there, and forms are left alone."""
    for cell in _cells(_load(notebook)):
        tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell, dict) and isinstance(cell.get("metadata"), dict) else []
        if isinstance(tags, list) and "parameters" in tags:
            return True
    return False


def find_form_fields(notebook: Mapping[str, Any] | str | Path) -> list[FormField]:
    """The form fields of a notebook, in order: its JSON (parsed, or as text) or the path of its file.

    Only code cells count, and only one-line assignments ``NAME = value`` with
    a ``#@param`` comment.
    """
    fields = []
    for index, cell in enumerate(_cells(_load(notebook))):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        title = ""
        for number, text in enumerate(_source(cell).split("\n"), start=1):
            heading = _TITLE.match(text)
            if heading:
                title = heading["title"].strip()
                continue
            found = _parse_line(text)
            if found is not None:
                name, value, spec = found[0], text[found[1] : found[2]], found[3]
                fields.append(_field(name, value, spec, cell=index, line=number, title=title))
    return fields


def _parse_line(text: str) -> tuple[str, int, int, str] | None:
    """``(name, value start, value end, what follows @param)`` for a form line, else None."""
    if "@param" not in text:
        return None
    assignment = _ASSIGNMENT.match(text)
    if not assignment:
        return None
    comment = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(text.rstrip("\r") + "\n").readline):
            if token.type == tokenize.COMMENT:
                comment = token
                break
    except (tokenize.TokenError, SyntaxError):  # a value going on to further lines: not a one-line form
        return None
    if comment is None or comment.start[0] != 1:
        return None
    marker = _PARAM.match(comment.string)
    if not marker:
        return None
    start = assignment.end()
    end = comment.start[1]
    value = text[start:end]
    start += len(value) - len(value.lstrip())
    end -= len(value) - len(value.rstrip())
    if start >= end:
        return None
    try:
        ast.parse(text[start:end].strip(), mode="eval")
    except SyntaxError:
        return None
    return assignment["name"], start, end, comment.string[marker.end() :].strip()


def _field(name: str, value: str, spec: str, *, cell: int, line: int, title: str) -> FormField:
    options: tuple[Any, ...] | None = None
    if spec.startswith("["):
        end = _closing(spec, "[", "]")
        options = _parse_options(spec[: end + 1])
        spec = spec[end + 1 :].strip()
    settings = _parse_object(spec[: _closing(spec, "{", "}") + 1]) if spec.startswith("{") else {}
    declared = settings.get("type")
    declared = declared if isinstance(declared, str) else ""
    common = {"name": name, "default": value, "cell": cell, "line": line, "title": title}
    if options is not None:
        return FormField(type="dropdown", options=options, allow_input=settings.get("allow-input") is True, value_type=declared, **common)
    if declared == "slider":
        return FormField(type="slider", min=_setting_number(settings, "min"), max=_setting_number(settings, "max"), step=_setting_number(settings, "step") or None, **common)
    if declared in FORM_TYPES and declared != "dropdown":
        return FormField(type=declared, **common)
    try:
        is_text = isinstance(ast.literal_eval(value), str)
    except (ValueError, SyntaxError):
        is_text = False
    return FormField(type="string" if is_text else "raw", **common)


def _closing(text: str, opening: str, closing: str) -> int:
    """Index of the bracket closing the one ``text`` starts with (strings skipped); the end of the text if none."""
    depth, quote = 0, ""
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i
    return len(text) - 1


def _parse_options(text: str) -> tuple[Any, ...]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, (list, tuple)):
        return tuple(value)
    # Not a Python list: comma-separated words, quotes optional.
    return tuple(part.strip().strip("\"'") for part in text.strip("[]").split(",") if part.strip())


def _parse_object(text: str) -> dict[str, Any]:
    """Colab's ``{type:"slider", min:1, allow-input: true}`` (keys unquoted, JavaScript values)."""
    settings: dict[str, Any] = {}
    for entry in _OBJECT_ENTRY.finditer(text.strip()[1:-1]):
        key = entry["key"].strip("\"'")
        raw = entry["value"].strip()
        value: Any
        if raw[:1] in "\"'" and raw[-1:] == raw[:1] and len(raw) > 1:
            value = raw[1:-1]
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = _number(raw)
            if value is None:
                value = raw
        settings[key] = value
    return settings


def _setting_number(settings: Mapping[str, Any], key: str) -> Number | None:
    value = settings.get(key)
    if isinstance(value, str):
        value = _number(value)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- values ------------------------------------------------------------------------------


def _number(text: str) -> Number | None:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _show_number(value: Number) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _numeric_options(options: Sequence[Any]) -> bool:
    return bool(options) and all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options)


def _show_option(option: Any, value_type: str) -> str:
    return str(option) if value_type == "raw" and isinstance(option, str) else repr(option)


class _NotAllowed(Exception):
    pass


def _python_expression(value: str) -> str:
    text = value.strip()
    if not text or "\n" in text or "\r" in text:
        raise _NotAllowed
    try:
        ast.parse(text, mode="eval")
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (SyntaxError, tokenize.TokenError) as exc:
        raise _NotAllowed from exc
    if any(t.type == tokenize.COMMENT for t in tokens):  # it would hide the form's own comment
        raise _NotAllowed
    return text


def _literal(field: FormField, value: str) -> str:
    """The Python source ``value`` becomes on ``field``'s line; :class:`_NotAllowed` when its type does not allow it."""
    kind = field.type
    if kind == "dropdown":
        return _dropdown_literal(field, value)
    if kind == "number":
        number = _number(value)
        if number is None:
            raise _NotAllowed
        return repr(number)
    if kind == "integer":
        try:
            return repr(int(value.strip()))
        except ValueError as exc:
            raise _NotAllowed from exc
    if kind == "slider":
        return _slider_literal(field, value)
    if kind == "boolean":
        word = value.strip().lower()
        if word not in _TRUE + _FALSE:
            raise _NotAllowed
        return "True" if word in _TRUE else "False"
    if kind == "date":
        try:
            if not _DATE.fullmatch(value.strip()):
                raise ValueError(value)
            datetime.date.fromisoformat(value.strip())
        except ValueError as exc:
            raise _NotAllowed from exc
        return repr(value.strip())
    if kind == "raw":
        return _python_expression(value)
    return repr(value)  # string


def _slider_literal(field: FormField, value: str) -> str:
    number = _number(value)
    if number is None:
        raise _NotAllowed
    exact = Fraction(number) if isinstance(number, int) else Fraction(repr(number))
    if field.min is not None and exact < Fraction(str(field.min)):
        raise _NotAllowed
    if field.max is not None and exact > Fraction(str(field.max)):
        raise _NotAllowed
    if field.step:
        origin = Fraction(str(field.min)) if field.min is not None else Fraction(0)
        if (exact - origin) % Fraction(str(field.step)) != 0:
            raise _NotAllowed
    whole = all(isinstance(v, int) for v in (field.min, field.max, field.step) if v is not None)
    if whole and exact.denominator == 1:
        return repr(int(exact))
    return repr(number)


def _dropdown_literal(field: FormField, value: str) -> str:
    for option in field.options:
        if str(option) == value or (_numeric_options([option]) and _number(value) == option and _number(value) is not None):
            if field.value_type == "raw" and isinstance(option, str):
                return _python_expression(option)
            return repr(option)
    if not field.allow_input:
        raise _NotAllowed
    if field.value_type in ("raw", "integer", "number", "boolean", "date"):
        return _literal(FormField(name=field.name, type=field.value_type, default=field.default, cell=field.cell, line=field.line), value)
    if _numeric_options(field.options):
        return _literal(FormField(name=field.name, type="number", default=field.default, cell=field.cell, line=field.line), value)
    return repr(value)


# --- binding -----------------------------------------------------------------------------


def bind_form_parameters(notebook_path: str | Path, parameters: Iterable[tuple[str, str]], output_path: str | Path | None) -> list[FormField]:
    """Bind ``-p NAME VALUE`` pairs to the notebook's form fields; write the bound notebook to ``output_path``.

    Returns the fields bound, one for each line rewritten (a name on several
    form lines is bound on each), in the order of ``parameters``. Returns
    ``[]`` and writes nothing when there is nothing to bind here: no
    parameters, no form fields, or a ``parameters`` cell (papermill binds
    them there, and the forms are left as they are). With ``output_path``
    ``None`` it only checks. A later pair overrides an earlier one of the
    same name, as in papermill.

    Raises :class:`NotebookParameterError` (a usage error) for a value its
    field's type does not allow, and for a name that is none of the form
    fields; the notebook itself is never changed.
    """
    nb = _load(notebook_path)
    values = dict(parameters)
    if not values or has_parameters_cell(nb):
        return []
    fields = find_form_fields(nb)
    if not fields:
        return []
    by_name: dict[str, list[FormField]] = {}
    for field in fields:
        by_name.setdefault(field.name, []).append(field)
    edits: dict[tuple[int, int], tuple[FormField, str]] = {}
    bound: list[FormField] = []
    for name, value in values.items():
        if name not in by_name:
            raise _unknown(name, by_name)
        for field in by_name[name]:
            try:
                edits[(field.cell, field.line)] = (field, _literal(field, value))
            except _NotAllowed:
                raise _not_allowed(field, value) from None
            bound.append(field)
    if output_path is not None:
        _write(nb, edits, Path(output_path))
    return bound


def _not_allowed(field: FormField, value: str) -> NotebookParameterError:
    return NotebookParameterError(
        f"-p {field.name} {value!r} is not allowed: {field.name} is {_KIND[field.type]} of the notebook's form "
        f"(cell {field.cell + 1}, line {field.line}), which takes {field.allowed}",
        parameter=field.name,
        value=value,
        allowed=field.allowed,
        hint=f"pass a value the form allows, e.g. -p {field.name} {field.example} (its value in the notebook)",
    )


def _unknown(name: str, by_name: Mapping[str, list[FormField]]) -> NotebookParameterError:
    listed = "; ".join(fields[0].summary for fields in by_name.values())
    return NotebookParameterError(
        f"-p {name}: the notebook has no form field {name!r}, and no `parameters` cell to set it in; its form fields: {listed}",
        parameter=name,
        allowed="one of the form fields: " + ", ".join(by_name),
        hint="pass -p with one of its form fields, or tag a cell `parameters` (papermill's convention) to set other variables there",
    )


def _write(nb: Mapping[str, Any], edits: Mapping[tuple[int, int], tuple[FormField, str]], output: Path) -> None:
    nb = copy.deepcopy(nb)
    cells = _cells(nb)
    for index in sorted({cell for cell, _ in edits}):
        cell = cells[index]
        lines = _source(cell).split("\n")
        for (at, number), (field, literal) in edits.items():
            if at != index:
                continue
            text = lines[number - 1]
            found = _parse_line(text)
            if found is None or found[0] != field.name:  # not the line find_form_fields read: never so for one reading
                raise RuntimeError(f"line {number} of cell {index + 1} is no longer the form line of {field.name}")
            lines[number - 1] = text[: found[1]] + literal + text[found[2] :]
        text = "\n".join(lines)
        cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text
    data = json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    write_bytes_atomic(output, data.encode("utf-8"))
