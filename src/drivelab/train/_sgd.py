"""SGD with Nesterov momentum on a one-cycle schedule, without ``torch.optim``.

The fast recipe's optimizer and schedule are PyTorch's own arithmetic:
``torch.optim.SGD(nesterov=True, fused=True)`` (or its ``foreach`` form where
no fused kernel exists) driven by ``torch.optim.lr_scheduler.OneCycleLR``
(cosine, two phases, momentum cycled 0.95 -> 0.85 -> 0.95), and the tests hold
them to it bit for bit. They live here, calling the same ATen kernels, because
every ``torch.optim`` optimizer imports ``torch._dynamo`` when it is made and
again in every ``step()`` (to mark graph breaks for ``torch.compile``): about
a second on a 2-core CPU, a third of a trainer's start to its first step, paid
again on every restart of a killed job.

:class:`NesterovSGD` and :class:`OneCycle` keep the interface the training loop
uses of an optimizer and a scheduler (``param_groups``, ``zero_grad``,
``step``, ``state_dict``, ``load_state_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

__all__ = ["NesterovSGD", "OneCycle"]


class NesterovSGD:
    """SGD with Nesterov momentum and weight decay over one group of parameters.

    ``param_groups[0]`` holds ``lr`` and ``momentum``, read at every step, so
    that a schedule can change them between steps (as :class:`OneCycle` does).
    The update is ``torch._fused_sgd_`` where every parameter is on a CPU or a
    CUDA device, else the ``torch._foreach_*`` sequence of ``torch.optim.SGD``.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float, momentum: float, weight_decay: float = 0.0) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("NesterovSGD got no parameters to train")
        self.param_groups = [{"lr": lr, "momentum": momentum, "weight_decay": weight_decay}]
        # Each parameter's own momentum buffer: None until its first gradient (as torch.optim.SGD's per-parameter state).
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)
        self.fused = hasattr(torch, "_fused_sgd_") and all(p.device.type in ("cpu", "cuda") for p in self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One update of the parameters that have a gradient; one without keeps its weights and its momentum."""
        group = self.param_groups[0]
        lr, momentum, weight_decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        starting = [i for i in live if self.buffers[i] is None]
        going = [i for i in live if self.buffers[i] is not None]
        for i in starting:
            self.buffers[i] = torch.empty_like(self.params[i])  # filled with the first gradient by the update
        for first, which in ((True, starting), (False, going)):
            if which:
                self._update(which, first=first, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def _update(self, which: list[int], *, first: bool, lr: float, momentum: float, weight_decay: float) -> None:
        params = [self.params[i] for i in which]
        grads = [p.grad for p in params]
        buffers = [self.buffers[i] for i in which]
        if self.fused:
            torch._fused_sgd_(
                params, grads, buffers, weight_decay=weight_decay, momentum=momentum, lr=lr, dampening=0.0, nesterov=True, maximize=False,
                is_first_step=first,
            )  # fmt: skip
            return
        if weight_decay:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)
        if first:
            torch._foreach_copy_(buffers, grads)
        else:
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, grads)
        torch._foreach_add_(grads, buffers, alpha=momentum)
        torch._foreach_add_(params, grads, alpha=-lr)

    def state_dict(self) -> dict:
        """``momentum_buffers``: one per parameter, None for one that has had no gradient yet."""
        return {"param_groups": [dict(g) for g in self.param_groups], "momentum_buffers": list(self.buffers)}

    def load_state_dict(self, state: dict) -> None:
        groups, buffers = state["param_groups"], state["momentum_buffers"]
        if buffers is None:  # a state saved before any step, by a version that kept no per-parameter state
            buffers = [None] * len(self.params)
        if len(groups) != 1 or len(buffers) != len(self.params) or any(b is not None and b.shape != p.shape for b, p in zip(buffers, self.params)):
            raise ValueError("the optimizer state is for other parameters")
        self.param_groups[0].update(groups[0])
        self.buffers = [None if b is None else b.to(p.device, p.dtype).clone() for b, p in zip(buffers, self.params, strict=True)]


class OneCycle:
    """The one-cycle policy of ``torch.optim.lr_scheduler.OneCycleLR`` (cosine, two phases) for :class:`NesterovSGD`.

    The learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the
    first ``pct_start`` of ``total_steps``, then falls to ``max_lr / div_factor
    / final_div_factor``; the momentum moves the opposite way between
    ``max_momentum`` and ``base_momentum``. :meth:`step` after every batch.
    """

    def __init__(
        self,
        optimizer: NesterovSGD,
        *,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        if total_steps < 2 or not 0 < pct_start * total_steps - 1 < total_steps - 1:
            raise ValueError(
                f"a one-cycle schedule needs a warm-up of more than one step and a decay after it (total_steps={total_steps}, pct_start={pct_start})"
            )
        self.optimizer = optimizer
        self.total_steps = total_steps
        initial = max_lr / div_factor
        # (last step of the phase, lr from, lr to, momentum from, momentum to), as OneCycleLR lays them out.
        self.phases = [
            (float(pct_start * total_steps) - 1, initial, max_lr, max_momentum, base_momentum),
            (total_steps - 1, max_lr, initial / final_div_factor, base_momentum, max_momentum),
        ]
        self.last_step = 0
        self._apply()

    @staticmethod
    def _cos(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def values(self, step: int) -> tuple[float, float]:
        """``(lr, momentum)`` for the update after ``step`` scheduler steps."""
        if step > self.total_steps:
            raise ValueError(f"the schedule has {self.total_steps} steps; step {step} is past its end")
        start = 0.0
        for i, (end, lr_from, lr_to, m_from, m_to) in enumerate(self.phases):
            if step <= end or i == len(self.phases) - 1:
                pct = (step - start) / (end - start)
                return self._cos(lr_from, lr_to, pct), self._cos(m_from, m_to, pct)
            start = end
        raise AssertionError("unreachable")

    def _apply(self) -> None:
        lr, momentum = self.values(self.last_step)
        self.optimizer.param_groups[0].update(lr=lr, momentum=momentum)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "total_steps": self.total_steps}

    def load_state_dict(self, state: dict) -> None:
        if state.get("total_steps") != self.total_steps:
            raise ValueError(f"the schedule state is for {state.get('total_steps')} steps, not {self.total_steps}")
        self.last_step = int(state["last_step"])
        self._apply()
