"""``google.colab.files`` on a drivelab workspace: ``download`` and ``upload``.

- ``download(filename)`` copies the file into the workspace's
  ``drive/downloads/``; in the lab the browser then saves it (through the
  Jupyter server's ``/files/``), elsewhere the copy's path is printed.
- ``upload(target_dir='')`` shows a file picker in the lab, saves the chosen
  files in ``target_dir`` (the working folder by default) and returns
  ``{name: bytes}``, as Colab does. Without a browser (``drivelab run``, plain
  Python) it raises :class:`BrowserRequiredError`, which says where to put
  files instead.

Missing files raise Colab's ``FileNotFoundError('Cannot find file: NAME')``.
"""

import os as _os

from google.colab import errors as _errors

from drivelab.colab._calls import (
    DOWNLOADS,
    colab_download,
    download_html,
    hints_shown,
    lab_base_url,
    start_upload,
    upload_html,
    wait_upload,
)

__all__ = ["BrowserRequiredError", "download", "upload"]


class BrowserRequiredError(_errors.Error):
    """``files.upload()`` was called where no browser is attached to choose the files."""


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


def __getattr__(name):
    if name in ("view", "upload_file"):
        raise AttributeError(f"google.colab.files.{name} is Colab's own; drivelab provides files.download and files.upload (see docs/lab.md)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
