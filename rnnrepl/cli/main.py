"""Command line: the only place options become config objects and errors become exit codes."""

from __future__ import annotations

import errno
import math
import os
import re
import signal
import sys
import traceback
from pathlib import Path

import click

from rnnrepl.cli.common import console, load, read_prompt_file
from rnnrepl.cli.models import complete_model
from rnnrepl.config import ARCHS, LEVELS, OPTIMIZERS
from rnnrepl.errors import RnnreplError, UsageError, is_out_of_memory, out_of_memory
from rnnrepl.ui.consoles import tolerate
from rnnrepl.ui.textsafe import safe_text

DEBUG = {"on": False}


def _console(stderr: bool = False):
    return console(stderr)


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m', '1.5h' -> seconds."""
    m = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or m is None or not any(m.groups()):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    h, mnt, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mnt * 60 + s
    if not 0 < seconds < math.inf:
        raise click.BadParameter("the duration must be positive and finite")
    return seconds


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        return value if isinstance(value, float) else parse_duration(str(value))


class ByteSize(click.ParamType):
    """'1000', '64K', '1MiB' or '1M' (2^20), '1MB' (10^6, as coreutils reads it), '2G' -> bytes."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", str(value), re.IGNORECASE)
        if m is None or float(m[1]) <= 0 or (m[3].lower().startswith("i") and not m[2]):
            self.fail(f"{value!r} is not a size like 500K, 64MB or 2GiB", param, ctx)
        power = " kmgt".index(m[2].lower() or " ")
        base = 1000 if m[3].lower() == "b" and m[2] else 1024
        return int(float(m[1]) * base**power)


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (nan passes every comparison)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


SEED = click.IntRange(-(2**63), 2**64 - 1)  # what torch's generators accept


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="rnnrepl")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train recurrent language models on your text; watch them predict as you type.

    With no command, opens the REPL on the bundled default model.
    """
    DEBUG["on"] = debug
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat, model="shakespeare-char")


# ---- loading helpers -------------------------------------------------------------------------
# ---- train -----------------------------------------------------------------------------------
@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    help="Model path: NAME (-> NAME.safetensors) or a directory (DIR/ -> DIR/DIR.safetensors). "
    "Default: the model home, named after the first input (see `rnnrepl list`).",
)
@click.option("--level", type=click.Choice(LEVELS), default="char", show_default=True)
@click.option(
    "--arch",
    type=click.Choice(ARCHS),
    help="Default: gru at char level, lstm at word level (the best measured per CPU-minute).",
)
@click.option("--layers", type=click.IntRange(1, 16))
@click.option("--hidden", type=click.IntRange(1, 16384))
@click.option("--embed", type=click.IntRange(1, 16384))
@click.option("--window", type=click.IntRange(1, 1024), help="Context tokens of the window model.")
@click.option("--dropout", type=Finite(0, 1, max_open=True))
@click.option("--tie/--no-tie", default=None, help="Share embedding and output weights.")
@click.option(
    "--softmax",
    type=click.Choice(["auto", "full", "adaptive"]),
    default="auto",
    show_default=True,
    help="Output layer; auto = frequency classes for vocabularies over 8,000 tokens "
    "(class-factored when tied, adaptive softmax when untied).",
)
@click.option("--seq-len", type=click.IntRange(1, 100000), help="BPTT span length in tokens.")
@click.option("--batch-size", type=click.IntRange(1, 100000))
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default="adam", show_default=True)
@click.option("--lr", type=Finite(0, 1e6, min_open=True))
@click.option("--clip", type=Finite(0), default=1.0, show_default=True)
@click.option("--epochs", type=Finite(0, min_open=True))
@click.option("--steps", type=click.IntRange(1))
@click.option(
    "--time", "time_limit", type=Duration(), help="Training time budget, e.g. 90s, 5m, 1h."
)
@click.option(
    "--val-fraction",
    type=Finite(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
)
@click.option("--val", "val_file", help="Validation file (instead of a fraction of the inputs).")
@click.option("--min-freq", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--max-vocab",
    type=click.IntRange(0),
    default=0,
    help="Word level: cap the vocabulary (0 = no cap).",
)
@click.option("--lowercase", is_flag=True)
@click.option(
    "--embeddings",
    type=click.Path(dir_okay=False),
    help="word2vec/GloVe text file to initialise word embeddings.",
)
@click.option("--eval-every", type=click.IntRange(1), help="Steps between validations.")
@click.option(
    "--eval-tokens",
    type=click.IntRange(0),
    help="Validation tokens scored per in-training pass (0 = the whole split; default: a "
    "thirty-second of the tokens trained between passes, at least 16,384).",
)
@click.option(
    "--patience",
    type=click.IntRange(0),
    default=0,
    help="Stop after N validations without improvement.",
)
@click.option("--seed", type=SEED, default=1337, show_default=True)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True
)
@click.option("--encoding", help="Text encoding of the inputs (default: UTF-8, or per BOM).")
@click.option(
    "--skip-bad", is_flag=True, help="Skip binary or undecodable input files, warning for each."
)
@click.option("--verbose", is_flag=True, help="List every input file read or skipped.")
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="bf16 autocast for speed; auto = bf16 where the CPU/GPU computes it natively.",
)
@click.option(
    "--half", is_flag=True, help="Store the model in fp16 (half the size; loads as fp32)."
)
@click.option(
    "--max-stdin",
    type=ByteSize(),
    default="1GiB",
    show_default=True,
    help="Refuse more than this from '-' (standard input), e.g. 4GiB.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run of the same -o.")
@click.option("--warm-start", is_flag=True, help="With --resume: allow different data.")
@click.option(
    "--force", is_flag=True, help="Overwrite an existing -o model (and its resume state)."
)
def train(**opts) -> None:
    """Train a language model on text FILES, directories, globs, or '-' (stdin)."""
    from rnnrepl.cli.train import run_train

    code = run_train(opts, _console(), _console(stderr=True), sys.argv)
    if code:
        sys.exit(code)


# ---- inspection and inference ----------------------------------------------------------------
ALLOW_UNK_HELP = (
    "Let the model sample its unknown token (<unk>; U+FFFD at char level), which it never "
    "does by default"
)
_int8_option = click.option(
    "--int8/--exact",
    default=True,
    show_default=True,
    help="Token-by-token steps with int8 recurrent matrices (about 2x faster, measured close) "
    "or exact fp32.",
)


@cli.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("prompt_arg", metavar="[PROMPT]", required=False)
@click.option("-p", "--prompt", default=None, help="The prompt (or give it as PROMPT).")
@click.option("--prompt-file", type=click.Path(dir_okay=False))
@click.option("-n", "--max-tokens", type=click.IntRange(0), default=200, show_default=True)
@click.option("--temperature", type=Finite(0), default=0.8, show_default=True)
@click.option("--top-k", type=click.IntRange(0), default=0)
@click.option("--top-p", type=Finite(0, 1, min_open=True), default=1.0)
@click.option("--greedy", is_flag=True, help="Always take the most likely token.")
@click.option("--seed", type=SEED)
@click.option("--stop", help="Stop once the generated text contains this string.")
@click.option("--allow-unk", is_flag=True, help=ALLOW_UNK_HELP)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="cpu", show_default=True
)
@_int8_option
def generate(
    model,
    prompt_arg,
    prompt,
    prompt_file,
    max_tokens,
    temperature,
    top_k,
    top_p,
    greedy,
    seed,
    stop,
    allow_unk,
    device,
    int8,
) -> None:
    """Stream a continuation of PROMPT (or -p/--prompt, --prompt-file) to stdout."""
    from rnnrepl.config import SampleConfig
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.ui.render import safe_text

    if sum(p is not None for p in (prompt_arg, prompt, prompt_file)) > 1:
        raise UsageError("give the prompt once: PROMPT, -p/--prompt or --prompt-file")
    text = read_prompt_file(prompt_file) if prompt_file else (prompt_arg or prompt or "")
    cfg = SampleConfig(
        temperature=0.0 if greedy else temperature,
        top_k=top_k,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=stop,
        allow_unk=allow_unk,
    )
    predictor = Predictor(load(model, device), int8=int8)
    out = sys.stdout
    out.write(safe_text(text))
    for step in predictor.stream(text, cfg):
        out.write(safe_text(step.text))
        out.flush()
    out.write("\n")


@cli.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("text")
@click.option("-k", type=click.IntRange(1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def predict(model, text, k, as_json) -> None:
    """Top-k next tokens after TEXT, with probabilities."""
    from rnnrepl.cli.oneshot import run_predict

    run_predict(model, text, k, as_json)


@cli.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False))
@click.option("-k", type=click.IntRange(1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def score(model, text, file, k, as_json) -> None:
    """Per token: p of the actual token, J_t = -log p, the top-k; then mean J, ppl, bpc."""
    from rnnrepl.cli.oneshot import run_score

    run_score(model, text, file, k, as_json)


@cli.command(name="eval")
@click.argument("model", shell_complete=complete_model)
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--encoding")
def eval_cmd(model, files, as_json, encoding) -> None:
    """Cross entropy, perplexity and bits per token (char) of FILES under MODEL."""
    from rnnrepl.cli.oneshot import run_eval

    run_eval(model, files, as_json, encoding)


@cli.command()
@click.argument("model", shell_complete=complete_model)
@click.option("--json", "as_json", is_flag=True)
def info(model, as_json) -> None:
    """Configuration, vocabulary, parameters and training summary of MODEL."""
    from rnnrepl.cli.oneshot import run_info

    run_info(model, as_json)


@cli.command()
@click.argument("model", default="shakespeare-char", shell_complete=complete_model)
@click.option("-k", "--k", "k", type=click.IntRange(1, 50), default=10, show_default=True,
              help="Rows in the live top-k panel.")  # fmt: skip
@click.option("--temperature", type=Finite(0), default=0.8, show_default=True)
@click.option("--top-k", type=click.IntRange(0), default=0, help="Sampling top-k (0 = off).")
@click.option("--top-p", type=Finite(0, 1, min_open=True), default=1.0)
@click.option("-n", "--max-tokens", type=click.IntRange(0), default=200, show_default=True)
@click.option("--seed", type=SEED)
@click.option("--stop", help="Stop generating once the text contains this string.")
@click.option("--allow-unk", is_flag=True, help=ALLOW_UNK_HELP + " (/set unk on|off)")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="cpu", show_default=True
)
@_int8_option
def chat(
    model, k, temperature, top_k, top_p, max_tokens, seed, stop, allow_unk, device, int8
) -> None:
    """Interactive REPL: live next-token probabilities as you type.

    On a pipe (stdin or stdout not a terminal) each input line is a prompt and only its
    continuation is written to stdout.
    """
    from rnnrepl.config import SampleConfig
    from rnnrepl.repl.app import run_repl

    sample = SampleConfig(
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=stop,
        allow_unk=allow_unk,
    )
    run_repl(model, sample=sample, k=k, device=device, int8=int8)


# ---- the model home --------------------------------------------------------------------------
@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json) -> None:
    """Models in the model home and the bundled ones: level, size, validation figure, date."""
    from rnnrepl.cli.models import run_list

    run_list(as_json, _console())


@cli.command()
@click.argument("names", nargs=-1, required=True, shell_complete=complete_model)
def rm(names) -> None:
    """Remove models (and their resume state) from the model home, by name."""
    from rnnrepl.cli.models import run_rm

    run_rm(names, _console())


# ---- corpora ---------------------------------------------------------------------------------
@cli.group(name="corpus")
def corpus_group() -> None:
    """Well-known public corpora: list them, fetch one (sha256-verified)."""


_catalog_option = click.option(
    "--catalog", type=click.Path(dir_okay=False), help="Use this catalog JSON instead of rnnrepl's."
)


@corpus_group.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@_catalog_option
def corpus_list(as_json, catalog) -> None:
    """Name, download size, licence and description of each known corpus."""
    from rnnrepl.cli.corpus import run_list

    run_list(as_json, catalog, _console())


@corpus_group.command(name="fetch")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Default: data/NAME.")
@click.option("--mirror", metavar="URL", help="Fetch each file from URL/FILENAME instead.")
@_catalog_option
def corpus_fetch(name, directory, mirror, catalog) -> None:
    """Download corpus NAME, verify its sha256, unpack it, print the train command to run."""
    from rnnrepl.cli.corpus import run_fetch

    run_fetch(name, directory, mirror, catalog, _console(), _console(stderr=True))


# ---- entry point -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    """Run the CLI with the exit-code contract of RELIABILITY.md."""
    tolerate(sys.stdout)  # any console encoding: look-alikes or "?", never UnicodeEncodeError
    tolerate(sys.stderr, escapes=True)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
    DEBUG["on"] = False  # until this command line's --debug is read (a usage error comes first)
    try:
        cli.main(args=argv, prog_name="rnnrepl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help is the answer
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _fail(_click_message(exc), exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except RnnreplError as exc:
        _fail(str(exc), exc.exit_code)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.ENOMEM):
            _fail(f"{exc.strerror} ({exc.filename})", 5)
        _internal(exc)
    except Exception as exc:  # a bug: one line unless --debug
        if is_out_of_memory(exc):  # wherever it happens: exit 5 with the size and a fix
            _fail(str(out_of_memory(exc, *_oom_advice(argv))), 5)
        _internal(exc)


def _click_message(exc: click.ClickException) -> str:
    """click's error as our one line; a usage error points at the command's --help."""
    message = exc.format_message().replace("\n", " ")
    if isinstance(exc, click.UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "rnnrepl"
        message += f" — run '{command} --help'"
    return message


def _oom_advice(argv: list[str] | None) -> tuple[str, str]:
    """(what was being done, how to fix it) for the command on the command line."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    if words[:1] == ["train"]:
        return "while training", "lower --batch-size, --seq-len or --hidden (words: --max-vocab)"
    return "loading or running the model", "free memory, raise ulimit -v, or use a smaller model"


def _fail(message: str, code: int) -> None:
    if DEBUG["on"]:
        traceback.print_exc()
    sys.stderr.write(f"rnnrepl: error: {safe_text(message, one_line=True)}\n")
    sys.exit(code)


def _internal(exc: BaseException) -> None:
    if DEBUG["on"]:
        traceback.print_exc()
    first = safe_text((str(exc).splitlines() or [""])[0], one_line=True)
    sys.stderr.write(
        f"rnnrepl: error: internal error: {type(exc).__name__}: {first} — re-run with --debug for a traceback\n"
    )
    sys.exit(1)


def is_tty() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


__all__ = ["cli", "main", "parse_duration", "Path"]
