"""``google.colab.files`` on a drivelab workspace: ``download``, ``upload`` and ``view``.

- ``download(filename)`` copies the file into the workspace's
  ``drive/downloads/``; in the lab the browser then saves it (through the
  Jupyter server's ``/files/``), elsewhere the copy's path is printed.
- ``upload(target_dir='')`` shows a file picker in the lab, saves the chosen
  files in ``target_dir`` (the working folder by default) and returns
  ``{name: bytes}``, as Colab does. Without a browser (``drivelab run``, plain
  Python) it raises :class:`BrowserRequiredError`, which says where to put
  files instead.
- ``view(filepath)`` shows, in the lab, a link that opens the file (a folder:
  the file browser there) in the lab, in a new browser tab
  (``<base_url>lab/tree/PATH``, host-relative). Only files of the lab's
  workspace can be opened, hidden ones (a path part starting with ``.``)
  excepted: others raise :class:`NotInWorkspaceError`. Without a browser it
  prints where the file is.

Missing files raise Colab's ``FileNotFoundError('Cannot find file: NAME')``.
"""

import os as _os
from pathlib import Path as _Path

from google.colab import errors as _errors

from drivelab.colab._calls import (
    DOWNLOADS,
    _colab_path,
    _html_attr,
    colab_download,
    download_html,
    hints_shown,
    lab_base_url,
    start_upload,
    upload_html,
    wait_upload,
)
from drivelab.workspace import find_workspace

__all__ = ["BrowserRequiredError", "NotInWorkspaceError", "download", "upload", "view"]


class BrowserRequiredError(_errors.Error):
    """``files.upload()`` was called where no browser is attached to choose the files."""


class NotInWorkspaceError(_errors.Error):
    """``files.view()`` was given a file the lab cannot open: outside its workspace, or hidden."""


def download(filename):
    """Download ``filename`` to the browser's computer (in the lab), or keep a copy in ``drive/downloads/``."""
    with hints_shown():
        done = colab_download(filename)
    base = lab_base_url()
    if base is None:
        print(f"Saved {filename} to {done.saved} (no browser is attached here: downloads are kept in drive/{DOWNLOADS}/)")
        return
    from IPython.display import display

    name = _os.path.basename(_os.fspath(filename))
    display({"text/html": download_html(done, base, name), "text/plain": f"Downloading {name} (a copy is in {done.saved})"}, raw=True)


def upload(target_dir=""):
    """Choose files in the browser; they are saved in ``target_dir`` and returned as ``{name: bytes}``."""
    base = lab_base_url()
    if base is None:
        raise BrowserRequiredError(
            "files.upload() needs a browser to choose the files, and none is attached here "
            "(drivelab run, a script, or a notebook run outside the lab).\n"
            "hint: put the files in the workspace's drive/ folder instead (copy them there, or use the upload button of the "
            "lab's file browser) and read them from there: drive/NAME, or /content/drive/MyDrive/NAME after "
            "drive.mount('/content/drive'); see docs/lab.md"
        )
    from IPython.display import display

    with hints_shown():
        request = start_upload(target_dir)
    display({"text/html": upload_html(request, base), "text/plain": "(a file picker: it works in the browser session that ran this cell)"}, raw=True)
    with hints_shown():
        uploaded, saved = wait_upload(request)
    for name, where in saved:
        print(f"Saving {name} to {_os.path.join(target_dir, where.name) if target_dir else where.name}")
    return uploaded


def view(filepath):
    """Open ``filepath`` (a file or folder of the workspace) in the lab; without a browser, print where it is."""
    path = _colab_path(filepath)
    if not path.exists():
        raise FileNotFoundError(f"Cannot find file: {filepath}")
    base = lab_base_url()
    if base is None:
        print(f"{filepath} is {path.resolve()} (no browser is attached here to show it)")
        return
    with hints_shown():
        root = find_workspace().root
    inside = [p.relative_to(root) for p in (_Path(_os.path.abspath(path)), path.resolve()) if p.is_relative_to(root)]
    if not inside:
        raise NotInWorkspaceError(
            f"files.view() opens the lab's workspace files only, and {filepath} ({path.resolve()}) is outside {root}.\n"
            "hint: copy it into the workspace, e.g. under drive/, and view the copy"
        )
    relative = inside[0]
    if any(part.startswith(".") for part in relative.parts):
        raise NotInWorkspaceError(
            f"files.view() cannot open {filepath}: the lab does not open hidden files ({relative.as_posix()} has a part starting with '.').\n"
            "hint: copy it to a path without one, e.g. under drive/, and view the copy"
        )
    import urllib.parse

    from IPython.display import display

    shown = relative.as_posix() if relative.parts else "the workspace"
    href = _html_attr(base + "lab/tree/" + urllib.parse.quote(relative.as_posix() if relative.parts else ""))
    display({"text/html": f'<a href="{href}" target="_blank" rel="noopener">Open {_html_attr(shown)} in the lab</a>', "text/plain": f"{filepath} is {path.resolve()}"}, raw=True)


def __getattr__(name):
    if name == "upload_file":
        raise AttributeError(f"google.colab.files.{name} is Colab's own; drivelab provides files.download, files.upload and files.view (see docs/lab.md)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
