"""The probe :func:`drivelab.runtime.verify_torch` runs in a fresh interpreter.

It is passed as source (``python -c``) to whatever interpreter is being checked,
which need not have drivelab installed: standard library and torch only, and
syntax any Python 3.8+ accepts. Each finding is printed as one line,
``@@drivelab-verify@@ {json}``, as soon as it is known, so that a crash (a
segfault in a GPU runtime, a hang) still leaves everything before it.
"""

import json
import platform
import sys
import time
import traceback
import warnings

MARK = "@@drivelab-verify@@ "


def emit(stage, **data):
    data["stage"] = stage
    sys.stdout.write(MARK + json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def error_text(exc):
    text = "%s: %s" % (type(exc).__name__, exc)
    return text.strip()[:2000]


def distributions():
    from importlib import metadata

    found = {}
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[name] = None
            continue
        requires = []
        for req in dist.requires or []:
            head = req.split(";")[0].strip()
            if head.lower().startswith("torch") and not head.lower().startswith(("torchvision", "torchaudio")):
                requires.append(head)
        found[name] = {"version": dist.version, "requires_torch": requires}
    return found


def compute(torch, device):
    """A small matmul and conv on ``device``, checked against the CPU."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 64, generator=gen)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    want_mm = a @ a
    want_conv = torch.nn.functional.conv2d(x, w, padding=1)
    got_mm = (a.to(device) @ a.to(device)).cpu()
    got_conv = torch.nn.functional.conv2d(x.to(device), w.to(device), padding=1).cpu()
    # Loose tolerances: GPUs may use TF32 or other reduced-precision paths.
    ok = torch.allclose(got_mm, want_mm, rtol=2e-2, atol=2e-1) and torch.allclose(got_conv, want_conv, rtol=2e-2, atol=2e-1)
    return bool(ok)


def main():
    emit(
        "python",
        version=platform.python_version(),
        executable=sys.executable,
        platform=sys.platform,
        machine=platform.machine(),
        packages=distributions(),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import torch
        except BaseException as exc:  # noqa: BLE001 - report whatever stops the import
            emit("import", ok=False, error=error_text(exc), traceback=traceback.format_exc()[-3000:])
            return
    emit(
        "import",
        ok=True,
        version=str(torch.__version__),
        file=getattr(torch, "__file__", None),
        cuda=torch.version.cuda,
        hip=getattr(torch.version, "hip", None),
        xpu_built=bool(getattr(torch, "xpu", None) is not None and hasattr(torch.version, "xpu") and torch.version.xpu),
        mps_built=bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_built()),
        warnings=[str(w.message) for w in caught],
    )

    devices = ["cpu"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cuda = {"available": False, "count": 0, "devices": [], "arch_list": [], "error": None}
        try:
            cuda["available"] = bool(torch.cuda.is_available())
            if cuda["available"]:
                cuda["count"] = torch.cuda.device_count()
                cuda["arch_list"] = list(torch.cuda.get_arch_list())
                for index in range(cuda["count"]):
                    props = torch.cuda.get_device_properties(index)
                    cuda["devices"].append(
                        {
                            "index": index,
                            "name": props.name,
                            "capability": [props.major, props.minor],
                            "gcn_arch": getattr(props, "gcnArchName", None),
                            "memory_mib": int(props.total_memory // (1024 * 1024)),
                        }
                    )
                    devices.append("cuda:%d" % index)
        except Exception as exc:  # noqa: BLE001
            cuda["error"] = error_text(exc)
        cuda["warnings"] = [str(w.message) for w in caught]
    emit("cuda", **cuda)

    mps = {"built": False, "available": False}
    try:
        mps["built"] = bool(torch.backends.mps.is_built())
        mps["available"] = bool(torch.backends.mps.is_available())
    except Exception as exc:  # noqa: BLE001
        mps["error"] = error_text(exc)
    emit("mps", **mps)
    if mps["available"]:
        devices.append("mps")

    xpu = {"available": False, "count": 0}
    try:
        if hasattr(torch, "xpu") and torch.xpu.is_available():
            xpu["available"] = True
            xpu["count"] = torch.xpu.device_count()
            devices.extend("xpu:%d" % i for i in range(xpu["count"]))
    except Exception as exc:  # noqa: BLE001
        xpu["error"] = error_text(exc)
    emit("xpu", **xpu)

    for device in devices:
        emit("start", step="compute on " + device)
        started = time.perf_counter()
        try:
            ok = compute(torch, device)
            emit("compute", device=device, ok=ok, error=None if ok else "results differ from the CPU's", seconds=time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001
            emit("compute", device=device, ok=False, error=error_text(exc), seconds=time.perf_counter() - started)

    packages = distributions()
    if packages["torchvision"] is not None:
        emit("start", step="torchvision")
        try:
            import torchvision
            from torchvision.ops import nms

            boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
            scores = torch.tensor([0.9, 0.8, 0.7])
            keep = nms(boxes, scores, 0.5).tolist()
            emit("torchvision", ok=keep == [0, 2], version=str(torchvision.__version__), keep=keep, error=None if keep == [0, 2] else "nms returned %s" % keep)
        except Exception as exc:  # noqa: BLE001
            emit("torchvision", ok=False, error=error_text(exc), traceback=traceback.format_exc()[-2000:])
    if packages["torchaudio"] is not None:
        emit("start", step="torchaudio")
        try:
            import torchaudio

            emit("torchaudio", ok=True, version=str(torchaudio.__version__))
        except Exception as exc:  # noqa: BLE001
            emit("torchaudio", ok=False, error=error_text(exc), traceback=traceback.format_exc()[-2000:])
    emit("done")


if __name__ == "__main__":
    main()
