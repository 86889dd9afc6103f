"""Data-parallel training on torch.distributed: which process this is, the process group, and the
few collectives the training loop needs.

torchrun (or `rnnrepl train --nproc N`, which starts torchrun) sets WORLD_SIZE, RANK and
LOCAL_RANK. With one process every function here is the identity and the loop runs as it always
did. With several, each rank trains `--batch-size / world` of the corpus's `--batch-size`
contiguous streams: the same streams as one process, cut between the ranks, so a recipe means the
same training at any world size and DistributedDataParallel's averaged gradient is the gradient of
the whole batch. Every decision that ends or changes a step (the loss being finite, a stop signal,
the time budget) is taken on values all ranks agree on, so no rank waits for a step another skips.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from rnnrepl.errors import ResourceError, UsageError

# How long a collective waits for a rank that neither answers nor dies (a dead rank is noticed by
# torchrun at once and the others stopped): long enough for rank 0 to save a large model.
TIMEOUT = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        """The rank that writes files and shows progress."""
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.size > 1

    def rows(self, batch: int) -> slice:
        """This rank's streams of the `batch` the corpus is cut into."""
        per = batch // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


SINGLE = World()


def from_env(environ: Mapping[str, str] = os.environ) -> World:
    """The rank and world size torchrun gave this process, or one process."""
    try:
        size = int(environ.get("WORLD_SIZE", "1"))
        rank = int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise UsageError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)"
        ) from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise UsageError(f"RANK {rank} is not a rank of WORLD_SIZE {size}")
    return World(rank, size, local)


def check_batch(world: World, batch: int) -> None:
    if batch % world.size:
        raise UsageError(
            f"--batch-size {batch} does not divide between {world.size} processes",
            hint=f"give a multiple of {world.size} (it is the batch of all processes together)",
        )


def start(world: World, device: str) -> World:
    """Join the process group: gloo on CPU, nccl on CUDA (local rank i on GPU i)."""
    if not world.many:
        return replace(world, device=device)
    import torch.distributed as dist

    if device.startswith("cuda"):
        if world.local_rank >= torch.cuda.device_count():
            raise UsageError(
                f"{world.size} training processes, {torch.cuda.device_count()} GPUs here",
                hint="one process per GPU: lower --nproc (or --nproc-per-node), or --device cpu",
            )
        device, backend = f"cuda:{world.local_rank}", "nccl"
        torch.cuda.set_device(device)
    elif device == "cpu":
        backend = "gloo"
    else:
        raise UsageError(
            f"--device {device} cannot train in several processes", hint="use cpu or cuda"
        )
    try:
        dist.init_process_group(backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise ResourceError(
            f"cannot join the other training processes: {_first_line(exc)}",
            hint="start them with torchrun or rnnrepl train --nproc N",
        ) from None
    return replace(world, device=device)


def own_random_stream(world: World) -> None:
    """After the model is built alike on every rank: each rank other than 0 draws its own dropout
    masks (rank 0 draws what one process would)."""
    if world.rank:
        torch.manual_seed(torch.initial_seed() + 7919 * world.rank)


def stop(world: World) -> None:
    if world.many:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World) -> torch.nn.Module:
    """What the loop calls as `net(x, y, state) -> (loss, state)`: the model's loss, under
    DistributedDataParallel when there are several ranks."""
    net = _Loss(model)
    if not world.many:
        return net
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(world.device).index] if world.device.startswith("cuda") else None
    return DistributedDataParallel(
        net,
        device_ids=ids,
        # A clustered softmax computes only the clusters the targets fall in.
        find_unused_parameters=bool(getattr(model.cfg, "cutoffs", None)),
    )


class _Loss(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, y: Tensor, state):
        return self.model.loss(x, y, state)


def mean(world: World, value: Tensor) -> float:
    """The mean over the ranks of a scalar (each rank's loss: the loss of the whole batch)."""
    if not world.many:
        return value.item()
    import torch.distributed as dist

    t = value.detach().double().reshape(1).to(world.device)
    dist.all_reduce(t)
    return t.item() / world.size


def agree(world: World, stop: bool, elapsed: float) -> tuple[bool, float]:
    """Stop if any rank was told to; the slowest rank's clock for the time budget."""
    if not world.many:
        return stop, elapsed
    import torch.distributed as dist

    t = torch.tensor([float(stop), elapsed], dtype=torch.float64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0].item()), float(t[1].item())


def main_says(world: World, flag: bool) -> bool:
    """Rank 0's `flag` on every rank (what rank 0 sees on its disk decides for all)."""
    if not world.many:
        return flag
    import torch.distributed as dist

    t = torch.tensor([int(flag)], dtype=torch.int32, device=world.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def gather(world: World, tensor: Tensor) -> list[Tensor]:
    """Every rank's `tensor` (same shape on all), in rank order, on the CPU."""
    if not world.many:
        return [tensor.detach().cpu()]
    import torch.distributed as dist

    local = tensor.detach().to(world.device).contiguous()
    parts = [torch.empty_like(local) for _ in range(world.size)]
    dist.all_gather(parts, local)
    return [p.cpu() for p in parts]


def whole_state(world: World, model, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The carried state of the whole batch, every rank's rows in order, on the CPU."""
    parts = [gather(world, s) for s in state]  # per tensor of the state, per rank
    return model.join_states([tuple(p[r] for p in parts) for r in range(world.size)])


def my_rows(world: World, model, state: tuple[Tensor, ...], batch: int) -> tuple[Tensor, ...]:
    """This rank's rows of the whole batch's carried state."""
    if not world.many:
        return state
    rows = torch.arange(batch)[world.rows(batch)].to(state[0].device)
    return model.select_state(state, rows)


def same_everywhere(world: World, digest: str) -> bool:
    """Whether every rank computed the same hex digest (its data, tokenizer and model)."""
    if not world.many:
        return True
    mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.uint8)
    return all(torch.equal(mine, other) for other in gather(world, mine))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def lost_peers(world: World, exc: RuntimeError) -> Exception:
    """What to raise for a RuntimeError out of training: a rank that died or hung is one line
    (torchrun stops the others); anything else is itself."""
    from rnnrepl.errors import RnnreplError

    if not world.many or isinstance(exc, RnnreplError):
        return exc
    import torch.distributed as dist

    if not isinstance(exc, getattr(dist, "DistError", ())) and "gloo" not in str(exc).lower():
        return exc
    reason = re.sub(r"^\[[^\]]*\]\s*", "", _first_line(exc)).split(". ")[0]  # gloo's [file:line]
    return ResourceError(
        f"training process {world.rank} lost contact with the others ({reason})",
        hint="another process failed or was killed (see its line); --resume continues the run",
    )
