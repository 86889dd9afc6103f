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
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnrepl.errors import InputDataError
from rnnrepl.text import tokenizers
from rnnrepl.text.files import Skipped, TextReport, expand_inputs, load_corpus, open_input
from rnnrepl.text.token_cache import CacheEntry, IdsFile, file_dtype, open_entry
from rnnrepl.text.tokens import count_symbols, encode_corpus, encode_files, split_per_file

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


def cached_corpus_ids(opts: CorpusOptions, cache_dir: Path) -> CorpusIds:
    """Train/validation ids of the files `opts` names (no stdin), from the cache or encoded now."""
    skipped: list[Skipped] = []
    paths = expand_inputs(list(opts.inputs), skipped)
    key = _key_or_first_error(paths, opts, skipped)
    entry = open_entry(cache_dir / key, lambda folder, ids_file: _build(opts, ids_file))
    tok = tokenizers.tokenizer_from_dict(entry.tokenizer)
    report = _report(entry.meta["report"])
    entries = [entry]
    val = entry.val
    if opts.val_file:
        val_entry = _val_entry(opts, entry, tok, cache_dir)
        entries.append(val_entry)
        val = val_entry.train
    return CorpusIds(tok, entry.train, val, report, entry.meta, entries)


def _key_or_first_error(paths: list[str], opts: CorpusOptions, skipped: list[Skipped]) -> str:
    """The entry's key; a file that cannot be read fails as reading it in order would have."""
    options = _key_options(opts)
    options["skipped"] = [asdict(s) for s in skipped]
    try:
        return input_key(paths, options)
    except InputDataError:
        load_corpus(list(opts.inputs), encoding=opts.encoding, skip_bad=opts.skip_bad)
        raise


def _key_options(opts: CorpusOptions) -> dict[str, Any]:
    from importlib.metadata import version

    from rnnrepl import __version__
    from rnnrepl.text.tokenizers import WORD_VERSION

    d = asdict(opts)
    del d["inputs"], d["val_file"]
    d["val_fraction"] = None if opts.val_file else opts.val_fraction
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


def _build(opts: CorpusOptions, ids_file: IdsFile) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.monotonic()
    text, report = load_corpus(list(opts.inputs), encoding=opts.encoding, skip_bad=opts.skip_bad)
    tok = make_tokenizer(text, opts)
    ids, token_ends = encode_files(text, report.ends, tok)
    if opts.val_file:
        train, val, split = ids, ids[:0], f"the file {opts.val_file}"
    else:
        train, val, split = split_per_file(ids, token_ends, opts.val_fraction)
    with ids_file(file_dtype(tok.size)) as w:
        w.write(train)
        w.write(val)
    fields = {
        "n_train": len(train),
        "report": asdict(report),
        "corpus_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        "validation": split,
        "encode_seconds": round(time.monotonic() - started, 3),
    }
    return fields, tok.to_dict()


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


def _val_entry(opts: CorpusOptions, train: CacheEntry, tok: Any, cache_dir: Path) -> CacheEntry:
    """The --val file's ids, an entry of their own keyed by the file and the tokenizer."""
    assert opts.val_file is not None
    options = {"val_file": True, "encoding": opts.encoding}
    options["tokenizer"] = train.meta["tokenizer_sha256"]
    key = input_key([opts.val_file], options)
    return open_entry(cache_dir / key, lambda folder, ids_file: _build_val(opts, tok, ids_file))


def _build_val(opts: CorpusOptions, tok: Any, ids_file: IdsFile) -> tuple[dict, None]:
    assert opts.val_file is not None
    text, _ = load_corpus([opts.val_file], encoding=opts.encoding)
    with ids_file(file_dtype(tok.size)) as w:
        w.write(encode_corpus(text, tok))
    return {"n_train": w.count}, None


def _report(d: dict[str, Any]) -> TextReport:
    return TextReport(**{**d, "skipped": [Skipped(**s) for s in d["skipped"]]})
