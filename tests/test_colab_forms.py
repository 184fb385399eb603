"""Colab forms (``NAME = value  #@param ...``) as notebook parameters: found, checked against their
type, bound on their own line (the form stays a form), and ``drivelab run -p NAME VALUE`` using them
when a notebook has no ``parameters`` cell.

The end-to-end tests run the real CLI (``python -m drivelab run``) in a fresh workspace, as a user
would, with no drivelab or Jupyter variable leaking in from the test run.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from drivelab.colab import FormField, bind_form_parameters, find_form_fields
from drivelab.errors import JobError, NotebookParameterError
from drivelab.jobs import JobSpec
from drivelab.workspace import init_workspace

FORM_CELL = """\
#@title Training { display-mode: "form" }
#@markdown Set the run up here: lr = 1 #@param is not a field on a markdown line.
learning_rate = 0.001  #@param {type:"number"}
epochs = 10 #@param {type:"slider", min:1, max:100, step:1}
dropout = 0.5 #@param {type: "slider", min: 0, max: 1, step: 0.1}
temperature = 2 #@param {type:"slider", min:0, max:10}
model = "resnet" #@param ["resnet", "vit"]
optimizer = 'adam' #@param ["adam", "sgd"] {allow-input: true}
batch = 32 # @param [16, 32, 64]
use_amp = True #@param {type:"boolean"}
name = "run#1" #@param {type:"string"}
n = 3 #@param {type:"integer"}
day = "2024-01-01" #@param {type:"date"}
expr = [1, 2] #@param {type:"raw"}
x = 5 #@param
label = 'plain' #@param
not_a_form = 7  # a comment
"""

NAMES = ["learning_rate", "epochs", "dropout", "temperature", "model", "optimizer", "batch", "use_amp", "name", "n", "day", "expr", "x", "label"]

PAPERMILL = "drivelab.jobs._spec"
"""What a notebook job runs: papermill, behind drivelab's short report of a failing cell."""


def form_notebook(*cells: str, parameters_cell: str | None = None):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A Colab notebook\n\nx = 1 #@param")]
    if parameters_cell is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters_cell, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    return nb


def write(nb, path: Path) -> Path:
    nbformat.write(nb, path)
    return path


def fields_by_name(notebook) -> dict[str, FormField]:
    return {f.name: f for f in find_form_fields(notebook)}


def bound_values(path: Path, cell: int = 1) -> dict[str, object]:
    """The variables the bound form cell sets, as Python evaluates it."""
    source = nbformat.read(path, as_version=4).cells[cell].source
    scope: dict[str, object] = {}
    exec(compile(source, "cell", "exec"), scope)  # noqa: S102 -- our own test notebook
    return scope


# --- finding the fields ------------------------------------------------------------------


def test_every_kind_of_form_field_is_found(tmp_path: Path):
    path = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    fields = find_form_fields(path)
    assert [f.name for f in fields] == NAMES
    by = {f.name: f for f in fields}
    assert all(f.cell == 1 for f in fields)
    assert by["learning_rate"].type == "number" and by["learning_rate"].default == "0.001" and by["learning_rate"].line == 3
    assert (by["epochs"].type, by["epochs"].min, by["epochs"].max, by["epochs"].step) == ("slider", 1, 100, 1)
    assert (by["dropout"].min, by["dropout"].max, by["dropout"].step) == (0, 1, 0.1)
    assert by["temperature"].step is None
    assert by["model"].type == "dropdown" and by["model"].options == ("resnet", "vit") and not by["model"].allow_input
    assert by["model"].default == '"resnet"'
    assert by["optimizer"].type == "dropdown" and by["optimizer"].allow_input and by["optimizer"].options == ("adam", "sgd")
    assert by["batch"].type == "dropdown" and by["batch"].options == (16, 32, 64)  # "# @param", as Colab writes it now
    assert [by[n].type for n in ("use_amp", "name", "n", "day", "expr")] == ["boolean", "string", "integer", "date", "raw"]
    assert by["name"].default == '"run#1"'  # a '#' inside the value is not the form's comment
    assert by["x"].type == "raw" and by["label"].type == "string"  # untyped: a string default takes a string
    assert by["learning_rate"].title == "Training"
    # The same from the notebook's JSON, parsed or not.
    assert find_form_fields(json.loads(path.read_text())) == fields
    assert find_form_fields(str(path)) == fields


def test_a_notebook_without_forms_has_no_fields(tmp_path: Path):
    path = write(form_notebook("lr = 0.1\nprint(lr)  # @param is only a form after an assignment"), tmp_path / "plain.ipynb")
    assert find_form_fields(path) == []


# --- binding -----------------------------------------------------------------------------


def test_valid_values_of_every_type_are_bound_on_their_line(tmp_path: Path):
    source = write(form_notebook(FORM_CELL, "print(learning_rate)"), tmp_path / "nb.ipynb")
    before = source.read_bytes()
    out = tmp_path / "out" / "bound.ipynb"
    parameters = [
        ("learning_rate", "0.05"), ("epochs", "20"), ("dropout", "0.3"), ("temperature", "7.5"), ("model", "vit"),
        ("optimizer", "lamb"), ("batch", "64"), ("use_amp", "no"), ("name", "it's \"mine\""), ("n", "-4"),
        ("day", "2025-02-28"), ("expr", "{'a': (1, 2)}"), ("x", "2 ** 10"), ("label", "free text"),
    ]  # fmt: skip
    bound = bind_form_parameters(source, parameters, out)
    assert [f.name for f in bound] == [name for name, _ in parameters]
    assert source.read_bytes() == before  # the notebook itself is untouched
    assert not list(out.parent.glob("*.incomplete"))
    values = bound_values(out)
    assert values["learning_rate"] == 0.05 and values["epochs"] == 20 and isinstance(values["epochs"], int)
    assert values["dropout"] == 0.3 and values["temperature"] == 7.5
    assert values["model"] == "vit" and values["optimizer"] == "lamb" and values["batch"] == 64
    assert values["use_amp"] is False and values["name"] == "it's \"mine\"" and values["n"] == -4
    assert values["day"] == "2025-02-28" and values["expr"] == {"a": (1, 2)} and values["x"] == 1024 and values["label"] == "free text"
    lines = nbformat.read(out, as_version=4).cells[1].source.splitlines()
    # Only the value changed: the #@param comment (and what is around it) is kept, so Colab still shows a form.
    assert lines[2] == 'learning_rate = 0.05  #@param {type:"number"}'
    assert lines[3] == 'epochs = 20 #@param {type:"slider", min:1, max:100, step:1}'
    assert lines[6] == "model = 'vit' #@param [\"resnet\", \"vit\"]"
    assert lines[8] == "batch = 64 # @param [16, 32, 64]"
    assert lines[-1] == "not_a_form = 7  # a comment"
    assert [f.name for f in find_form_fields(out)] == NAMES  # still the same form
    assert nbformat.read(out, as_version=4).cells[2].source == "print(learning_rate)"


@pytest.mark.parametrize(
    ("name", "value", "python"),
    [
        ("use_amp", "true", True), ("use_amp", "False", False), ("use_amp", "1", True), ("use_amp", "yes", True), ("use_amp", "0", False),
        ("learning_rate", "3", 3), ("learning_rate", "1e-4", 1e-4), ("epochs", "1", 1), ("epochs", "100", 100), ("dropout", "1", 1),
        ("model", "resnet", "resnet"), ("optimizer", "sgd", "sgd"), ("batch", "16", 16), ("expr", "None", None),
    ],
)  # fmt: skip
def test_more_valid_values(tmp_path: Path, name: str, value: str, python: object):
    source = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    bind_form_parameters(source, [(name, value)], tmp_path / "bound.ipynb")
    got = bound_values(tmp_path / "bound.ipynb")[name]
    assert got == python and type(got) is type(python)


@pytest.mark.parametrize(
    ("name", "value", "kind", "allowed"),
    [
        ("learning_rate", "fast", "number", "a number"),
        ("learning_rate", "nan", "number", "a number"),
        ("epochs", "abc", "slider", "from 1 to 100"),
        ("epochs", "500", "slider", "from 1 to 100"),
        ("epochs", "0", "slider", "from 1 to 100"),
        ("epochs", "2.5", "slider", "in steps of 1"),
        ("dropout", "0.25", "slider", "in steps of 0.1"),
        ("temperature", "-1", "slider", "from 0 to 10"),
        ("model", "bert", "dropdown", "one of 'resnet', 'vit'"),
        ("batch", "48", "dropdown", "one of 16, 32, 64"),
        ("use_amp", "maybe", "boolean", "true or false"),
        ("n", "3.0", "integer", "a whole number"),
        ("day", "2024-13-01", "date", "a date YYYY-MM-DD"),
        ("day", "tomorrow", "date", "a date YYYY-MM-DD"),
        ("expr", "[1, 2", "raw", "a Python expression"),
        ("x", "import os", "raw", "a Python expression"),
    ],
)
def test_a_value_its_form_does_not_allow_is_a_usage_error(tmp_path: Path, name: str, value: str, kind: str, allowed: str):
    source = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    out = tmp_path / "bound.ipynb"
    with pytest.raises(NotebookParameterError) as caught:
        bind_form_parameters(source, [("model", "vit"), (name, value)], out)
    error = caught.value
    assert error.exit_code == 2 and isinstance(error, JobError)
    assert (error.parameter, error.value) == (name, value)
    assert name in error.message and repr(value) in error.message and kind in error.message and allowed in error.message
    assert error.hint and f"-p {name} " in error.hint  # what to pass instead
    assert not out.exists()  # nothing written


def test_a_name_that_is_no_form_field_lists_the_fields(tmp_path: Path):
    source = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    with pytest.raises(NotebookParameterError) as caught:
        bind_form_parameters(source, [("lr", "0.1")], tmp_path / "bound.ipynb")
    error = caught.value
    assert error.exit_code == 2 and error.parameter == "lr" and error.value is None
    assert "'lr'" in error.message and "no `parameters` cell" in error.message
    shown = error.message + (error.hint or "")
    assert all(name in shown for name in NAMES)
    assert "epochs (slider from 1 to 100" in shown and "parameters" in (error.hint or "")


def test_a_parameters_cell_leaves_it_to_papermill(tmp_path: Path):
    source = write(form_notebook(FORM_CELL, parameters_cell="lr = 0.1"), tmp_path / "nb.ipynb")
    out = tmp_path / "bound.ipynb"
    assert bind_form_parameters(source, [("lr", "0.5"), ("epochs", "abc")], out) == []  # not checked: papermill's
    assert not out.exists()


def test_a_name_on_several_form_lines_is_bound_on_each(tmp_path: Path):
    source = write(form_notebook('seed = 0 #@param {type:"integer"}', "seed = 1  # @param {type:'integer'}\nprint(seed)"), tmp_path / "nb.ipynb")
    bound = bind_form_parameters(source, [("seed", "7")], tmp_path / "bound.ipynb")
    assert [(f.cell, f.line) for f in bound] == [(1, 1), (2, 1)]
    cells = nbformat.read(tmp_path / "bound.ipynb", as_version=4).cells
    assert cells[1].source == 'seed = 7 #@param {type:"integer"}' and cells[2].source.startswith("seed = 7  # @param")


def test_without_output_path_it_only_checks(tmp_path: Path):
    source = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    assert [f.name for f in bind_form_parameters(source, [("n", "2")], None)] == ["n"]
    with pytest.raises(NotebookParameterError):
        bind_form_parameters(source, [("n", "two")], None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nb.ipynb"]


# --- the job's spec ----------------------------------------------------------------------


def test_the_spec_checks_form_values_before_anything_starts_and_runs_a_bound_copy(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws").workspace
    path = write(form_notebook(FORM_CELL), ws.colab / "forms.ipynb")
    spec = JobSpec(path, run="f", parameters=[("epochs", "abc")])
    with pytest.raises(NotebookParameterError) as caught:
        spec.validate()
    assert "epochs" in caught.value.message and "from 1 to 100" in caught.value.message

    spec = JobSpec(path, run="f", parameters=[("epochs", "12"), ("model", "vit")])
    spec.validate()
    run_dir = ws.run_dir("f")
    run_dir.mkdir(parents=True)
    argv = spec.command(ws, run_dir)
    assert "-p" not in argv  # bound on the form's lines instead
    bound = Path(argv[argv.index(PAPERMILL) + 1])
    assert bound.parent == run_dir and bound != spec.output_notebook(run_dir) and argv[argv.index(PAPERMILL) + 2] == str(spec.output_notebook(run_dir))
    values = bound_values(bound)
    assert values["epochs"] == 12 and values["model"] == "vit"


def test_the_spec_with_a_parameters_cell_is_papermills_as_before(tmp_path: Path):
    ws = init_workspace(tmp_path / "ws").workspace
    path = write(form_notebook(FORM_CELL, parameters_cell="lr = 0.1"), ws.colab / "tagged.ipynb")
    spec = JobSpec(path, run="t", parameters=[("lr", "0.5")])
    spec.validate()
    argv = spec.command(ws, ws.run_dir("t"))
    assert argv[argv.index(PAPERMILL) + 1] == str(path) and argv[argv.index("-p") : argv.index("-p") + 3] == ["-p", "lr", "0.5"]
    plain = write(form_notebook("print(1)"), ws.colab / "plain.ipynb")
    spec = JobSpec(plain, run="p", parameters=[("lr", "0.5")])
    spec.validate()  # no forms, no parameters cell: papermill injects it, as ever
    argv = spec.command(ws, ws.run_dir("p"))
    assert argv[argv.index(PAPERMILL) + 1] == str(plain) and "-p" in argv


# --- drivelab run, end to end ------------------------------------------------------------

TRAIN_CELL = """\
#@title Train
lr = 0.001  #@param {type:"number"}
epochs = 10 #@param {type:"slider", min:1, max:100, step:1}
model = "resnet" #@param ["resnet", "vit"]
"""


@pytest.fixture
def user(tmp_path: Path):
    """A fresh workspace with a form notebook in drive/colab/, and the environment of a user's shell."""
    ws = init_workspace(tmp_path / "ws").workspace
    nb = form_notebook(TRAIN_CELL, "print(f'lr={lr!r} epochs={epochs!r} model={model!r}')")
    write(nb, ws.colab / "train.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVELAB_", "JUPYTER", "PYTHONPATH"))}
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    jupyter = tmp_path / "jupyter"
    env.update(
        COLUMNS="200",
        NO_COLOR="1",
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        IPYTHONDIR=str(jupyter / "ipython"),
    )
    return ws, env


def drivelab(ws, env, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drivelab", *args], cwd=ws.root, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_drivelab_run_binds_p_to_the_forms(user):
    ws, env = user
    proc = drivelab(ws, env, "run", "--run", "forms", "--restarts", "0", "-p", "lr", "0.05", "-p", "model", "vit", "drive/colab/train.ipynb")
    assert proc.returncode == 0, describe(proc)
    run_dir = ws.run_dir("forms")
    out = nbformat.read(run_dir / "train.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert "lr=0.05 epochs=10 model='vit'" in printed, printed
    assert not [c for c in out.cells if "injected-parameters" in c.metadata.get("tags", [])]  # bound, not injected
    form = next(c for c in out.cells if c.cell_type == "code" and "#@title Train" in c.source)
    assert 'lr = 0.05  #@param {type:"number"}' in form.source and "model = 'vit' #@param" in form.source
    assert (ws.colab / "train.ipynb").read_text().count("lr = 0.001  #@param") == 1  # the drive's notebook untouched
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "succeeded" and status["spec"]["parameters"] == [["lr", "0.05"], ["model", "vit"]]


@pytest.mark.parametrize(("value", "why"), [("abc", "'abc'"), ("500", "'500'")])
def test_drivelab_run_refuses_a_value_out_of_the_form_before_starting(user, value: str, why: str):
    ws, env = user
    proc = drivelab(ws, env, "run", "--run", "bad", "-p", "epochs", value, "drive/colab/train.ipynb", timeout=120)
    assert proc.returncode == 2, describe(proc)
    said = " ".join(proc.stderr.split())  # as the terminal wrapped it
    assert "epochs" in said and why in said and "slider" in said and "from 1 to 100" in said, describe(proc)
    assert "-p epochs 10" in said  # what to do: a value the form allows
    assert not ws.run_dir("bad").exists()  # never started, so never restarted


def test_drivelab_run_refuses_a_name_that_is_no_form_field(user):
    ws, env = user
    proc = drivelab(ws, env, "run", "--run", "unknown", "-p", "learning_rate", "0.1", "drive/colab/train.ipynb", timeout=120)
    assert proc.returncode == 2, describe(proc)
    said = " ".join(proc.stderr.split())
    assert "'learning_rate'" in said and all(name in said for name in ("lr (number", "epochs (slider", "model (dropdown")), describe(proc)
    assert not ws.run_dir("unknown").exists()


def test_the_bound_notebook_still_parses(tmp_path: Path):
    """Every cell of a bound notebook is still valid Python: strings are literals, numbers are numbers."""
    source = write(form_notebook(FORM_CELL), tmp_path / "nb.ipynb")
    bind_form_parameters(source, [("name", "a\nb"), ("label", "x'\"y"), ("model", "vit")], tmp_path / "bound.ipynb")
    cell = nbformat.read(tmp_path / "bound.ipynb", as_version=4).cells[1].source
    ast.parse(cell)
    assert len(cell.splitlines()) == len(FORM_CELL.splitlines())
    assert bound_values(tmp_path / "bound.ipynb")["name"] == "a\nb"
