"""``train()``: run a recipe on MNIST with checkpoints, resume and metrics.

The run folder holds everything a run needs to continue::

    <run_dir>/
      ckpt-epochNNNN.pt(.sha256)   the newest two complete checkpoints
      metrics.jsonl                one line per finished epoch
      curves.png                   loss and accuracy per epoch
      model.pt                     the final weights (state dict), when done

Rerunning with the same run folder resumes from the newest complete
checkpoint and ends with the same weights as an uninterrupted run (same
device, seed and thread count): shuffling is seeded per epoch and every
random state is saved with the checkpoint.

Under torchrun (several processes) the run is data-parallel: every rank holds
the dataset, each global batch of the recipe's size is split between the
ranks, and the gradients are averaged, so the recipe's schedule is unchanged.
Rank 0 alone evaluates and writes checkpoints, metrics and the final weights;
a run resumes the same way, with any number of processes.

On several machines sharing the run folder through their own mounts of the
drive, every rank resumes from the checkpoint rank 0 chose, by its bytes (see
:func:`load_agreed_checkpoint`), and the metrics history comes from that
checkpoint too, not from ``metrics.jsonl`` as the resuming rank 0's machine
happens to see it: the history always matches the weights it resumes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from drivelab.errors import CheckpointError, RunSettingsError, TrainError
from drivelab.train._checkpoint import load_agreed_checkpoint, save_checkpoint, save_model
from drivelab.train._config import TrainConfig
from drivelab.train._distributed import World, join_world
from drivelab.train._events import BatchProgress, CheckpointSkipped, EpochEnd, RunStarted, TrainEvent, TrainResult
from drivelab.train._metrics import EpochMetrics, plot_curves, read_metrics, write_metrics
from drivelab.train._mnist import MNIST_MEAN, MNIST_STD, load_mnist
from drivelab.train._precision import precision_for
from drivelab.train._recipes import Recipe, get_recipe

__all__ = ["train"]


class _PerSample(torch.utils.data.Dataset):
    """The classic per-sample pipeline: one uint8 image -> normalized float tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = self.images[i].float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
        return image, self.labels[i]


class _WeightAverage:
    """An exponential moving average of a model's weights and float buffers (BatchNorm's statistics).

    The decay ramps up as ``(1 + n) / (10 + n)`` towards ``decay``: early
    (random) weights fade out within a few hundred steps, so the average is
    already useful after one short epoch. One in-place ``lerp`` over all
    tensors a step, its weight computed on the host from a step count: no host
    sync, and a few hundred microseconds less a step than
    :class:`torch.optim.swa_utils.AveragedModel`, which regroups every tensor
    on every update (on a 2-core CPU, 10-25% of a step of the fast recipe).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.decay = decay
        self.updates = 0
        pairs = list(zip([*self.module.parameters(), *self.module.buffers()], [*model.parameters(), *model.buffers()], strict=True))
        self._averaged = [mine for mine, _ in pairs if mine.is_floating_point()]
        self._current = [theirs for mine, theirs in pairs if mine.is_floating_point()]
        self._copied = [(mine, theirs) for mine, theirs in pairs if not mine.is_floating_point()]  # BatchNorm's batch counters

    @torch.no_grad()
    def update(self) -> None:
        n = self.updates
        keep = min(self.decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(self._averaged, self._current, 1.0 - keep)
        for mine, theirs in self._copied:
            mine.copy_(theirs)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


class _Run:
    """The state of one run between epochs."""

    def __init__(self, config: TrainConfig, recipe: Recipe, world: World) -> None:
        device = world.device
        self.config, self.recipe, self.device, self.world = config, recipe, device, world
        self.epochs = config.epochs or recipe.epochs
        self.batch_size = config.batch_size or recipe.batch_size
        data = load_mnist(config.dataset_root)
        train_images, train_labels = data.train_images, data.train_labels
        if config.limit_train:
            train_images, train_labels = train_images[: config.limit_train], train_labels[: config.limit_train]
        self.n_train = len(train_labels)
        self.precision = precision_for(config.precision, device, recipe_bf16=recipe.bf16)
        self.autocast_dtype = self.precision.autocast_dtype
        self.steps_per_epoch = -(-self.n_train // self.batch_size)
        memory_format = torch.channels_last if recipe.channels_last else torch.contiguous_format

        torch.manual_seed(config.seed)
        self.model = recipe.build_model().to(device, memory_format=memory_format)
        # Every rank starts from the same weights; after that, ranks other
        # than 0 draw their own random numbers (dropout).
        if world.rank:
            torch.manual_seed(config.seed + 7919 * world.rank)
        self.forward: nn.Module = self.model
        if world.distributed:
            self.forward = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        # A model's parameter-free first step (FastNet's pixel-unshuffle) is done once to the whole
        # data set held on the device, not again for every batch and every evaluation.
        prepare = getattr(self.model, "prepare", None) if recipe.pipeline == "tensor" else None
        if recipe.pipeline == "tensor":
            self.train_x = self._to_device(train_images, memory_format, prepare)
            self.train_y = train_labels.to(device)
        else:
            self.train_set = _PerSample(train_images, train_labels)
        self.test_x = self._to_device(data.test_images, memory_format, prepare)
        self.test_y = data.test_labels.to(device)
        self.optimizer, self.scheduler, self.step_per_batch = recipe.build_optimizer(
            self.model, self.steps_per_epoch, self.epochs, config.lr
        )
        self.ema = _WeightAverage(self.model, recipe.ema_decay) if recipe.ema_decay else None

    @torch.no_grad()
    def _to_device(self, images: torch.Tensor, memory_format, prepare: Callable[[torch.Tensor], torch.Tensor] | None) -> torch.Tensor:
        x = images.to(self.device)
        if prepare is not None:
            x = prepare(x)  # on the bytes: a quarter of the memory traffic of doing it on floats
        # float() keeps the memory format; the same arithmetic as the per-sample pipeline, to the bit.
        return x.contiguous(memory_format=memory_format).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)

    def _batches(self, epoch: int):
        """``(images, labels, global batch size)``: this rank's part of each batch."""
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.seed, epoch))
        if self.world.distributed:
            yield from self._rank_batches(generator)
        elif self.recipe.pipeline == "tensor":
            order = torch.randperm(self.n_train, generator=generator).to(self.device)
            for start in range(0, self.n_train, self.batch_size):
                index = order[start : start + self.batch_size]
                yield self.train_x[index], self.train_y[index], len(index)
        else:
            loader = torch.utils.data.DataLoader(
                self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator
            )
            for images, labels in loader:
                yield images.to(self.device), labels.to(self.device), len(labels)

    def _rank_batches(self, generator: torch.Generator):
        # One permutation on every rank (same seed); each global batch is dealt
        # out rank::world_size. A last batch too small to give every rank an
        # image is dropped, the same way on every rank.
        rank, world_size = self.world.rank, self.world.world_size
        order = torch.randperm(self.n_train, generator=generator)
        slices = []
        for start in range(0, self.n_train, self.batch_size):
            batch = order[start : start + self.batch_size]
            if len(batch) >= world_size:
                slices.append((batch[rank::world_size], len(batch)))
        if self.recipe.pipeline == "tensor":
            for index, size in slices:
                index = index.to(self.device)
                yield self.train_x[index], self.train_y[index], size
        else:
            loader = torch.utils.data.DataLoader(self.train_set, batch_sampler=[index.tolist() for index, _ in slices])
            for (images, labels), (_, size) in zip(loader, slices, strict=True):
                yield images.to(self.device), labels.to(self.device), size

    def train_epoch(self, epoch: int, progress: Callable[[TrainEvent], None] | None) -> torch.Tensor:
        self.model.train()
        total = torch.zeros((), device=self.device)
        report_every = max(1, self.steps_per_epoch // 50)
        world_size = self.world.world_size
        smoothing = self.recipe.label_smoothing
        shifts = self._shifts(epoch)
        for step, (images, labels, size) in enumerate(self._batches(epoch), start=1):
            if shifts is not None:
                images = self._translate(images, *shifts[step - 1].tolist())
            with self._autocast():
                if world_size == 1:
                    loss = F.cross_entropy(self.forward(images), labels, label_smoothing=smoothing)
                else:
                    # DDP averages gradients over ranks; scaled so, the average
                    # is the gradient of the mean loss over the whole batch.
                    summed = F.cross_entropy(self.forward(images), labels, reduction="sum", label_smoothing=smoothing)
                    loss = summed * (world_size / size)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.step_per_batch:
                self.scheduler.step()
            if self.ema is not None:
                self.ema.update()
            # Summed on the device: reading it back every step would stall the pipeline.
            total += loss.detach() * (len(labels) if world_size == 1 else size / world_size)
            if progress and step % report_every == 0:
                progress(BatchProgress(epoch, step, self.steps_per_epoch))
        if not self.step_per_batch:
            self.scheduler.step()
        if self.world.distributed:
            dist.all_reduce(total)
        return total / self.n_train

    def _shifts(self, epoch: int) -> torch.Tensor | None:
        """``[steps, 2]`` translations (rows, columns) of this epoch's batches; None when it trains on them as they are.

        Drawn on the host from a stream of their own, seeded by the run's seed and the epoch (the same on every rank,
        and again after a resume), so that they never shift the order the batches are drawn in.
        """
        reach = self.recipe.shift
        if not reach or epoch >= self.epochs:
            return None
        generator = torch.Generator().manual_seed(_epoch_seed(self.config.seed, epoch) + 500_000)
        return torch.randint(-reach, reach + 1, (self.steps_per_epoch, 2), generator=generator)

    def _translate(self, images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
        """``images`` moved by ``dy`` rows and ``dx`` columns, the background (black, normalised) coming in at the edges."""
        if dy == 0 and dx == 0:
            return images
        reach = self.recipe.shift
        height, width = images.shape[-2:]
        padded = F.pad(images, (reach, reach, reach, reach), value=-MNIST_MEAN / MNIST_STD)
        moved = padded[..., reach - dy : reach - dy + height, reach - dx : reach - dx + width]
        memory_format = torch.channels_last if self.recipe.channels_last else torch.contiguous_format
        return moved.contiguous(memory_format=memory_format)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        model = self.eval_model
        model.eval()
        loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        size = self.recipe.test_batch_size
        for start in range(0, len(self.test_y), size):
            images, labels = self.test_x[start : start + size], self.test_y[start : start + size]
            with self._autocast():
                logits = model(images).float()
            loss += F.cross_entropy(logits, labels, reduction="sum")
            correct += (logits.argmax(1) == labels).sum()
        n = len(self.test_y)
        return loss.item() / n, 100.0 * correct.item() / n

    def state(self, elapsed: float) -> dict:
        state = {
            "config": self.config.identity(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "elapsed": elapsed,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        if self.world.distributed:
            # Every rank's generators, so that a resumed rank draws what it would have.
            gathered: list = [None] * self.world.world_size
            mine = (torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)
            dist.all_gather_object(gathered, mine)
            state["rng_ranks"] = [{"cpu": cpu, **({"cuda": cuda} if cuda is not None else {})} for cpu, cuda in gathered]
        return state

    def restore(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
            ranks = state.get("rng_ranks")
            if self.world.distributed:
                if ranks and len(ranks) == self.world.world_size:
                    torch.set_rng_state(ranks[self.world.rank]["cpu"])
                    if self.device.type == "cuda" and "cuda" in ranks[self.world.rank]:
                        torch.cuda.set_rng_state(ranks[self.world.rank]["cuda"], self.device)
            else:
                torch.set_rng_state(state["rng_cpu"])
                if self.device.type == "cuda" and "rng_cuda" in state:
                    torch.cuda.set_rng_state_all(state["rng_cuda"])
        except (KeyError, RuntimeError, ValueError) as exc:
            what = f"it has no {exc} entry (written by another version of the recipe?)" if isinstance(exc, KeyError) else str(exc)
            raise CheckpointError(
                f"the checkpoint does not fit this run: {what}",
                hint="start a new run (another --run name), or pass --no-resume",
            ) from exc


def _check_same_settings(run_dir: Path, held: dict, asked: dict) -> None:
    """Raise :class:`RunSettingsError` naming each setting whose value differs, both values, and what to do."""
    differing = {k: (held.get(k), asked.get(k)) for k in sorted(held.keys() | asked.keys()) if held.get(k) != asked.get(k)}
    if not differing:
        return
    values = "; ".join(f"{k}: the run holds {h}, asked {a}" for k, (h, a) in differing.items())
    # A setting the run holds as None is the recipe's default: the option is left out to get it again.
    same = " ".join(f"--{k.replace('_', '-')} {h}" for k, (h, _) in differing.items() if h is not None)
    raise RunSettingsError(
        f"{run_dir} holds a run with other settings: {values}",
        differing=differing,
        hint=f"rerun with the run's settings ({same or 'leave out the options that differ'}) to resume it, "
        "or use another --run name (or --no-resume to start this one over)",
    )


def train(config: TrainConfig, progress: Callable[[TrainEvent], None] | None = None, *, world: World | None = None) -> TrainResult:
    """Train ``config.recipe`` on MNIST into ``config.run_dir``; see the module doc.

    ``progress`` receives :data:`TrainEvent` objects (never required; on rank 0
    only when several processes train). Under torchrun this joins the process
    group (see :func:`join_world`), unless the caller joined it already and
    passes its ``world`` (then its device is the one used: chosen once); the
    caller leaves it with ``World.close()``.
    Raises :class:`DrivelabError` subclasses for bad data, recipes or devices.
    """
    recipe = get_recipe(config.recipe)  # every option was checked when the config was made
    if config.threads:
        torch.set_num_threads(config.threads)
    if world is None:
        world = join_world(config.device)
    main = world.is_main
    report = progress if main else None
    device = world.device
    run_dir = Path(config.run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainError(
            f"cannot create the run folder {run_dir}: {exc.strerror or exc}",
            hint="check that the runs folder (--runs-dir) is a writable folder, and the drive attached",
        ) from exc
    metrics_file = run_dir / "metrics.jsonl"

    run = _Run(config, recipe, world)
    precision = run.precision
    result = TrainResult(
        run_dir, recipe.name, str(device), run.epochs, resumed_from=None, world_size=world.world_size, precision=precision.name, precision_reason=precision.reason
    )

    start_epoch, elapsed, checkpoint, sent_to, saved_history = 0, 0.0, None, [], None
    if config.resume:
        # Rank 0 chooses; every rank loads the very bytes it verified.
        loaded = load_agreed_checkpoint(run_dir, world, wait=config.checkpoint_wait)
        for path, reason in loaded.skipped:
            result.skipped_checkpoints.append((path, reason))
            if report:
                report(CheckpointSkipped(path, reason))
        if loaded.state is not None:
            _check_same_settings(run_dir, loaded.state.get("config", {}), config.identity())
            run.restore(loaded.state)
            start_epoch, elapsed, checkpoint, sent_to = int(loaded.state["epoch"]), float(loaded.state["elapsed"]), loaded.path, loaded.sent_to
            saved_history = loaded.state.get("history")
            result.resumed_from = start_epoch
    if main:
        # Epochs after the checkpoint will be trained again: their old lines go. A checkpoint written
        # before it carried the history leaves it to metrics.jsonl.
        if saved_history is not None:
            result.history = [EpochMetrics(**m) for m in saved_history]
        else:
            result.history = [m for m in read_metrics(metrics_file) if m.epoch <= start_epoch] if start_epoch else []
        write_metrics(metrics_file, result.history)
    if report:
        report(RunStarted(run_dir, recipe.name, str(device), run.epochs, start_epoch, checkpoint, sent_to=tuple(sent_to), precision=str(precision)))

    for epoch in range(start_epoch + 1, run.epochs + 1):
        started = time.perf_counter()
        lr = run.optimizer.param_groups[0]["lr"]
        train_loss = run.train_epoch(epoch, report).item()
        stop = False
        if main:
            test_loss, accuracy = run.evaluate()
            seconds = time.perf_counter() - started
            elapsed += seconds
            metrics = EpochMetrics(epoch, train_loss, test_loss, accuracy, seconds, elapsed, lr, precision.name, precision.reason)
        state = run.state(elapsed)  # on every rank: it gathers their random states
        if main:
            # Metrics first: a kill between the two then costs a line that a resume rewrites,
            # never a line that a resume after this checkpoint would not write again.
            result.history.append(metrics)
            write_metrics(metrics_file, result.history)
            state["history"] = [m.to_dict() for m in result.history]
            path = save_checkpoint(run_dir, epoch, state, keep=config.keep_checkpoints)
            if report:  # before the plot: the first one imports matplotlib, which would hold the line back by a second
                report(EpochEnd(metrics, path))
            plot_curves(run_dir / "curves.png", result.history, title=f"MNIST, recipe {recipe.name}")
            stop = config.stop_at_accuracy is not None and accuracy >= config.stop_at_accuracy
        if world.distributed:
            decision = [stop]
            dist.broadcast_object_list(decision, src=0)  # also keeps the ranks in step
            stop = bool(decision[0])
        if stop:
            break

    if main:
        if result.history and not (run_dir / "curves.png").exists():
            plot_curves(run_dir / "curves.png", result.history, title=f"MNIST, recipe {recipe.name}")
        save_model(run_dir / "model.pt", run.eval_model.state_dict())
    world.barrier()
    return result
