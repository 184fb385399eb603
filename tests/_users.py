"""A user without root, for what most users meet: ``useradd`` once, commands through ``runuser``.

Its interpreter is a venv of its own made from the machine's ``python3`` (the
test run's interpreter may sit where that user cannot reach, e.g. under
``/root``) whose one ``.pth`` file adds the test run's site-packages: the same
drivelab (editable, from this checkout), Jupyter and torch. Its files live in
folders of its own (:meth:`PlainUser.home`), outside pytest's temporary folders.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from collections.abc import Iterator
from pathlib import Path

import pytest
from _guards import skip_or_fail

__all__ = ["PlainUser", "test_user"]

NAME = "drivelab-test"


@dataclass(frozen=True)
class PlainUser:
    name: str
    uid: int
    gid: int
    python: Path
    """An interpreter this user can run, with the test run's packages."""
    base: Path
    """A folder every user can pass through, holding the user's homes and interpreter."""

    def home(self, name: str) -> Path:
        """A new home folder of this user's, ``name`` in the user's own base folder (outside pytest's, which are 0700
        and made so again by every pytest run that starts)."""
        home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        os.chmod(home, 0o755)
        return self.own(home)

    def own(self, path: Path) -> Path:
        """Make ``path`` (a folder, and all in it) this user's."""
        for dirpath, dirnames, filenames in os.walk(path):
            os.chown(dirpath, self.uid, self.gid)
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), self.uid, self.gid)
        return path

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """A login-like environment: nothing of the test run's drivelab, Jupyter or Python variables."""
        env = {
            "HOME": str(home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": f"{self.python.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
            "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"),
            "JUPYTER_RUNTIME_DIR": str(home / ".local/share/jupyter/runtime"),
            "IPYTHONDIR": str(home / ".ipython"),
        }
        env.update(extra)
        return env

    def run(self, argv: list[str], *, home: Path, cwd: Path | None = None, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        """``argv`` as this user (``runuser``), in ``cwd`` (default ``home``)."""
        return subprocess.run(
            ["runuser", "-u", self.name, "--", "env", "-i", *(f"{k}={v}" for k, v in self.env(home, **extra).items()), *argv],
            cwd=cwd or home,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


def _interpreter_for(user: str, folder: Path) -> Path:
    """A venv ``user`` can run, from the machine's python3 of the test run's version, seeing the test run's packages."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    if base is None:
        skip_or_fail(f"no machine-wide {version} for the test user (the test run's interpreter is {sys.executable})")
    venv = folder / "venv"
    made = subprocess.run(["runuser", "-u", user, "--", base, "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        skip_or_fail(f"cannot make a venv for {user} with {base}: {made.stderr.strip()}")
    site = Path(sysconfig.get_paths()["purelib"])
    theirs = venv / "lib" / version / "site-packages"
    (theirs / "drivelab-tests.pth").write_text(f"import site; site.addsitedir({str(site)!r})\n")
    return venv / "bin" / "python"


@pytest.fixture(scope="session")
def test_user() -> Iterator[PlainUser]:
    """The user without root (made with ``useradd`` when missing; needs root to make it, so CI runs as root)."""
    if sys.platform != "linux":
        skip_or_fail("a test user is made with Linux's useradd and runuser")
    try:
        entry = pwd.getpwnam(NAME)
    except KeyError:
        if os.geteuid() != 0:
            skip_or_fail(f"making the test user {NAME!r} needs root (useradd)")
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", NAME], check=True, capture_output=True)
        entry = pwd.getpwnam(NAME)
    if os.geteuid() != 0:
        skip_or_fail(f"running commands as {NAME!r} needs root (runuser)")
    base = Path(tempfile.mkdtemp(prefix="drivelab-user-"))
    os.chmod(base, 0o755)
    python = base / "python"
    python.mkdir()
    os.chown(python, entry.pw_uid, entry.pw_gid)
    yield PlainUser(NAME, entry.pw_uid, entry.pw_gid, _interpreter_for(NAME, python), base)
    shutil.rmtree(base, ignore_errors=True)
