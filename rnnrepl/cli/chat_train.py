"""`rnnrepl chat --train FILE...`: the options that start a live training with the REPL.

chat takes the train options people change most (-o, --level, --arch, --time) as its own;
every other one of `rnnrepl train` goes in --train-args as one string. They become the
arguments of `rnnrepl train`, which runs in a child process (``repl/live.py``).
"""

from __future__ import annotations

import shlex

import click
from click.core import ParameterSource

from rnnrepl.cli.params import Duration
from rnnrepl.config import ARCHS, LEVELS
from rnnrepl.errors import UsageError

OPTIONS = (
    click.option(
        "--train",
        "train_files",
        multiple=True,
        metavar="FILE",
        help="Train a new model on FILE (a file, directory or glob; repeat for more) in the "
        "background and watch it learn: the panel follows every checkpoint.",
    ),
    click.option("-o", "--output", help="With --train: the model's path or name (as train -o)."),
    click.option("--level", type=click.Choice(LEVELS), help="With --train: the token level."),
    click.option("--arch", type=click.Choice(ARCHS), help="With --train: the architecture."),
    click.option("--time", "time_limit", type=Duration(), help="With --train: time budget."),
    click.option(
        "--train-args",
        help='With --train: more `rnnrepl train` options, as one string: "--hidden 256 --resume".',
    ),
)
TRAIN_ONLY = ("output", "level", "arch", "time_limit", "train_args")


def live_training_options(command):
    for option in reversed(OPTIONS):
        command = option(command)
    return command


def train_arguments(ctx: click.Context, opts: dict) -> list[str] | None:
    """The `train` arguments of --train and the options that go with it (removed from `opts`);
    None without --train."""
    files = opts.pop("train_files")
    given = {name: opts.pop(name) for name in TRAIN_ONLY}
    if not files:
        used = [f"--{n.replace('_', '-')}" for n, v in given.items() if v is not None]
        if used:
            raise UsageError(f"{used[0]} goes with --train FILE", hint="add --train FILE")
        return None
    if ctx.get_parameter_source("model") is not ParameterSource.DEFAULT:
        raise UsageError(
            "give a MODEL or --train FILE, not both", hint="--train makes a new model to chat with"
        )
    args = list(files)
    for flag, name in (("-o", "output"), ("--level", "level"), ("--arch", "arch")):
        if given[name] is not None:
            args += [flag, given[name]]
    if given["time_limit"] is not None:
        args += ["--time", f"{given['time_limit']:g}s"]
    try:
        return args + shlex.split(given["train_args"] or "")
    except ValueError as exc:
        raise UsageError(f"--train-args: {exc}", hint="quote it as a shell would") from None
