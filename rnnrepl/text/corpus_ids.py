"""The training corpus as token ids, through the token cache: input files -> tokenizer -> train
and validation ids, encoded once and then mapped from disk (see token_cache.py).

A cache entry is keyed by the inputs' paths and bytes and by every option that decides the ids
(reading, tokenizer, split), so a second run on unchanged files reads no text at all beyond
hashing it; what reading reported (files, skips, CRLF count) comes back from the sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnnrepl.errors import InputDataError
from rnnrepl.text import tokenizers
from rnnrepl.text.corpus_scan import ScannedCorpus, scan_corpus
from rnnrepl.text.decoding import check_encoding
from rnnrepl.text.encode_pool import PieceEncoder, encode_processes
from rnnrepl.text.files import Skipped, TextReport, expand_inputs, open_input
from rnnrepl.text.reverse import reverse_text, reversed_ids
from rnnrepl.text.streaming import safe_pieces
from rnnrepl.text.token_cache import (
    ID_DTYPES,
    CacheEntry,
    IdsFile,
    IdsWriter,
    file_dtype,
    open_entry,
)
from rnnrepl.text.tokens import count_symbols, encode_corpus, split_ranges

_READ = 1 << 24


@dataclass(frozen=True)
class CorpusOptions:
    """What decides the ids: the inputs, how they are read, the tokenizer, the split."""

    inputs: tuple[str, ...]
    level: str
    lowercase: bool = False
    min_freq: int = 1
    max_vocab: int = 0
    vocab_size: int | None = None
    val_fraction: float = 0.1
    val_file: str | None = None
    encoding: str | None = None
    skip_bad: bool = False
    reverse: bool = False  # a backward model's ids: each file's text reversed (text/reverse.py)


@dataclass
class CorpusIds:
    """Token ids for training: the tokenizer, train and validation ids (mapped from the cache),
    what reading reported, and the cache entries used."""

    tokenizer: Any
    train: np.ndarray
    val: np.ndarray
    report: TextReport
    meta: dict[str, Any]  # the training entry's sidecar: corpus_sha256, validation, unknown, ...
    entries: list[CacheEntry]


def cached_corpus_ids(
    opts: CorpusOptions, cache_dir: Path, processes: int | None = None
) -> CorpusIds:
    """Train/validation ids of the files `opts` names (no stdin), from the cache or encoded now,
    on `processes` worker processes (None: chosen by the corpus size, see encode_pool.py)."""
    if opts.encoding is not None:
        check_encoding(opts.encoding)
    skipped: list[Skipped] = []
    paths = expand_inputs(list(opts.inputs), skipped)
    key = _key_or_first_error(paths, opts, skipped)
    entry = open_entry(
        cache_dir / key,
        lambda folder, ids_file: _build(opts, paths, skipped, folder, ids_file, processes),
    )
    tok = tokenizers.tokenizer_from_dict(entry.tokenizer)
    report = _report(entry.meta["report"])
    entries = [entry]
    val = entry.val
    if opts.val_file:
        val_entry = _val_entry(opts, entry, tok, cache_dir, processes)
        entries.append(val_entry)
        val = val_entry.train
    return CorpusIds(tok, entry.train, val, report, entry.meta, entries)


def _key_or_first_error(paths: list[str], opts: CorpusOptions, skipped: list[Skipped]) -> str:
    """The entry's key; a file that cannot be read fails as reading it in order would have."""
    options = _key_options(opts)
    options["skipped"] = [asdict(s) for s in skipped]
    try:
        return input_key(paths, options)
    except InputDataError:  # reading in order fails first where it should, or this stands
        scan_corpus(paths, list(skipped), opts.encoding, opts.skip_bad)
        raise


def _key_options(opts: CorpusOptions) -> dict[str, Any]:
    from importlib.metadata import version

    from rnnrepl import __version__
    from rnnrepl.text.tokenizers import WORD_VERSION

    d = asdict(opts)
    del d["inputs"], d["val_file"]
    d["val_fraction"] = None if opts.val_file else opts.val_fraction
    if not opts.reverse:  # the keys of forward runs stay as they were: their cache entries hold
        del d["reverse"]
    d["versions"] = [__version__, WORD_VERSION]
    if opts.level == "bpe":
        d["versions"].append(version("tokenizers"))
    return d


def input_key(paths: list[str], options: dict[str, Any]) -> str:
    """SHA-256 of the options and of each input's path, size and bytes: what decides the ids."""
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for path in paths:
        h.update(path.encode("utf-8", "surrogatepass") + b"\0")
        with open_input(path) as f:
            h.update(str(os.fstat(f.fileno()).st_size).encode() + b"\0")
            try:
                while chunk := f.read(_READ):
                    h.update(chunk)
            except OSError as exc:
                raise InputDataError(f"cannot read: {exc.strerror or exc}", path=path) from None
    return h.hexdigest()


def _build(
    opts: CorpusOptions,
    paths: list[str],
    skipped: list[Skipped],
    folder: Path,
    ids_file: IdsFile,
    processes: int | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the files in chunks: check them, build the tokenizer, encode into ids.bin."""
    started = time.monotonic()
    scanned = scan_corpus(paths, skipped, opts.encoding, opts.skip_bad)
    tok, learned = _stream_tokenizer(scanned, opts)
    dtype = file_dtype(tok.size)
    processes = encode_processes(scanned.report.chars, tok.level, processes)
    if opts.val_file or len(scanned.report.files) == 1:  # already in split order
        with ids_file(dtype) as w:
            _encode(scanned, tok, w, processes, opts.reverse)
        heads, _, split = split_ranges([w.count], opts.val_fraction)
        n_train = w.count if opts.val_file else heads[0][1]
    else:  # encoded in corpus order, then copied in split order: train, then validation
        with tempfile.TemporaryFile(dir=folder) as tmp:
            order = IdsWriter(
                tmp, dtype, folder / "ids in corpus order (a temporary file)", digest=False
            )
            ends = _encode(scanned, tok, order, processes, opts.reverse)
            heads, tails, split = split_ranges(ends, opts.val_fraction)
            with ids_file(dtype) as w:
                _copy(tmp, dtype, heads + tails, w)
        n_train = sum(b - a for a, b in heads)
    fields = {
        "n_train": n_train,
        "report": asdict(scanned.report),
        "corpus_sha256": scanned.sha256,
        "validation": split + (" as read backwards: the start as written" * opts.reverse),
        "encode_seconds": round(time.monotonic() - started, 3),
        "encode_processes": processes,
        **learned,
    }
    return fields, tok.to_dict()


def _stream_tokenizer(scanned: ScannedCorpus, opts: CorpusOptions) -> tuple[Any, dict]:
    """make_tokenizer's tokenizer, from the corpus read in chunks (a BPE vocabulary from a
    bounded sample of a large one: bpe_sample.py), and the sidecar's fields about it."""
    if opts.level == "bpe":
        from rnnrepl.text.bpe import BpeVocab, default_vocab_size
        from rnnrepl.text.bpe_sample import BpeSample

        size = opts.vocab_size or default_vocab_size(scanned.report.chars)
        sample = BpeSample(scanned, opts.lowercase)
        tok = BpeVocab.train(sample.texts(), size, lowercase=opts.lowercase)
        return tok, {"bpe_sample": sample.to_dict()}
    counts: Counter[str] = Counter()
    for piece in safe_pieces(scanned.pieces(), opts.level, opts.lowercase):
        piece = reverse_text(piece) if opts.reverse else piece  # lowercasing Σ looks around
        counts.update(count_symbols(piece, opts.level, opts.lowercase))
    tok = tokenizers.build_tokenizer(
        opts.level, counts, opts.lowercase, opts.min_freq, opts.max_vocab
    )
    return tok, {}


def _encode(
    scanned: ScannedCorpus, tok: Any, w: IdsWriter, processes: int, reverse: bool = False
) -> list[int]:
    """Write every file's ids in corpus order, on `processes` workers (0: here; see
    encode_pool.py); returns where each file's ids end. With `reverse` (character level, so
    always here), each file's text is reversed as a whole."""
    if reverse:
        return _encode_reversed(scanned, tok, w)
    lowercase = bool(getattr(tok, "lowercase", False))
    tagged = (
        (i, piece)
        for i, pieces in scanned.file_texts()
        for piece in safe_pieces(pieces, tok.level, lowercase)
    )
    ends: list[int] = []
    with PieceEncoder(tok, processes) as encoder:
        for i, ids in encoder.map(tagged):
            ends += [w.count] * (i - len(ends))  # the files before file i are written
            w.write(ids)
    return ends + [w.count] * (len(scanned.report.files) - len(ends))


def _encode_reversed(scanned: ScannedCorpus, tok: Any, w: IdsWriter) -> list[int]:
    """Each file's ids, its text reversed as a whole (one file's ids are held in memory)."""
    ends = []
    for _, pieces in scanned.file_texts():
        safe = safe_pieces(pieces, tok.level, bool(getattr(tok, "lowercase", False)))
        w.write(reversed_ids(safe, lambda piece: encode_corpus(piece, tok)))
        ends.append(w.count)
    return ends


def _copy(src: BinaryIO, dtype: str, ranges: list[tuple[int, int]], w: IdsWriter) -> None:
    """Copy id ranges [a, b) of the file `src` to `w`, a block at a time."""
    item = np.dtype(ID_DTYPES[dtype]).itemsize
    for a, b in ranges:
        src.seek(a * item)
        for start in range(a, b, _READ):
            n = min(_READ, b - start)
            w.write(np.frombuffer(src.read(n * item), dtype=ID_DTYPES[dtype]))


def make_tokenizer(text: str, opts: CorpusOptions) -> Any:
    """The tokenizer `opts` asks for, built from the training text."""
    if opts.level == "bpe":
        from rnnrepl.text.bpe import BpeVocab, default_vocab_size, safe_chunks

        size = opts.vocab_size or default_vocab_size(len(text))
        return BpeVocab.train(safe_chunks(text, 1 << 20), size, lowercase=opts.lowercase)
    counts = count_symbols(text, opts.level, opts.lowercase)
    return tokenizers.build_tokenizer(
        opts.level, counts, opts.lowercase, opts.min_freq, opts.max_vocab
    )


def _val_entry(
    opts: CorpusOptions, train: CacheEntry, tok: Any, cache_dir: Path, processes: int | None
) -> CacheEntry:
    """The --val file's ids, an entry of their own keyed by the file and the tokenizer."""
    assert opts.val_file is not None
    options = {"val_file": True, "encoding": opts.encoding}
    if opts.reverse:
        options["reverse"] = True
    options["tokenizer"] = train.meta["tokenizer_sha256"]
    key = input_key([opts.val_file], options)

    def build(folder: Path, ids_file: IdsFile) -> tuple[dict, None]:
        return _build_val(opts, tok, ids_file, processes)

    return open_entry(cache_dir / key, build)


def _build_val(
    opts: CorpusOptions, tok: Any, ids_file: IdsFile, processes: int | None
) -> tuple[dict, None]:
    assert opts.val_file is not None
    scanned = scan_corpus([opts.val_file], [], opts.encoding, skip_bad=False)
    processes = encode_processes(scanned.report.chars, tok.level, processes)
    with ids_file(file_dtype(tok.size)) as w:
        _encode(scanned, tok, w, processes, opts.reverse)
    return {"n_train": w.count, "encode_processes": processes}, None


def _report(d: dict[str, Any]) -> TextReport:
    return TextReport(**{**d, "skipped": [Skipped(**s) for s in d["skipped"]]})
