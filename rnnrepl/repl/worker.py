"""The REPL's model thread. Every model call runs here, one at a time, never on the UI thread.

Requests come from the UI thread; results go back through ``post`` (which schedules a callable
on the UI's event loop). View requests are latest-wins: a newer keystroke replaces a pending
request and interrupts a running one between batched model calls. torch releases the GIL in
its kernels, so typing stays fluid while the model works.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rnnrepl.repl.state import View, compute_view, inference_threads, model_info, with_ghost

Post = Callable[[Callable[[], None]], None]
GHOST_DELAY = 0.03  # seconds without a newer keystroke before the ghost text is computed
# Seconds a word search may hold the bars back: a longer one has them drawn first (a second
# redraw costs the UI thread about what a short search costs, so quick words come with them).
BARS_WAIT = 0.004
COLOR_INLINE = 32  # /color: more new tokens than this are ranked after the panel is posted


class Worker:
    def __init__(self, post: Post) -> None:
        self._post = post
        self._cond = threading.Condition()
        self._jobs: deque[Callable[[], None]] = deque()
        self._idle: deque[Callable[[], None]] = deque()  # background: after jobs and panels
        self._view: tuple[int, str, tuple[int, int], Callable[[View], None]] | None = None
        self._seq = 0
        self._closing = False
        self._cancel = threading.Event()
        self._words: tuple = ()  # the last words posted (the pending column keeps their place)
        self.predictor: Any = None
        self.pair: Any = None  # chat A B: the second model (repl/pair.py), computed with the panel
        self._thread = threading.Thread(target=self._run, name="rnnrepl-model", daemon=True)
        self._thread.start()

    # ---- requests (UI thread) -----------------------------------------------------------------
    def load(
        self,
        loader: Callable[[], Any],
        on_done: Callable[[Any, BaseException | None], None],
        int8: bool = False,
    ) -> None:
        """Load a model with `loader()` and make it current; on_done(ModelInfo | None, error)."""
        self._submit(lambda: self._load(loader, on_done, int8))

    def request_view(
        self,
        text: str,
        k: int,
        on_view: Callable[[View], None],
        words: int = 0,
        cache: bool = False,
        color: tuple[str, int] | None = None,
    ) -> None:
        """Predict for `text` (the top `k` and `words` whole words, mixed with the word cache
        if `cache`; with `color` = (kind, since), the surprisal marks of the tokens ending
        after character `since`); replaces any pending request; on_view twice (panel, then
        ghost)."""
        with self._cond:
            self._seq += 1
            self._view = (self._seq, text, (k, words, cache, color), on_view)
            self._cond.notify()

    def call(self, fn: Callable[[Any], Any], on_done: Callable[[Any, BaseException | None], None]):
        """Run fn(predictor) in order with the other jobs; on_done(result, error)."""
        self._submit(lambda: self._call(fn, on_done))

    def call_stoppable(
        self, fn: Callable[[Any, Callable[[], bool]], Any], on_done: Callable[[Any, Any], None]
    ) -> None:
        """As `call`, for a long job: fn(predictor, stopped) returns early once stopped() is
        true, after cancel_stream() (Ctrl-C)."""
        self._cancel.clear()
        self._submit(lambda: self._call(lambda p: fn(p, self._cancel.is_set), on_done))

    def background(self, fn: Callable[[Any], Any], on_done) -> None:
        """Like ``call``, but only once no job and no panel request waits: a keystroke's
        panel waits for one such slice at most (learning as you type, ``learn.py``)."""
        with self._cond:
            self._idle.append(lambda: self._call(fn, on_done))
            self._cond.notify()

    def stream(self, text: str, cfg, on_pieces, on_done) -> None:
        """Generate after `text`; on_pieces(list of (text, is <unk>, rank, p)) as they come,
        then on_done(reason)."""
        self._cancel.clear()
        self._submit(lambda: self._stream(text, cfg, on_pieces, on_done))

    def cancel_stream(self) -> None:
        self._cancel.set()

    def close(self, wait: float = 5.0) -> None:
        """Stop the thread: at once when idle, else after the model call in progress (a
        daemon thread killed inside a torch kernel at exit aborts the whole process)."""
        with self._cond:
            self._closing = True
            self._cancel.set()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(wait)

    def _submit(self, job: Callable[[], None]) -> None:
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()

    # ---- the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                view = self._view if self.predictor else None
                while not (self._closing or self._jobs or view or self._idle):
                    self._cond.wait()
                    view = self._view if self.predictor else None
                if self._closing:
                    return
                if self._jobs:
                    job = self._jobs.popleft()
                elif view:
                    job = functools.partial(self._compute_view, *view)
                    self._view = None
                else:
                    job = self._idle.popleft()
            job()

    def _stale(self, seq: int) -> bool:
        return self._seq != seq or bool(self._jobs) or self._closing

    def _settled(self, seq: int) -> bool:
        """Wait GHOST_DELAY for a newer request; True if none came (typing paused).

        While keys come fast the thread stays free for the panel of the next one; the
        ghost text, a few more model steps, is only computed once typing pauses."""
        with self._cond:
            self._cond.wait_for(lambda: self._stale(seq), timeout=GHOST_DELAY)
            return not self._stale(seq)

    def _compute_view(self, seq: int, text: str, size: tuple, on_view) -> None:
        from rnnrepl.infer.prefix_cache import Superseded

        stale = lambda: self._stale(seq)  # noqa: E731
        try:
            view = compute_view(self.predictor, text, size[0], stale)
            later = size[3] is not None and self.predictor.colors_pending(text) > COLOR_INLINE
            if size[3] is not None and not later:  # /color: a keystroke's few new tokens
                view = self._with_colors(view, size[3], stale)
            view = self._with_words(view, size[1:3], stale, on_view)
            if self.pair is not None:  # chat A B: both models' figures and B's panel, first
                self.pair.compute(self.predictor, text, size[0], stale, self._post)
            self._post(lambda: on_view(view))
            if later:  # a paste: the panel first, its colours after (about a second)
                view = self._with_colors(view, size[3], stale)
                self._post(lambda: on_view(view))
            if not self._settled(seq):
                return
            full = with_ghost(self.predictor, view, stale)
            self._post(lambda: on_view(full))
        except Superseded:
            with self._cond:  # put aside for a job (a stream, /score): run it after the job
                if self._seq == seq and self._view is None and not self._closing:
                    self._view = (seq, text, size, on_view)
        except Exception as exc:  # a model failure must not kill the thread
            error = exc
            self._post(lambda: on_view(View(text, (), "", 0, 0, (), error=f"{error}")))

    def _with_colors(self, view: View, color: tuple[str, int], stale) -> View:
        """`view` with the surprisal marks (kind, from character `since`) of its text."""
        colors = self.predictor.colors(view.text, *color, interrupt=stale)
        return dataclasses.replace(view, colors=colors)

    def _with_words(self, view: View, words: tuple[int, bool], stale, on_view) -> View:
        """`view` with its whole words (how many, with the cache or not). A search still
        running after BARS_WAIT (polled between its model steps) has the bars posted first,
        the words column blank."""
        n, cache = words
        if not n:
            return view
        deadline, posted = time.perf_counter() + BARS_WAIT, []

        def poll() -> bool:
            if not posted and time.perf_counter() > deadline:
                posted.append(True)
                pending = dataclasses.replace(view, words_pending=self._words)
                self._post(lambda: on_view(pending))
            return stale()

        found = tuple(self.predictor.words(view.text, n, interrupt=poll, cache=cache))
        self._words = found
        return dataclasses.replace(view, words=found)

    def _load(self, loader, on_done, int8: bool) -> None:
        try:
            from rnnrepl.infer.predictor import Predictor

            loaded = loader()
            use_threads(loaded.model.num_parameters())
            predictor = Predictor(loaded, int8=int8)
            info = model_info(loaded, predictor.int8)
        except Exception as exc:  # reported to the UI, which decides what to do
            error = exc
            self._post(lambda: on_done(None, error))
            return
        self.predictor = predictor
        self._post(lambda: on_done(info, None))

    def _call(self, fn, on_done) -> None:
        try:
            result = fn(self.predictor)
        except Exception as exc:
            error = exc
            self._post(lambda: on_done(None, error))
            return
        self._post(lambda: on_done(result, None))

    def _stream(self, text: str, cfg, on_pieces, on_done) -> None:
        pending: list[tuple[str, bool, int, float]] = []
        lock = threading.Lock()

        def drain() -> None:
            with lock:
                pieces = pending[:]
                pending.clear()
            on_pieces(pieces)

        reason = ""
        try:
            for step in self.predictor.stream(text, cfg):
                if self._cancel.is_set():
                    reason = "stopped"
                    break
                with lock:
                    pending.append((step.text, step.token_id == 0, step.rank, step.prob))
                    first = len(pending) == 1
                if first:
                    self._post(drain)
        except Exception as exc:
            reason = f"error: {exc}"
        self._post(lambda: on_done(reason))


def use_threads(parameters: int) -> None:
    """Apply inference_threads() to torch (process-wide: the REPL only runs inference)."""
    import torch

    threads = inference_threads(parameters)
    if threads:
        torch.set_num_threads(threads)
