"""Train a ConvNet on MNIST, from the drive.

    python drive/colab/main.py                      # fast recipe: >= 99% after its first epoch
    python drive/colab/main.py --recipe fast-long   # >= 99.3% in 3 epochs
    python drive/colab/main.py --recipe reference   # the classic PyTorch example
    python drive/colab/main.py --run my-run         # rerun later: resumes where it stopped
    drivelab run --nproc-per-node 2 drive/colab/main.py   # data-parallel, one process per rank
    drivelab run --run exp --nnodes 2 --rdzv-endpoint HOST:PORT drive/colab/main.py   # the same on each of two machines

MNIST is downloaded into drive/dataset (skipped when already there); each run
writes checkpoints, metrics.jsonl and curves.png to drive/runs/<run>/.
Rerunning with the same --run resumes from the last complete checkpoint.
Under torchrun each rank trains on its share of every batch and rank 0 alone
prints and writes the run folder.
"""

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from drivelab.data import get_mnist, resolve_mirrors, staged_dataset_root
from drivelab.errors import DrivelabError
from drivelab.train import BatchProgress, CheckpointSkipped, EpochEnd, RunStarted, TrainConfig, check_run_name, recipe_names

DRIVE = Path(__file__).resolve().parent.parent  # drive/colab/main.py -> drive/


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="MNIST ConvNet, trained from the drive")
    p.add_argument("--recipe", default="fast", choices=recipe_names(), help="training recipe (default: fast)")
    p.add_argument("--epochs", type=int, default=None, help="epochs to train (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="training batch size (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="(peak) learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: PyTorch's choice)")
    p.add_argument(
        "--precision", default="auto", help="auto, fp32 or bf16 (default: auto: bf16 where the CPU or GPU computes it natively, else fp32)"
    )
    p.add_argument("--run", default=None, help="run name; an existing run of that name is resumed")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run has checkpoints")
    p.add_argument("--data-dir", type=Path, default=DRIVE / "dataset", help="dataset folder (default: drive/dataset)")
    p.add_argument("--runs-dir", type=Path, default=DRIVE / "runs", help="runs folder (default: drive/runs)")
    p.add_argument("--mirror", action="append", default=None, help="MNIST mirror URL (repeatable)")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images only (quick tests)")
    p.add_argument("--log-every", type=float, default=5.0, help="seconds between progress lines within an epoch (0: none)")
    return p.parse_args(argv)


def run_dir_for(args):
    # `drivelab run` hands its job a run folder; otherwise name one here.
    if os.environ.get("DRIVELAB_RUN_DIR") and args.run is None:
        return Path(os.environ["DRIVELAB_RUN_DIR"])
    name = args.run if args.run is not None else os.environ.get("DRIVELAB_RUN_NAME") or f"mnist-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
    return args.runs_dir / check_run_name(name)


def main(argv=None):
    args = parse_args(argv)
    # Every option and mirror is checked here, before anything is downloaded or created.
    config = TrainConfig(
        dataset_root=args.data_dir,
        run_dir=run_dir_for(args),
        recipe=args.recipe,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        precision=args.precision,
        limit_train=args.limit_train,
        resume=not args.no_resume,
    )
    mirrors = resolve_mirrors(args.mirror)

    from drivelab.train import join_world, train  # loads PyTorch; without it, an error naming `drivelab setup torch`

    world = join_world(config.device)  # under torchrun: this rank's place; alone: a world of one
    if world.local_rank == 0:  # one download per machine; the other ranks wait for it
        get_mnist(args.data_dir, mirrors=mirrors)
        staged_dataset_root(args.data_dir, "MNIST")
    world.barrier()
    config = replace(
        config,
        # On a cloud drive, read a verified copy on local disk, not the mount.
        dataset_root=staged_dataset_root(args.data_dir, "MNIST"),
        # One run name, even if the ranks' clocks differ; each machine reaches it through its own drive folder.
        run_dir=config.run_dir.parent / world.agree(config.run_dir.name),
    )
    last_report = [time.monotonic()]

    def report(event):
        if isinstance(event, CheckpointSkipped):
            print(f"warning: skipping checkpoint {event.path.name}: {event.reason}", flush=True)
        elif isinstance(event, RunStarted):
            resumed = f", resuming after epoch {event.start_epoch}" if event.start_epoch else ""
            print(
                f"Run {event.run_dir} | recipe {event.recipe} | device {event.device} | precision {event.precision} | {event.epochs} epochs{resumed}",
                flush=True,
            )
            if event.sent_to:
                ranks = ", ".join(map(str, event.sent_to))
                print(f"  {event.checkpoint.name} sent to rank(s) {ranks}: their view of the drive did not show it yet", flush=True)
        elif isinstance(event, BatchProgress) and args.log_every:
            if time.monotonic() - last_report[0] >= args.log_every:
                last_report[0] = time.monotonic()
                print(f"  epoch {event.epoch} [{event.step}/{event.steps} ({100 * event.step / event.steps:.0f}%)]", flush=True)
        elif isinstance(event, EpochEnd):
            last_report[0] = time.monotonic()
            m = event.metrics
            print(
                f"Epoch {m.epoch:2d}  train loss {m.train_loss:.4f}  test loss {m.test_loss:.4f}  "
                f"test accuracy {m.test_accuracy:.2f}%  {m.seconds:.1f}s",
                flush=True,
            )

    result = train(config, progress=report, world=world)
    world.close()
    if result.final_accuracy is not None:
        print(f"Test accuracy {result.final_accuracy:.2f}% (best {result.best_accuracy:.2f}%) | run folder {result.run_dir}")


if __name__ == "__main__":
    try:
        main()
    except DrivelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(exc.exit_code)  # 2 for a bad option or mirror (a usage error: `drivelab run` does not retry it), else 1
    except KeyboardInterrupt:
        print("interrupted; rerun with the same --run to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)
