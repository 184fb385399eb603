"""Pick the device a run trains on: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import torch

from drivelab.errors import TrainError

__all__ = ["pick_device"]


def pick_device(requested: str = "auto") -> torch.device:
    """``"auto"`` picks the best available; anything else must be available."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError as exc:
        raise TrainError(f"not a device name: {requested!r}", hint="use auto, cpu, cuda, cuda:N or mps") from exc
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }.get(device.type, False)
    if not available:
        raise TrainError(
            f"device {requested!r} is not available in this PyTorch ({torch.__version__})",
            hint="use --device auto, or install the PyTorch build that fits this machine (`drivelab setup torch`)",
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise TrainError(f"no {requested}: this machine has {torch.cuda.device_count()} CUDA device(s)", hint="use --device cuda:0")
    return device
