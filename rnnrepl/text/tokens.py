"""Token arrays: encode a corpus in blocks into a compact uint16/int32 array, and split it.

Encoding works on blocks cut where encoding piecewise equals encoding the whole, so a large corpus
never holds a Python object per token; splits hold out the end of the text or of each file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rnnrepl.errors import UsageError
from rnnrepl.text.bpe import safe_chunks
from rnnrepl.text.tokenizers import CharVocab
from rnnrepl.text.wordsplit import count_words

_BREAK = re.compile(r"[ \n]")


def token_dtype(size: int) -> type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]:
    """The compact dtype for ids of a vocabulary of this size."""
    return np.uint16 if size <= 65535 else np.int32


def encode_corpus(text: str, tokenizer: Any, block_chars: int = 1 << 20) -> np.ndarray:
    """Token ids of text, identical to encoding it whole, built block by block."""
    parts = list(encode_blocks(text, tokenizer, block_chars))
    if not parts:
        return np.zeros(0, dtype=token_dtype(tokenizer.size))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def encode_blocks(text: str, tokenizer: Any, block_chars: int = 1 << 20) -> Iterator[np.ndarray]:
    """The ids of encode_corpus(text) block by block, each in the compact dtype (for writing
    a large corpus out without holding all of its ids)."""
    dtype = token_dtype(tokenizer.size)
    encode = getattr(tokenizer, "encode_array", None) or tokenizer.encode
    lowercase = bool(getattr(tokenizer, "lowercase", False))
    for block in _blocks(text, block_chars, tokenizer.level, lowercase):
        yield np.asarray(encode(block)).astype(dtype, copy=False)


def count_symbols(
    text: str, level: str, lowercase: bool, block_chars: int = 1 << 20
) -> Counter[str]:
    """Token counts for vocab.build_tokenizer, identical to counting the text whole."""
    if level not in ("char", "word"):
        raise UsageError(f"unknown level {level!r}", hint="use --level char or --level word")
    blocks = _blocks(text, block_chars, level, lowercase)
    if level == "word":  # every block's chunks first, then each distinct chunk split once
        return count_words(block.lower() if lowercase else block for block in blocks)
    counts: Counter[str] = Counter()
    for block in blocks:
        CharVocab.count(block, counts, lowercase)
    return counts


def _blocks(text: str, block_chars: int, level: str, lowercase: bool) -> Iterator[str]:
    """Slices of about block_chars characters whose tokens concatenate to the whole text's.

    Cuts fall after a newline, else after a space: word tokens never span either, the word-level
    end-of-line token belongs to its newline, and lowercasing is context-free there (str.lower()
    turns a word-final capital sigma into ς, which depends on the neighbours). Characters may be
    cut anywhere unless that sigma rule could apply; words extend the block to the next break.
    An unknown level is encoded whole.
    """
    if block_chars < 1:
        raise UsageError(f"block_chars must be positive, not {block_chars}")
    if level == "bpe":
        yield from safe_chunks(text, block_chars)
        return
    if level not in ("char", "word"):
        if text:
            yield text
        return
    hard_ok = level == "char" and not (lowercase and "Σ" in text)
    start = 0
    while start < len(text):
        cut = _cut(text, start, start + block_chars, hard_ok)
        yield text[start:cut]
        start = cut


def _cut(text: str, start: int, end: int, hard_ok: bool) -> int:
    if end >= len(text):
        return len(text)
    cut = (text.rfind("\n", start, end) + 1) or (text.rfind(" ", start, end) + 1)
    if cut:
        return cut
    if hard_ok:
        return end
    found = _BREAK.search(text, end)
    return found.end() if found else len(text)


def split_train_val(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """First (1 - f) for training, the last f for validation (nanoGPT's split); both views."""
    _check_fraction(val_fraction)
    k = int(len(ids) * (1 - val_fraction))
    return ids[:k], ids[k:]


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise UsageError(
            f"validation fraction must be between 0 and 1, not {val_fraction}",
            hint="pass --val-fraction 0.1",
        )


def encode_files(text: str, ends: Sequence[int], tokenizer: Any) -> tuple[np.ndarray, list[int]]:
    """Token ids of the corpus and where each file's tokens end. Every file's text ends a line
    (see load_corpus), a place where encoding piecewise equals encoding the whole."""
    if len(ends) <= 1:
        ids = encode_corpus(text, tokenizer)
        return ids, [len(ids)]
    parts, token_ends, start = [], [], 0
    for end in ends:
        parts.append(encode_corpus(text[start:end], tokenizer))
        token_ends.append(token_ends[-1] + len(parts[-1]) if token_ends else len(parts[-1]))
        start = end
    return np.concatenate(parts), token_ends


# A file whose validation share would be shorter is pooled with the other small files: a few
# tokens cut from the middle of a text, scored with the state of an unrelated one, measure little.
MIN_FILE_VAL_TOKENS = 64


def split_per_file(
    ids: np.ndarray, token_ends: Sequence[int], val_fraction: float
) -> tuple[np.ndarray, np.ndarray, str]:
    """The last val_fraction of each file's tokens for validation, the rest for training, and a
    description of the split (see split_ranges); one file is split exactly as split_train_val
    does (views, no copy)."""
    if len(token_ends) <= 1:
        train, val = split_train_val(ids, val_fraction)
        return train, val, split_ranges([len(ids)], val_fraction)[2]
    heads, tails, how = split_ranges(token_ends, val_fraction)
    train = np.concatenate([ids[a:b] for a, b in heads])
    return train, np.concatenate([ids[a:b] for a, b in tails]), how


Ranges = list[tuple[int, int]]


def split_ranges(token_ends: Sequence[int], val_fraction: float) -> tuple[Ranges, Ranges, str]:
    """Where split_per_file's training and validation ids lie in the corpus's ids, as [a, b)
    ranges in order, and its description: the last val_fraction of each file's tokens for
    validation; files too small for MIN_FILE_VAL_TOKENS are split as one text together."""
    _check_fraction(val_fraction)
    share = f"{100 * val_fraction:g}%"
    if len(token_ends) <= 1:
        n = token_ends[0] if token_ends else 0
        k = int(n * (1 - val_fraction))
        return [(0, k)], [(k, n)], f"last {share} of the text"
    heads: Ranges = []
    tails: Ranges = []
    small: Ranges = []
    start = 0
    for end in token_ends:
        k = start + int((end - start) * (1 - val_fraction))
        if end - k < MIN_FILE_VAL_TOKENS:
            small.append((start, end))
        else:
            heads.append((start, k))
            tails.append((k, end))
        start = end
    if small:
        head, tail = _take_first(small, int(sum(b - a for a, b in small) * (1 - val_fraction)))
        heads += head
        tails += tail
    return heads, tails, _split_text(share, len(token_ends), small)


def _take_first(ranges: Ranges, k: int) -> tuple[Ranges, Ranges]:
    """The first k ids of the ranges taken as one text, and the rest, as ranges."""
    head: Ranges = []
    tail: Ranges = []
    for a, b in ranges:
        take = max(0, min(b - a, k))
        if take:
            head.append((a, a + take))
        if a + take < b:
            tail.append((a + take, b))
        k -= take
    return head, tail


def _split_text(share: str, n_files: int, small: list) -> str:
    big = n_files - len(small)
    if not small:
        return f"last {share} of each of {n_files} files"
    if not big:
        return f"last {share} of the {n_files} files as one text (each too small alone)"
    each = f"each of {big} files" if big > 1 else "1 file"
    return f"last {share} of {each}, and of the other {len(small)} as one text"
