"""Encoding speed: MB/s of counting (vocabulary building) and encoding a large corpus at the char,
word and BPE levels, rnnrepl's bulk encoders against the per-token path they replaced (kept below,
as it was), in the same run, on the same text, with the outputs checked equal.

The corpus is WikiText-2's train.txt repeated in memory to --mb megabytes (UTF-8 bytes), taken
one copy at a time, old and new in turn (which goes first alternating): the machine is shared,
and this way both sides meet the same load. Both go through encode_corpus's 1 MiB blocks; the
new side's memo stays warm from copy to copy, as it does from block to block. The BPE vocabulary (8,000, the default for this
corpus) is learnt once from train.txt itself; learning it is not timed. Neither BPE path uses
tokenizers' thread pool (both call encode, not encode_batch), so RAYON_NUM_THREADS changes nothing.

    OMP_NUM_THREADS=1 python bench/bench_encode.py [--mb 100] [--levels char,word,bpe]

With --processes N (word and BPE): the serial bulk path (encode_corpus over train's 4 Mi-character
pieces, in this process) against the same pieces dealt to N worker processes
(rnnrepl.text.encode_pool, as `train` encodes a corpus of 16 MiB characters or more), copy by
copy in turn; the pool is started once, before the first copy, and its start-up is counted
on the new side. Ids checked equal.

    OMP_NUM_THREADS=1 nice python bench/bench_encode.py --levels word,bpe --processes 2
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WIKI  # noqa: E402

from rnnrepl.text.bpe import BpeVocab, safe_chunks  # noqa: E402
from rnnrepl.text.encode_pool import PieceEncoder  # noqa: E402
from rnnrepl.text.streaming import safe_pieces  # noqa: E402
from rnnrepl.text.tokenizers import CharVocab, WordVocab, build_tokenizer  # noqa: E402
from rnnrepl.text.tokens import _blocks, count_symbols, encode_corpus  # noqa: E402
from rnnrepl.text.wordsplit import chunk_pieces  # noqa: E402

# --- the per-token path as it was before the bulk encoders (rnnrepl 2026-12-02) ---------------


def old_char_encode(vocab: CharVocab, text: str) -> np.ndarray:
    text = text.lower() if vocab.lowercase else text
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    known = np.array(sorted(ord(t) for t in vocab.tokens[1:]), dtype=np.int64)
    ids = np.array([vocab.index[chr(p)] for p in known], dtype=np.int32)
    pos = np.searchsorted(known, points.astype(np.int64)).clip(0, len(known) - 1)
    return np.where(known[pos] == points, ids[pos], 0).astype(np.int32)


def old_word_encode(vocab: WordVocab, text: str) -> np.ndarray:
    text = vocab.cased(text)
    out: list[str] = []
    for n, line in enumerate(text.split("\n")):
        if n:
            out.append("\n")
        for chunk in line.split():
            out.extend(vocab.chunk_tokens(chunk))
    get = vocab.index.get
    return np.asarray([get(t, 0) for t in out], dtype=np.int32)


def old_word_count(text: str, counts: Counter[str]) -> None:
    def tokens():
        lines = text.split("\n")
        for n, line in enumerate(lines):
            yield from (piece for chunk in line.split() for piece in chunk_pieces(chunk))
            if n < len(lines) - 1:
                yield "\n"

    counts.update(tokens())


def old_bpe_encode(vocab: BpeVocab, text: str) -> np.ndarray:
    ids = [i + 1 for i in vocab._hf.encode(vocab.cased(text)).ids] if text else []
    return np.asarray(ids, dtype=np.int32)


def old_count(text: str, level: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for block in _blocks(text, 1 << 20, level, False):
        if level == "char":
            counts.update(block)
        else:
            old_word_count(block, counts)
    return counts


class OldEncoder:
    """encode_corpus's view of a tokenizer, encoding by the old per-token path."""

    def __init__(self, vocab, encode: Callable) -> None:
        self.vocab, self.level, self.size = vocab, vocab.level, vocab.size
        self.lowercase = vocab.lowercase
        self.encode_array = lambda text: encode(vocab, text)


OLD_ENCODE = {"char": old_char_encode, "word": old_word_encode, "bpe": old_bpe_encode}

# --- measurement ------------------------------------------------------------------------------


def timed(fn: Callable, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def alternate(segments: list[str], old: Callable, new: Callable) -> tuple[list, list, list]:
    """Old and new on each segment in turn, which goes first alternating, so that both meet the
    same load on a shared machine: (seconds of each, outputs of old, outputs of new)."""
    seconds, outs = [0.0, 0.0], ([], [])
    for n, segment in enumerate(segments):
        for side in (0, 1) if n % 2 == 0 else (1, 0):
            out, s = timed((old, new)[side], segment)
            seconds[side] += s
            outs[side].append(out)
    return seconds, *outs


def total(counters: list[Counter[str]]) -> Counter[str]:
    out: Counter[str] = Counter()
    for c in counters:
        out.update(c)
    return out


def row(level: str, what: str, size_mb: float, seconds: list[float]) -> None:
    old_s, new_s = seconds
    print(
        f"{level:5s} {what:7s} old {size_mb / old_s:7.1f} MB/s   new {size_mb / new_s:7.1f} MB/s"
        f"   x{old_s / new_s:5.1f}   ({old_s:.1f} s -> {new_s:.1f} s)",
        flush=True,
    )


def bench_level(level: str, segments: list[str], size_mb: float) -> None:
    if level == "bpe":
        vocab = BpeVocab.train(safe_chunks(segments[0], 1 << 20), 8000)
    else:
        seconds, old, new = alternate(
            segments, lambda t: old_count(t, level), lambda t: count_symbols(t, level, False)
        )
        counts = total(new)
        assert counts == total(old), f"{level}: counts differ"
        row(level, "count", size_mb, seconds)
        vocab = build_tokenizer(level, counts, False, 1, 0)
    old_encoder = OldEncoder(vocab, OLD_ENCODE[level])
    seconds, old, new = alternate(
        segments, lambda t: encode_corpus(t, old_encoder), lambda t: encode_corpus(t, vocab)
    )
    ids, old_ids = np.concatenate(new), np.concatenate(old)
    assert np.array_equal(ids, old_ids) and ids.dtype == old_ids.dtype, f"{level}: ids differ"
    row(level, "encode", size_mb, seconds)


def bench_processes(level: str, segments: list[str], size_mb: float, processes: int) -> None:
    """Serial bulk encoding against the same pieces on `processes` workers, taking turns by
    blocks of 3 copies (about 32 MB: 8 pieces, so the workers' last pieces rarely idle one)."""
    if level == "bpe":
        vocab = BpeVocab.train(safe_chunks(segments[0], 1 << 20), 8000)
    else:
        vocab = build_tokenizer(level, count_symbols(segments[0], level, False), False, 1, 0)
    blocks = ["".join(segments[i : i + 3]) for i in range(0, len(segments), 3)]
    encoder, serial = PieceEncoder(vocab, processes), PieceEncoder(vocab, 0)
    _, start = timed(encoder.__enter__)

    def encode(side: PieceEncoder, block: str) -> np.ndarray:
        pieces = enumerate(safe_pieces([block], level, False))
        return np.concatenate([a for _, a in side.map(pieces)])

    try:
        seconds, olds, news = alternate(
            blocks, lambda b: encode(serial, b), lambda b: encode(encoder, b)
        )
        assert encoder._workers, "the workers stopped: the pool side ran serially"
    finally:
        encoder.__exit__(None, None, None)
    assert all(np.array_equal(a, b) for a, b in zip(olds, news, strict=True)), f"{level}: differ"
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # workers are waited
    print(f"      {len(blocks)} blocks each way; pool start-up {start:.2f} s; worker peak RSS "
          f"{peak:.0f} MB", flush=True)  # fmt: skip
    row(level, "encode", size_mb, [seconds[0], seconds[1] + start])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB (default 100)")
    parser.add_argument("--levels", default="char,word,bpe")
    parser.add_argument("--corpus", type=Path, default=WIKI / "train.txt")
    parser.add_argument("--processes", type=int, default=0, help="workers against serial")
    args = parser.parse_args()
    base = args.corpus.read_text(encoding="utf-8")
    segments = [base] * max(1, round(args.mb * 1e6 / len(base.encode("utf-8"))))
    size_mb = len(segments) * len(base.encode("utf-8")) / 1e6
    threads = os.environ.get("RAYON_NUM_THREADS", f"unset ({os.cpu_count()} cores)")
    print(
        f"{args.corpus.name} x{len(segments)} = {size_mb:.1f} MB; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
        f"RAYON_NUM_THREADS={threads}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for level in args.levels.split(","):
        if args.processes:
            bench_processes(level, segments, size_mb, args.processes)
        else:
            bench_level(level, segments, size_mb)
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
