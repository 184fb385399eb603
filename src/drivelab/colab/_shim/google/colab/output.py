"""``google.colab.output`` off Colab, with Colab's signatures.

- ``enable_custom_widget_manager()``, ``disable_custom_widget_manager()``:
  nothing to do, silently: JupyterLab shows ipywidgets (and third-party
  widgets) itself.
- ``clear(wait=False, output_tags=())``: in a notebook, clears the cell's
  output (IPython's ``clear_output``; ``wait=True`` clears when the next
  output comes). With ``output_tags`` nothing is cleared: outputs carry no
  tags here (``use_tags`` adds none). Outside a notebook, nothing.
- ``eval_js(script, ignore_result=False, timeout_sec=None)``: returns None.
  With a browser attached (the lab) the script runs there; the result cannot
  come back to Python, so asking for it (``ignore_result=False``) also issues
  a ``UserWarning`` saying so. Without a browser the script runs nowhere.
- ``register_callback(function_name, callback)``: kept, but JavaScript cannot
  call Python back here (a ``UserWarning`` says so).
- ``serve_kernel_port_as_window(port, path='/', anchor_text=None)`` and
  ``serve_kernel_port_as_iframe(port, path='/', width='100%', height='400',
  cache_in_notebook=False)``: in the lab, a link (an iframe) to the port of
  this machine through the lab's server (jupyter-server-proxy's
  ``<base_url>proxy/PORT/PATH``: host-relative, so it works through an SSH
  tunnel; the server at PORT sees ``PATH``). Elsewhere a line naming
  ``http://127.0.0.1:PORT/PATH``. ``cache_in_notebook`` is ignored: the frame
  always shows the live server.
- ``redirect_to_element``, ``use_tags``, ``temporary``, ``to_default_area``,
  ``to_header_area``, ``to_footer_area`` (context managers) and
  ``no_vertical_scroll()``: outputs stay in the cell, as they are; nothing is
  removed.

Nothing here is imported before it is used: IPython loads on the first call
that shows something.
"""

import contextlib as _contextlib
import sys as _sys
import warnings as _warnings

from drivelab.colab._calls import _html_attr, _js, in_kernel, lab_base_url

__all__ = [
    "clear",
    "disable_custom_widget_manager",
    "enable_custom_widget_manager",
    "eval_js",
    "no_vertical_scroll",
    "redirect_to_element",
    "register_callback",
    "serve_kernel_port_as_iframe",
    "serve_kernel_port_as_window",
    "temporary",
    "to_default_area",
    "to_footer_area",
    "to_header_area",
    "use_tags",
]

_callbacks = {}
_tags = set()
_RUN_SCRIPT = '(s) => { try { (0, eval)(s); } catch (e) { console.error("google.colab.output.eval_js:", e); } }'


def enable_custom_widget_manager():
    """Nothing to do: JupyterLab shows ipywidgets, third-party widgets included, by itself."""


def disable_custom_widget_manager():
    """Nothing to do (see :func:`enable_custom_widget_manager`)."""


def no_vertical_scroll():
    """Nothing to do: the lab sizes a cell's output itself."""


def clear(wait=False, output_tags=()):
    """Clear this cell's output (with ``wait=True``, when the next output comes). With ``output_tags``, nothing: no output is tagged here."""
    if output_tags or not in_kernel():
        return
    _sys.stdout.flush()
    _sys.stderr.flush()
    from IPython.display import clear_output

    clear_output(wait=wait)


def eval_js(script, ignore_result=False, timeout_sec=None):
    """Run ``script`` in the browser attached to this kernel, if any; always returns None (see the module's docstring)."""
    base = lab_base_url()
    if base is not None:
        from IPython.display import display

        display({"text/html": f"<script>({_RUN_SCRIPT})({_js(str(script))});</script>"}, raw=True)
    if not ignore_result:
        where = "the script ran in the browser, " if base is not None else "no browser is attached here to run the script, "
        _warnings.warn(
            "google.colab.output.eval_js cannot return the JavaScript's result here: only Colab's page sends it back "
            f"to Python ({where}so it returned None). Pass ignore_result=True where the result is not needed, "
            "or compute the value in Python.",
            UserWarning,
            stacklevel=2,
        )
    return None


def register_callback(function_name, callback):
    """Keep ``callback`` under ``function_name``; JavaScript cannot call it here (a ``UserWarning`` says so)."""
    _callbacks[function_name] = callback
    _warnings.warn(
        f"google.colab.output.register_callback({function_name!r}, ...): JavaScript cannot call Python back here "
        "(google.colab.kernel.invokeFunction exists only on Colab's page); the callback is kept but never called.",
        UserWarning,
        stacklevel=2,
    )


def _port_and_path(port, path):
    try:
        number = 0 if isinstance(port, bool) else int(str(port))  # 8000 or "8000"
    except ValueError:
        number = 0
    if not 1 <= number <= 65535:
        raise ValueError(f"port must be a TCP port number of this machine (1-65535), not {port!r}")
    path = str(path)
    return number, path if path.startswith("/") else "/" + path


def _serve(port, path, html):
    """Show ``html(href)`` in the lab, or print where the server is; ``href`` is the port through the lab."""
    port, path = _port_and_path(port, path)
    local = f"http://127.0.0.1:{port}{path}"
    base = lab_base_url()
    if base is None:
        print(
            f"The server on port {port} of this machine: {local} (no browser is attached here; "
            f"from another computer, reach it with ssh -L {port}:127.0.0.1:{port} to this machine)"
        )
        return
    import importlib.util

    href = f"{base}proxy/{port}{path}"
    note = ""
    if importlib.util.find_spec("jupyter_server_proxy") is None:
        note = (
            "<div>The lab cannot reach it: jupyter-server-proxy is not installed with the lab's server. "
            "Install it (<code>pip install jupyter-server-proxy</code>) and restart the lab.</div>"
        )
    from IPython.display import display

    display({"text/html": html(_html_attr(href)) + note, "text/plain": f"Port {port} of this machine ({local}), through the lab: {href}"}, raw=True)


def serve_kernel_port_as_window(port, path="/", anchor_text=None):
    """A link that opens the server at ``port`` of this machine in a new browser tab, through the lab."""

    def html(href):
        text = _html_attr(str(anchor_text)) if anchor_text is not None else href
        return f'<a href="{href}" target="_blank" rel="noopener">{text}</a>'

    _serve(port, path, html)


def serve_kernel_port_as_iframe(port, path="/", width="100%", height="400", cache_in_notebook=False):
    """The server at ``port`` of this machine in a frame of the output, through the lab."""

    def html(href):
        return f'<iframe src="{href}" width="{_html_attr(str(width))}" height="{_html_attr(str(height))}" frameborder="0"></iframe>'

    _serve(port, path, html)


@_contextlib.contextmanager
def use_tags(tags, append=True):
    """Yield the tags in force; outputs are not tagged here, so ``clear(output_tags=...)`` removes none."""
    tags = [tags] if isinstance(tags, str) else list(tags)
    saved = set(_tags)
    if not append:
        _tags.clear()
    _tags.update(tags)
    try:
        yield set(_tags)
    finally:
        _tags.clear()
        _tags.update(saved)


@_contextlib.contextmanager
def temporary():
    """Outputs made inside stay: nothing is cleared here when it ends."""
    import uuid

    tag = str(uuid.uuid4())
    with use_tags(tag):
        yield tag


@_contextlib.contextmanager
def redirect_to_element(element_selector):
    """Outputs made inside go to the cell's output, as usual."""
    yield


@_contextlib.contextmanager
def to_default_area():
    """Outputs made inside go to the cell's output, as usual."""
    yield


to_header_area = to_footer_area = to_default_area


def __getattr__(name):
    hint = "" if name.startswith("__") else f"; drivelab's stand-in provides {', '.join(__all__)} (see docs/lab.md)"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}{hint}")
