"""`rnnrepl chat MODEL_A MODEL_B`: a second model (B) beside the session's model (A).

A is the REPL's model as with one model: Enter streams from it, the ghost text and the words
are its own. B gets a panel of its own for the same text, read with its own tokenizer (its
top-k of its own tokens), and both get the figures of the text so far: the probability each gave
the last complete token, and the bits per character and perplexity of all of them
(``infer.typed``). Both are computed on the worker thread in the job of A's panel, one model
after the other (``compute``); `/flip` exchanges the two; `/model` replaces A and keeps B.

Imports no prompt-toolkit or rich at module level (the worker thread uses it; ``pair_panel.py``
renders, the commands import the message renderer when run): the worker thread runs ``load``,
``compute`` and the flip; the UI thread reads ``info`` and ``view``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnrepl.repl.state import ModelInfo, View, compute_view, model_info

Post = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class PairView:
    """Both models' figures for one text, and B's panel."""

    text: str
    a: Any  # infer.typed.TypedScore of A, or None (A failed on this text)
    b: Any = None  # the same for B, or None while B loads
    b_view: View | None = None  # B's top-k for the text
    error: str = ""  # B failed on this text


class Pair:
    """The second model. ``predictor`` belongs to the worker thread (which also owns A's, as
    ``worker.predictor``); ``info`` and ``view`` to the UI thread."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.predictor: Any = None
        self.info: ModelInfo | None = None  # B's, None until it has loaded
        self.view: PairView | None = None

    # ---- worker thread ---------------------------------------------------------------------
    def load(self, loader: Callable[[], Any], int8: bool) -> ModelInfo:
        """Load B (a job on the worker thread, after A's load)."""
        from rnnrepl.infer.predictor import Predictor

        loaded = loader()
        predictor = Predictor(loaded, int8=int8)
        self.predictor = predictor
        return model_info(loaded, predictor.int8)

    def compute(self, a: Any, text: str, k: int, stale: Callable[[], bool], post: Post) -> None:
        """In the job of A's panel for `text`: A's figures, then B's panel and figures; the
        result goes to the UI thread before A's panel does (so both show the same text)."""
        from rnnrepl.infer.prefix_cache import Superseded

        typed_a = a.typed_score(text, stale)
        b, result = self.predictor, PairView(text, typed_a)
        if b is not None:
            try:
                b_view = compute_view(b, text, k, stale)
                result = PairView(text, typed_a, b.typed_score(text, stale), b_view)
            except Superseded:
                raise
            except Exception as exc:  # B failing must not take A's panel with it
                result = PairView(text, typed_a, error=f"{exc}")
        post(lambda: self._show(result))

    def flip_models(self) -> None:
        """Exchange A and B on the worker thread (a job: no view is being computed)."""
        self.worker.predictor, self.predictor = self.predictor, self.worker.predictor

    # ---- UI thread -------------------------------------------------------------------------
    def _show(self, view: PairView) -> None:
        self.view = view


def flip_command(repl: Any, arg: str) -> None:
    """/flip: model B becomes A (Enter, ghost text, words) and A becomes B."""
    from rnnrepl.repl.meter import Meter
    from rnnrepl.repl.panel import message

    pair: Pair | None = repl.pair
    session = repl.session
    if pair is None or pair.info is None or session.info is None:
        what = "both models to load" if pair is not None else "two models: chat MODEL_A MODEL_B"
        repl.emit(message(f"/flip needs {what}", "red"))
        return
    if session.streaming is not None:
        repl.emit(message("/flip: wait for the model to finish (Ctrl-C stops it)", "red"))
        return

    def done(result, error) -> None:
        session.info, pair.info = pair.info, session.info
        session.view, pair.view = None, None
        session.meter = Meter()  # its figures are about one model
        repl.emit(message(f"A is now {session.info.name}, B {pair.info.name}", "dim"))
        repl.refresh(force=True)

    repl.call_model(lambda _: pair.flip_models(), done)


def pair_show(info: ModelInfo) -> Any:
    """/show's lines about B (A's are /show's own)."""
    from rnnrepl.repl.panel import message

    return message(
        f"model B: {info.path} · {info.arch}, {info.parameters:,} parameters · {info.level} "
        f"level, vocabulary {info.vocab_size:,} (its top-k and figures only; /flip)"
    )


def refuse_lines() -> None:
    """chat A B on a pipe: line mode has no panel to compare, so it is a usage error."""
    from rnnrepl.errors import UsageError

    raise UsageError(
        "two models need a terminal (their panels side by side)",
        hint="on a pipe give one model, or compare two with `rnnrepl score MODEL -f FILE`",
    )
