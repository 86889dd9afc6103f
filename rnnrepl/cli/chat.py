"""`rnnrepl chat` (the REPL) and `rnnrepl generate` (a continuation to stdout): the sampling commands."""

from __future__ import annotations

import sys

import click

from rnnrepl.cli.chat_train import live_training_options, train_arguments
from rnnrepl.cli.common import read_prompt_file
from rnnrepl.cli.models import complete_model
from rnnrepl.cli.params import DEVICES, SEED, Finite, cache_option
from rnnrepl.errors import UsageError

ALLOW_UNK_HELP = (
    "Let the model sample its unknown token (<unk>; U+FFFD at char level), which it never "
    "does by default"
)
int8_option = click.option(
    "--int8/--exact",
    default=True,
    show_default=True,
    help="Token-by-token steps with int8 recurrent matrices (about 2x faster, measured close) "
    "or exact fp32.",
)


@click.command()
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
@click.option("--device", type=DEVICES, default="cpu", show_default=True)
@int8_option
def generate(
    model, prompt_arg, prompt, prompt_file, greedy, temperature, device, int8, **sampling
) -> None:
    """Stream a continuation of PROMPT (or -p/--prompt, --prompt-file) to stdout."""
    from rnnrepl.config import SampleConfig
    from rnnrepl.infer.loading import load_for_inference
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.ui.render import safe_text

    if sum(p is not None for p in (prompt_arg, prompt, prompt_file)) > 1:
        raise UsageError("give the prompt once: PROMPT, -p/--prompt or --prompt-file")
    text = read_prompt_file(prompt_file) if prompt_file else (prompt_arg or prompt or "")
    cfg = SampleConfig(temperature=0.0 if greedy else temperature, **sampling)
    predictor = Predictor(load_for_inference(model, device), int8=int8)
    out = sys.stdout
    out.write(safe_text(text))
    for step in predictor.stream(text, cfg):
        out.write(safe_text(step.text))
        out.flush()
    out.write("\n")


# The bundled model `rnnrepl` and `rnnrepl chat` open: it saves the most keystrokes averaged over
# the two held-out texts of README "Bundled models" (35.1% against 29.4% for shakespeare-char).
DEFAULT_MODEL = "wikitext-word"


@click.command()
@click.argument("model", default=DEFAULT_MODEL, shell_complete=complete_model)
@click.argument("model_b", metavar="[MODEL_B]", required=False, shell_complete=complete_model)
@click.option("-k", "--k", "k", type=click.IntRange(1, 50), default=10, show_default=True,
              help="Rows in the live top-k panel.")  # fmt: skip
@click.option("--temperature", type=Finite(0), default=0.8, show_default=True)
@click.option("--top-k", type=click.IntRange(0), default=0, help="Sampling top-k (0 = off).")
@click.option("--top-p", type=Finite(0, 1, min_open=True), default=1.0)
@click.option("-n", "--max-tokens", type=click.IntRange(0), default=200, show_default=True)
@click.option("--seed", type=SEED)
@click.option("--stop", help="Stop generating once the text contains this string.")
@click.option("--allow-unk", is_flag=True, help=ALLOW_UNK_HELP + " (/set unk on|off)")
@click.option("--device", type=DEVICES, default="cpu", show_default=True)
@int8_option
@cache_option
@live_training_options
@click.pass_context
def chat(ctx, model, model_b, k, device, int8, cache, **sampling) -> None:
    """Interactive REPL: live next-token probabilities as you type.

    With MODEL_B, its panel beside MODEL's for the same text, each with the probability it
    gave what was typed; MODEL writes (Enter, ghost text, words), /flip exchanges them.

    On a pipe (stdin or stdout not a terminal) each input line is a prompt and only its
    continuation is written to stdout (one model only).

    With --train FILE: train a new model on FILE in the background and watch it learn.
    """
    from rnnrepl.config import SampleConfig
    from rnnrepl.repl.app import run_repl

    train = train_arguments(ctx, sampling)
    sample = SampleConfig(**sampling)
    code = run_repl(
        model, sample=sample, k=k, device=device, int8=int8, cache=cache, second=model_b,
        train=train,
    )  # fmt: skip
    if code:
        sys.exit(code)
