"""Encoding a large corpus on every core: its pieces (cut where encoding piecewise equals the
whole) go round to worker processes, each holding the tokenizer and its own chunk memo, and their
ids come back in order as raw arrays.

The ids are exactly the serial path's: a worker runs the same encode_corpus on the same pieces.
Two pieces per worker are in flight (threads feed and drain the pipes), so memory stays bounded
whatever the corpus size. Small corpora and the char level (already fast, and bound by reading)
are encoded here, in this process: a worker costs an interpreter's start.

A worker is `python -m rnnrepl.text.encode_pool` on two pipes: the tokenizer's JSON, then pieces
as UTF-8, each with its length; back come the ids' bytes, each with its length (nothing is
pickled). RNNREPL_ENCODE_PROCESSES (read by the CLI) sets their number. Workers run in a
session of their own, so Ctrl-C reaches this process alone, which kills them; a worker whose
parent is gone finds its input closed and exits. If the workers cannot start or one fails, the
pieces not yet encoded are encoded here instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

import numpy as np

from rnnrepl.text.tokenizers import tokenizer_from_dict
from rnnrepl.text.tokens import encode_corpus, token_dtype

# Below this many characters a corpus is encoded in this process: starting a worker (an
# interpreter, numpy, the tokenizer) takes about as long as encoding a few MB.
MIN_PARALLEL_CHARS = 16 << 20
# Each worker holds a copy of the tokenizer and its pieces: about 220 MB at word level and 460 MB
# at BPE level (bench_rss), so more cores than this would cost memory faster than they save time.
MAX_PROCESSES = 4
_LENGTH = struct.Struct("<Q")
IN_FLIGHT = 2  # pieces per worker sent ahead: the next waits in its pipe while one is encoded

Tag = TypeVar("Tag")


def encode_processes(chars: int, level: str, asked: int | None = None) -> int:
    """How many worker processes encode a corpus of `chars` characters (0: none, encode here):
    `asked`, or by default one per core for a large corpus at the word level. Characters
    encode at 139 MB/s in one process; BPE's encoder (`tokenizers`) already runs on every core,
    and worker processes beside it measured 0.8-1.1x the serial figure."""
    if asked is not None:
        return asked
    if level != "word" or chars < MIN_PARALLEL_CHARS:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = min(cores or 1, MAX_PROCESSES)
    return n if n > 1 else 0


class WorkerFailed(Exception):
    """A worker did not start, or stopped answering."""


class _Worker:
    """One worker process, and a thread each to feed its input pipe and drain its output pipe:
    this process never waits on a pipe, so neither does a worker."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rnnrepl.text.encode_pool"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # out of the terminal's reach: Ctrl-C is for this process
        )
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self.outbox: queue.Queue[bytes | None] = queue.Queue()  # None: the worker is gone
        self.threads = [
            threading.Thread(target=self._feed, daemon=True),
            threading.Thread(target=self._drain, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _feed(self) -> None:
        while (data := self.inbox.get()) is not None:
            try:
                _write_message(self.proc.stdin, data)  # type: ignore[arg-type]
            except (OSError, ValueError):  # the worker is gone (SIGPIPE is ignored meanwhile)
                return

    def _drain(self) -> None:
        try:
            while True:
                self.outbox.put(_read_message(self.proc.stdout, EOFError))  # type: ignore[arg-type]
        except (EOFError, OSError, ValueError):
            self.outbox.put(None)

    def send(self, data: bytes) -> None:
        self.inbox.put(data)

    def receive(self) -> bytes:
        data = self.outbox.get()
        if data is None:
            raise WorkerFailed("the worker stopped")
        return data

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.inbox.put(None)
        for thread in self.threads:
            thread.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):  # a write buffered to a dead worker
                pipe.close()  # type: ignore[union-attr]


class PieceEncoder:
    """`map` encodes (tag, text) items into (tag, ids) in order, on `processes` workers (0: in
    this process). Use as a context manager: leaving it stops the workers."""

    def __init__(self, tokenizer: Any, processes: int) -> None:
        self.tokenizer, self.processes = tokenizer, processes
        self.dtype = token_dtype(tokenizer.size)
        self._workers: list[_Worker] = []
        self._sigpipe: Any = None  # SIGPIPE's action before the workers started

    def __enter__(self) -> PieceEncoder:
        data = json.dumps(self.tokenizer.to_dict()).encode() if self.processes else b""
        self._sigpipe = _ignore_sigpipe() if self.processes else None
        try:
            for _ in range(self.processes):
                self._workers.append(_Worker())
            for worker in self._workers:  # sent once all have started: they start together
                worker.send(data)
        except (OSError, WorkerFailed):  # no processes here: encode in this one
            self.__exit__()
        except BaseException:  # Ctrl-C: no worker is left behind
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []
        if self._sigpipe is not None:
            signal.signal(signal.SIGPIPE, self._sigpipe)
            self._sigpipe = None

    def map(self, items: Iterable[tuple[Tag, str]]) -> Iterator[tuple[Tag, np.ndarray]]:
        items = iter(items)
        if self._workers:
            yield from self._map_workers(items)
        for tag, text in items:  # no workers, or the rest after one failed
            yield tag, encode_corpus(text, self.tokenizer)

    def _map_workers(self, items: Iterator[tuple[Tag, str]]) -> Iterator[tuple[Tag, np.ndarray]]:
        """Pieces dealt round the workers, results taken back in the same order; a piece leaves
        `ahead` once its ids are out, so after a failure the pieces there are encoded here and
        map encodes the rest."""
        ahead: deque[tuple[Tag, str, _Worker | None]] = deque()
        try:
            for n, (tag, text) in enumerate(items):
                ahead.append((tag, text, None))
                if len(ahead) > IN_FLIGHT * len(self._workers):  # take the oldest result first
                    yield self._result(*ahead[0])
                    ahead.popleft()
                worker = self._workers[n % len(self._workers)]
                worker.send(text.encode("utf-8", "surrogatepass"))
                ahead[-1] = (tag, text, worker)
            while ahead:
                yield self._result(*ahead[0])
                ahead.popleft()
        except WorkerFailed:
            self.__exit__()
            for tag, text, _ in ahead:
                yield tag, encode_corpus(text, self.tokenizer)

    def _result(self, tag: Tag, text: str, worker: _Worker | None) -> tuple[Tag, np.ndarray]:
        assert worker is not None
        return tag, np.frombuffer(worker.receive(), dtype=self.dtype)


def _ignore_sigpipe() -> Any:
    """Ignore SIGPIPE while workers run (the CLI restores its default action, so that `| head`
    ends quietly): a write to a worker that died then fails with EPIPE instead of ending this
    process. Returns the action to restore (None where signals cannot be set: not the main
    thread)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGPIPE"):
        return None
    return signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def _read_message(f: IO[bytes], failure: type[Exception]) -> bytes:
    """One length-prefixed message from `f`; `failure` if it ends first."""
    head = f.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise failure("the other end closed")
    (size,) = _LENGTH.unpack(head)
    data = f.read(size)
    if len(data) < size:
        raise failure("the other end closed")
    return data


def _write_message(f: IO[bytes], data: bytes) -> None:
    f.write(_LENGTH.pack(len(data)))
    f.write(data)
    f.flush()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """A worker's loop: a tokenizer, then pieces in and ids out until the input closes."""
    try:
        tokenizer = tokenizer_from_dict(json.loads(_read_message(inp, EOFError)))
        while True:
            text = _read_message(inp, EOFError).decode("utf-8", "surrogatepass")
            ids = encode_corpus(text, tokenizer).astype(token_dtype(tokenizer.size), copy=False)
            _write_message(out, ids.tobytes())
    except (EOFError, BrokenPipeError):  # the parent is done, or gone
        return


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
