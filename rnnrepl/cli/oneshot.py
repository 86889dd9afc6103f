"""Bodies of the one-shot inference commands: predict, score, eval, info."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from rich.text import Text

from rnnrepl.cli.common import console as _console
from rnnrepl.cli.common import read_prompt_file, token_progress
from rnnrepl.cli.models import complete_model
from rnnrepl.cli.params import cache_option
from rnnrepl.errors import InputDataError, UsageError
from rnnrepl.infer.loading import load_for_inference
from rnnrepl.text.reverse import reverse_text
from rnnrepl.ui.textsafe import safe_json, safe_text
from rnnrepl.units import bits, finite_or_none, perplexity

if TYPE_CHECKING:  # the module is imported lazily: it brings torch
    from rnnrepl.infer.scoring import ScoreSummary


def run_predict(model, text, k, as_json, words=False, n=None, cache=True) -> None:
    """Top-k next tokens after TEXT, with probabilities (see ``Predictor.predict``); with
    `words`, the n most likely whole words instead (see ``Predictor.words``)."""
    from rnnrepl.infer.predictor import Predictor

    if n is not None and not words:
        raise UsageError("-n is the number of --words suggestions — add --words, or use -k")
    predictor = Predictor(load_for_inference(model))
    if words:
        _print_words(text, predictor.words(text, 3 if n is None else n, cache=cache), as_json)
        return
    pred = predictor.predict(text)
    completions, following = (
        None if probs is None else predictor.top_of(probs, k)
        for probs in (pred.completions, pred.next)
    )
    if as_json:
        click.echo(safe_json(_predict_json(text, pred, completions, following)))
        return
    _print_predict(pred, completions, following)


def _predict_json(text: str, pred, completions, following) -> dict:
    """`top` (kept from before: the first list) plus both lists under their own names."""
    pairs = lambda items: [{"token": t, "prob": p} for t, p in items or []]  # noqa: E731
    return {
        "text": text,
        "partial": pred.partial,
        "top": pairs(completions if completions is not None else following),
        "completions": pairs(completions),
        "next": None if following is None else pairs(following),
        "next_after": pred.partial if pred.partial else None,
        "unk_prob": pred.unk,
    }


def _print_predict(pred, completions, following) -> None:
    """Each list under a line that says what it is."""
    from rich.text import Text

    from rnnrepl.ui.render import topk_bars, visible

    console = _console()
    word = f"'{visible(pred.partial)}'"
    if pred.partial:
        head = f"completions of {word}" if completions else f"no word begins with {word}"
        console.print(Text(head))
        if completions:
            console.print(topk_bars(completions))
    if following is not None:
        head = f"next word after {word}" if pred.partial else "next token"
        console.print(Text(head + ("" if completions or not pred.partial else " (read as <unk>)")))
        console.print(topk_bars(following))
        if pred.unk >= 0.0005:
            console.print(Text(f"(<unk> {100 * pred.unk:.1f}% left out; the rest renormalised)"))


def _print_words(text: str, words: list[tuple[str, float]], as_json: bool) -> None:
    """The whole-word completions, best first: a JSON list, or bars under a line that says
    which word they complete."""
    from rnnrepl.infer.words import typed_part
    from rnnrepl.ui.render import topk_bars, visible

    if as_json:
        click.echo(safe_json([{"word": w, "prob": p} for w, p in words]))
        return
    typed = typed_part(text)
    head = f"words beginning with '{visible(typed)}'" if typed else "next words"
    console = _console()
    console.print(Text(head if words else f"no whole word found ({head})"))
    if words:
        console.print(topk_bars(words))


def run_score(model, text, file, k, as_json, color=None) -> None:
    """Per token: p of the actual token, J_t = -log p, the top-k; then mean J, ppl, bpc.
    With `color` ("rank" or "prob"): the text coloured by surprisal bucket instead."""
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.ui.render import score_summary_line, score_table

    if (text is None) == (file is None):
        raise UsageError("give TEXT or -f FILE (exactly one)")
    if color and as_json:
        raise UsageError("--color is for the terminal — --json already gives each token's rank")
    loaded = load_for_inference(model, backward=True)
    text = read_prompt_file(file) if file else text
    text = reverse_text(text) if loaded.direction == "backward" else text  # as it was trained
    rows, summary = Predictor(loaded).score(text, k)
    if as_json:
        click.echo(
            safe_json(
                {
                    "steps": [
                        {
                            "token": r.token,
                            "prob": r.prob,
                            "loss": r.loss,
                            "rank": r.rank,
                            "top": [[t, p] for t, p in r.topk],
                        }
                        for r in rows
                    ],
                    **_metrics(summary, loaded.tokenizer.level),
                }
            )
        )
        return
    console = _console()
    if color:
        from rnnrepl.cli.score_colors import print_colored

        print_colored(console, loaded.tokenizer, text, rows, color)
    else:
        console.print(score_table(rows, k))
    console.print(
        score_summary_line(summary, loaded.tokenizer.level),
        soft_wrap=True,  # one line, however narrow the terminal (a pipe is 80 columns to rich)
    )


def _metrics(summary: ScoreSummary, level: str, cached: ScoreSummary | None = None) -> dict:
    """The JSON figures; None where one is not a finite number (JSON has no inf or NaN).
    `bits_per_char` (char level only) is bits per token; `bits_per_character_of_text`, at every
    level, is bits over the characters of the text (README, "Bits per character of the text");
    `with_word_cache`, at word level with --cache, the same under the word cache."""
    mean = summary.mean_loss
    per_token = finite_or_none(bits(mean))
    extra = {} if cached is None else {"with_word_cache": _cache_metrics(cached)}
    return {
        "tokens": summary.tokens,
        "cross_entropy": finite_or_none(mean),
        "perplexity": finite_or_none(perplexity(mean)),
        "bits_per_token": per_token,
        **({"bits_per_char": per_token} if level == "char" else {}),
        "characters": summary.characters,
        "bits_per_character_of_text": finite_or_none(summary.bits_per_character),
        "unknown_tokens": summary.unknown,
    } | extra


def _cache_metrics(cached: ScoreSummary) -> dict:
    from rnnrepl.infer.cache_loss import DECAY, LAMBDA

    return {
        "cross_entropy": finite_or_none(cached.mean_loss),
        "perplexity": finite_or_none(perplexity(cached.mean_loss)),
        "bits_per_character_of_text": finite_or_none(cached.bits_per_character),
        "lambda": LAMBDA,
        "decay": DECAY,
    }


def run_eval(model, files, as_json, encoding, cache=False) -> None:
    """Cross entropy, perplexity and bits per token (char) of FILES under MODEL; with `cache`,
    at word level, also with the word cache (infer.cache_loss)."""
    from rnnrepl.infer.cache_loss import score_text
    from rnnrepl.text.files import read_text

    loaded = load_for_inference(model, backward=True)
    level = loaded.tokenizer.level
    inputs = []  # every file is read before the bar starts: a bad one is still one error line
    for path in files:
        text = read_text(path, encoding=encoding)[0]
        text = reverse_text(text) if loaded.direction == "backward" else text  # as trained
        ids = loaded.tokenizer.encode(text)
        if not ids:
            raise InputDataError("nothing to evaluate: the file is empty", path=path)
        inputs.append((path, ids, len(text)))
    cache = cache and level == "word"
    rows = []  # (file, figures of that file, the same with the word cache or None)
    with token_progress("scoring") as task:  # a bar on a terminal, nothing on a pipe
        for path, ids, characters in inputs:
            rows.append((path, *score_text(loaded, ids, characters, cache, task(path))))
    total = _total([s for _, s, _ in rows]), _total([c for _, _, c in rows]) if cache else None
    if as_json:
        files = [{"file": f, **_metrics(s, level, c)} for f, s, c in rows]
        click.echo(safe_json({"files": files, "total": _metrics(total[0], level, total[1])}))
    else:
        _print_eval(rows, total, level)


def _total(parts: list[ScoreSummary]) -> ScoreSummary:
    """The figures of several files together: the mean loss weighted by their tokens."""
    from rnnrepl.infer.scoring import ScoreSummary

    count = sum(s.tokens for s in parts)
    mean = sum(s.mean_loss * s.tokens for s in parts) / count
    return ScoreSummary(
        count, mean, sum(s.characters for s in parts), sum(s.unknown for s in parts)
    )


def _print_eval(rows: list[tuple], total: tuple, level: str) -> None:
    """One line per file, and a total line when there are several (inf or nan shown as such);
    each ends with the perplexity under the word cache where it was computed."""
    from rnnrepl.ui.render import metrics_line, per_character_line

    console = _console()
    for path, s, c in rows:
        line = f"{path}: {s.tokens} tokens, {metrics_line(s.mean_loss, level)}, "
        line += f"perplexity {perplexity(s.mean_loss):.3f}, {s.unknown} unknown; "
        line += per_character_line(s) + _cached(c)
        console.print(Text(safe_text(line)), soft_wrap=True)  # one line
    if len(rows) > 1:
        (s, c) = total
        line = f"total: {s.tokens} tokens, {metrics_line(s.mean_loss, level)}; "
        console.print(Text(line + per_character_line(s) + _cached(c)), soft_wrap=True)


def _cached(c: ScoreSummary | None) -> str:
    return "" if c is None else f"; with the word cache: perplexity {perplexity(c.mean_loss):.3f}"


def run_info(model, as_json, plot: str | None = None) -> None:
    """Configuration, vocabulary, parameters and training summary of MODEL; its loss curve."""
    from rnnrepl.cli import curves
    from rnnrepl.train.history import from_summary
    from rnnrepl.ui.render import summary_table, visible

    if plot is not None:  # before loading: a usage error comes first
        curves.plot_format(plot)
        curves.require_matplotlib()
    loaded = load_for_inference(model, backward=True)
    points = from_summary(loaded.training.get("history"))
    if plot is not None:
        curves.write_plot(plot, points, loaded.tokenizer.level, loaded.path)
        _console(stderr=True).print(Text(safe_text(f"wrote {plot}")))
    tok = loaded.tokenizer
    data = {
        "path": str(loaded.path),
        "config": loaded.config.to_dict(),
        "level": tok.level,
        "vocab_size": tok.size,
        "lowercase": tok.lowercase,
        "direction": loaded.direction,
        "parameters": loaded.model.num_parameters(),
        "training": loaded.training,
    }
    if as_json:
        click.echo(safe_json(data))
        return
    sample = " ".join(visible(t) for t in tok.tokens[1:41])
    rows = [
        ("file", str(loaded.path)),
        ("model", loaded.config.describe()),
        ("parameters", f"{data['parameters']:,}"),
        (
            "tokens",
            f"{tok.level} level, {tok.size:,} ({'lowercased, ' if tok.lowercase else ''}first: {sample})",
        ),
    ]
    if loaded.direction == "backward":  # forward, the default, goes without saying (as untied)
        rows.append(("direction", "backward (trained on reversed text: reads right to left)"))
    training = {k: v for k, v in loaded.training.items() if k != "direction"}  # shown above
    total = training.pop("total_steps", None)
    training.pop("history", None)  # drawn below
    rows += [
        (k, json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v)
        for k, v in training.items()
    ]
    rows = [(k, _steps_label(training[k], total) if k == "steps" else v) for k, v in rows]
    _console().print(summary_table("rnnrepl model", rows))
    _print_curve(points, tok.level)


def _print_curve(points, level: str) -> None:
    """The loss curve under the summary, when the model file records one."""
    from rnnrepl.cli.curves import curve_points
    from rnnrepl.ui.curves import loss_curve

    if points:
        console = _console()
        width = max(20, min(60, console.width - 12))
        console.print()
        console.print(loss_curve(curve_points(points), level, width=width), no_wrap=True)


def _steps_label(best, total) -> str:
    """The file holds the best model, which need not be the run's last step."""
    if not (isinstance(best, int) and isinstance(total, int)):
        return json.dumps(best)
    if total > best:
        return f"best at step {best:,} of {total:,}"
    return f"{best:,} (the best model is the last step)"


# ---- the commands (their bodies above) ---------------------------------------------------------
@click.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("text")
@click.option("-k", type=click.IntRange(1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--words", is_flag=True, help="The most likely whole words instead of tokens.")
@click.option("-n", type=click.IntRange(1, 100), help="How many --words (default 3).")
@cache_option
def predict(model, text, k, as_json, words, n, cache) -> None:
    """Top-k next tokens after TEXT, with probabilities.

    With --words: the N most likely whole words completing the word being typed (or the next
    word after a space), each with its probability."""
    run_predict(model, text, k, as_json, words, n, cache)


@click.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False))
@click.option("-k", type=click.IntRange(1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--color",
    type=click.Choice(["rank", "prob"]),
    is_flag=False,
    flag_value="rank",
    help="The text coloured by how expected each token was: by rank (the default) or prob.",
)
@click.option("--explain", is_flag=True, help="Inside the model at every step (`rnnrepl explain`).")
def score(model, text, file, k, as_json, color, explain) -> None:
    """Per token: p of the actual token, J_t = -log p, the top-k; then mean J, ppl, bpc.

    With --color: the text itself, each token coloured by its rank under the model (green the
    most likely, then yellow, red, magenta; README "Surprisal colours")."""
    if explain:
        from rnnrepl.cli.explain import UNITS, read_text, run_explain

        if color:
            raise UsageError("--explain and --color are two views: give one")
        run_explain(model, read_text(text, file), k, UNITS, as_json)
        return
    run_score(model, text, file, k, as_json, color)


@click.command(name="eval")
@click.argument("model", shell_complete=complete_model)
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--encoding")
@click.option("--ksr", is_flag=True, help="Keystrokes saved typing FILES with word suggestions.")
@click.option("--suggestions", type=click.IntRange(1, 100), help="--ksr: how many (default 3).")
@click.option("--limit-words", type=click.IntRange(1), help="--ksr: type only the first N words.")
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Mix the words the text already holds into the --ksr suggestions and, at word level, "
    'into the perplexity (a cache LM; README "Keystrokes saved", "Perplexity with the word cache").',
)
def eval_cmd(model, files, as_json, encoding, ksr, suggestions, limit_words, cache) -> None:
    """Cross entropy, perplexity and bits per token (char) of FILES under MODEL.

    With --ksr: the keystroke savings rate of a person typing FILES word by word, accepting
    the model's whole-word suggestions (README "Keystrokes saved")."""
    if ksr:
        from rnnrepl.cli.ksr import run_ksr

        run_ksr(model, files, as_json, encoding, suggestions or 3, limit_words, cache)
        return
    if suggestions is not None or limit_words is not None:
        raise UsageError("--suggestions and --limit-words apply to --ksr — add --ksr")
    run_eval(model, files, as_json, encoding, cache)


@click.command()
@click.argument("model", shell_complete=complete_model)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    help="Also write the loss curve as an image, FILE.png, .svg or .pdf (needs rnnrepl[plot]).",
)
def info(model, as_json, plot) -> None:
    """Configuration, vocabulary, parameters, training summary and loss curve of MODEL."""
    run_info(model, as_json, plot)
