"""Command line: the only place options become config objects and errors become exit codes.

The root group holds the exit-code contract of RELIABILITY.md in its ``main``, so click's
CliRunner sees exactly what a user's process does; each command group lives in its own module.
"""

from __future__ import annotations

import errno
import signal
import sys
import traceback

import click

from rnnrepl.cli.chat import DEFAULT_MODEL, chat, generate
from rnnrepl.cli.corpus import corpus_group
from rnnrepl.cli.embed import embed, similar
from rnnrepl.cli.explain import explain
from rnnrepl.cli.models import list_cmd, rm
from rnnrepl.cli.neurons import neurons
from rnnrepl.cli.oneshot import eval_cmd, info, predict, score
from rnnrepl.cli.train_options import train
from rnnrepl.errors import RnnreplError, is_out_of_memory, out_of_memory
from rnnrepl.ui.consoles import tolerate
from rnnrepl.ui.textsafe import safe_text

DEBUG = {"on": False}


class RnnreplGroup(click.Group):
    """click's group, whose ``main`` turns every failure into one line and an exit code."""

    def main(self, args=None, prog_name=None, **extra):  # noqa: D102 (click's signature)
        DEBUG["on"] = False  # until this command line's --debug is read (a usage error comes first)
        try:
            return super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help is the answer
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _fail(_click_message(exc), exc.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            sys.exit(130)
        except RnnreplError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.ENOMEM):
                _fail(f"{exc.strerror} ({exc.filename})", 5)
            _internal(exc)
        except Exception as exc:  # a bug: one line unless --debug
            if is_out_of_memory(exc):  # wherever it happens: exit 5 with the size and a fix
                _fail(str(out_of_memory(exc, *_oom_advice(args))), 5)
            _internal(exc)


@click.group(
    name="rnnrepl",  # what CliRunner calls it too
    cls=RnnreplGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="rnnrepl")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train recurrent language models on your text; watch them predict as you type.

    With no command, opens the REPL on the bundled default model.
    """
    DEBUG["on"] = debug
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat, model=DEFAULT_MODEL)


_COMMANDS = (train, generate, predict, score, eval_cmd, info, chat, list_cmd, rm, corpus_group)
_NOTES = (explain, neurons, embed, similar)  # the insides and contextual embeddings (#18)
for _command in (*_COMMANDS, *_NOTES):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """The console script: a console that never fails to encode, a quiet `| head`, then the CLI."""
    tolerate(sys.stdout)  # any console encoding: look-alikes or "?", never UnicodeEncodeError
    tolerate(sys.stderr, escapes=True)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
    cli.main(args=argv, prog_name="rnnrepl")


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


__all__ = ["cli", "main"]
