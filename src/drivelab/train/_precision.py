"""The number format a run computes in: bf16 autocast where the hardware does bf16 fast, fp32 elsewhere.

bf16 halves the bytes every layer moves, but only hardware with bf16
arithmetic turns that into speed. On a CPU that means AVX512-BF16 or AMX-BF16:
there, bf16 autocast made a step of the fast recipe about 1.4x quicker than
fp32 (AMD EPYC with AVX512-BF16: 7.4 vs 10.6 ms); without them PyTorch
converts every value in software and the same step was 5-8x *slower* (AVX2
CPUs, and AVX-512 CPUs without the BF16 extension). So ``auto`` reads the CPU's
flags instead of guessing from the vendor or the vector width.

:func:`choose_precision` decides from facts handed to it (recorded flag sets
in the tests); :func:`precision_for` gathers them on this machine. Neither
imports PyTorch at module level: what describes a run needs none.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from drivelab.train._config import PRECISIONS

if TYPE_CHECKING:
    import torch

__all__ = ["BF16_CPU_FLAGS", "PRECISIONS", "Precision", "choose_precision", "cpu_flags", "parse_cpu_flags", "precision_for"]

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""``/proc/cpuinfo`` flags of x86 CPUs that compute in bf16 natively (AVX512-BF16; AMX with its bf16 tiles)."""


@dataclass(frozen=True)
class Precision:
    """What a run computes in and why: recorded in ``metrics.jsonl`` and printed when the run starts."""

    name: str
    """``"fp32"`` or ``"bf16"`` (autocast: matrix products and convolutions in bf16, the rest in fp32)."""
    reason: str
    """Why, in a few words: ``"auto: CPU has avx512_bf16"``, ``"--precision fp32"``."""

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The dtype for :func:`torch.autocast`; None for plain fp32."""
        import torch

        return torch.bfloat16 if self.name == "bf16" else None

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU feature flags in the text of ``/proc/cpuinfo``: x86's ``flags`` line, ARM's ``Features``.

    The first such line is enough: every core of a machine Linux runs on lists
    the features all of them share.
    """
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """This machine's CPU flags; empty where the system has no ``/proc/cpuinfo`` (macOS, Windows) or it cannot be read."""
    try:
        return parse_cpu_flags(cpuinfo.read_text(errors="replace"))
    except OSError:
        return frozenset()


def choose_precision(
    requested: str,
    device_type: str,
    *,
    flags: Iterable[str] = (),
    cuda_bf16: bool = False,
    recipe_bf16: bool = True,
    system: str = "Linux",
) -> Precision:
    """The precision of a run on ``device_type`` (``"cpu"``, ``"cuda"``, ``"mps"``) from what the hardware can do.

    ``requested`` is ``--precision``: ``"fp32"`` and ``"bf16"`` are obeyed as
    they are (bf16 where the hardware lacks it is allowed, and said to be
    slow); ``"auto"`` picks bf16 on a CPU whose ``flags`` include one of
    :data:`BF16_CPU_FLAGS`, on a GPU with native bf16 (``cuda_bf16``), and
    fp32 everywhere else, Apple MPS included (its bf16 is neither everywhere
    nor measured faster here). ``recipe_bf16`` False (a recipe that trains in
    fp32 by design, the reference) makes ``auto`` fp32.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    have = sorted(set(flags) & set(BF16_CPU_FLAGS))
    if requested == "fp32":
        return Precision("fp32", "--precision fp32")
    if requested == "bf16":
        slow = (device_type == "cpu" and not have) or (device_type == "cuda" and not cuda_bf16)
        return Precision("bf16", "--precision bf16" + (", which this hardware emulates: expect it slower than fp32" if slow else ""))
    if not recipe_bf16:
        return Precision("fp32", "auto: the recipe trains in fp32")
    if device_type == "cuda":
        return Precision("bf16", "auto: the GPU has bf16") if cuda_bf16 else Precision("fp32", "auto: the GPU has no native bf16, fp32")
    if device_type == "mps":
        return Precision("fp32", "auto: fp32 on Apple MPS")
    if have:
        return Precision("bf16", f"auto: CPU has {', '.join(have)}")
    if system != "Linux":
        return Precision("fp32", f"auto: CPU flags not read on {system}, fp32")
    return Precision("fp32", "auto: no bf16 instructions, fp32")


def precision_for(requested: str, device: torch.device, *, recipe_bf16: bool = True) -> Precision:
    """:func:`choose_precision` for ``device`` on this machine: the CPU's flags, the GPU's bf16 support."""
    cuda_bf16 = False
    if device.type == "cuda":
        import torch

        with torch.cuda.device(device):
            # Native bf16 only: emulated bf16 on an older GPU is slower than fp32.
            cuda_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    system = platform.system()
    flags = cpu_flags() if device.type == "cpu" and system == "Linux" else frozenset()
    return choose_precision(requested, device.type, flags=flags, cuda_bf16=cuda_bf16, recipe_bf16=recipe_bf16, system=system)
