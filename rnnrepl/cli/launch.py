"""`rnnrepl train --nproc N`: the same training started as N processes by torch.distributed.run
(torchrun's own launcher, run in this process), on this machine only, over 127.0.0.1.

Each process runs the very same command line; seeing WORLD_SIZE, it trains as one rank and its
`--nproc` is ignored, so the resume command rank 0 prints still carries it. The launcher's exit
code is the command's: a rank's own (the first that failed), 130/143 after Ctrl-C/SIGTERM (the
ranks save a resumable checkpoint first), and a one-line error when the launch itself fails.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

from rnnrepl.errors import ResourceError

# How long the launcher gives the ranks to save after Ctrl-C or SIGTERM before it kills them.
SHUTDOWN_SECONDS = 120


def launch(nproc: int, argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_SECONDS))
    loopback = _loopback_interface()
    if loopback:  # gloo binds the interface its host name resolves to unless told otherwise
        os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback)
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # its lines are not ours
    args = [
        f"--nproc-per-node={nproc}",
        "--nnodes=1",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=127.0.0.1:0",
        "--local-addr=127.0.0.1",
        "--max-restarts=0",
        "--module",
        "rnnrepl",
    ]
    try:
        # torchrun's own parsing and launch; the command's arguments are passed on untouched
        # (torchrun's parser would take `--nproc` for an abbreviation of its own option).
        config, cmd, cmd_args = config_from_args(parse_args(args))
        elastic_launch(config, cmd)(*cmd_args, *argv[1:])
    except SignalException as exc:
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        return _first_failure(exc)
    except (RuntimeError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ResourceError(f"cannot start {nproc} training processes: {first}") from None
    return 0


def _first_failure(exc) -> int:
    """The exit code of the rank that failed first (it printed its own one-line error)."""
    failures = sorted(exc.failures.values(), key=lambda f: f.timestamp)
    code = failures[0].exitcode if failures else 1
    if code < 0:  # killed by a signal: say so, as a shell would
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        sys.stderr.write(
            f"rnnrepl: error: training process {failures[0].local_rank} killed by {name}\n"
        )
        return 128 - code
    return code or 1


def _loopback_interface() -> str | None:
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)
