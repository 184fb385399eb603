"""``/content``: a kernel's or job's working folder seen where Colab keeps it, with no root at run time.

Colab's working folder is ``/content``, and notebooks spell it out
(``open('/content/x.csv')``, ``%cd /content``, ``drive.mount('/content/drive')``).
Here a process of a workspace (a lab kernel, a job and everything it starts)
gets a mount namespace of its own in which the workspace root is bind-mounted
at ``/content``. Two workspaces on one machine each see their own ``/content``;
nothing outside those processes sees anything at ``/content`` but an empty
folder.

- ``/content`` must exist as a folder: ``sudo drivelab setup colab`` makes it,
  once per machine (:func:`setup_machine`); it is the only step that needs root.
- A user without root gets the mount namespace inside a user namespace of its
  own, mapping only the user's own ids (``unshare(CLONE_NEWUSER|CLONE_NEWNS)``,
  as ``unshare --user --map-current-user --mount`` does). Root gets the mount
  namespace alone.
- ``/content/drive`` is not the workspace's ``drive/`` but a folder of the
  workspace's local state (``.drivelab/colab/drive``) bind-mounted over it:
  there ``drive.mount('/content/drive')`` puts ``MyDrive`` and ``My Drive``,
  leading to the workspace's drive, as on Colab. Relative paths (``drive/colab``)
  are unchanged: the working folder stays the workspace root's real path.
- Mounts made outside later (the drive's FUSE mount, a remount by its
  watchdog) still reach the namespace: its mounts are slaves of the machine's.
  That needs the machine's mount holding the workspace to be *shared*, as
  systemd makes every mount at boot; where it is private (a machine or
  container without systemd), ``drivelab setup colab`` makes ``/`` shared
  (``mount --make-rshared /``), and until then no namespace is made: a view
  of the drive that a remount would never reach is worse than no ``/content``.
- The drive's own processes (watchdog, rclone) must live outside: a FUSE mount
  made inside would be seen by no one else. Before entering, a *keeper*
  process is forked that stays outside; inside, attaching and detaching the
  drive is asked of it over a Unix socket (abstract, named in
  ``$DRIVELAB_COLAB_KEEPER``, answering only its own user), and it dies with
  the process that entered. The ``drivelab`` commands that attach or detach
  the drive (``drive mount``, ``drive unmount``, ``run``, ``lab``, ``demo``),
  typed in a notebook (``!drivelab ...``, ``%drivelab ...``) or a job, are run
  by the keeper too, their output streamed back (:func:`forward_command`).

Where the namespace cannot be made (no ``/content`` folder, user namespaces
switched off, macOS), the process runs as before and ``/content`` paths fail
with a message that names ``sudo drivelab setup colab`` or the cause.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import secrets
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivelab import drive, errors
from drivelab.errors import ColabError, DrivelabError

__all__ = [
    "CONTENT",
    "OUTSIDE_COMMANDS",
    "forward_command",
    "KEEPER_ENV",
    "ContentStatus",
    "SetupResult",
    "ask_keeper",
    "content_command",
    "content_status",
    "enter_content",
    "keeper_available",
    "setup_machine",
]

CONTENT = Path("/content")
KEEPER_ENV = "DRIVELAB_COLAB_KEEPER"
"""The keeper's socket (an abstract name) for processes inside the namespace."""
_INSIDE_ENV = "DRIVELAB_COLAB_INSIDE"
"""The workspace root whose ``/content`` this process sees (set by :func:`enter_content`)."""
_WHY_ENV = "DRIVELAB_COLAB_CONTENT_WHY"
"""Why ``/content`` could not be made for this process and its children (set by :func:`enter_content`)."""
DRIVE_VIEW = ("colab", "drive")
"""Under the workspace's ``.drivelab/``: the folder seen at ``/content/drive``."""

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SLAVE = 1 << 19
_MS_SHARED = 1 << 20
_PR_SET_PDEATHSIG = 1
SETUP_COMMAND = "sudo drivelab setup colab"


@dataclass(frozen=True)
class ContentStatus:
    """Whether this process sees its workspace at ``/content``, and if not, why and what to do."""

    available: bool
    workspace: str | None = None
    why: str | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "workspace": self.workspace, "why": self.why, "hint": self.hint}


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.stat(a), os.stat(b))
    except OSError:
        return False


def content_status(root: str | os.PathLike[str] | None = None) -> ContentStatus:
    """This process's ``/content``: the workspace ``root`` (default: the one it entered) seen there, or why not."""
    inside = os.environ.get(_INSIDE_ENV)
    where = Path(root) if root is not None else Path(inside) if inside else None
    if where is not None and _same_folder(CONTENT, where):
        return ContentStatus(True, str(where))
    why = os.environ.get(_WHY_ENV) or _why_not()
    return ContentStatus(False, str(where) if where else None, why, _hint_for(why))


def _why_not() -> str:
    if sys.platform != "linux":
        return f"/content needs Linux mount namespaces, which {sys.platform} does not have"
    if not CONTENT.is_dir():
        return "there is no folder /content on this machine"
    return "this process was not started in its workspace's /content (a lab kernel or a drivelab run job is)"


def _hint_for(why: str) -> str:
    if "private mount" in why:
        return f"make mounts propagate once for the whole machine: `{SETUP_COMMAND}` (as systemd does at boot)"
    if "no folder /content" in why:
        return f"make it once for the whole machine: `{SETUP_COMMAND}` (an empty folder; each workspace then sees itself there)"
    if "user namespaces" in why:
        return "allow unprivileged user namespaces (see `drivelab setup colab`'s report), or mount at a folder of the workspace, e.g. drive.mount('drive')"
    if "mount namespaces" in why:
        return "use the workspace's folders directly (drive/...), or mount at a folder you own, e.g. drive.mount('/tmp/content/drive')"
    return "run the code in the lab or with `drivelab run`, or use the workspace's folders directly (drive/...)"


# --- entering ---------------------------------------------------------------------------------------------


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(text)


def _mount_of(path: Path) -> tuple[str, list[str]] | None:
    """The mount point holding ``path`` and its optional fields (``shared:N``, ``master:N``), from mountinfo."""
    target = os.path.realpath(path)
    found: tuple[str, list[str]] | None = None
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields_, _, _ = line.partition(" - ")
        parts = fields_.split()
        if len(parts) < 6:
            continue
        point = parts[4].replace("\\040", " ")
        if target == point or target.startswith(point.rstrip("/") + "/"):
            if found is None or len(point) >= len(found[0]):
                found = (point, parts[6:])
    return found


def _private_mount(path: Path) -> str | None:
    """The mount point holding ``path`` when mounts made under it reach no other namespace (None: they do)."""
    found = _mount_of(path)
    if found is None or any(tag.startswith("shared:") for tag in found[1]):
        return None
    return found[0]


def drive_view(root: Path) -> Path:
    return root.joinpath(".drivelab", *DRIVE_VIEW)


def enter_content(root: str | os.PathLike[str]) -> ContentStatus:
    """Make this process (and all it starts from now on) see the workspace ``root`` at ``/content``.

    Must be called while the process has a single thread (user namespaces
    require it): before a kernel starts its threads, or in a wrapper before
    ``exec``. Does nothing where it is already so. Never raises: what could
    not be done is returned (and kept in the environment for children).
    """
    root = Path(os.path.abspath(root))
    if _same_folder(CONTENT, root):
        return ContentStatus(True, str(root))
    if sys.platform != "linux" or not CONTENT.is_dir():
        why = _why_not()
        os.environ[_WHY_ENV] = why
        return ContentStatus(False, str(root), why, _hint_for(why))
    private = _private_mount(root)
    if private is not None:
        why = f"mounts made later (the drive's) would not reach /content: {private} is a private mount on this machine"
        os.environ[_WHY_ENV] = why
        return ContentStatus(False, str(root), why, _hint_for(why))
    view = drive_view(root)
    try:
        view.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = f"cannot create {view}: {exc.strerror or exc}"
        os.environ[_WHY_ENV] = why
        return ContentStatus(False, str(root), why, "check the workspace's permissions")
    keeper = _start_keeper(root)
    try:
        _unshare_and_bind(root, view)
    except OSError as exc:
        _stop_keeper(keeper)
        if str(exc.strerror).startswith("unshare") and os.getuid() != 0:
            why = f"user namespaces are not available to this user ({exc.strerror})"
        else:  # the namespace may be made already: this process runs on in it, without /content
            why = f"cannot make /content here ({exc.strerror or exc})"
        os.environ[_WHY_ENV] = why
        return ContentStatus(False, str(root), why, _hint_for(why))
    os.environ[_INSIDE_ENV] = str(root)
    os.environ.pop(_WHY_ENV, None)
    if keeper is not None:
        os.environ[KEEPER_ENV] = keeper[1]
    return ContentStatus(True, str(root))


def _unshare_and_bind(root: Path, view: Path) -> None:
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        _check(libc.unshare(_CLONE_NEWNS), "unshare")
        # Root's new namespace shares its mounts with the machine's until told otherwise.
        _check(libc.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None), "mount --make-rslave /")
    else:
        _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{uid} {uid} 1")
        _write("/proc/self/gid_map", f"{gid} {gid} 1")
    _check(libc.mount(os.fsencode(root), os.fsencode(CONTENT), None, _MS_BIND | _MS_REC, None), f"bind {root} at {CONTENT}")
    drive = CONTENT / "drive"
    if drive.is_dir():
        _check(libc.mount(os.fsencode(view), os.fsencode(drive), None, _MS_BIND, None), f"bind {view} at {drive}")


def content_command(root: str | os.PathLike[str], argv: list[str], *, python: str | None = None) -> list[str]:
    """``argv`` run with the workspace ``root`` at ``/content`` (where it can be; as is otherwise)."""
    return [python or sys.executable, "-m", "drivelab.colab._content", os.fspath(root), "--", *argv]


# --- the keeper: the drive's operations, outside the namespace ----------------------------------------------


def _start_keeper(root: Path) -> tuple[int, str] | None:
    name = f"drivelab-colab-{os.getuid()}-{secrets.token_hex(8)}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind("\0" + name)
        server.listen(8)
    except OSError:
        server.close()
        return None
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the keeper: a program of its own, so that `ps` names it and nothing mistakes it for the job
        try:
            _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)  # kept across exec
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # never hold the job's output pipe, nor write into it
                os.dup2(devnull, fd)
            os.set_inheritable(server.fileno(), True)
            os.execv(sys.executable, [sys.executable, "-m", "drivelab.colab._content", "--keeper", str(server.fileno()), str(root), str(parent)])
        finally:
            os._exit(1)
    server.close()
    return pid, name


def _stop_keeper(keeper: tuple[int, str] | None) -> None:
    if keeper is None:
        return
    with contextlib.suppress(OSError):
        os.kill(keeper[0], signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.waitpid(keeper[0], 0)


OUTSIDE_COMMANDS = (("drive", "mount"), ("drive", "unmount"), ("run",), ("lab",), ("demo",))
"""``drivelab`` commands that attach or detach the drive: inside the namespace, the keeper runs them."""


def _command_words(argv: list[str]) -> list[str]:
    words = [a for a in argv if not a.startswith("-")]  # global options (--debug) come before the command
    return words[:2]


def forward_command(argv: list[str]) -> int | None:
    """Run ``drivelab ARGV`` by the keeper, outside this namespace, when it attaches or detaches the drive.

    Returns its exit code, its output having been written to this process's
    stdout and stderr as it came; None when it is not such a command or this
    process is not in a namespace with a keeper (run it here, as usual). An
    interrupt here (Ctrl+C, a kernel's interrupt) interrupts it there.
    """
    if not keeper_available():
        return None
    words = _command_words(argv)
    if not any(tuple(words[: len(c)]) == c for c in OUTSIDE_COMMANDS):
        return None
    env = {k: v for k, v in os.environ.items() if k not in (KEEPER_ENV, _INSIDE_ENV, _WHY_ENV)}
    request = {"op": "cli", "argv": list(argv), "cwd": os.getcwd(), "env": env}
    with _connect() as conn:
        conn.sendall(json.dumps(request).encode() + b"\n")
        for line in conn.makefile("rb"):
            message = json.loads(line)
            if "exit" in message:
                return int(message["exit"])
            stream = sys.stdout if "out" in message else sys.stderr
            stream.write(message.get("out", message.get("err", "")))
            stream.flush()
    raise ColabError("the process that runs drivelab commands for this kernel or job ended without an exit code", hint="see `drivelab drive status`; restart the kernel")


def _connect() -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect("\0" + os.environ[KEEPER_ENV])
    except OSError as exc:
        conn.close()
        raise ColabError(
            f"the process that attaches the drive for this kernel or job is gone ({exc.strerror or exc})",
            hint="restart the kernel (or the job), or attach the drive in a terminal: `drivelab drive mount`",
        ) from None
    return conn


def _keeper_main(server: socket.socket, root: Path, parent: int) -> None:
    if os.getppid() != parent:  # the process that entered is gone already
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a kernel's interrupt reaches its whole process group
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    os.environ.pop(KEEPER_ENV, None)
    me = os.getuid()
    while True:
        conn, _ = server.accept()
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        if uid != me:
            conn.close()
            continue
        # One thread a request: a `drivelab run` in the foreground must not hold up a drive.mount meanwhile.
        threading.Thread(target=_answer, args=(conn, root), daemon=True).start()


def _answer(conn: socket.socket, root: Path) -> None:
    with conn:
        try:
            request = json.loads(conn.makefile("rb").readline())
            if request.get("op") == "cli":
                _run_command(conn, request)
                return
            reply = _serve(root, request)
        except Exception as exc:  # noqa: BLE001 -- every failure goes back to the asking process
            reply = {"error": type(exc).__name__, "message": str(exc), "hint": getattr(exc, "hint", None)}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply).encode() + b"\n")


def _run_command(conn: socket.socket, request: dict[str, Any]) -> None:
    """``drivelab ARGV`` here, outside, its output sent back line by line; stopped when the asker goes away."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "drivelab", *[str(a) for a in request["argv"]]],
        cwd=request.get("cwd") or None,
        env={str(k): str(v) for k, v in request.get("env", {}).items()},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lock = threading.Lock()
    gone = threading.Event()

    def send(message: dict[str, Any]) -> None:
        with lock:
            try:
                conn.sendall(json.dumps(message).encode() + b"\n")
            except OSError:
                gone.set()

    def pump(pipe: Any, key: str) -> None:
        for raw in iter(pipe.readline, b""):
            send({key: raw.decode("utf-8", "replace")})

    pumps = [threading.Thread(target=pump, args=(proc.stdout, "out"), daemon=True), threading.Thread(target=pump, args=(proc.stderr, "err"), daemon=True)]
    for t in pumps:
        t.start()

    def watch_asker() -> None:  # the asker closing its end (an interrupt) interrupts the command, as Ctrl+C would
        with contextlib.suppress(OSError):
            while conn.recv(1):
                pass
        if proc.poll() is None:
            gone.set()
            proc.send_signal(signal.SIGINT)

    threading.Thread(target=watch_asker, daemon=True).start()
    code = proc.wait()
    for t in pumps:
        t.join(timeout=5)
    if not gone.is_set():
        send({"exit": code})


def _serve(root: Path, request: dict[str, Any]) -> dict[str, Any]:
    op = request.get("op")
    try:
        if op == "mount":
            state = drive.mount(
                str(root / "drive"),
                force_remount=bool(request.get("force_remount")),
                timeout=float(request.get("timeout", 120.0)),
                readonly=bool(request.get("readonly")),
            )
            return {"state": state.to_dict()}
        if op == "flush_and_unmount":
            result = drive.flush_and_unmount(timeout=float(request.get("timeout", 120.0)), mountpoint=str(root))
            return {"result": result.to_dict()}
    except DrivelabError as exc:
        return {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    return {"error": "ValueError", "message": f"unknown request {op!r}", "hint": None}


def keeper_available() -> bool:
    """This process is inside a namespace whose keeper attaches and detaches the drive."""
    return bool(os.environ.get(KEEPER_ENV)) and bool(os.environ.get(_INSIDE_ENV))


def ask_keeper(request: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
    """Send ``request`` to the keeper and return its reply; a failure there is raised here as the same error."""
    with _connect() as conn:
        conn.settimeout(timeout)
        try:
            conn.sendall(json.dumps(request).encode() + b"\n")
            line = conn.makefile("rb").readline()
        except OSError as exc:
            raise errors.ColabError(
                f"the process that attaches the drive for this kernel or job did not answer ({exc.strerror or exc})",
                hint="restart the kernel (or the job), or attach the drive in a terminal: `drivelab drive mount`",
            ) from None
    if not line:
        raise errors.ColabError("the process that attaches the drive ended without an answer", hint="see `drivelab drive status`; restart the kernel")
    reply = json.loads(line)
    if "error" in reply:
        cls = getattr(errors, reply["error"], None)
        if not (isinstance(cls, type) and issubclass(cls, errors.DrivelabError)):
            cls = errors.ColabError
        raise cls(reply.get("message") or "the drive could not be changed", hint=reply.get("hint"))
    return reply


# --- the one step with root ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetupResult:
    """What ``drivelab setup colab`` found and did."""

    content: str
    created: bool
    """``/content`` was made now (False: it was there already)."""
    user_namespaces: bool | None
    """Users without root can make the namespace (None: not checked, e.g. not on Linux)."""
    why: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "created": self.created,
            "user_namespaces": self.user_namespaces,
            "why": self.why,
            "hint": self.hint,
            "notes": self.notes,
        }


def setup_machine(*, probe_uid: int | None = None) -> SetupResult:
    """Make ``/content`` (an empty folder, ``root:root`` 0755) if it is missing, and check that users can use it.

    Idempotent: where ``/content`` is a folder already, nothing is changed.
    ``probe_uid`` is the user the check runs as (default: ``$SUDO_UID``, the
    admin who ran ``sudo``, else this user). Raises :class:`ColabError`
    when ``/content`` is missing and this process may not make it, or when
    something other than a folder is in the way.
    """
    if sys.platform != "linux":
        raise ColabError(
            f"/content for each workspace needs Linux mount namespaces; {sys.platform} has none",
            hint="use the workspace's folders directly (drive/...), or set DRIVELAB_COLAB_CONTENT to a folder that stands for /content",
        )
    created = False
    try:
        info = os.lstat(CONTENT)
    except FileNotFoundError:
        if os.geteuid() != 0:
            raise ColabError(f"{CONTENT} does not exist, and making it needs root", hint=f"run `{SETUP_COMMAND}` once") from None
        os.mkdir(CONTENT, 0o755)
        os.chmod(CONTENT, 0o755)
        created = True
    else:
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise ColabError(
                f"{CONTENT} is in the way: it is not a folder",
                hint=f"move it away (e.g. `sudo mv {CONTENT} {CONTENT}.old`), then run `{SETUP_COMMAND}` again",
            )
    notes = []
    if _private_mount(Path("/")) is not None:
        if os.geteuid() != 0:
            raise ColabError("mounts on this machine do not propagate (/ is a private mount), and changing it needs root", hint=f"run `{SETUP_COMMAND}`")
        _check(_libc().mount(b"none", b"/", None, _MS_REC | _MS_SHARED, None), "mount --make-rshared /")
        notes.append(
            "made / a shared mount (mount --make-rshared /, as systemd does at boot), so that the drive's mounts reach kernels and jobs; "
            "a machine without systemd forgets it at reboot: run this again after one"
        )
    uid = probe_uid if probe_uid is not None else int(os.environ.get("SUDO_UID") or os.getuid())
    works, why = _probe_namespace(uid)
    if any(CONTENT.iterdir()):
        notes.append(f"{CONTENT} holds files: kernels and jobs do not see them (each sees its workspace there)")
    hint = None
    if not works:
        hint = _namespace_hint()
    return SetupResult(str(CONTENT), created, works, why, hint, notes)


def _probe_namespace(uid: int) -> tuple[bool, str | None]:
    """Whether user ``uid`` can make the namespace (tried in a child process that becomes that user)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        message = b""
        try:
            if uid != os.getuid():
                os.setgroups([])
                os.setgid(pwd.getpwuid(uid).pw_gid)
                os.setuid(uid)
            libc = _libc()
            me = os.getuid()  # before unsharing: inside, an unmapped id reads as the overflow id
            _check(libc.unshare(_CLONE_NEWNS if me == 0 else _CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
            if me != 0:
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{me} {me} 1")
            _check(libc.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None), "mount --make-rslave /")
        except BaseException as exc:  # noqa: BLE001 -- reported to the parent
            message = str(exc).encode()[:500] or b"failed"
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        message = f.read()
    os.waitpid(pid, 0)
    return (not message, message.decode() or None)


def _namespace_hint() -> str:
    restrict = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    with contextlib.suppress(OSError):
        if restrict.read_text().strip() == "1":
            return (
                "AppArmor restricts unprivileged user namespaces here (Ubuntu 23.10 and later): allow them with "
                "`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0` (and in /etc/sysctl.d/ to keep it)"
            )
    clone = Path("/proc/sys/kernel/unprivileged_userns_clone")
    with contextlib.suppress(OSError):
        if clone.read_text().strip() == "0":
            return "unprivileged user namespaces are switched off: `sudo sysctl kernel.unprivileged_userns_clone=1` (and in /etc/sysctl.d/)"
    with contextlib.suppress(OSError):
        if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
            return "user namespaces are switched off: `sudo sysctl user.max_user_namespaces=15000` (and in /etc/sysctl.d/)"
    return "this machine does not allow unprivileged user namespaces (a container may forbid them); kernels and jobs then run without /content"


def _main(argv: list[str]) -> int:
    """``python -m drivelab.colab._content ROOT -- ARGV...``: run ARGV with ROOT at ``/content``.
    (``--keeper FD ROOT PID``: the keeper, serving the listening socket FD for process PID.)"""
    if argv[:1] == ["--keeper"] and len(argv) == 4:
        _keeper_main(socket.socket(fileno=int(argv[1])), Path(argv[2]), int(argv[3]))
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m drivelab.colab._content ROOT -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    enter_content(argv[0])
    command = argv[2:]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot start {command[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
