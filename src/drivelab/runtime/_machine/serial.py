"""Read a :class:`MachineInfo` back from its JSON form (``MachineInfo.to_dict()``).

Used to plan for a recorded machine (``drivelab setup torch --machine FILE``),
for example the output of ``drivelab runtime --json`` taken on another box
(:func:`drivelab.runtime._machine.detect.load_machine`).
"""

from __future__ import annotations

from typing import Any

from drivelab.runtime._model.machine import (
    AmdGpu,
    AmdInfo,
    MachineInfo,
    MpsInfo,
    NvidiaGpu,
    NvidiaInfo,
    SystemInfo,
    TorchInstall,
    XpuInfo,
)

__all__ = ["machine_from_dict"]


def _pair(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    return int(value[0]), int(value[1])


def _fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    return {k: v for k, v in data.items() if k in names}


def machine_from_dict(data: dict[str, Any]) -> MachineInfo:
    """Accepts a bare ``MachineInfo.to_dict()`` or a document holding one under ``"machine"``.

    Raises ``ValueError`` (with what is wrong) for anything else.
    """
    if "system" not in data and isinstance(data.get("machine"), dict):
        data = data["machine"]
    if not isinstance(data.get("system"), dict):
        raise ValueError("no 'system' object: not a drivelab machine description")
    system = SystemInfo(**_fields(SystemInfo, data["system"]))
    nvidia = None
    if isinstance(data.get("nvidia"), dict):
        raw = data["nvidia"]
        gpus = tuple(
            NvidiaGpu(**{**_fields(NvidiaGpu, g), "compute_capability": _pair(g.get("compute_capability"))})
            for g in raw.get("gpus") or ()
        )
        nvidia = NvidiaInfo(
            **{
                **_fields(NvidiaInfo, raw),
                "cuda_driver_version": _pair(raw.get("cuda_driver_version")),
                "gpus": gpus,
                "problems": tuple(raw.get("problems") or ()),
            }
        )
    amd = None
    if isinstance(data.get("amd"), dict):
        raw = data["amd"]
        amd = AmdInfo(
            rocm_version=_pair(raw.get("rocm_version")),
            gpus=tuple(AmdGpu(**_fields(AmdGpu, g)) for g in raw.get("gpus") or ()),
            problems=tuple(raw.get("problems") or ()),
        )
    mps = MpsInfo(**_fields(MpsInfo, data["mps"])) if isinstance(data.get("mps"), dict) else None
    xpu = XpuInfo(devices=tuple(data["xpu"].get("devices") or ())) if isinstance(data.get("xpu"), dict) else None
    torch = TorchInstall(**_fields(TorchInstall, data["torch"])) if isinstance(data.get("torch"), dict) else None
    return MachineInfo(system=system, nvidia=nvidia, amd=amd, mps=mps, xpu=xpu, torch=torch)

