"""`eval --ksr`: the keystroke savings of typing FILES with a model's word suggestions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.text import Text

from rnnrepl.cli.common import console, token_progress
from rnnrepl.errors import InputDataError
from rnnrepl.infer.loading import load_for_inference
from rnnrepl.ui.textsafe import safe_json, safe_text

if TYPE_CHECKING:  # the module is imported lazily: it brings torch
    from rnnrepl.infer.ksr import KsrResult


def run_ksr(model, files, as_json, encoding, n: int, limit: int | None, cache: bool) -> None:
    """Simulate typing each of FILES (its first `limit` words) with `n` suggestions, mixed
    with a word cache of the text typed so far if `cache`."""
    from rnnrepl.infer.ksr import limit_words, word_spans
    from rnnrepl.infer.ksr_batch import simulate_batched
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.text.files import read_text

    predictor = Predictor(load_for_inference(model))
    texts = []  # every file is read before the bar starts: a bad one is still one error line
    for path in files:
        text = limit_words(read_text(path, encoding=encoding)[0], limit)
        if next(word_spans(text), None) is None:
            raise InputDataError("nothing to type: the file has no words", path=path)
        texts.append((path, text))
    rows = []
    with token_progress("typing", unit="words") as task:
        for path, text in texts:
            rows.append((path, simulate_batched(predictor, text, n, task(path), cache=cache)))
    total = sum((r for _, r in rows[1:]), rows[0][1])
    if as_json:
        figures = [{"file": f, **r.to_dict()} for f, r in rows]
        head = {"suggestions": n, "cache": cache}
        click.echo(safe_json({**head, "files": figures, "total": total.to_dict()}))
        return
    for path, r in rows:
        console().print(Text(safe_text(f"{path}: {ksr_line(r, n)}")), soft_wrap=True)
    if len(rows) > 1:
        console().print(Text(f"total: {ksr_line(total, n)}"), soft_wrap=True)


def ksr_line(r: KsrResult, n: int) -> str:
    """One line of figures (the text has at least one word, so no rate is None)."""
    return (
        f"KSR {r.ksr:.2%} with {n} suggestion{'s' if n != 1 else ''}, "
        f"{r.first_share:.2%} of words accepted before their first letter, "
        f"{r.keystrokes_per_word:.3f} keystrokes per word; "
        f"{r.characters} characters, {r.keystrokes} keystrokes, {r.words} words"
    )
