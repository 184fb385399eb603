"""torchrun for a group of machines (c10d rendezvous), saying what the rendezvous did.

``python -m drivelab.jobs._torchrun TORCHRUN-ARGS`` is ``python -m
torch.distributed.run TORCHRUN-ARGS`` with the rendezvous watched, because
torchrun itself says nothing about it until it fails with a bare traceback:

- each time the group forms (its first round, and again after torchrun
  restarted it for a failure inside it) one line is printed, which the
  supervisor records in this node's status: this node's rank, the number of
  nodes, the round, every node's name;
- the nodes' names are exchanged through the rendezvous' store, because each
  node's supervisor writes ``status.<name>.json`` and ``log.<name>`` into the
  one run folder on the shared drive: two machines of the same name would
  write over each other's, so that group is refused;
- a group that does not form within the rendezvous timeout (``join_timeout``)
  ends with one line naming the endpoint and how many of how many nodes
  joined, and exit code :data:`GROUP_NOT_FORMED_EXIT_CODE`: the supervisor does
  not restart it, since waiting again would not bring the missing machines;
- a rendezvous endpoint that cannot be reached is said so (exit code 1, which
  the supervisor restarts: the machine hosting it may be starting up);
- workers that all failed with exit code 2 (their command line is wrong) end
  it with exit code 2, which the supervisor does not restart either;
- each round's workers get a store of their own (``TORCH_DISABLE_SHARE_RDZV_TCP_STORE``),
  which is what makes a restarted group start reliably.

Importing this module does not import PyTorch: the supervisor uses
:func:`parse_group_line` and the exit code.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import timedelta
from typing import Any

from drivelab.jobs._spec import NODE_NAME_VARIABLE

__all__ = ["GROUP_NOT_FORMED_EXIT_CODE", "parse_group_line", "parse_not_formed_line"]

GROUP_NOT_FORMED_EXIT_CODE = 3
"""The group did not form: some machines never joined the rendezvous in time (or two share a name)."""
_FORMED = re.compile(r"^\[drivelab\] group formed \(round (\d+)\): node (\d+) of (\d+)(?:; nodes: (.*))?$")
_NOT_FORMED = re.compile(r"^\[drivelab\] group not formed: (.*)$")
_NAME_WAIT = timedelta(seconds=30)
"""How long a node waits for the others' names once the group formed (they are sent right away)."""


def parse_group_line(line: str) -> dict[str, Any] | None:
    """``{"round", "rank", "size", "nodes"}`` from the line printed when the group forms; ``None`` for any other line."""
    match = _FORMED.match(line)
    if not match:
        return None
    nodes = [n.strip() for n in match.group(4).split(",")] if match.group(4) else None
    return {"round": int(match.group(1)), "rank": int(match.group(2)), "size": int(match.group(3)), "nodes": nodes}


def parse_not_formed_line(line: str) -> str | None:
    """What was missing, from the line printed when the group did not form; ``None`` for any other line."""
    match = _NOT_FORMED.match(line)
    return match.group(1) if match else None


class _NotFormed(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def _say(text: str) -> None:
    print(f"[drivelab] {text}", flush=True)


def _joined(handler: Any) -> int | None:
    """Nodes in the rendezvous at its deadline, this one included; ``None`` where the handler does not tell.

    This node has already withdrawn from the round when the timeout is raised,
    so it is counted apart from those still waiting.
    """
    try:
        state = handler._state_holder.state
        me = handler._this_node
        others = (set(state.participants) | set(state.wait_list)) - {me}
    except Exception:  # another handler, another torch: the message says less, nothing breaks
        return None
    return 1 + len(others)


def _exchange_names(store: Any, rank: int, size: int, name: str) -> list[str] | None:
    """Every node's name, by rank; ``None`` if some node did not send one in time (not started by drivelab)."""
    store.set(f"drivelab.node.{rank}", name)
    keys = [f"drivelab.node.{r}" for r in range(size)]
    try:
        store.wait(keys, _NAME_WAIT)
        return [store.get(key).decode("utf-8", "replace") for key in keys]
    except Exception:
        return None


def _watch(handler: Any, params: Any) -> Any:
    """``handler`` with its ``next_rendezvous`` reporting each round, and a timeout turned into :class:`_NotFormed`."""
    from torch.distributed.elastic.rendezvous import RendezvousTimeoutError

    inner = handler.next_rendezvous
    rounds = [0]
    name = os.environ.get(NODE_NAME_VARIABLE, "")
    where = f"the rendezvous {params.run_id!r} at {params.endpoint}"
    wanted = str(params.min_nodes) if params.min_nodes == params.max_nodes else f"{params.min_nodes} to {params.max_nodes}"
    timeout = params.get_as_int("join_timeout", 600)

    def next_rendezvous() -> Any:
        try:
            info = inner()
        except RendezvousTimeoutError:
            joined = _joined(handler)
            count = f"{joined} of {wanted} nodes" if joined is not None else f"fewer than {params.min_nodes} nodes"
            raise _NotFormed(
                f"{count} joined {where} within {timeout} s" + (" (the group had formed before: a machine left and did not come back)" if rounds[0] else ""),
                f"start `drivelab run` on every machine with the same --run, --nnodes and --rdzv-endpoint ({params.endpoint}), or raise --rdzv-timeout",
            ) from None
        store, rank, size = (info.store, info.rank, info.world_size) if hasattr(info, "rank") else info
        nodes = _exchange_names(store, rank, size, name) if name else None
        if nodes and len(set(nodes)) < len(nodes):
            twice = sorted({n for n in nodes if nodes.count(n) > 1})
            raise _NotFormed(
                f"two machines in {where} are both named {', '.join(twice)}",
                f"each machine writes status.<name>.json and log.<name> in the shared run folder: set {NODE_NAME_VARIABLE} to a different name on each",
            )
        listed = f"; nodes: {', '.join(nodes)}" if nodes else ""
        _say(f"group formed (round {rounds[0]}): node {rank} of {size}{listed}")
        rounds[0] += 1
        return info

    handler.next_rendezvous = next_rendezvous
    return handler


def main(argv: list[str]) -> int:
    import torch.distributed.elastic.rendezvous.registry as registry
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous import RendezvousConnectionError

    # torch lets the workers share the rendezvous' store by default, one store for every round: after a restart
    # the new workers may read the dead ones' addresses from it and wait for them forever. A store of each
    # round's own (on rank 0's machine, at a free port) cannot hold another round's keys.
    os.environ.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    create = registry.get_rendezvous_handler
    registry.get_rendezvous_handler = lambda params: _watch(create(params), params)
    args = torchrun.parse_args(argv)
    try:
        torchrun.run(args)
    except _NotFormed as exc:
        _say(f"group not formed: {exc}")
        _say(f"hint: {exc.hint}")
        return GROUP_NOT_FORMED_EXIT_CODE
    except RendezvousConnectionError as exc:
        cause = exc.__cause__ or exc
        _say(f"error: cannot reach the rendezvous at {args.rdzv_endpoint}: {cause}")
        _say("hint: the machine of --rdzv-endpoint hosts it: start `drivelab run` there, and check that this machine can reach that port")
        return 1
    except ChildFailedError as exc:
        codes = {failure.exitcode for failure in exc.failures.values()}
        print(exc.format_msg(), file=sys.stderr, flush=True)
        return 2 if codes == {2} else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
