"""The rnnrepl container: safetensors plus an envelope in its metadata, read without trusting it.

Before safetensors sees a byte, the file must be a regular file (checked before and after a
non-blocking open), must not carry the magic bytes of another format (pickle, zip, tar, npy, HDF5,
gzip are refused by name), and its header is parsed and checked here: bounded length, unique
keys, known dtypes, sizes matching shapes, tensor data tiling the payload exactly. The envelope
(format, format_version, kind) is checked, then two SHA-256 digests: `header_sha256` over the
canonical JSON of the header without itself, and `payload_sha256` over the bytes after the header.
So a flipped bit or a truncated file is a CheckpointError, never a parser exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
from pathlib import Path
from typing import Any

import safetensors.torch
from torch import Tensor

from rnnrepl.errors import CheckpointError, ResourceError, human_bytes

FORMAT = "rnnrepl"
FORMAT_VERSION = 1
MAX_HEADER = 100 * 1024 * 1024
_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}  # fmt: skip
_FOREIGN = (
    (0, b"PK\x03\x04", "a zip archive (torch.save / TorchScript)"),
    (0, b"\x93NUMPY", "a numpy .npy array"),
    (0, b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (0, b"\x1f\x8b", "a gzip file"),
    (257, b"ustar", "a tar archive"),
)
# C0 controls but \t \n \v \f \r and ESC, and DEL: none of them occur in text.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_REFUSED_HINT = (
    "rnnrepl loads only its own .safetensors files; formats that can run code are refused"
)


def envelope(kind: str) -> dict[str, str]:
    return {"format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind}


def json_text(obj: Any, what: str, path: Path) -> str:
    """One metadata entry: `obj` as a JSON string (safetensors metadata maps strings)."""
    try:
        return json.dumps(obj, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what} is not JSON-serialisable: {exc}", path=str(path)) from None


def json_entry(meta: dict[str, str], key: str, path: Path) -> Any:
    """The JSON value of metadata entry `key`, or a CheckpointError naming it."""
    if key not in meta:
        raise CheckpointError(f"metadata lacks {key!r}", path=str(path))
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError):
        raise CheckpointError(f"metadata {key!r} is not valid JSON", path=str(path)) from None


def encode(tensors: dict[str, Tensor], meta: dict[str, str], path: Path) -> bytes:
    """safetensors bytes whose metadata carries the payload and header digests (self-checked)."""
    try:
        first = safetensors.torch.save(tensors, metadata=meta)
        n = int.from_bytes(first[:8], "little")
        entries = json.loads(first[8 : 8 + n])
        entries.pop("__metadata__", None)
        meta = meta | {"payload_sha256": hashlib.sha256(memoryview(first)[8 + n :]).hexdigest()}
        meta["header_sha256"] = _header_digest(meta, entries)
        data = safetensors.torch.save(tensors, metadata=meta)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"cannot serialise checkpoint: {exc}", path=str(path)) from None
    n = _check_prefix(data[:512], len(data), path)
    _check_payload(
        data, n, _check_header(data[8 : 8 + n], len(data) - 8 - n, meta["kind"], path)[0], path
    )
    return data


def read_verified(path: Path, kind: str) -> tuple[dict[str, str], dict[str, Tensor]]:
    """Check a file step by step, then (only then) hand its bytes to safetensors."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint: {exc.strerror}", path=str(path)) from None
    _require_regular(st.st_mode, path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO swapped in after stat cannot block us
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint: {exc.strerror}", path=str(path)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        _require_regular(st.st_mode, path)
        size = st.st_size
        n = _check_prefix(f.read(min(size, 512)), size, path)
        f.seek(8)
        raw_header = f.read(n)
        meta, _ = _check_header(raw_header, size - 8 - n, kind, path)
        _check_address_space(size, path)
        f.seek(0)
        data = f.read(size)
    if len(data) != size or data[8 : 8 + n] != raw_header:
        raise CheckpointError("checkpoint changed while being read", path=str(path))
    _check_payload(data, n, meta, path)
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # any parser failure means a corrupt file
        raise CheckpointError(f"corrupt checkpoint: {exc}", path=str(path)) from None
    return meta, tensors


def _check_address_space(size: int, path: Path) -> None:
    """Refuse (exit 5) a file the address-space limit (ulimit -v) cannot hold about three times
    over: its bytes, safetensors' copy and the tensors. An allocation that fails inside
    safetensors' Rust reader aborts the process beyond any handler, so this is checked first."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return
        with open("/proc/self/status", encoding="ascii") as status:
            used = next(int(ln.split()[1]) * 1024 for ln in status if ln.startswith("VmSize:"))
    except (ImportError, OSError, StopIteration, ValueError):
        return  # no limit, or no way to see the footprint (not Linux): nothing to check
    need = 3 * size
    if used + need > limit:
        raise ResourceError(
            f"out of memory loading a {human_bytes(size)} model: it needs about "
            f"{human_bytes(need)} more address space and the limit (ulimit -v) leaves "
            f"{human_bytes(max(limit - used, 0))}",
            path=str(path),
            hint="free memory, raise ulimit -v, or use a smaller model",
        )


def read_metadata(path: Path, kind: str) -> dict[str, str]:
    """The checked header metadata of a file without reading its tensors (for listings): the
    envelope and header digest are verified, the payload digest is not."""
    try:
        _require_regular(os.stat(path).st_mode, path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint: {exc.strerror}", path=str(path)) from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        n = _check_prefix(f.read(min(size, 512)), size, path)
        f.seek(8)
        return _check_header(f.read(n), size - 8 - n, kind, path)[0]


def _require_regular(mode: int, path: Path) -> None:
    if not stat.S_ISREG(mode):
        raise CheckpointError("not a regular file (FIFO, device or socket refused)", path=str(path))


def _check_prefix(head: bytes, size: int, path: Path) -> int:
    """Sniff foreign formats and return the header length, refusing absurd ones."""
    if _looks_like_text(head):  # a safetensors file starts with a length: NUL bytes, not text
        raise CheckpointError(
            "this is a text file, not a model",
            path=str(path),
            hint=f"to train a model on it: rnnrepl train {shlex.quote(str(path))} -o NAME",
        )
    if len(head) < 10:
        raise CheckpointError("file too short to be a checkpoint (truncated?)", path=str(path))
    if head[8:9] != b"{":  # every safetensors header is a JSON object
        if head[0] == 0x80 and 2 <= head[1] <= 5:
            raise CheckpointError("refusing a pickle file", path=str(path), hint=_REFUSED_HINT)
        for offset, magic, name in _FOREIGN:
            if head[offset : offset + len(magic)] == magic:
                raise CheckpointError(f"refusing {name}", path=str(path), hint=_REFUSED_HINT)
    n = int.from_bytes(head[:8], "little")
    if n > MAX_HEADER:
        raise CheckpointError(f"absurd header length {n}: not a safetensors file", path=str(path))
    if n > size - 8:
        raise CheckpointError(f"truncated: header of {n} bytes, file of {size}", path=str(path))
    if head[8:9] != b"{":
        raise CheckpointError("not a safetensors file", path=str(path), hint=_REFUSED_HINT)
    return n


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end of the sample allowed) with no control codes but
    whitespace and ESC, and something visible."""
    try:
        sample = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or exc.reason != "unexpected end of data":
            return False
        sample = head[: exc.start].decode("utf-8")
    return bool(sample.strip()) and _CONTROL.search(sample) is None


def _check_header(raw: bytes, payload_len: int, kind: str, path: Path) -> tuple[dict, dict]:
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError("corrupt header: not valid JSON", path=str(path)) from None
    if not isinstance(header, dict):
        raise CheckpointError("corrupt header: not a JSON object", path=str(path))
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError("corrupt header: metadata must map strings", path=str(path))
    _check_layout(header, payload_len, path)
    _check_envelope(meta, header, kind, path)
    return meta, header


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _check_layout(entries: dict[str, Any], payload_len: int, path: Path) -> None:
    """Known dtypes, sizes matching shapes, and spans that tile the payload exactly."""
    spans = []
    for name, e in entries.items():
        ok = isinstance(e, dict) and set(e) == {"dtype", "shape", "data_offsets"}
        ok = ok and isinstance(e["dtype"], str) and e["dtype"] in _ITEMSIZE
        ok = ok and _int_list(e["shape"]) and _int_list(e["data_offsets"])
        if not ok or len(e["data_offsets"]) != 2:
            raise CheckpointError(f"corrupt header entry for tensor {name!r}", path=str(path))
        begin, end = e["data_offsets"]
        numel = 1
        for dim in e["shape"]:
            numel *= dim
        if end - begin != numel * _ITEMSIZE[e["dtype"]]:
            raise CheckpointError(f"tensor {name!r}: offsets do not match shape", path=str(path))
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise CheckpointError(f"tensor {name!r} overlaps or leaves a gap", path=str(path))
        pos = end
    if pos != payload_len:
        what = "truncated" if pos > payload_len else "trailing bytes after the tensors"
        raise CheckpointError(f"corrupt checkpoint: {what}", path=str(path))


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)


def _check_envelope(meta: dict[str, str], entries: dict, kind: str, path: Path) -> None:
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            "not an rnnrepl checkpoint (safetensors without rnnrepl metadata)",
            path=str(path),
            hint="load a file saved by rnnrepl",
        )
    version = meta.get("format_version", "")
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise CheckpointError(f"corrupt format version {version!r}", path=str(path))
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(
            f"made by a newer rnnrepl (format {version}, this one reads up to {FORMAT_VERSION})",
            path=str(path),
            hint="upgrade rnnrepl",
        )
    if meta.get("header_sha256") != _header_digest(meta, entries):
        raise CheckpointError("checkpoint header is corrupt or tampered", path=str(path))
    if meta.get("kind") != kind:
        hint = "pass the model file, not NAME.state.safetensors" if kind == "model" else ""
        what = f"not a {kind} file (it is {meta.get('kind')!r})"
        raise CheckpointError(what, path=str(path), hint=hint)


def _header_digest(meta: dict[str, str], entries: dict) -> str:
    """SHA-256 of the canonical JSON of the whole header, minus this digest itself."""
    rest = {k: v for k, v in meta.items() if k != "header_sha256"}
    text = json.dumps({"__metadata__": rest, **entries}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _check_payload(data: bytes, n: int, meta: dict[str, str], path: Path) -> None:
    if hashlib.sha256(memoryview(data)[8 + n :]).hexdigest() != meta.get("payload_sha256"):
        raise CheckpointError(
            "checkpoint tensor data is corrupt or tampered (checksum mismatch)", path=str(path)
        )
