"""Read the MNIST IDX files (torchvision's ``MNIST/raw`` layout) into tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drivelab.errors import DataError

__all__ = ["MnistTensors", "load_mnist", "MNIST_MEAN", "MNIST_STD"]

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

_FILES = {
    "train_images": ("train-images-idx3-ubyte", 2051),
    "train_labels": ("train-labels-idx1-ubyte", 2049),
    "test_images": ("t10k-images-idx3-ubyte", 2051),
    "test_labels": ("t10k-labels-idx1-ubyte", 2049),
}


@dataclass(frozen=True)
class MnistTensors:
    """Raw MNIST: images as uint8 ``[N, 1, 28, 28]``, labels as int64 ``[N]``."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def _read_idx(path: Path, magic: int) -> np.ndarray:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(
            f"MNIST file missing: {path}",
            hint="run `drivelab data get mnist` (or pass --data-dir pointing at a folder holding MNIST/raw)",
        ) from exc
    header = np.frombuffer(data[:4], dtype=">u4")
    if len(data) < 8 or int(header[0]) != magic:
        raise DataError(f"{path} is not an IDX file (bad magic number)", hint="delete it and run `drivelab data get mnist` again")
    ndim = magic & 0xFF
    dims = [int(d) for d in np.frombuffer(data[4 : 4 + 4 * ndim], dtype=">u4")]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated ({body.size} of {int(np.prod(dims))} bytes)", hint="delete it and run `drivelab data get mnist` again")
    return body.reshape(dims)


def load_mnist(dataset_root: Path) -> MnistTensors:
    """Load MNIST from ``dataset_root/MNIST/raw``; raises :class:`DataError` with a hint."""
    raw = Path(dataset_root) / "MNIST" / "raw"
    arrays = {key: _read_idx(raw / name, magic) for key, (name, magic) in _FILES.items()}
    return MnistTensors(
        train_images=torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        train_labels=torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        test_images=torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        test_labels=torch.from_numpy(arrays["test_labels"].astype(np.int64)),
    )
