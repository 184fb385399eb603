"""Colab's ``google.colab`` calls on a drivelab workspace: ``drive.mount``, ``files.download``, ``files.upload``.

Colab mounts Google Drive at ``<mountpoint>/MyDrive``. Here the workspace's
drive is attached (``drivelab.drive.mount``) and ``<mountpoint>/MyDrive`` (and
``My Drive``, its older name) is made a symbolic link to the workspace's
``drive/`` folder, so every ``/content/drive/MyDrive/...`` path reaches the
drive. In a lab kernel or a job ``/content`` is the workspace itself (see
:mod:`drivelab.colab._content`); elsewhere a mountpoint under ``/content``
that cannot be made is a :class:`ColabError` saying how to allow it. Inside
that namespace the drive is attached and detached by the keeper outside it.

``$DRIVELAB_COLAB_CONTENT``, read at each call, puts Colab's ``/content``
elsewhere: with it set to ``/tmp/c``, ``mount('/content/drive')`` makes
``/tmp/c/drive/MyDrive``.

A browser is attached only to a kernel the lab's server started (see
:func:`lab_base_url`): there ``files.download`` makes the browser save the
file and ``files.upload`` shows a file picker. Anywhere else (``drivelab
run``, plain Python, a kernel papermill started) the same calls work headless:
a download is a copy in ``drive/downloads/``, an upload is refused with a
message saying where to put files instead.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from drivelab import drive
from drivelab.colab._content import ask_keeper, content_status, keeper_available
from drivelab.errors import ColabError, DrivelabError
from drivelab.workspace import Workspace, find_workspace

__all__ = [
    "CONNECT_COMMAND",
    "CONNECT_PAGE",
    "CONTENT_ENV",
    "DOWNLOADS",
    "LAB_BASE_URL_ENV",
    "MY_DRIVE",
    "ColabDownload",
    "ColabMount",
    "Upload",
    "colab_content",
    "colab_download",
    "colab_flush_and_unmount",
    "colab_mount",
    "connect_html",
    "download_html",
    "hints_shown",
    "in_kernel",
    "lab_base_url",
    "set_lab_frontend",
    "start_upload",
    "unique_name",
    "upload_html",
    "wait_upload",
]

MY_DRIVE = "MyDrive"
MY_DRIVE_NAMES = (MY_DRIVE, "My Drive")
"""The links ``mount`` makes: Colab's name, and the one notebooks written before it still use."""
COLAB_CONTENT = Path("/content")
CONTENT_ENV = "DRIVELAB_COLAB_CONTENT"
"""The folder that stands for Colab's ``/content`` (default: ``/content`` itself)."""

LAB_BASE_URL_ENV = "DRIVELAB_LAB_BASE_URL"
"""Set by ``drivelab lab`` in its server's environment (so its kernels': the server's base URL, ``/``)."""
CONNECT_PAGE = "drivelab/connect"
"""The lab's "Connect a drive" page, under the server's base URL."""
CONNECT_COMMAND = "drivelab drive connect NAME -t gdrive"
DOWNLOADS = "downloads"
"""``drive/downloads/``: where ``files.download`` leaves its copies."""

_STAGING = re.compile(r"\.(MyDrive|My Drive)\.\d+")
"""The name a ``MyDrive`` link is made under before it is renamed into place (``.MyDrive.<pid>``)."""

# Links made by this process, removed again by colab_flush_and_unmount().
_links: dict[Path, Path] = {}
# The lab's base URL when this process is a kernel the lab's server started (a browser is attached).
_frontend: str | None = None


@dataclass(frozen=True)
class ColabMount:
    mountpoint: Path
    """The folder given to ``mount`` (absolute, ``/content`` put where :func:`colab_content` says), e.g. ``/content/drive``."""
    link: Path
    """``<mountpoint>/MyDrive``, a symbolic link to :attr:`target`."""
    target: Path
    """The workspace's ``drive/`` folder."""
    already: bool
    """It was mounted there already (nothing changed)."""
    notes: tuple[str, ...] = ()
    """What the caller should be told (a read-only mount asked of a drive attached read-write)."""
    drive: Any = field(repr=False, default=None)
    """The :class:`drivelab.drive.DriveState` after attaching."""


def colab_content() -> Path:
    """Where Colab's ``/content`` is: ``$DRIVELAB_COLAB_CONTENT`` (absolute; read on each call), else ``/content``."""
    value = os.environ.get(CONTENT_ENV, "")
    return Path(os.path.abspath(os.path.expanduser(value))) if value else COLAB_CONTENT


def _absolute(mountpoint: str | os.PathLike[str]) -> Path:
    where = Path(os.path.abspath(os.path.expanduser(os.fspath(mountpoint))))
    if where == COLAB_CONTENT or COLAB_CONTENT in where.parents:
        return colab_content() / where.relative_to(COLAB_CONTENT)
    return where


@contextlib.contextmanager
def hints_shown() -> Iterator[None]:
    """Raise a :class:`DrivelabError` again with its hint in its message (``"...\\nhint: ..."``):
    a notebook shows an exception's message, never its ``hint``."""
    try:
        yield
    except DrivelabError as exc:
        if not exc.hint:
            raise
        shown = type(exc).__new__(type(exc))  # the same class, whatever its constructor takes
        shown.__dict__.update(exc.__dict__)
        shown.message = f"{exc.message}\nhint: {exc.hint}"
        shown.args = (shown.message,)
        raise shown from None


def _permission_error(path: Path, exc: OSError) -> ColabError:
    if path == COLAB_CONTENT or COLAB_CONTENT in path.parents:
        found = content_status()
        return ColabError(
            f"cannot create {path}: {exc.strerror or exc} (/content is not this workspace here: {found.why})",
            hint=f"{found.hint}; or set {CONTENT_ENV} to a folder you own (it then stands for /content)",
        )
    return ColabError(
        f"cannot create {path}: {exc.strerror or exc}",
        hint=(
            "mount under /content (the workspace, in the lab and in jobs) or at a folder you own, "
            "e.g. drive.mount('/content/drive') (the workspace's drive/ folder works directly too)"
        ),
    )


def colab_mount(
    mountpoint: str | os.PathLike[str],
    *,
    force_remount: bool = False,
    timeout: float = 120.0,
    readonly: bool = False,
    workspace: Workspace | None = None,
) -> ColabMount:
    """Attach the workspace's drive and make ``<mountpoint>/MyDrive`` lead to it.

    The workspace is ``workspace``, else the one named by
    ``$DRIVELAB_WORKSPACE`` or holding the working folder. ``mountpoint`` must
    be outside the drive and hold nothing but a previous ``MyDrive`` link; one
    under ``/content`` is under :func:`colab_content` instead.
    """
    ws = workspace or find_workspace()
    target = ws.drive.resolve()
    where = _absolute(mountpoint)
    resolved = where.resolve()
    if resolved == target or target in resolved.parents:
        raise ColabError(
            f"cannot mount at {where}: it is inside the workspace's drive ({target})",
            hint="mount at a folder outside it, as on Colab: drive.mount('/content/drive')",
        )
    try:
        where.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise _permission_error(where, exc) from exc
    except (FileExistsError, NotADirectoryError) as exc:
        raise ColabError(f"cannot mount at {where}: it is not a folder", hint="choose another mountpoint") from exc
    except OSError as exc:
        raise ColabError(f"cannot create {where}: {exc.strerror or exc}", hint="choose another mountpoint") from exc

    link = where / MY_DRIVE
    # Another process mounting there at the same moment (torchrun's ranks) leaves its staging link for an instant.
    others = sorted(p.name for p in where.iterdir() if p.name not in MY_DRIVE_NAMES and not _STAGING.fullmatch(p.name))
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise ColabError(
            f"mountpoint {where} must not already contain files (it holds {shown})",
            hint="mount at an empty folder, or move those files away",
        )
    for name in MY_DRIVE_NAMES:
        if os.path.lexists(where / name) and not (where / name).is_symlink():
            raise ColabError(f"{where / name} is in the way: it is not a link drivelab made", hint="move it away, then mount again")
    already = all((where / n).is_symlink() and (where / n).resolve() == target for n in MY_DRIVE_NAMES) and not force_remount

    state = _attach_drive(ws, force_remount=force_remount, timeout=timeout, readonly=readonly)
    notes = []
    if readonly and not getattr(state, "read_only", False) and getattr(state, "mode", "local") != "local":
        notes.append(
            "The drive was attached read-write already (by the lab or a job), and stays so: readonly=True did not change it. "
            f'To mount it read-only, detach it first: drive.flush_and_unmount(), then drive.mount("{mountpoint}", readonly=True).'
        )
    if not already:
        for name in MY_DRIVE_NAMES:
            staging = where / f".{name}.{os.getpid()}"
            try:
                if os.path.lexists(staging):
                    staging.unlink()
                os.symlink(target, staging, target_is_directory=True)
                os.replace(staging, where / name)  # atomic: a previous link is swapped, never missing
            except PermissionError as exc:
                raise _permission_error(where, exc) from exc
    for name in MY_DRIVE_NAMES:
        _links[where / name] = target
    return ColabMount(mountpoint=where, link=link, target=target, already=already, drive=state, notes=tuple(notes))


def _attach_drive(ws: Workspace, *, force_remount: bool, timeout: float, readonly: bool) -> Any:
    """``drivelab.drive.mount`` here, or by the keeper outside when this process is in its ``/content`` namespace."""
    if not keeper_available():
        return drive.mount(str(ws.drive), force_remount=force_remount, timeout=timeout, readonly=readonly)
    reply = ask_keeper({"op": "mount", "force_remount": force_remount, "timeout": timeout, "readonly": readonly}, timeout=timeout + 60)
    data = reply["state"]
    known = {f.name for f in fields(drive.DriveState)}
    values = {k: v for k, v in data.items() if k in known}
    values["path"] = Path(values["path"])
    return drive.DriveState(**values)


def colab_flush_and_unmount(timeout: float = 24 * 60 * 60.0) -> Any:
    """Flush the drive (wait for every pending upload), detach it, and remove the
    ``MyDrive`` links this process made; returns the drive's ``DetachResult``
    (``forced`` and ``pending`` say whether every write landed)."""
    if keeper_available():
        data = ask_keeper({"op": "flush_and_unmount", "timeout": timeout}, timeout=timeout + 60)["result"]
        known = {f.name for f in fields(drive.DetachResult)}
        result = drive.DetachResult(**{k: v for k, v in data.items() if k in known})
    else:
        result = drive.flush_and_unmount(timeout=timeout)
    for link, target in list(_links.items()):
        try:
            if link.is_symlink() and link.resolve() == target:
                link.unlink()
        except OSError:
            pass  # someone else's now; leave it
        _links.pop(link, None)
    return result


# --- where the code runs -----------------------------------------------------------------


def set_lab_frontend(base_url: str | None) -> None:
    """Record that this process is a kernel of the lab's server at ``base_url`` (None: it is not).

    Called once by the lab's kernel as it starts (:func:`drivelab.colab._kernel.prepare_environment`),
    which removes ``$DRIVELAB_LAB_BASE_URL`` from its environment: a process the kernel starts, a
    job started from the lab's terminal or a notebook papermill runs has no browser.
    """
    global _frontend
    _frontend = (base_url if base_url.endswith("/") else base_url + "/") if base_url else None


def in_kernel() -> bool:
    """This process is an IPython kernel (a notebook's, in the lab or under papermill or nbclient)."""
    ipython = sys.modules.get("IPython")  # never imported here: plain Python is not a kernel
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def lab_base_url() -> str | None:
    """The lab server's base URL (ends with ``/``) when a browser is attached to this code, else None.

    A browser is attached to a kernel the lab's server started for a notebook
    or console, and to nothing else. Links built from it are host-relative
    (``/files/...``), so they work through an SSH tunnel.
    """
    return _frontend if _frontend and in_kernel() else None


def connect_html(base_url: str) -> str:
    """What ``drive.mount`` shows in the lab when the drive is the local folder: a link to "Connect a drive"."""
    href = _html_attr(base_url + CONNECT_PAGE)
    return (
        "<div class=\"drivelab-connect\">The drive is this machine's folder <code>drive/</code>, not Google Drive. "
        f'To put it on Google Drive (or another cloud drive), <a href="{href}" target="_blank" rel="noopener">connect a drive</a>.</div>'
    )


def _html_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _js(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def unique_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem (N).ext`` with the first N free, as a browser saves a download."""
    candidate = folder / name
    stem, suffix = os.path.splitext(name)
    n = 0
    while os.path.lexists(candidate):
        n += 1
        candidate = folder / f"{stem} ({n}){suffix}"
    return candidate


def _colab_path(filename: str | os.PathLike[str]) -> Path:
    """A path as Colab code gives it: relative to the working folder; ``/content/...`` under :func:`colab_content`."""
    where = Path(os.path.abspath(os.path.expanduser(os.fspath(filename))))
    if not os.path.lexists(where):
        mapped = _absolute(where)
        if os.path.lexists(mapped):
            return mapped
    return where


# --- files.download ----------------------------------------------------------------------


@dataclass(frozen=True)
class ColabDownload:
    source: Path
    """The file asked for."""
    saved: Path
    """Its copy in ``drive/downloads/`` (the file itself when it is there already)."""
    url: str
    """Where the lab's server serves the copy, relative to its base URL: ``files/drive/downloads/NAME?download=1``."""


def colab_download(filename: str | os.PathLike[str], *, workspace: Workspace | None = None) -> ColabDownload:
    """Copy ``filename`` into the workspace's ``drive/downloads/`` (atomically) for a browser to fetch, or to keep.

    Raises Colab's ``FileNotFoundError('Cannot find file: NAME')`` for a file
    that is not there. The copy keeps the file's name (without leading dots,
    which Jupyter will not serve); a different file of that name already
    there is kept, and the copy becomes ``NAME (1).ext``, as a browser does;
    the same content is not copied twice.
    """
    source = _colab_path(filename)
    if not source.exists():
        raise FileNotFoundError(f"Cannot find file: {filename}")
    if source.is_dir():
        raise IsADirectoryError(f"Cannot download a folder: {filename}; make an archive of it first, e.g. shutil.make_archive")
    ws = workspace or find_workspace()
    folder = ws.drive / DOWNLOADS
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ColabError(f"cannot create {folder}: {exc.strerror or exc}", hint="check that the drive is attached and writable: `drivelab drive status`") from exc
    if source.resolve().parent == folder.resolve():
        saved = source
    else:
        name = source.name.lstrip(".") or "download"
        saved = folder / name
        n = 0
        stem, suffix = os.path.splitext(name)
        while os.path.lexists(saved) and not (saved.is_file() and filecmp.cmp(source, saved, shallow=False)):
            n += 1
            saved = folder / f"{stem} ({n}){suffix}"
        if not os.path.lexists(saved):
            staging = folder / f".{name}.{os.getpid()}.incomplete"
            try:
                shutil.copyfile(source, staging)
                os.replace(staging, saved)  # a browser fetching it sees the whole file or none
            except OSError as exc:
                with contextlib.suppress(OSError):
                    staging.unlink()
                raise ColabError(f"cannot copy {source} to {saved}: {exc.strerror or exc}", hint="check the drive: `drivelab drive status`") from exc
    relative = saved.relative_to(ws.root).as_posix() if saved.is_relative_to(ws.root) else None
    if relative is None:  # the file was in drive/downloads, reached through another path
        relative = (Path(ws.drive.name) / DOWNLOADS / saved.name).as_posix()
    return ColabDownload(source=source, saved=saved, url=f"files/{urllib.parse.quote(relative)}?download=1")


def download_html(download: ColabDownload, base_url: str, name: str) -> str:
    """A link to the copy, and a script that clicks it once (not again when the notebook is opened later)."""
    element = f"drivelab-download-{uuid.uuid4().hex}"
    href = _html_attr(base_url + download.url)
    shown = _html_attr(name)
    return (
        f'<div>Downloading <a id="{element}" href="{href}" download="{_html_attr(download.source.name)}">{shown}</a> '
        f"(a copy is in <code>{_html_attr(download.url.split('?')[0].removeprefix('files/'))}</code>)</div>"
        "<script>(() => {"
        f"const a = document.getElementById({_js(element)}); if (!a) return;"
        f"const done = {_js(element)};"
        "try { if (window.localStorage.getItem(done)) return; window.localStorage.setItem(done, '1'); } catch (e) {}"
        "a.click();"
        "})();</script>"
    )


# --- files.upload ------------------------------------------------------------------------

_CHUNK = 1024 * 1024
"""Bytes of a file the browser sends in one request (the Jupyter server appends the chunks)."""


@dataclass(frozen=True)
class Upload:
    """A file picker waiting in the browser: what it sends lands in :attr:`staging`, then :attr:`done` appears."""

    id: str
    target: Path
    """The folder the files are saved in (Colab's ``target_dir``, from the working folder)."""
    staging: Path
    """``<target>/drivelab-upload-<id>/``: the browser writes ``N.part`` files there, then ``done.json``."""
    api_path: str
    """:attr:`staging` as the Jupyter contents API names it (relative to the server's root)."""

    @property
    def done(self) -> Path:
        return self.staging / "done.json"


def start_upload(target_dir: str | os.PathLike[str] = "", *, workspace: Workspace | None = None) -> Upload:
    """Make the folder a browser's upload lands in, under ``target_dir``; :class:`ColabError` when the lab's
    server cannot write there (outside the workspace, or in a hidden folder)."""
    ws = workspace or find_workspace()
    target = _colab_path(target_dir or ".")
    root = ws.root.resolve()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ColabError(f"cannot create {target}: {exc.strerror or exc}", hint="upload into another folder: files.upload('drive/uploads')") from exc
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise ColabError(
            f"files.upload() cannot save into {target}: the lab's browser writes through the Jupyter server, which reaches only the workspace ({root})",
            hint="upload into a folder of the workspace, e.g. files.upload('drive/uploads') (the working folder, the workspace root, is the default)",
        )
    relative = resolved.relative_to(root)
    if any(part.startswith(".") for part in relative.parts):
        raise ColabError(
            f"files.upload() cannot save into {target}: the Jupyter server does not write in hidden folders",
            hint="upload into a folder whose name does not start with '.', e.g. files.upload('drive/uploads')",
        )
    upload_id = uuid.uuid4().hex
    staging = resolved / f"drivelab-upload-{upload_id}"
    staging.mkdir()
    return Upload(id=upload_id, target=target, staging=staging, api_path=(relative / staging.name).as_posix())


def wait_upload(upload: Upload, *, poll: float = 0.1, timeout: float | None = None) -> tuple[dict[str, bytes], list[tuple[str, Path]]]:
    """Wait until the browser is done (or cancelled), then save what it sent into the target folder.

    Returns ``({name: content}, [(name, saved path)])``, Colab's result and
    where each file went (``NAME (1).ext`` when ``NAME`` exists). The staging
    folder is removed whatever happens, a kernel interrupt included.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while not upload.done.is_file():
            if deadline is not None and time.monotonic() > deadline:
                raise ColabError("no files were uploaded in time", hint="run the cell again and choose the files")
            time.sleep(poll)
        try:
            report = json.loads(upload.done.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ColabError(f"the browser's upload report is unreadable: {exc}", hint="run the cell again") from exc
        if report.get("error"):
            raise ColabError(f"the upload failed in the browser: {report['error']}", hint="run the cell again; large files may need the file browser's upload button")
        files: dict[str, bytes] = {}
        saved: list[tuple[str, Path]] = []
        if report.get("cancelled"):
            return files, saved
        for entry in report.get("files", []):
            name, part = str(entry.get("name", "")), str(entry.get("part", ""))
            source = upload.staging / part
            if not name or os.path.basename(name) != name or name in (".", "..") or os.path.basename(part) != part or not source.is_file():
                raise ColabError(f"the browser's upload report names a file that is not there: {name!r}", hint="run the cell again")
            data = source.read_bytes()
            if "size" in entry and len(data) != int(entry["size"]):
                raise ColabError(f"{name} arrived incomplete ({len(data)} of {entry['size']} bytes)", hint="run the cell again")
            where = unique_name(upload.target, name)
            os.replace(source, where)
            files[name] = data
            saved.append((name, where))
        return files, saved
    finally:
        shutil.rmtree(upload.staging, ignore_errors=True)


def upload_html(upload: Upload, base_url: str, *, multiple: bool = True) -> str:
    """A file picker whose script sends the chosen files to the Jupyter contents API, then writes ``done.json``."""
    ids = {k: f"drivelab-upload-{k}-{upload.id}" for k in ("input", "cancel", "status")}
    config = {
        "base": base_url,
        "staging": upload.api_path,
        "chunk": _CHUNK,
        **ids,
    }
    return (
        f'<input type="file" id="{ids["input"]}" {"multiple" if multiple else ""} disabled style="border:none" /> '
        f'<button id="{ids["cancel"]}" disabled>Cancel upload</button> '
        f'<output id="{ids["status"]}">The file picker works in the browser session that ran this cell; run it again to use it.</output>'
        f"<script>({_UPLOAD_JS})({_js(config)});</script>"
    )


_UPLOAD_JS = """async (c) => {
  const input = document.getElementById(c.input), cancel = document.getElementById(c.cancel), status = document.getElementById(c.status);
  if (!input) return;
  const api = (path) => c.base + "api/contents/" + path.split("/").map(encodeURIComponent).join("/");
  const cookie = document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]*)/);
  const headers = {"Content-Type": "application/json"};
  if (cookie) headers["X-XSRFToken"] = decodeURIComponent(cookie[1]);
  const put = async (path, model) => {
    const reply = await fetch(api(path), {method: "PUT", headers, credentials: "same-origin", body: JSON.stringify(model)});
    if (!reply.ok) throw new Error(`${reply.status} ${reply.statusText}: ${(await reply.text()).slice(0, 300)}`);
  };
  const base64 = (bytes) => {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const finish = (files, cancelled, error) =>
    put(c.staging + "/done.json", {type: "file", format: "text", content: JSON.stringify({files, cancelled, error})});
  const waiting = await fetch(api(c.staging) + "?content=0", {credentials: "same-origin"}).then((r) => r.ok, () => false);
  if (!waiting) { status.textContent = "This upload has ended; run the cell again to upload files."; return; }
  input.disabled = false; cancel.disabled = false; status.textContent = "";
  cancel.onclick = async () => {
    input.disabled = true; cancel.disabled = true;
    try { await finish([], true, null); status.textContent = "Upload cancelled."; } catch (e) { status.textContent = "Cancelling failed: " + e; }
  };
  input.addEventListener("change", async () => {
    input.disabled = true; cancel.disabled = true;
    const sent = [];
    try {
      let n = 0;
      for (const file of Array.from(input.files)) {
        const part = (n++) + ".part";
        const chunks = Math.max(1, Math.ceil(file.size / c.chunk));
        for (let i = 0; i < chunks; i++) {
          const bytes = new Uint8Array(await file.slice(i * c.chunk, (i + 1) * c.chunk).arrayBuffer());
          const model = {type: "file", format: "base64", content: base64(bytes)};
          if (chunks > 1) model.chunk = i === chunks - 1 ? -1 : i + 1;
          await put(c.staging + "/" + part, model);
          status.textContent = `${file.name}: ${Math.round((100 * Math.min(file.size, (i + 1) * c.chunk)) / Math.max(1, file.size))}% done`;
        }
        sent.push({name: file.name, part, size: file.size});
      }
      await finish(sent, false, null);
      status.textContent = sent.map((f) => `${f.name} (${f.size} bytes)`).join(", ") + " uploaded.";
    } catch (e) {
      status.textContent = "Upload failed: " + e + " (interrupt the kernel if it still waits, then run the cell again)";
      try { await finish(sent, false, String(e)); } catch (ignored) {}
    }
  });
}"""
