"""`rnnrepl train`: its options (the click command); cli/train.py runs it."""

from __future__ import annotations

import sys

import click

from rnnrepl.cli.common import console
from rnnrepl.cli.params import DEVICES, SEED, ByteSize, Duration, Finite
from rnnrepl.config import ARCHS, LEVELS, OPTIMIZERS


def _options(*options):
    """Several click options as one decorator, in the order given (as if stacked in it)."""

    def apply(command):
        for option in reversed(options):
            command = option(command)
        return command

    return apply


# the model: where it goes, its architecture and size
MODEL_OPTIONS = (
    click.option(
        "-o",
        "--output",
        help="Model path: NAME (-> NAME.safetensors) or a directory (DIR/ -> DIR/DIR.safetensors). "
        "Default: the model home, named after the first input (see `rnnrepl list`).",
    ),
    click.option("--level", type=click.Choice(LEVELS), default="char", show_default=True),
    click.option(
        "--arch",
        type=click.Choice(ARCHS),
        help="Default: gru at char and bpe level, lstm at word level (the best measured per CPU-minute).",
    ),
    click.option("--layers", type=click.IntRange(1, 16)),
    click.option("--hidden", type=click.IntRange(1, 16384)),
    click.option(
        "--embed",
        type=click.IntRange(0, 16384),
        help="Embedding width; 0 = one-hot inputs (as --one-hot).",
    ),
    click.option(
        "--one-hot",
        is_flag=True,
        help="Feed each token as its one-hot vector, with no learned embedding (the notes' toy "
        "RNN; vocabularies up to 1,024 tokens).",
    ),
    click.option(
        "--reverse",
        is_flag=True,
        help="Train a backward character model: each file's text read right to left (for "
        "`rnnrepl embed`; the validation split is then the start of each text).",
    ),
    click.option(
        "--window", type=click.IntRange(1, 1024), help="Context tokens of the window model."
    ),
    click.option("--dropout", type=Finite(0, 1, max_open=True)),
    click.option("--tie/--no-tie", default=None, help="Share embedding and output weights."),
    click.option(
        "--softmax",
        type=click.Choice(["auto", "full", "adaptive"]),
        default="auto",
        show_default=True,
        help="Output layer; auto = frequency classes for vocabularies over 8,000 tokens "
        "(class-factored when tied, adaptive softmax when untied).",
    ),
)
# the optimisation: spans, batches, optimiser, how long, the validation split
TRAINING_OPTIONS = (
    click.option("--seq-len", type=click.IntRange(1, 100000), help="BPTT span length in tokens."),
    click.option("--batch-size", type=click.IntRange(1, 100000)),
    click.option(
        "--optimizer",
        type=click.Choice(OPTIMIZERS),
        help="Default: adam, unless the size rule for the corpus and budget chose adamw.",
    ),
    click.option("--lr", type=Finite(0, 1e6, min_open=True)),
    click.option(
        "--weight-decay",
        type=Finite(0, 10),
        help="Decoupled with adamw, an L2 penalty with adam and sgd (default: 0.01 with adamw, "
        "else 0, unless the size rule chose one).",
    ),
    click.option("--clip", type=Finite(0), default=1.0, show_default=True),
    click.option(
        "--warmup",
        type=click.IntRange(0, 10**9),
        help="Steps over which the learning rate rises linearly to --lr (default 50).",
    ),
    click.option(
        "--min-lr-ratio",
        type=Finite(0, 1),
        help="Where the cosine decay of the learning rate ends, as a fraction of --lr "
        "(default: 0 for the char GRU from two minutes on a corpus of 200,000 characters or more, "
        "else 0.1).",
    ),
    click.option("--epochs", type=Finite(0, min_open=True)),
    click.option("--steps", type=click.IntRange(1)),
    click.option(
        "--time", "time_limit", type=Duration(), help="Training time budget, e.g. 90s, 5m, 1h."
    ),
    click.option(
        "--val-fraction",
        type=Finite(0, 1, min_open=True, max_open=True),
        default=0.1,
        show_default=True,
    ),
    click.option(
        "--val", "val_file", help="Validation file (instead of a fraction of the inputs)."
    ),
)
# vocabulary, embeddings, validation passes, seed, device, reading the input, writing the model
RUN_OPTIONS = (
    click.option("--min-freq", type=click.IntRange(1), default=1, show_default=True),
    click.option(
        "--max-vocab",
        type=click.IntRange(0),
        default=0,
        help="Word level: cap the vocabulary (0 = no cap).",
    ),
    click.option(
        "--vocab-size",
        type=click.IntRange(257, 65535),
        help="BPE level: tokens to learn, <unk> and the 256 bytes included. "
        "Default: characters / 200, at least 512 and at most 8000.",
    ),
    click.option("--lowercase", is_flag=True),
    click.option(
        "--embeddings",
        type=click.Path(dir_okay=False),
        help="word2vec/GloVe text file to initialise word embeddings.",
    ),
    click.option("--eval-every", type=click.IntRange(1), help="Steps between validations."),
    click.option(
        "--eval-seconds",
        type=Finite(0, min_open=True),
        help="Also validate (and save a better model) every S seconds of training, the first "
        "times sooner (0.5 s, 1 s, 2 s, ...): for watching a model learn (chat --train).",
    ),
    click.option(
        "--eval-tokens",
        type=click.IntRange(0),
        help="Validation tokens scored per in-training pass (0 = the whole split; default: a "
        "thirty-second of the tokens trained between passes, at least 16,384).",
    ),
    click.option(
        "--patience",
        type=click.IntRange(0),
        default=0,
        help="Stop after N validations without improvement.",
    ),
    click.option("--seed", type=SEED, default=1337, show_default=True),
    click.option("--device", type=DEVICES, default="auto", show_default=True),
    click.option(
        "--nproc",
        type=click.IntRange(1),
        default=1,
        show_default=True,
        help="Train as N processes on this machine, data-parallel (torchrun; gloo on CPU, "
        "one GPU each with CUDA); --batch-size is their total.",
    ),
    click.option("--encoding", help="Text encoding of the inputs (default: UTF-8, or per BOM)."),
    click.option(
        "--skip-bad", is_flag=True, help="Skip binary or undecodable input files, warning for each."
    ),
    click.option("--verbose", is_flag=True, help="List every input file read or skipped."),
    click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16"]),
        default="auto",
        show_default=True,
        help="bf16 autocast for speed; auto = bf16 where the CPU/GPU computes it natively.",
    ),
    click.option(
        "--half", is_flag=True, help="Store the model in fp16 (half the size; loads as fp32)."
    ),
    click.option(
        "--max-stdin",
        type=ByteSize(),
        default="1GiB",
        show_default=True,
        help="Refuse more than this from '-' (standard input), e.g. 4GiB.",
    ),
    click.option(
        "--log",
        type=click.Path(dir_okay=False),
        help="Append one JSON line per event (steps, validations, samples, end) to FILE.jsonl.",
    ),
    click.option("--resume", is_flag=True, help="Continue an interrupted run of the same -o."),
    click.option("--warm-start", is_flag=True, help="With --resume: allow different data."),
    click.option(
        "--force", is_flag=True, help="Overwrite an existing -o model (and its resume state)."
    ),
)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@_options(*MODEL_OPTIONS)
@_options(*TRAINING_OPTIONS)
@_options(*RUN_OPTIONS)
def train(**opts) -> None:
    """Train a language model on text FILES, directories, globs, or '-' (stdin)."""
    from rnnrepl.cli.train import run_train

    code = run_train(opts, console(), console(stderr=True), sys.argv)
    if code:
        sys.exit(code)
