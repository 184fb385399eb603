"""The one door through which the runtime layer looks at a machine.

Detection (:mod:`.detect` and the probes beside it) never touches files,
programs, NVML or the platform directly: it asks a :class:`Probe`. Two
implementations:

* :class:`SystemProbe` looks at the real machine. Every command has a timeout;
  a missing program, file or library is an answer ("not found"), never an
  exception.
* :class:`RecordedProbe` replays a machine recorded as a JSON-able dict, so
  tests can feed detection the outputs of machines they do not have.

:class:`RecordingProbe` wraps another probe and writes down every answer it
gives, in the format :class:`RecordedProbe` replays: run detection through it
on a real machine to record that machine.

The recorded format (every key optional)::

    {
      "platform": {"system": "Linux", "release": "6.8.0-60-generic", "machine": "x86_64",
                   "python_version": "3.12.3", "mac_version": null, "cpu_count": 16,
                   "ram_bytes": 67108864000},
      "files":    {"/proc/driver/nvidia/version": "NVRM version: ..."},
      "dirs":     {"/proc/driver/nvidia/gpus": ["0000:01:00.0"]},
      "commands": {"nvidia-smi --query-gpu=...": {"returncode": 0, "stdout": "...", "stderr": ""},
                   "rocminfo": {"timed_out": true}},
      "nvml":     {"driver_version": "580.65.06", "cuda_driver_version": 13000,
                   "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3",
                             "memory_bytes": 85520809984, "compute_capability": [9, 0]}]},
      "env":      {"WSL_DISTRO_NAME": "Ubuntu"},
      "distributions": {"torch": "2.8.0+cu128"},
      "disk_free": {"*": 107374182400}
    }

A command is keyed by its argv joined with single spaces; one that is not
recorded is "not found". ``"nvml"`` absent means the NVML library was not
found; ``{"error": "...", "error_code": 18}`` is an NVML failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Probe",
    "SystemProbe",
    "RecordedProbe",
    "RecordingProbe",
    "CommandResult",
    "PlatformFacts",
    "NvmlSnapshot",
    "NvmlGpu",
    "NVML_LIBRARY_NOT_FOUND",
    "NVML_DRIVER_NOT_LOADED",
    "NVML_VERSION_MISMATCH",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a probe command may run; a hung driver makes nvidia-smi hang too."""

# NVML return codes we explain (nvml.h: NVML_ERROR_*).
NVML_DRIVER_NOT_LOADED = 9
NVML_LIBRARY_NOT_FOUND = 12
NVML_VERSION_MISMATCH = 18


@dataclass(frozen=True)
class CommandResult:
    """What running a program gave.

    ``found`` is False when the program does not exist (then ``returncode``
    is None); ``timed_out`` is True when it ran past its timeout (``returncode``
    None, output so far kept).
    """

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    found: bool = True
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout and stderr together (programs disagree on where errors go)."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)

    def to_record(self) -> dict[str, Any]:
        if not self.found:
            return {"found": False}
        if self.timed_out:
            return {"timed_out": True, "stdout": self.stdout, "stderr": self.stderr}
        return {"returncode": self.returncode, "stdout": self.stdout, "stderr": self.stderr}

    @classmethod
    def from_record(cls, argv: Sequence[str], record: Mapping[str, Any] | None) -> CommandResult:
        if record is None or record.get("found") is False:
            return cls(tuple(argv), None, found=False)
        if record.get("timed_out"):
            return cls(tuple(argv), None, record.get("stdout", ""), record.get("stderr", ""), timed_out=True)
        return cls(tuple(argv), int(record.get("returncode", 0)), record.get("stdout", ""), record.get("stderr", ""))


@dataclass(frozen=True)
class PlatformFacts:
    """What the interpreter knows about its platform, without reading any file."""

    system: str
    """``platform.system()``: ``"Linux"``, ``"Darwin"``, ``"Windows"``."""
    release: str
    """The kernel release (``"6.8.0-60-generic"``, Darwin ``"24.5.0"``)."""
    machine: str
    """``"x86_64"``, ``"arm64"``, ``"aarch64"``, ``"AMD64"``."""
    python_version: str
    mac_version: str | None = None
    """macOS product version (``"15.5"``) on Darwin, else None."""
    cpu_count: int | None = None
    """CPUs this process may use (its affinity mask where the OS has one)."""
    ram_bytes: int | None = None
    """Physical memory as the OS reports it (a fallback for ``/proc/meminfo``)."""
    processor: str | None = None
    """The CPU's name where the OS gives it without a file or command (Windows)."""

    def to_record(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "release": self.release,
            "machine": self.machine,
            "python_version": self.python_version,
            "mac_version": self.mac_version,
            "cpu_count": self.cpu_count,
            "ram_bytes": self.ram_bytes,
            "processor": self.processor,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PlatformFacts:
        return cls(
            system=record.get("system", "Linux"),
            release=record.get("release", ""),
            machine=record.get("machine", "x86_64"),
            python_version=record.get("python_version", "3.12.3"),
            mac_version=record.get("mac_version"),
            cpu_count=record.get("cpu_count"),
            ram_bytes=record.get("ram_bytes"),
            processor=record.get("processor"),
        )


@dataclass(frozen=True)
class NvmlGpu:
    """One device as NVML describes it; a field NVML would not give is None."""

    index: int
    name: str | None = None
    memory_bytes: int | None = None
    compute_capability: tuple[int, int] | None = None
    error: str | None = None
    """Set when NVML could not open this device (e.g. "GPU is lost")."""


@dataclass(frozen=True)
class NvmlSnapshot:
    """Everything drivelab asks NVML, taken at once (NVML is an API, not text).

    When ``error`` is set NVML could not start: ``error_code`` is the NVML
    return code (:data:`NVML_LIBRARY_NOT_FOUND`, :data:`NVML_VERSION_MISMATCH`, ...)
    and the other fields are empty.
    """

    driver_version: str | None = None
    cuda_driver_version: int | None = None
    """As NVML gives it: ``13000`` for CUDA 13.0."""
    gpus: tuple[NvmlGpu, ...] = ()
    error: str | None = None
    error_code: int | None = None

    @classmethod
    def failed(cls, message: str, code: int | None) -> NvmlSnapshot:
        return cls(error=message, error_code=code)

    def to_record(self) -> dict[str, Any] | None:
        if self.error_code == NVML_LIBRARY_NOT_FOUND:
            return None
        if self.error is not None:
            return {"error": self.error, "error_code": self.error_code}
        return {
            "driver_version": self.driver_version,
            "cuda_driver_version": self.cuda_driver_version,
            "gpus": [
                {
                    "index": gpu.index,
                    "name": gpu.name,
                    "memory_bytes": gpu.memory_bytes,
                    "compute_capability": list(gpu.compute_capability) if gpu.compute_capability else None,
                    **({"error": gpu.error} if gpu.error else {}),
                }
                for gpu in self.gpus
            ],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> NvmlSnapshot:
        if record is None:
            return cls.failed("NVML Shared Library Not Found", NVML_LIBRARY_NOT_FOUND)
        if record.get("error"):
            return cls.failed(record["error"], record.get("error_code"))
        gpus = []
        for i, gpu in enumerate(record.get("gpus", ())):
            cc = gpu.get("compute_capability")
            gpus.append(
                NvmlGpu(
                    index=gpu.get("index", i),
                    name=gpu.get("name"),
                    memory_bytes=gpu.get("memory_bytes"),
                    compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
                    error=gpu.get("error"),
                )
            )
        return cls(record.get("driver_version"), record.get("cuda_driver_version"), tuple(gpus))


class Probe(ABC):
    """Every question detection may ask about a machine.

    Implementations answer "not there" with None (or a :class:`CommandResult`
    whose ``found`` is False), never with an exception.
    """

    @abstractmethod
    def read_text(self, path: str) -> str | None:
        """The text of a file, or None when it is absent or unreadable."""

    @abstractmethod
    def list_dir(self, path: str) -> list[str] | None:
        """Sorted entry names of a folder, or None when it is absent or unreadable."""

    @abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        """Run a program (argv list, never a shell) and return what it said."""

    @abstractmethod
    def nvml(self) -> NvmlSnapshot:
        """Driver version, CUDA driver version and devices from NVML, or why it failed."""

    @abstractmethod
    def platform(self) -> PlatformFacts:
        """OS, kernel release, architecture, Python, CPU count, RAM."""

    @abstractmethod
    def env(self, name: str) -> str | None:
        """An environment variable, read when asked."""

    @abstractmethod
    def distribution_version(self, name: str) -> str | None:
        """The installed version of a Python distribution (``"2.8.0+cu128"``), without importing it."""

    @abstractmethod
    def disk_free(self, path: str) -> int | None:
        """Free bytes on the file system holding ``path``, or None."""


# --------------------------------------------------------------------------- real


class SystemProbe(Probe):
    """The real machine. Cheap to create; answers are not cached except the
    list of installed distributions (built once, on first use)."""

    def __init__(self) -> None:
        self._dists: dict[str, Path] | None = None

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, ValueError):
            return None

    def list_dir(self, path: str) -> list[str] | None:
        try:
            return sorted(os.listdir(path))
        except OSError:
            return None

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        argv = tuple(argv)
        program = shutil.which(argv[0])  # an absolute path is checked, a bare name looked up on PATH
        if program is None:
            return CommandResult(argv, None, found=False)
        # C locale: the messages we match are the English ones.
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            done = subprocess.run(
                [program, *argv[1:]],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                env=env,
            )
        except subprocess.TimeoutExpired as exc:
            return CommandResult(argv, None, _text(exc.stdout), _text(exc.stderr), timed_out=True)
        except OSError as exc:  # not executable, vanished, ...
            return CommandResult(argv, None, "", str(exc), found=False)
        return CommandResult(argv, done.returncode, done.stdout, done.stderr)

    def nvml(self) -> NvmlSnapshot:
        if sys.platform == "darwin":
            return NvmlSnapshot.failed("NVML Shared Library Not Found", NVML_LIBRARY_NOT_FOUND)
        if sys.platform.startswith("linux"):
            # Try the library before importing pynvml (tens of ms): on most
            # machines without an NVIDIA driver that is the whole answer.
            import ctypes

            try:
                ctypes.CDLL("libnvidia-ml.so.1")
            except OSError:
                return NvmlSnapshot.failed("NVML Shared Library Not Found", NVML_LIBRARY_NOT_FOUND)
        try:
            import pynvml
        except ImportError:
            return NvmlSnapshot.failed("nvidia-ml-py (pynvml) is not installed", NVML_LIBRARY_NOT_FOUND)
        return _nvml_snapshot(pynvml)

    def platform(self) -> PlatformFacts:
        if hasattr(os, "uname"):
            uname = os.uname()
            system, release, machine = uname.sysname, uname.release, uname.machine
        else:
            import platform

            system, release, machine = platform.system(), platform.release(), platform.machine()
        mac_version = None
        if system == "Darwin":
            import platform

            mac_version = platform.mac_ver()[0] or None
        try:
            cpus: int | None = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count()
        processor = None
        if system == "Windows":
            processor = os.environ.get("PROCESSOR_IDENTIFIER")
        v = sys.version_info
        return PlatformFacts(
            system=system,
            release=release,
            machine=machine,
            python_version=f"{v.major}.{v.minor}.{v.micro}",
            mac_version=mac_version,
            cpu_count=cpus,
            ram_bytes=_physical_memory(),
            processor=processor,
        )

    def env(self, name: str) -> str | None:
        return os.environ.get(name)

    def distribution_version(self, name: str) -> str | None:
        # importlib.metadata costs ~100 ms to import here; a scan of sys.path
        # for ``<name>-<version>.dist-info`` finds the same distributions
        # (first one on sys.path wins, as for importlib.metadata).
        if self._dists is None:
            self._dists = _scan_distributions()
        meta = self._dists.get(_normalize(name))
        if meta is None:
            return None
        for candidate in (meta / "METADATA", meta / "PKG-INFO", meta):
            text = self.read_text(str(candidate)) if candidate.is_file() else None
            if text:
                match = re.search(r"^Version:\s*(\S+)", text, re.MULTILINE)
                if match:
                    return match.group(1)
        return None

    def disk_free(self, path: str) -> int | None:
        try:
            return shutil.disk_usage(path).free
        except OSError:
            return None


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _scan_distributions() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in sys.path:
        folder = Path(entry or ".")
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for item in names:
            stem, dot, suffix = item.rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            key = _normalize(stem.split("-", 1)[0])
            found.setdefault(key, folder / item)
    return found


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    if sys.platform == "win32":
        import ctypes

        class MemoryStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullTotalPhys)
    return None


def _nvml_snapshot(pynvml: Any) -> NvmlSnapshot:
    """Ask NVML everything at once; any failure becomes an answer, not an exception."""

    def failure(exc: Exception) -> tuple[str, int | None]:
        return str(exc) or type(exc).__name__, getattr(exc, "value", None)

    try:
        pynvml.nvmlInit()
    except Exception as exc:  # pynvml.NVMLError, or OSError from a broken library
        return NvmlSnapshot.failed(*failure(exc))
    try:
        driver = _str(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())
        except Exception:
            cuda = None
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            except Exception as exc:
                gpus.append(NvmlGpu(index, error=failure(exc)[0]))
                continue
            gpus.append(
                NvmlGpu(
                    index,
                    name=_maybe(lambda: _str(pynvml.nvmlDeviceGetName(handle))),
                    memory_bytes=_maybe(lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)),
                    compute_capability=_maybe(lambda: tuple(int(x) for x in pynvml.nvmlDeviceGetCudaComputeCapability(handle))),
                )
            )
        return NvmlSnapshot(driver, cuda, tuple(gpus))
    except Exception as exc:
        return NvmlSnapshot.failed(*failure(exc))
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _maybe(get: Any) -> Any:
    try:
        return get()
    except Exception:  # NVML_ERROR_NOT_SUPPORTED on some boards: leave it unknown
        return None


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- recorded


def command_key(argv: Sequence[str]) -> str:
    """How a command is keyed in a record: its argv joined with single spaces."""
    return " ".join(argv)


class RecordedProbe(Probe):
    """A machine replayed from a record (see the module docstring for the format).

    Anything the record does not hold is absent: no file, no program, no NVML
    library, no distribution.
    """

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self._files: Mapping[str, str] = record.get("files", {})
        self._dirs: Mapping[str, list[str]] = record.get("dirs", {})
        self._commands: Mapping[str, Mapping[str, Any]] = record.get("commands", {})
        self._env: Mapping[str, str] = record.get("env", {})
        self._dists: Mapping[str, str] = {_normalize(k): v for k, v in record.get("distributions", {}).items()}
        free = record.get("disk_free", {})
        self._disk_free: Mapping[str, int] = free if isinstance(free, Mapping) else {"*": free}

    @classmethod
    def from_file(cls, path: str | Path) -> RecordedProbe:
        import json

        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def read_text(self, path: str) -> str | None:
        return self._files.get(path)

    def list_dir(self, path: str) -> list[str] | None:
        names = self._dirs.get(path)
        return sorted(names) if names is not None else None

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        return CommandResult.from_record(argv, self._commands.get(command_key(argv)))

    def nvml(self) -> NvmlSnapshot:
        return NvmlSnapshot.from_record(self.record.get("nvml"))

    def platform(self) -> PlatformFacts:
        return PlatformFacts.from_record(self.record.get("platform", {}))

    def env(self, name: str) -> str | None:
        return self._env.get(name)

    def distribution_version(self, name: str) -> str | None:
        return self._dists.get(_normalize(name))

    def disk_free(self, path: str) -> int | None:
        return self._disk_free.get(path, self._disk_free.get("*"))


class RecordingProbe(Probe):
    """Passes every question to ``inner`` and writes the answer into ``record``,
    in the format :class:`RecordedProbe` replays (absent answers are left out)."""

    def __init__(self, inner: Probe) -> None:
        self.inner = inner
        self.record: dict[str, Any] = {}

    def _put(self, section: str, key: str, value: Any) -> None:
        self.record.setdefault(section, {})[key] = value

    def read_text(self, path: str) -> str | None:
        text = self.inner.read_text(path)
        if text is not None:
            self._put("files", path, text)
        return text

    def list_dir(self, path: str) -> list[str] | None:
        names = self.inner.list_dir(path)
        if names is not None:
            self._put("dirs", path, names)
        return names

    def run(self, argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        result = self.inner.run(argv, timeout=timeout)
        if result.found:
            self._put("commands", command_key(argv), result.to_record())
        return result

    def nvml(self) -> NvmlSnapshot:
        snapshot = self.inner.nvml()
        recorded = snapshot.to_record()
        if recorded is not None:
            self.record["nvml"] = recorded
        return snapshot

    def platform(self) -> PlatformFacts:
        facts = self.inner.platform()
        self.record["platform"] = facts.to_record()
        return facts

    def env(self, name: str) -> str | None:
        value = self.inner.env(name)
        if value is not None:
            self._put("env", name, value)
        return value

    def distribution_version(self, name: str) -> str | None:
        version = self.inner.distribution_version(name)
        if version is not None:
            self._put("distributions", name, version)
        return version

    def disk_free(self, path: str) -> int | None:
        free = self.inner.disk_free(path)
        if free is not None:
            self._put("disk_free", path, free)
        return free
