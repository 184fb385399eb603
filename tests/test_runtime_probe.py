"""Knowing the machine: the probe layer, detection on recorded machines and on this one, ``drivelab runtime``.

Each file in ``tests/runtime_machines/`` is one recorded machine: what its
files, commands, NVML, platform and installed distributions said, and under
``"expect"`` what detection must find there. (``"expected_plan"`` is for the
planning tests.)
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from drivelab.runtime import CommandResult, MachineInfo, Probe, RecordedProbe, RuntimeInfo, SystemProbe, detect_machine, panel_rows
from drivelab.runtime._cuda import cuda_for_driver
from drivelab.runtime._machine.amd import gfx_from_target_version
from drivelab.runtime._machine.intel import xpu_device_name
from drivelab.runtime._machine.nvidia import compute_capability_for_name
from drivelab.runtime._machine.probe import NVML_LIBRARY_NOT_FOUND, NvmlSnapshot, PlatformFacts, RecordingProbe
from drivelab.runtime._machine.system import torch_build

ROOT = Path(__file__).resolve().parents[1]
MACHINES_DIR = Path(__file__).resolve().parent / "runtime_machines"
SCHEMA = ROOT / "docs" / "runtime.schema.json"
MACHINES = sorted(MACHINES_DIR.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    env.update(COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


def drivelab_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drivelab", *args],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- recorded machines


def test_recorded_machines_cover_the_cases_that_matter():
    records = {path.stem: load(path) for path in MACHINES}
    assert len(records) >= 32
    drivers, ccs, gfx = [], set(), set()
    for record in records.values():
        nvidia = record["expect"]["nvidia"]
        if nvidia and nvidia.get("driver_version"):
            drivers.append(int(nvidia["driver_version"].split(".")[0]))
        for gpu in (nvidia or {}).get("gpus", []):
            if gpu.get("compute_capability"):
                ccs.add(tuple(gpu["compute_capability"]))
        gfx.update((record["expect"]["amd"] or {}).get("gfx", []))
    assert min(drivers) <= 450 and max(drivers) >= 595
    assert {(5, 0), (6, 1), (7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (12, 0)} <= ccs
    assert {"gfx90a", "gfx1100", "gfx803"} <= gfx
    expects = [r["expect"] for r in records.values()]
    assert any(e["nvidia"] is None and e["amd"] is None and e["os"] == "Linux" for e in expects), "a machine without GPU"
    assert any(e["wsl"] and e["nvidia"] and e["nvidia"]["gpus"] for e in expects), "WSL with a GPU"
    assert any(e["mps"] and e["mps"]["available"] and e["arch"] == "arm64" for e in expects), "macOS arm64"
    assert any(e["mps"] and e["arch"] == "x86_64" for e in expects), "macOS x86_64"
    assert any(e["xpu"] for e in expects), "Intel XPU"
    assert any(
        len({tuple(g["compute_capability"] or ()) for g in (e["nvidia"] or {}).get("gpus", [])}) > 1 for e in expects
    ), "two GPUs of different generations"
    problems = " ".join(p for e in expects for p in ((e["nvidia"] or {}).get("problems") or []))
    assert "mismatch" in problems and "couldn't communicate" in problems
    assert "expected_plan" in records["h100-580-nvml"]


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_recorded_machine_is_detected_as_expected(path):
    record = load(path)
    expect = record["expect"]
    machine = detect_machine(RecordedProbe(record), workspace=Path("/work"), scratch=Path("/tmp"))

    system = machine.system
    assert system.os == expect["os"]
    assert system.arch == expect["arch"]
    assert system.wsl == expect["wsl"]
    assert system.python_version == record["platform"]["python_version"]
    assert system.cpu_cores == record["platform"]["cpu_count"]
    assert system.disk_free_bytes == {"workspace": record["disk_free"]["*"], "scratch": record["disk_free"]["*"]}
    assert system.cpu_model, "every recorded machine names its CPU"
    assert system.ram_bytes and system.ram_bytes > 2**30
    if "cpu_model" in expect:
        assert system.cpu_model == expect["cpu_model"]
    if "ram_bytes" in expect:
        assert system.ram_bytes == expect["ram_bytes"]

    _check_nvidia(machine, expect["nvidia"])
    _check_amd(machine, expect["amd"])
    if expect["mps"] is None:
        assert machine.mps is None
    else:
        assert machine.mps is not None
        assert machine.mps.available == expect["mps"]["available"]
        assert machine.mps.macos_version == expect["mps"]["macos_version"]
    if expect["xpu"] is None:
        assert machine.xpu is None
    else:
        assert machine.xpu is not None and list(machine.xpu.devices) == expect["xpu"]["devices"]
    assert machine.torch is not None
    for key, value in expect["torch"].items():
        assert getattr(machine.torch, key) == value, key


def _check_nvidia(machine: MachineInfo, expect: dict | None) -> None:
    nv = machine.nvidia
    if expect is None:
        assert nv is None
        return
    assert nv is not None
    assert nv.driver_version == expect["driver_version"]
    assert nv.cuda_driver_version == (tuple(expect["cuda_driver_version"]) if expect["cuda_driver_version"] else None)
    if expect.get("source"):
        assert nv.source == expect["source"]
    assert len(nv.gpus) == len(expect["gpus"])
    for index, (gpu, want) in enumerate(zip(nv.gpus, expect["gpus"])):
        assert gpu.index == index
        assert gpu.name == want["name"]
        assert gpu.compute_capability == (tuple(want["compute_capability"]) if want["compute_capability"] else None)
        assert gpu.memory_mib == want["memory_mib"]
    _check_problems(nv.problems, expect["problems"])


def _check_amd(machine: MachineInfo, expect: dict | None) -> None:
    amd = machine.amd
    if expect is None:
        assert amd is None
        return
    assert amd is not None
    assert amd.rocm_version == (tuple(expect["rocm_version"]) if expect["rocm_version"] else None)
    assert [gpu.gfx for gpu in amd.gpus] == expect["gfx"]
    assert "gfx000" not in [gpu.gfx for gpu in amd.gpus]
    if "names" in expect:
        assert [gpu.name for gpu in amd.gpus] == expect["names"]
    _check_problems(amd.problems, expect["problems"])


def _check_problems(actual: tuple[str, ...], wanted: list[str]) -> None:
    """``wanted`` lists substrings the problems must contain; an empty list means no problem at all."""
    if not wanted:
        assert actual == (), actual
        return
    text = "\n".join(actual)
    for part in wanted:
        assert part in text, f"{part!r} not in problems: {actual}"


@pytest.mark.parametrize(
    ("cpuinfo", "flags"),
    [
        ("flags\t\t: fpu sse sse2 avx avx2 fma\n", ("avx", "avx2", "fma")),
        ("flags\t\t: avx2 avx512f avx512_bf16 amx_tile amx_bf16 avx\n", ("avx", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")),
        ("Features\t: fp asimd asimddp sve sve2 bf16 i8mm\nCPU implementer\t: 0x41\n", ("asimd", "asimddp", "bf16", "i8mm", "sve", "sve2")),
        ("processor\t: 0\n", ()),
    ],
    ids=["avx2", "sapphire-rapids", "neoverse-v2", "none"],
)
def test_cpu_flags_are_the_ones_that_matter_in_a_fixed_order(cpuinfo, flags):
    record = load(next(p for p in MACHINES if p.stem == "a100-535"))
    record["files"]["/proc/cpuinfo"] = cpuinfo + "model name\t: Some CPU\n"
    system = detect_machine(RecordedProbe(record), workspace=Path("/work"), scratch=Path("/tmp")).system
    assert system.cpu_flags == flags
    rows = {row.label: row.value for row in panel_rows(detect_machine(RecordedProbe(record)))}
    assert rows.get("CPU flags") == (" ".join(flags) or None)


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_recorded_machine_json_matches_the_schema(path):
    machine = detect_machine(RecordedProbe(load(path)), workspace=Path("/work"), scratch=Path("/tmp"))
    document = json.loads(json.dumps({"kind": "runtime", "version": 1, **machine.to_dict()}))
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))


@pytest.mark.parametrize("path", MACHINES, ids=lambda p: p.stem)
def test_runtime_panel_renders_every_recorded_machine(path, capsys):
    from drivelab.cli.commands.runtime import render_panel

    machine = detect_machine(RecordedProbe(load(path)), workspace=Path("/work"), scratch=Path("/tmp"))
    rows = panel_rows(machine, {"workspace": Path("/work"), "scratch": Path("/tmp")})
    render_panel(rows)
    err = capsys.readouterr().err
    assert "Python" in err and "PyTorch" in err
    for gpu in machine.nvidia.gpus if machine.nvidia else ():
        assert gpu.name[:20] in err.replace("\n", " ") or gpu.name[:10] in err
    problems = [*(machine.nvidia.problems if machine.nvidia else ()), *(machine.amd.problems if machine.amd else ())]
    assert err.count("problem:") == len(problems)
    # The notebook panel is the same rows: each value the terminal shows, it shows.
    shown = RuntimeInfo(machine, rows)
    for row in rows:
        assert row.value in str(shown) and html.escape(row.value) in shown._repr_html_()
        assert row.value in err.replace("\n", " ") or row.value[:30] in err


def test_the_notebook_and_terminal_panels_show_the_same_rows(capsys):
    from drivelab.cli.commands.runtime import render_panel

    machine = detect_machine(RecordedProbe(load(MACHINES_DIR / "h100-580-nvml.json")), workspace=Path("/work"), scratch=Path("/tmp"))
    rows = panel_rows(machine)
    render_panel(rows)
    terminal = capsys.readouterr().err
    notebook = str(RuntimeInfo(machine, rows))
    # Both say which probes answered, and both set the GPUs under the driver.
    assert f"(from {machine.nvidia.source})" in terminal and f"(from {machine.nvidia.source})" in notebook
    gpu_lines = [line for line in notebook.splitlines() if line.lstrip().startswith("GPU ")]
    assert gpu_lines and all(line.startswith("  GPU ") for line in gpu_lines)
    assert [line.split()[:2] for line in terminal.splitlines() if line.lstrip().startswith("GPU ")] == [line.split()[:2] for line in gpu_lines]


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [
        ("440.33.01", (10, 2)),
        ("450.80.02", (11, 0)),
        ("470.256.02", (11, 4)),
        ("520.61.05", (11, 8)),
        ("525.60.13", (12, 0)),
        ("530.30.02", (12, 1)),
        ("535.54.03", (12, 2)),
        ("545.23.06", (12, 3)),
        ("550.54.14", (12, 4)),
        ("555.42.02", (12, 5)),
        ("560.28.03", (12, 6)),
        ("565.57.01", (12, 6)),  # R565 reports "12.7", a CUDA NVIDIA published no toolkit of
        ("566.36", (12, 6)),  # Windows numbering of R565
        ("570.26", (12, 8)),
        ("572.16", (12, 8)),
        ("575.51.03", (12, 9)),
        ("580.65.06", (13, 0)),
        ("590.44.01", (13, 1)),
        ("595.71.05", (13, 2)),
        ("610.57.04", (13, 3)),
        ("615.71.09", (13, 3)),  # newer than the table: the newest CUDA it vouches for
        ("700.10", (13, 3)),
        ("367.48", None),
        ("garbage", None),
    ],
)
def test_cuda_version_of_drivers_seen_in_the_wild(driver, cuda):
    """The probe's fallback when neither NVML nor nvidia-smi says the CUDA version: the one table (``_cuda``)."""
    assert cuda_for_driver(driver) == cuda


@pytest.mark.parametrize(
    ("version", "build"),
    [
        ("2.13.0+cpu", "cpu"),
        ("2.8.0+cu128", "cu128"),
        ("2.9.0+cu130", "cu130"),
        ("2.8.0+rocm6.4", "rocm6.4"),
        ("2.6.0+rocm6.2.4", "rocm6.2.4"),
        ("2.8.0+xpu", "xpu"),
        ("2.1.0+cpu.cxx11.abi", "cpu"),
        ("2.10.0.dev20250915+cu130", "cu130"),
        ("2.8.0", "default"),
        ("2.5.0a0+872d972e41.nv24.08", "872d972e41.nv24.08"),
        (None, None),
    ],
)
def test_torch_build_from_local_tag(version, build):
    assert torch_build(version) == build


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("NVIDIA GeForce RTX 5090", (12, 0)),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", (12, 0)),
        ("NVIDIA B200", (10, 0)),
        ("NVIDIA H100 80GB HBM3", (9, 0)),
        ("NVIDIA GH200 480GB", (9, 0)),
        ("NVIDIA L4", (8, 9)),
        ("NVIDIA RTX 6000 Ada Generation", (8, 9)),
        ("NVIDIA GeForce RTX 4090", (8, 9)),
        ("NVIDIA A100-SXM4-80GB", (8, 0)),
        ("NVIDIA A10G", (8, 6)),
        ("NVIDIA RTX A6000", (8, 6)),
        ("NVIDIA GeForce RTX 3090", (8, 6)),
        ("Tesla T4", (7, 5)),
        ("Quadro RTX 6000", (7, 5)),
        ("NVIDIA GeForce GTX 1660 SUPER", (7, 5)),
        ("Tesla V100-SXM2-16GB", (7, 0)),
        ("Tesla P100-PCIE-16GB", (6, 0)),
        ("NVIDIA GeForce GTX 1080 Ti", (6, 1)),
        ("Tesla P40", (6, 1)),
        ("NVIDIA GeForce GTX 970", (5, 2)),
        ("GeForce GTX 750 Ti", (5, 0)),
        ("Tesla M10", (5, 0)),
        ("Tesla K80", (3, 7)),
        ("Some Future GPU", None),
    ],
)
def test_compute_capability_from_name(name, cc):
    assert compute_capability_for_name(name) == cc


def test_gfx_targets_and_intel_ids():
    assert gfx_from_target_version(90010) == "gfx90a"
    assert gfx_from_target_version(90402) == "gfx942"
    assert gfx_from_target_version(110000) == "gfx1100"
    assert gfx_from_target_version(100300) == "gfx1030"
    assert gfx_from_target_version(80003) == "gfx803"
    assert gfx_from_target_version(0) is None
    assert xpu_device_name(0x56A0) == "Intel Arc A770"
    assert xpu_device_name(0xE20B) == "Intel Arc B580"
    assert xpu_device_name(0x7D55) and "Meteor Lake" in xpu_device_name(0x7D55)
    assert xpu_device_name(0x9A49) is None  # Tiger Lake Iris Xe: not an XPU PyTorch supports
    assert xpu_device_name(0x3E92) is None  # UHD 630


# --------------------------------------------------------------------------- the probe contract


def _recorded_probe() -> RecordedProbe:
    return RecordedProbe(
        {
            "platform": {"system": "Linux", "release": "6.8.0", "machine": "x86_64", "python_version": "3.12.3", "cpu_count": 4},
            "files": {"/etc/hostname": "box\n"},
            "dirs": {"/etc": ["hostname"]},
            "commands": {"echo hi": {"returncode": 0, "stdout": "hi\n", "stderr": ""}, "sleep 60": {"timed_out": True}},
            "env": {"HOME": "/root"},
            "distributions": {"Torch": "2.8.0+cpu"},
            "disk_free": {"*": 123},
        }
    )


@pytest.fixture(params=["system", "recorded"])
def probe(request) -> Probe:
    return SystemProbe() if request.param == "system" else _recorded_probe()


def test_probe_contract_absent_things_are_answers_not_errors(probe, tmp_path):
    assert probe.read_text(str(tmp_path / "no-such-file")) is None
    assert probe.list_dir(str(tmp_path / "no-such-dir")) is None
    missing = probe.run(["drivelab-no-such-program-xyz", "--version"])
    assert isinstance(missing, CommandResult)
    assert missing.found is False and missing.returncode is None and not missing.ok
    assert probe.distribution_version("drivelab-no-such-distribution") is None
    assert probe.env("DRIVELAB_NO_SUCH_VARIABLE") is None
    facts = probe.platform()
    assert isinstance(facts, PlatformFacts)
    assert facts.system and facts.machine and facts.python_version.count(".") == 2
    assert isinstance(probe.nvml(), NvmlSnapshot)
    free = probe.disk_free(str(tmp_path))
    assert isinstance(free, int) and free >= 0


def test_recorded_probe_replays_what_was_recorded():
    probe = _recorded_probe()
    assert probe.read_text("/etc/hostname") == "box\n"
    assert probe.list_dir("/etc") == ["hostname"]
    assert probe.run(["echo", "hi"]).stdout == "hi\n"
    slow = probe.run(["sleep", "60"])
    assert slow.found and slow.timed_out and slow.returncode is None
    assert probe.env("HOME") == "/root"
    assert probe.distribution_version("torch") == "2.8.0+cpu"  # names compare normalized
    nvml = probe.nvml()
    assert nvml.error_code == NVML_LIBRARY_NOT_FOUND


def test_system_probe_runs_commands_with_a_timeout():
    probe = SystemProbe()
    done = probe.run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert done.found and done.returncode == 3 and done.stdout.strip() == "out" and done.stderr.strip() == "err"
    hung = probe.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert hung.found and hung.timed_out and hung.returncode is None


def test_system_probe_nvml_answers_with_gpus_or_says_why_not():
    snapshot = SystemProbe().nvml()
    if snapshot.error is None:  # an NVIDIA driver: NVML lists its GPUs
        assert snapshot.gpus
    else:  # none here: the library is missing, reported as such, not raised
        assert snapshot.error_code == NVML_LIBRARY_NOT_FOUND
        assert snapshot.gpus == ()


def test_system_probe_reads_distribution_versions_like_importlib_metadata():
    from importlib import metadata

    probe = SystemProbe()
    for name in ("torch", "typer", "nvidia-ml-py", "jsonschema", "torchvision"):
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = None
        assert probe.distribution_version(name) == expected, name


def test_recording_probe_records_a_machine_that_replays_identically(tmp_path):
    recorder = RecordingProbe(SystemProbe())
    live = detect_machine(recorder, workspace=tmp_path, scratch=tmp_path)
    record = json.loads(json.dumps(recorder.record))
    replayed = detect_machine(RecordedProbe(record), workspace=tmp_path, scratch=tmp_path)
    assert replayed == live


# --------------------------------------------------------------------------- this machine


def test_this_machine_is_detected_sanely(tmp_path):
    from importlib import metadata

    machine = detect_machine(workspace=tmp_path, scratch=tmp_path)
    system = machine.system
    assert system.os == "Linux" and system.arch == "x86_64" and not system.wsl
    assert system.python_version == "{}.{}.{}".format(*sys.version_info[:3])
    assert system.cpu_cores and system.cpu_cores >= 1
    assert system.ram_bytes and system.ram_bytes > 2**30
    assert set(system.disk_free_bytes) == {"workspace", "scratch"}
    assert machine.mps is None
    if machine.nvidia is not None:
        assert machine.nvidia.gpus or machine.nvidia.problems, machine.nvidia  # seen, or said why not
    try:
        installed = metadata.version("torch")
    except metadata.PackageNotFoundError:
        installed = None
    assert machine.torch is not None
    assert machine.torch.torch == installed
    assert machine.torch.build == torch_build(installed)


def test_the_public_face_declares_what_it_serves():
    import drivelab.runtime as runtime

    assert sorted(runtime.__all__) == sorted(runtime._names) == sorted(dir(runtime)) and len(set(runtime.__all__)) == len(runtime.__all__)
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name
    # What the other layers and the CLI take from it.
    used_elsewhere = {"require_torch", "MachineInfo", "detect_machine", "info", "verify_torch", "resource_usage", "load_machine", "setup_torch", "PanelRow"}
    assert used_elsewhere <= set(runtime.__all__)


def test_every_runtime_module_imports_on_its_own():
    """Each room's modules import in a fresh interpreter in any order (no import cycle, even at run time)."""
    import pkgutil

    import drivelab.runtime as runtime

    names = sorted(m.name for m in pkgutil.walk_packages(runtime.__path__, "drivelab.runtime."))
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    for name in names:
        done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60, env=child_env())
        assert done.returncode == 0, (name, done.stderr[-2000:])


def test_detection_does_not_import_torch():
    code = "import sys; from drivelab.runtime import detect_machine; detect_machine(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=child_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_runtime_json_does_not_import_torch(tmp_path):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "drivelab", "runtime", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert done.returncode == 0, done.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "drivelab.runtime._machine.nvidia" in imported  # detection ran
    assert not {name for name in imported if name == "torch" or name.startswith("torch.")}


# --------------------------------------------------------------------------- the command


def test_runtime_json_validates_against_the_schema(tmp_path):
    done = drivelab_cli("runtime", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["kind"] == "runtime" and document["version"] == 1
    assert document["system"]["disk_free_bytes"].keys() == {"workspace", "scratch"}
    assert document["torch"]["build"] == "cpu" or document["nvidia"] or document["amd"]


def test_runtime_panel_prints(tmp_path):
    done = drivelab_cli("runtime", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the panel is for humans: stderr
    for label in ("OS", "Python", "CPU", "RAM", "Disk (workspace)", "Disk (scratch)", "PyTorch"):
        assert label in done.stderr
    assert str(tmp_path.resolve()) in done.stderr.replace("\n", "")


def test_runtime_uses_the_workspace_folder(tmp_path):
    from drivelab.workspace import init_workspace

    ws = init_workspace(tmp_path / "lab").workspace
    inner = ws.colab
    done = drivelab_cli("runtime", cwd=inner)
    assert done.returncode == 0, done.stderr
    assert f"free at {ws.root}" in done.stderr.replace("\n", "")
    bad = drivelab_cli("runtime", "-w", str(tmp_path / "missing"), cwd=tmp_path)
    assert bad.returncode == 1 and "not a folder" in bad.stderr


def test_runtime_check_reports_under_check(tmp_path):
    done = drivelab_cli("runtime", "--json", "--check", cwd=tmp_path, timeout=600)
    assert done.returncode in (0, 1), done.stderr
    document = json.loads(done.stdout)
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert done.returncode == (0 if document["check"]["ok"] else 1)


def test_runtime_check_shows_the_report_as_doctor_does(tmp_path):
    # One renderer for a verify report: `runtime --check` and `doctor` print the same lines.
    checked = drivelab_cli("runtime", "--check", cwd=tmp_path, timeout=600)
    doctor = drivelab_cli("doctor", cwd=tmp_path, timeout=600)
    assert checked.returncode == doctor.returncode, checked.stderr + doctor.stderr
    report = lambda text: [line for line in text.splitlines() if re.match(r"\s+(ok|FAIL) ", line)]  # noqa: E731
    assert report(checked.stderr) and [line.split()[:2] for line in report(checked.stderr)] == [line.split()[:2] for line in report(doctor.stderr)]
