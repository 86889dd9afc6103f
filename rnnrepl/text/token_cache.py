"""The token cache: a corpus's ids encoded once into a raw little-endian file and read back
through a memory map, while the corpus and the options that decide its ids are unchanged.

An entry is a folder DIR/KEY, KEY a SHA-256 of the inputs (paths and bytes) and those options:
``ids.bin`` holds the training ids then the validation ids as uint8, uint16 or uint32 (the
smallest that holds the vocabulary); ``tokenizer.json`` the tokenizer built from the corpus;
``meta.json``, the sidecar, written last, commits the entry. A flock on ``KEY/lock`` makes
processes started at once (DDP ranks) encode once and then all map the same file. An entry is
checked before every use (the sidecar's own digest, the tokenizer's digest, the size and CRC-32 of
ids.bin) and rebuilt when anything is off: a damaged entry is never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from rnnrepl.atomic import atomic_file, atomic_write_bytes, resource_error
from rnnrepl.errors import ResourceError

FORMAT = 1
IDS, META, TOKENIZER, LOCK = "ids.bin", "meta.json", "tokenizer.json", "lock"
_READ = 1 << 24  # bytes per read when hashing or checking a file
ID_DTYPES = {"uint8": "<u1", "uint16": "<u2", "uint32": "<u4"}


def file_dtype(vocab_size: int) -> str:
    """The smallest unsigned dtype name that holds every id of a vocabulary of this size."""
    return next(name for name, bits in (("uint8", 8), ("uint16", 16), ("uint32", 32))
                if vocab_size <= 1 << bits)  # fmt: skip


class IdsWriter:
    """Appends id arrays to ids.bin in the entry's dtype; counts, CRC-32 and SHA-256 as it goes."""

    def __init__(self, f: BinaryIO, dtype: str, path: Path, digest: bool = True) -> None:
        self.f, self.dtype, self.path, self.digest = f, dtype, path, digest
        self.count, self.crc = 0, 0
        self.sha = hashlib.sha256()

    def write(self, ids: np.ndarray) -> None:
        data = np.ascontiguousarray(ids, dtype=ID_DTYPES[self.dtype]).tobytes()
        try:
            self.f.write(data)
        except OSError as exc:  # disk full, file too large: exit 5 with the path and a fix
            raise resource_error(exc, self.path) from None
        self.count += len(ids)
        if self.digest:
            self.crc = zlib.crc32(data, self.crc)
            self.sha.update(data)


@dataclass
class CacheEntry:
    """A checked entry: the ids mapped read-only (copy-on-write), and its sidecar."""

    folder: Path
    ids: np.ndarray  # (count,) train ids then validation ids
    meta: dict[str, Any]
    tokenizer: dict[str, Any] | None
    reused: bool
    damage: str | None  # why an entry found there was rebuilt

    @property
    def train(self) -> MappedIds:
        return self._part(0, self.meta["n_train"])

    @property
    def val(self) -> MappedIds:
        return self._part(self.meta["n_train"], self.meta["count"])

    def _part(self, start: int, end: int) -> MappedIds:
        part = self.ids[start:end].view(MappedIds)
        name = f"{self.meta['ids_sha256']}:{self.meta['dtype']}:{start}:{end}"
        part.digest = hashlib.sha256(name.encode()).hexdigest()
        return part


class MappedIds(np.ndarray):
    """Ids mapped from the cache, named by `digest` (the sidecar's SHA-256 of ids.bin and the
    range), so that nothing needs to read them all to tell them apart. Arrays derived from them
    (slices, arithmetic) carry no digest."""

    digest: str | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.digest = None


# build(folder, ids_file) writes the ids inside `with ids_file(dtype) as writer:` and returns the
# sidecar's fields (n_train at least) and the tokenizer's dict (None: the entry has none).
IdsFile = Callable[[str], contextlib.AbstractContextManager[IdsWriter]]
Builder = Callable[[Path, IdsFile], tuple[dict[str, Any], dict[str, Any] | None]]


def open_entry(folder: Path, build: Builder) -> CacheEntry:
    """The entry in `folder`, checked, or built by `build` under the entry's lock."""
    from filelock import FileLock

    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(folder / LOCK)
        lock.acquire()
    except OSError as exc:
        raise resource_error(exc, folder / LOCK) from None
    try:
        found = _read_entry(folder)
        if isinstance(found, CacheEntry):
            return found
        damage = found if (folder / META).exists() else None
        _build(folder, build)
        entry = _read_entry(folder)
        if not isinstance(entry, CacheEntry):
            raise ResourceError(
                f"the token cache entry just written does not read back: {entry}",
                path=str(folder),
                hint="check the disk; remove that folder and train again",
            )
        entry.reused, entry.damage = False, damage
        return entry
    finally:
        lock.release()


def _build(folder: Path, build: Builder) -> None:
    (folder / META).unlink(missing_ok=True)  # the entry is uncommitted until meta.json is back
    stats: dict[str, Any] = {}

    @contextlib.contextmanager
    def ids_file(dtype: str) -> Iterator[IdsWriter]:
        with atomic_file(folder / IDS) as f:
            w = IdsWriter(f, dtype, folder / IDS)
            yield w
        stats.update(dtype=dtype, count=w.count, ids_crc32=w.crc, ids_sha256=w.sha.hexdigest())

    fields, tokenizer = build(folder, ids_file)
    meta = {"format": FORMAT, **fields, **stats}
    if tokenizer is not None:
        data = json.dumps(tokenizer, sort_keys=True).encode()
        atomic_write_bytes(folder / TOKENIZER, data)
        meta["tokenizer_sha256"] = hashlib.sha256(data).hexdigest()
    meta["n_train"] = min(int(meta["n_train"]), int(meta["count"]))
    meta["unknown"] = _zeros(folder / IDS, meta["dtype"], meta["n_train"])
    meta["self_sha256"] = _self_digest(meta)
    atomic_write_bytes(folder / META, json.dumps(meta, sort_keys=True, indent=1).encode())


def _self_digest(meta: dict[str, Any]) -> str:
    rest = {k: v for k, v in meta.items() if k != "self_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _zeros(path: Path, dtype: str, n: int) -> int:
    """How many of the first n ids are 0 (<unk>), read in blocks (not mapped: RSS stays flat)."""
    item = np.dtype(ID_DTYPES[dtype]).itemsize
    zeros, done = 0, 0
    with open(path, "rb") as f:
        while done < n:
            block = np.frombuffer(f.read(min(_READ, (n - done) * item)), dtype=ID_DTYPES[dtype])
            if not len(block):
                break
            zeros += len(block) - int(np.count_nonzero(block))
            done += len(block)
    return zeros


def _read_entry(folder: Path) -> CacheEntry | str:
    """The entry if every check passes, else why not (a short reason for the user)."""
    meta = _read_meta(folder / META)
    if isinstance(meta, str):
        return meta
    tokenizer = None
    if "tokenizer_sha256" in meta:
        tokenizer = _read_tokenizer(folder / TOKENIZER, meta["tokenizer_sha256"])
        if isinstance(tokenizer, str):
            return tokenizer
    problem = _check_ids(folder / IDS, meta)
    if problem:
        return problem
    ids = np.memmap(folder / IDS, dtype=ID_DTYPES[meta["dtype"]], mode="c") if meta["count"] else (
        np.zeros(0, dtype=ID_DTYPES[meta["dtype"]]))  # fmt: skip
    return CacheEntry(folder, ids, meta, tokenizer, reused=True, damage=None)


_META_TYPES = {"format": int, "dtype": str, "count": int, "n_train": int, "unknown": int,
               "ids_crc32": int, "ids_sha256": str, "self_sha256": str}  # fmt: skip


def _read_meta(path: Path) -> dict[str, Any] | str:
    try:
        meta = json.loads(path.read_bytes())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:
        return f"{META} does not read: {exc}"
    if not isinstance(meta, dict):
        return f"{META} is not a JSON object"
    for key, kind in _META_TYPES.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            return f"{META} lacks a valid {key}"
    if meta["format"] != FORMAT or meta["dtype"] not in ID_DTYPES:
        return f"{META} has format {meta['format']}, dtype {meta['dtype']!r}"
    if meta["self_sha256"] != _self_digest(meta):
        return f"{META} does not match its own digest"
    return meta


def _read_tokenizer(path: Path, sha: str) -> dict[str, Any] | str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"{TOKENIZER} does not read: {exc.strerror or exc}"
    if hashlib.sha256(data).hexdigest() != sha:
        return f"{TOKENIZER} does not match its digest"
    return json.loads(data)


def _check_ids(path: Path, meta: dict[str, Any]) -> str | None:
    """Size and CRC-32 of ids.bin, read in blocks (not mapped, so RSS does not grow)."""
    want = meta["count"] * np.dtype(ID_DTYPES[meta["dtype"]]).itemsize
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size != want:
                return f"{IDS} holds {size:,} bytes, not {want:,}"
            crc = 0
            while chunk := f.read(_READ):
                crc = zlib.crc32(chunk, crc)
    except OSError as exc:
        return f"{IDS} does not read: {exc.strerror or exc}"
    return None if crc == meta["ids_crc32"] else f"{IDS} does not match its CRC-32"
