"""No secret ever reaches a command line: every rclone drivelab runs is recorded, and no argv holds one.

Command lines are readable by every local user (``/proc/PID/cmdline``, ``ps``).
rclone is run through a wrapper (``$DRIVELAB_RCLONE``) that appends its argv
as a JSON line to a log and then becomes the real rclone, so drivelab's own
calls, the watchdog's and the mount's are all recorded. Each path that hands
rclone a secret is exercised against real servers on loopback: an S3 key
(connect, attach, flush, detach), SFTP and WebDAV passwords, an OAuth token
given to connect, and remotes copied from the user's own rclone config
(already obscured: obscured values are reversible, so they stay off command
lines too). The servers are started before the wrapper is put in place: their
own command lines hold their credentials, and are not drivelab's.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from drivelab import drive
from drivelab.drive import find_rclone
from drivelab.workspace import Workspace, init_workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rclone_servers import S3Server, SftpServer, WebdavServer  # noqa: E402
from test_drive import leave_no_mount  # noqa: E402

FUSE_OK, FUSE_WHY = drive.fuse_available()


class ArgvLog:
    """The argv of every rclone run since :meth:`start` (drivelab's, the watchdog's, the mount's)."""

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = folder / "rclone-argv.jsonl"
        self.wrapper = folder / "bin" / "rclone"
        self.monkeypatch = monkeypatch
        self.real = find_rclone().path
        """The real rclone: the test's own calls go to it, unrecorded."""

    def start(self) -> ArgvLog:
        real = str(self.real)
        self.wrapper.parent.mkdir(parents=True, exist_ok=True)
        self.wrapper.write_text(
            f"#!{sys.executable} -I\n"
            "import json, os, sys\n"
            f"with open({str(self.path)!r}, 'a') as log:\n"
            "    log.write(json.dumps(sys.argv[1:]) + '\\n')\n"
            f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
        )
        self.wrapper.chmod(0o755)
        self.monkeypatch.setenv("DRIVELAB_RCLONE", str(self.wrapper))
        assert find_rclone().path == self.wrapper
        return self

    def calls(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def assert_clean(self, secrets: list[str], *, ran: tuple[str, ...]) -> None:
        calls = self.calls()
        for call in calls:
            for secret in secrets:
                assert not any(secret in word for word in call), f"a secret ({secret[:4]}...) is on the command line rclone {' '.join(call[:6])} ..."
        commands = {word for call in calls for word in call if not word.startswith("-")}
        for command in ran:
            assert command in commands, f"rclone {command} was run through the wrapper ({len(calls)} calls recorded)"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = init_workspace(tmp_path / "ws").workspace
    yield workspace
    leave_no_mount(workspace)


@pytest.fixture
def record_rclone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], ArgvLog]:
    """Call once the test's servers run: from then on every rclone is recorded."""
    return lambda: ArgvLog(tmp_path / "argv", monkeypatch).start()


def sections(argv: ArgvLog, conf: Path) -> dict[str, dict[str, str]]:
    done = subprocess.run([str(argv.real), "--config", str(conf), "config", "dump"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def obscured(value: str) -> str:
    done = subprocess.run([str(find_rclone().path), "obscure", "-"], input=value + "\n", capture_output=True, text=True, check=True)
    return done.stdout.strip()


def revealed(argv: ArgvLog, value: str) -> str:
    done = subprocess.run([str(argv.real), "reveal", "--", value], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def cmdlines(pid: int) -> list[list[str]]:
    """The command lines of ``pid`` and of all its descendants."""
    proc = psutil.Process(pid)
    found = [proc.cmdline()]
    for child in proc.children(recursive=True):
        try:
            found.append(child.cmdline())
        except psutil.NoSuchProcess:
            pass
    return found


def test_s3_key_stays_off_command_lines_from_connect_to_detach(ws: Workspace, tmp_path: Path, record_rclone: Callable[[], ArgvLog]) -> None:
    server = S3Server(tmp_path / "s3").start()
    try:
        argv = record_rclone()
        bucket = "secrets"
        drive.connect(ws, "box", "s3", server.options(), root=bucket)
        section = sections(argv, ws.state / "rclone.conf")["box"]
        assert section["secret_access_key"] == server.secret_key and section["access_key_id"] == server.access_key, "kept as rclone keeps it"

        state = drive.attach(ws, "box", mode="mount" if FUSE_OK else "sync", local_files="set-aside")
        assert state.live and state.watchdog_pid
        (ws.drive / "hello.txt").write_text("hi")
        running = cmdlines(state.watchdog_pid)
        if state.rclone_pid:
            running += cmdlines(state.rclone_pid)
        assert any("drivelab.drive._watchdog" in " ".join(line) for line in running)
        if FUSE_OK:
            assert any("mount" in line for line in running), running
        for line in running:
            for secret in (server.secret_key, server.access_key):
                assert not any(secret in word for word in line), f"a secret is on the live command line {line[:4]} ..."
        drive.flush(ws, timeout=60)
        drive.detach(ws, timeout=60)
        assert (server.backing / bucket / "hello.txt").read_text() == "hi", "the remote works with the key kept this way"
        argv.assert_clean([server.secret_key, server.access_key], ran=("config", "lsjson", "mount" if FUSE_OK else "bisync"))
    finally:
        server.close()


def test_passwords_stay_off_command_lines_and_are_kept_obscured(ws: Workspace, tmp_path: Path, record_rclone: Callable[[], ArgvLog]) -> None:
    sftp = SftpServer(tmp_path / "sftp").start()
    dav = WebdavServer(tmp_path / "dav").start()
    try:
        argv = record_rclone()
        # A name that is not an identifier: rclone still reads its options from RCLONE_CONFIG_<NAME>_<KEY>.
        drive.connect(ws, "nas-1.home", "sftp", {"host": "127.0.0.1", "port": str(sftp.port), "user": sftp.user, "pass": sftp.password}, root="lab")
        drive.connect(ws, "dav", "webdav", {"url": dav.url, "user": dav.user, "pass": dav.password}, root="lab")
        assert (sftp.backing / "lab").is_dir() and (dav.backing / "lab").is_dir(), "checked with the password as kept"
        kept = sections(argv, ws.state / "rclone.conf")
        assert kept["nas-1.home"]["pass"] != sftp.password and revealed(argv, kept["nas-1.home"]["pass"]) == sftp.password
        assert kept["dav"]["pass"] != dav.password and revealed(argv, kept["dav"]["pass"]) == dav.password
        with pytest.raises(drive.RemoteError, match="refused the credentials"):
            drive.connect(ws, "nas2", "sftp", {"host": "127.0.0.1", "port": str(sftp.port), "user": sftp.user, "pass": "wrong-password-xyz"})
        argv.assert_clean([sftp.password, dav.password, "wrong-password-xyz"], ran=("config", "lsjson"))
        # Obscured forms are reversible: not on a command line either.
        argv.assert_clean([kept["nas-1.home"]["pass"], kept["dav"]["pass"]], ran=())
    finally:
        sftp.close()
        dav.close()


TOKEN = {"access_token": "at-" + "x" * 20, "token_type": "Bearer", "refresh_token": "rt-" + "y" * 20, "expiry": "2099-01-01T00:00:00Z"}


def test_oauth_token_given_to_connect_stays_off_command_lines(ws: Workspace, record_rclone: Callable[[], ArgvLog]) -> None:
    argv = record_rclone()
    token = json.dumps(TOKEN, separators=(",", ":"))
    # config_refresh_token=false: keep the token given (rclone would otherwise ask whether to sign in again).
    info = drive.connect(
        ws, "my-box.1", "box", {"token": token, "client_id": "own-client", "client_secret": "own-client-secret-456"},
        extra=["config_refresh_token=false"], check=False,
    )
    assert info.rclone_type == "box"
    kept = sections(argv, ws.state / "rclone.conf")["my-box.1"]
    assert json.loads(kept["token"]) == TOKEN and kept["client_secret"] == "own-client-secret-456" and kept["client_id"] == "own-client"
    argv.assert_clean([TOKEN["access_token"], TOKEN["refresh_token"], "own-client-secret-456"], ran=("config",))


def test_remotes_copied_from_the_users_config_stay_off_command_lines(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_rclone: Callable[[], ArgvLog]
) -> None:
    sftp = SftpServer(tmp_path / "sftp").start()
    try:
        home = tmp_path / "home"
        (home / "rclone").mkdir(parents=True)
        hidden = obscured(sftp.password)
        token = json.dumps(TOKEN, separators=(",", ":"))
        (home / "rclone" / "rclone.conf").write_text(
            f"[mine]\ntype = sftp\nhost = 127.0.0.1\nport = {sftp.port}\nuser = {sftp.user}\npass = {hidden}\n\n"
            f"[cloud]\ntype = box\nclient_id = own-client\nclient_secret = own-client-secret-789\ntoken = {token}\n"
        )
        monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
        argv = record_rclone()
        drive.import_remote(ws, "nas", "mine:lab")
        drive.import_remote(ws, "cloud", "cloud", check=False)
        assert (sftp.backing / "lab").is_dir(), "checked with the password as copied"
        kept = sections(argv, ws.state / "rclone.conf")
        # rclone's sftp backend adds what it finds out about the server (shell_type, md5sum_command, ...) when first used.
        assert {"type": "sftp", "host": "127.0.0.1", "port": str(sftp.port), "user": sftp.user, "pass": hidden}.items() <= kept["nas"].items()
        assert kept["cloud"] == {"type": "box", "client_id": "own-client", "client_secret": "own-client-secret-789", "token": token}
        argv.assert_clean([sftp.password, hidden, TOKEN["access_token"], TOKEN["refresh_token"], "own-client-secret-789"], ran=("config", "lsjson"))
    finally:
        sftp.close()


def _connect_cli(ws: Workspace, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drivelab", "drive", "connect", *args, "--no-check", "-o", "config_refresh_token=false", "-w", str(ws.root)],
        input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_the_cli_takes_secrets_from_a_file_or_standard_input_and_warns_about_one_typed_on_its_command_line(ws: Workspace, tmp_path: Path) -> None:
    token = json.dumps(TOKEN, separators=(",", ":"))
    (tmp_path / "token.json").write_text(token + "\n")
    done = _connect_cli(ws, "viafile", "-t", "box", "--token", f"@{tmp_path / 'token.json'}", "--client-id", "own", "--client-secret", "-", stdin="from-stdin-789\n")
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    kept = {name: dict(section) for name, section in _read_conf(ws).items()}["viafile"]
    assert json.loads(kept["token"]) == TOKEN and kept["client_secret"] == "from-stdin-789", kept

    done = _connect_cli(ws, "typed", "-t", "box", "--token", token)
    assert done.returncode == 0, done.stderr
    assert "warning: --token given on the command line: other users of this machine can read it" in " ".join(done.stderr.split()), done.stderr
    assert "--token @FILE" in done.stderr

    done = _connect_cli(ws, "missing", "-t", "box", "--token", f"@{tmp_path / 'nope.json'}")
    assert done.returncode == 2 and "cannot read --token from" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "missing" not in _read_conf(ws), "nothing kept for a remote whose secret could not be read"


def _read_conf(ws: Workspace) -> dict:
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ws.state / "rclone.conf")
    return {name: conf[name] for name in conf.sections()}
