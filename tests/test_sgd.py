"""The fast recipe's optimizer and schedule: torch.optim's arithmetic to the bit, resumable, and no torch.optim start-up."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from drivelab.data import get_mnist
from drivelab.train._models import FastNet
from drivelab.train._sgd import NesterovSGD, OneCycle

TOTAL = 50


def _model() -> FastNet:
    torch.manual_seed(0)
    return FastNet().to(memory_format=torch.channels_last)


def _ours(model: FastNet, fused: bool):
    optimizer = NesterovSGD(model.parameters(), lr=0.2, momentum=0.9, weight_decay=5e-4)
    optimizer.fused = fused
    return optimizer, OneCycle(optimizer, max_lr=0.2, total_steps=TOTAL, pct_start=0.25)


def _torch_optim(model: FastNet, fused: bool):
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=True if fused else None, foreach=None if fused else True
    )
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=TOTAL, pct_start=0.25)


def _train(model, optimizer, scheduler, steps: range) -> list[tuple[float, float]]:
    """``steps`` batches of a fixed random stream; the (lr, momentum) each update used."""
    used = []
    for step in steps:
        generator = torch.Generator().manual_seed(step)
        images, labels = torch.randn(32, 1, 28, 28, generator=generator), torch.randint(0, 10, (32,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        used.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        optimizer.step()
        scheduler.step()
    return used


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
def test_the_same_weights_as_torch_optim_sgd_under_one_cycle_lr(fused):
    ours, theirs = _model(), _model()
    used_ours = _train(ours, *_ours(ours, fused), range(TOTAL))
    used_theirs = _train(theirs, *_torch_optim(theirs, fused), range(TOTAL))
    assert used_ours == used_theirs  # lr up then down, momentum down then up, the same floats
    assert used_ours[0][0] == pytest.approx(0.2 / 25) and max(lr for lr, _ in used_ours) == pytest.approx(0.2, rel=1e-3)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(ours.parameters(), _model().parameters(), strict=True)), "it trained"


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "foreach"])
def test_a_parameter_without_a_gradient_at_first_starts_its_own_momentum(fused):
    """Momentum is each parameter's own: one with no gradient at step 1 starts its buffer at its own first gradient."""
    results = []
    for make in (
        lambda params: NesterovSGD(params, lr=0.1, momentum=0.9, weight_decay=1e-2),
        # torch's own fused SGD cannot take this case (it starts every buffer at once): its foreach form is the reference.
        lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2, foreach=True),
    ):
        torch.manual_seed(0)
        early, late = torch.nn.Parameter(torch.randn(5)), torch.nn.Parameter(torch.randn(3))
        optimizer = make([early, late])
        if isinstance(optimizer, NesterovSGD):
            optimizer.fused = fused
        for step in range(4):
            optimizer.zero_grad(set_to_none=True)
            loss = (early * torch.arange(5.0)).sum() ** 2 / 10
            if step > 0:  # `late` is not used at step 1: its grad stays None
                loss = loss + (late * torch.linspace(-1, 1, 3) * (step + 1)).sum() ** 2
            loss.backward()
            optimizer.step()
        results.append((early.detach().clone(), late.detach().clone()))
    (ours_early, ours_late), (theirs_early, theirs_late) = results
    assert torch.equal(ours_early, theirs_early)
    assert torch.equal(ours_late, theirs_late)

    resumed = NesterovSGD([torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(3))], lr=0.1, momentum=0.9)
    optimizer = NesterovSGD([torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(3))], lr=0.1, momentum=0.9)
    optimizer.params[0].grad = torch.ones(5)
    optimizer.step()  # only the first has momentum yet
    resumed.load_state_dict(optimizer.state_dict())
    assert resumed.state_dict()["momentum_buffers"][1] is None and torch.equal(resumed.state_dict()["momentum_buffers"][0], torch.ones(5))


def test_a_saved_state_resumes_to_the_same_weights():
    straight = _model()
    _train(straight, *_ours(straight, fused=True), range(TOTAL))

    first = _model()
    optimizer, scheduler = _ours(first, fused=True)
    _train(first, optimizer, scheduler, range(20))
    saved = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)

    resumed = FastNet().to(memory_format=torch.channels_last)  # other random weights, no momentum yet
    resumed.load_state_dict(state["model"])
    optimizer, scheduler = _ours(resumed, fused=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _train(resumed, optimizer, scheduler, range(20, TOTAL))
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_states_of_something_else_are_refused():
    optimizer, scheduler = _ours(_model(), fused=True)
    with pytest.raises(ValueError, match="other parameters"):
        optimizer.load_state_dict({"param_groups": [{"lr": 0.1}], "momentum_buffers": [torch.zeros(3)]})
    with pytest.raises(ValueError, match="for 10 steps, not 50"):
        scheduler.load_state_dict({"last_step": 3, "total_steps": 10})
    with pytest.raises(ValueError, match="past its end"):
        scheduler.values(TOTAL + 1)
    with pytest.raises(ValueError, match="warm-up"):
        OneCycle(optimizer, max_lr=0.2, total_steps=4, pct_start=0.25)
    with pytest.raises(ValueError, match="no parameters"):
        NesterovSGD([], lr=0.1, momentum=0.9)


def test_the_fast_recipe_trains_without_importing_torch_compile(tmp_path, mnist_mirror):
    """What the module exists for: a trainer's start does not pay for torch._dynamo (torch.optim imports it)."""
    dataset = tmp_path / "dataset"
    get_mnist(dataset, mirrors=[mnist_mirror.url])
    code = (
        "import sys\nfrom pathlib import Path\nfrom drivelab.train import TrainConfig, train\n"
        f"result = train(TrainConfig(dataset_root=Path({str(dataset)!r}), run_dir=Path({str(tmp_path / 'run')!r}), limit_train=512, epochs=1, device='cpu'))\n"
        "print(result.final_accuracy > 10, 'torch._dynamo' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "False"], proc.stdout
