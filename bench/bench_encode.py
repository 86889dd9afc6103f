"""Encoding speed: MB/s of counting (vocabulary building) and encoding a large corpus at the char,
word and BPE levels, rnnrepl's bulk encoders against the per-token path they replaced (kept below,
as it was), in the same run, on the same text, with the outputs checked equal.

The corpus is WikiText-2's train.txt repeated in memory to --mb megabytes (UTF-8 bytes). Both
sides go through encode_corpus's 1 MiB blocks. The BPE vocabulary (8,000, the default for this
corpus) is learnt once from train.txt itself; learning it is not timed. Neither BPE path uses
tokenizers' thread pool (both call encode, not encode_batch), so RAYON_NUM_THREADS changes nothing.

    OMP_NUM_THREADS=1 python bench/bench_encode.py [--mb 100] [--levels char,word,bpe]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WIKI  # noqa: E402

from rnnrepl.text.bpe import BpeVocab, safe_chunks  # noqa: E402
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


def timed(fn: Callable):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def corpus(path: Path, mb: float) -> str:
    base = path.read_text(encoding="utf-8")
    reps = max(1, round(mb * 1e6 / len(base.encode("utf-8"))))
    return base * reps


def row(level: str, what: str, size_mb: float, old_s: float, new_s: float) -> None:
    print(
        f"{level:5s} {what:7s} old {size_mb / old_s:7.1f} MB/s   new {size_mb / new_s:7.1f} MB/s"
        f"   x{old_s / new_s:5.1f}   ({old_s:.1f} s -> {new_s:.1f} s)",
        flush=True,
    )


def bench_level(level: str, text: str, base: str, size_mb: float) -> None:
    if level == "bpe":
        vocab = BpeVocab.train(safe_chunks(base, 1 << 20), 8000)
    else:
        old_counts, old_s = timed(lambda: old_count(text, level))
        counts, new_s = timed(lambda: count_symbols(text, level, False))
        assert counts == old_counts, f"{level}: counts differ"
        row(level, "count", size_mb, old_s, new_s)
        vocab = build_tokenizer(level, counts, False, 1, 0)
    old_ids, old_s = timed(lambda: encode_corpus(text, OldEncoder(vocab, OLD_ENCODE[level])))
    ids, new_s = timed(lambda: encode_corpus(text, vocab))
    assert np.array_equal(ids, old_ids) and ids.dtype == old_ids.dtype, f"{level}: ids differ"
    row(level, "encode", size_mb, old_s, new_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB (default 100)")
    parser.add_argument("--levels", default="char,word,bpe")
    parser.add_argument("--corpus", type=Path, default=WIKI / "train.txt")
    args = parser.parse_args()
    base = args.corpus.read_text(encoding="utf-8")
    text = corpus(args.corpus, args.mb)
    size_mb = len(text.encode("utf-8")) / 1e6
    threads = os.environ.get("RAYON_NUM_THREADS", f"unset ({os.cpu_count()} cores)")
    print(
        f"{args.corpus.name} x{round(len(text) / len(base))} = {size_mb:.1f} MB; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} "
        f"RAYON_NUM_THREADS={threads}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for level in args.levels.split(","):
        bench_level(level, text, base, size_mb)
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
