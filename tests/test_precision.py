"""The compute precision: chosen from what the hardware can do, overridable, recorded, and really used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from drivelab.data import get_mnist
from drivelab.errors import TrainOptionError
from drivelab.train import TrainConfig, read_metrics, train
from drivelab.train._precision import BF16_CPU_FLAGS, choose_precision, parse_cpu_flags
from drivelab.workspace import init_workspace

# Flag lines of /proc/cpuinfo as recorded on real machines (shortened to what matters plus some neighbours).
XEON_AVX512_NO_BF16 = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm "
    "constant_tsc rep_good nopl xtopology nonstop_tsc cpuid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt "
    "aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap "
    "avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512vbmi umip pku ospke avx512_vbmi2 gfni "
    "vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm md_clear arch_capabilities"
)
EPYC_ZEN4_AVX512_BF16 = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb "
    "rdtscp lm constant_tsc rep_good nopl cpuid extd_apicid pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c "
    "rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext fsgsbase bmi1 avx2 smep bmi2 erms invpcid "
    "avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 "
    "clzero xsaveerptr wbnoinvd arat avx512vbmi umip pku ospke avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm"
)
SAPPHIRE_RAPIDS_AMX = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm "
    "avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8 waitpkg serialize tsxldtrk"
)
AMX_ONLY = "fpu sse sse2 avx avx2 avx512f avx512bw amx_tile amx_bf16"  # a flag set with AMX but without AVX512-BF16 reported
EPYC_ZEN2_AVX2 = (
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb "
    "rdtscp lm constant_tsc rep_good nopl nonstop_tsc cpuid extd_apicid aperfmperf pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes "
    "xsave avx f16c rdrand lahf_lm cmp_legacy svm extapic cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw ibs skinit wdt tce topoext "
    "perfctr_core perfctr_nb bpext perfctr_llc mwaitx cpb cat_l3 cdp_l3 hw_pstate ssbd mba ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 "
    "cqm rdt_a rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 cqm_llc cqm_occup_llc cqm_mbm_total cqm_mbm_local clzero irperf"
)
GRAVITON3 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve bf16"


def cpuinfo(flags: str, key: str = "flags") -> str:
    """A /proc/cpuinfo of two processors with ``flags``."""
    one = f"processor\t: {{n}}\nvendor_id\t: GenuineIntel\nmodel name\t: Some CPU\n{key}\t\t: {flags}\nbogomips\t: 4800.00\n\n"
    return one.format(n=0) + one.format(n=1)


@pytest.mark.parametrize(
    ("flags", "name", "reason"),
    [
        (XEON_AVX512_NO_BF16, "fp32", "auto: no bf16 instructions, fp32"),
        (EPYC_ZEN2_AVX2, "fp32", "auto: no bf16 instructions, fp32"),
        (EPYC_ZEN4_AVX512_BF16, "bf16", "auto: CPU has avx512_bf16"),
        (SAPPHIRE_RAPIDS_AMX, "bf16", "auto: CPU has amx_bf16, avx512_bf16"),
        (AMX_ONLY, "bf16", "auto: CPU has amx_bf16"),
        ("", "fp32", "auto: no bf16 instructions, fp32"),
    ],
    ids=["xeon-avx512-no-bf16", "epyc-avx2", "epyc-avx512-bf16", "sapphire-rapids-amx", "amx-only", "no-flags"],
)
def test_auto_on_the_cpu_follows_its_bf16_flags(flags, name, reason):
    parsed = parse_cpu_flags(cpuinfo(flags))
    assert parsed == frozenset(flags.split())
    chosen = choose_precision("auto", "cpu", flags=parsed)
    assert (chosen.name, chosen.reason) == (name, reason)
    assert str(chosen) == f"{name} ({reason})"


def test_flags_that_merely_contain_bf16_do_not_count():
    # ARM's "bf16" feature, AVX-512's fp16 and a vendor's made-up flag are not the instructions PyTorch's CPU kernels use.
    for flags in (GRAVITON3, "avx512f avx512_fp16 avx512_vnni", "avx512_bf16x"):
        assert choose_precision("auto", "cpu", flags=parse_cpu_flags(cpuinfo(flags, key="Features"))).name == "fp32"
    assert set(BF16_CPU_FLAGS) == {"avx512_bf16", "amx_bf16"}


def test_parse_cpu_flags_reads_x86_and_arm_and_nothing_else():
    assert "avx512_bf16" in parse_cpu_flags(cpuinfo(EPYC_ZEN4_AVX512_BF16))
    assert "bf16" in parse_cpu_flags(cpuinfo(GRAVITON3, key="Features"))
    assert parse_cpu_flags("processor\t: 0\nmodel name\t: x\n") == frozenset()
    assert parse_cpu_flags("") == frozenset()


def test_requested_precision_is_obeyed_and_says_when_it_will_be_slow():
    assert str(choose_precision("fp32", "cpu", flags={"avx512_bf16"})) == "fp32 (--precision fp32)"
    assert str(choose_precision("bf16", "cpu", flags={"amx_bf16"})) == "bf16 (--precision bf16)"
    slow = choose_precision("bf16", "cpu", flags=set())
    assert slow.name == "bf16" and "emulates" in slow.reason and "slower" in slow.reason
    assert choose_precision("bf16", "cuda", cuda_bf16=False).name == "bf16"
    with pytest.raises(ValueError):
        choose_precision("fp16", "cpu")


def test_auto_on_gpus_and_fp32_recipes():
    assert str(choose_precision("auto", "cuda", cuda_bf16=True)) == "bf16 (auto: the GPU has bf16)"
    assert choose_precision("auto", "cuda", cuda_bf16=False).name == "fp32"
    assert choose_precision("auto", "mps").name == "fp32"
    # The CPU's flags do not matter on a GPU, nor for a recipe that trains in fp32 by design.
    assert choose_precision("auto", "cuda", flags={"avx512_bf16"}, cuda_bf16=False).name == "fp32"
    assert str(choose_precision("auto", "cpu", flags={"avx512_bf16"}, recipe_bf16=False)) == "fp32 (auto: the recipe trains in fp32)"
    assert choose_precision("bf16", "cpu", flags={"avx512_bf16"}, recipe_bf16=False).name == "bf16"  # asked for: obeyed
    assert choose_precision("auto", "cpu", flags=set(), system="Darwin").reason == "auto: CPU flags not read on Darwin, fp32"


@pytest.mark.parametrize("value", ["fp16", "BF16", "", None, 16])
def test_config_refuses_an_unknown_precision(tmp_path, value):
    with pytest.raises(TrainOptionError) as info:
        TrainConfig(dataset_root=tmp_path, run_dir=tmp_path / "run", precision=value)
    assert info.value.option == "--precision" and info.value.exit_code == 2
    assert "auto, fp32 or bf16" in str(info.value)


# --- real runs ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory, mnist_mirror) -> Path:
    root = tmp_path_factory.mktemp("dataset")
    get_mnist(root, mirrors=[mnist_mirror.url])
    return root


def _conv_output_dtypes(config: TrainConfig) -> tuple[set[torch.dtype], object]:
    """The dtypes the convolutions produced while ``config`` trained, and the result."""
    seen: set[torch.dtype] = set()

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d) and torch.is_grad_enabled():
            seen.add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        result = train(config)
    finally:
        handle.remove()
    return seen, result


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_cpu_run_computes_in_the_precision_it_records(dataset_root, tmp_path, precision):
    config = TrainConfig(dataset_root, tmp_path / "run", device="cpu", limit_train=256, epochs=1, precision=precision)
    seen, result = _conv_output_dtypes(config)
    assert seen == {torch.bfloat16 if precision == "bf16" else torch.float32}
    assert result.precision == precision and result.precision_reason.startswith(f"--precision {precision}")
    (line,) = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    recorded = json.loads(line)
    assert recorded["precision"] == precision and recorded["precision_reason"] == result.precision_reason
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[0].precision == precision
    # The weights stay fp32 whatever the compute: bf16 is autocast, not a cast of the model.
    weights = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


def test_auto_records_what_this_machine_chose(dataset_root, tmp_path):
    from drivelab.train._precision import cpu_flags

    seen, result = _conv_output_dtypes(TrainConfig(dataset_root, tmp_path / "run", device="cpu", limit_train=128, epochs=1))
    expected = choose_precision("auto", "cpu", flags=cpu_flags(), system=__import__("platform").system())
    assert (result.precision, result.precision_reason) == (expected.name, expected.reason)
    assert seen == {torch.bfloat16 if expected.name == "bf16" else torch.float32}
    assert result.precision_reason.startswith("auto: ")


def test_reference_recipe_stays_fp32_on_auto(dataset_root, tmp_path):
    result = train(TrainConfig(dataset_root, tmp_path / "run", recipe="reference", device="cpu", limit_train=128, epochs=1))
    assert (result.precision, result.precision_reason) == ("fp32", "auto: the recipe trains in fp32")


def test_old_metrics_lines_without_precision_still_read(tmp_path):
    line = {"epoch": 1, "train_loss": 0.3, "test_loss": 0.1, "test_accuracy": 98.0, "seconds": 1.0, "elapsed": 1.0, "lr": 0.1}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    (m,) = read_metrics(tmp_path / "metrics.jsonl")
    assert m.test_accuracy == 98.0 and m.precision is None


def _main(workspace: Path, dataset_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIVELAB_")}
    argv = [sys.executable, str(workspace / "drive" / "colab" / "main.py"), "--data-dir", str(dataset_root), "--device", "cpu",
            "--epochs", "1", "--limit-train", "256", "--log-every", "0", *args]  # fmt: skip
    return subprocess.run(argv, check=False, cwd=workspace, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)


def test_main_prints_the_precision_first_and_refuses_a_bad_one(dataset_root, tmp_path):
    workspace = init_workspace(tmp_path / "lab").workspace.root
    proc = _main(workspace, dataset_root, "--run", "p", "--precision", "fp32")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("Run ") and "| precision fp32 (--precision fp32) |" in first, first
    assert json.loads((workspace / "drive" / "runs" / "p" / "metrics.jsonl").read_text())["precision"] == "fp32"

    auto = _main(workspace, dataset_root, "--run", "a")
    assert auto.returncode == 0, auto.stdout + auto.stderr
    assert "| precision fp32 (auto: " in auto.stdout.splitlines()[0] or "| precision bf16 (auto: CPU has " in auto.stdout.splitlines()[0]

    bad = _main(workspace, dataset_root, "--run", "b", "--precision", "fp16")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert "--precision 'fp16'" in bad.stderr and "must be auto, fp32 or bf16" in bad.stderr
    assert not (workspace / "drive" / "runs" / "b").exists()
