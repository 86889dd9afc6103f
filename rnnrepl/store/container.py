"""The rnnrepl container: safetensors plus an envelope in its metadata, read without trusting it.

Before safetensors sees a byte, the file must be a regular file (checked before and after a
non-blocking open) and must not carry the magic bytes of another format (pickle, zip, tar, npy,
HDF5, gzip are refused by name). safetensors then checks the layout itself (header length, JSON,
dtypes, shapes against offsets, offsets that tile the payload exactly); its errors become the
one-line CheckpointErrors below. What it does not check is checked here: duplicate JSON keys (a
parser differential), the envelope (format, format_version, kind) and two SHA-256 digests:
`header_sha256` over the canonical JSON of the header without itself, and `payload_sha256` over the
bytes after the header. So a flipped bit or a truncated file is a CheckpointError, never a parser
exception.
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
    _verify(data, meta["kind"], path)  # what the loader will check, checked before it is written
    return data


def read_verified(path: Path, kind: str) -> tuple[dict[str, str], dict[str, Tensor]]:
    """Read a file checking it step by step; its metadata and tensors."""
    data = _read_regular(path)
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:  # any parser failure means a corrupt file
        raise _corrupt(exc, data, path) from None
    return _verify(data, kind, path), tensors


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file that is no foreign format, which the address space can hold."""
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
        _sniff(f.read(min(st.st_size, 512)), path)
        _check_address_space(st.st_size, path)
        f.seek(0)
        data = f.read(st.st_size)
    if len(data) != st.st_size:
        raise CheckpointError("checkpoint changed while being read", path=str(path))
    return data


def _verify(data: bytes, kind: str, path: Path) -> dict[str, str]:
    """The envelope and both digests of a file safetensors accepts; its metadata."""
    n = int.from_bytes(data[:8], "little")
    meta, entries = _parse_header(data[8 : 8 + n], path)
    _check_envelope(meta, entries, kind, path)
    _check_payload(data, n, meta, path)
    return meta


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
    envelope and header digest are verified, the layout and payload digest are not."""
    try:
        _require_regular(os.stat(path).st_mode, path)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise CheckpointError(f"cannot open checkpoint: {exc.strerror}", path=str(path)) from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(min(size, 512))
        _sniff(head, path)
        n = int.from_bytes(head[:8], "little")
        if n > min(size - 8, MAX_HEADER):  # safetensors is not asked here: bound the read
            raise CheckpointError(f"truncated or absurd header of {n} bytes", path=str(path))
        f.seek(8)
        meta, entries = _parse_header(f.read(n), path)
    _check_envelope(meta, entries, kind, path)
    return meta


def _require_regular(mode: int, path: Path) -> None:
    if not stat.S_ISREG(mode):
        raise CheckpointError("not a regular file (FIFO, device or socket refused)", path=str(path))


def _sniff(head: bytes, path: Path) -> None:
    """Refuse text and foreign formats by their first bytes, each by name."""
    if _looks_like_text(head):  # a safetensors file starts with a length: NUL bytes, not text
        raise CheckpointError(
            "this is a text file, not a model",
            path=str(path),
            hint=f"to train a model on it: rnnrepl train {shlex.quote(str(path))} -o NAME",
        )
    if len(head) < 10:
        raise CheckpointError("file too short to be a checkpoint (truncated?)", path=str(path))
    if head[8:9] == b"{":  # every safetensors header is a JSON object
        return
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        raise CheckpointError("refusing a pickle file", path=str(path), hint=_REFUSED_HINT)
    for offset, magic, name in _FOREIGN:
        if head[offset : offset + len(magic)] == magic:
            raise CheckpointError(f"refusing {name}", path=str(path), hint=_REFUSED_HINT)
    raise CheckpointError("not a safetensors file", path=str(path), hint=_REFUSED_HINT)


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


def _parse_header(raw: bytes, path: Path) -> tuple[dict[str, str], dict]:
    """The metadata and tensor entries; refuses duplicate keys, which safetensors accepts."""
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError("corrupt header: not valid JSON", path=str(path)) from None
    if not isinstance(header, dict):
        raise CheckpointError("corrupt header: not a JSON object", path=str(path))
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError("corrupt header: metadata must map strings", path=str(path))
    return meta, header


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


# safetensors' words (0.5+, and the names 0.4 printed) -> rnnrepl's message
_SAFETENSORS_ERRORS = (
    (("header too small", "HeaderTooSmall"), "file too short to be a checkpoint (truncated?)"),
    (("header too large", "HeaderTooLarge"), "absurd header length {n}: not a safetensors file"),
    (("invalid header length", "InvalidHeaderLength"), "truncated: header of {n} bytes, file of {size}"),
    (("invalid offset", "InvalidOffset"), "tensor {name} overlaps or leaves a gap"),
    (("invalid shape", "TensorInvalidInfo"), "corrupt checkpoint: tensor offsets do not match shape"),
    (("incomplete metadata", "MetadataIncompleteBuffer"),
     "corrupt checkpoint: truncated, or trailing bytes after the tensors"),
    (("invalid JSON", "InvalidHeaderDeserialization"), "corrupt header entry: {detail}"),
)  # fmt: skip


def _corrupt(exc: Exception, data: bytes, path: Path) -> CheckpointError:
    """safetensors' refusal of `data` as one line that says what is wrong."""
    first = (str(exc).splitlines() or [""])[0]
    detail = re.sub(r"^Error while deserializing( header)?: ", "", first)
    n = int.from_bytes(data[:8], "little")
    template = next((t for words, t in _SAFETENSORS_ERRORS if any(w in detail for w in words)), "")
    if not template:
        return CheckpointError(f"corrupt checkpoint: {detail}", path=str(path))
    if template.startswith("corrupt header entry"):
        _parse_header(data[8 : 8 + n], path)  # not JSON at all: that is the message
    name = re.search(r'`(.+)`|\("(.+)"\)', detail)  # 0.5+: tensor `b`; 0.4: InvalidOffset("b")
    message = template.format(
        n=n,
        size=len(data),
        name=repr(name.group(1) or name.group(2)) if name else "",
        detail=re.split(r",? (?:expected one of|at line) ", detail.split(": ", 1)[-1])[0],
    )
    return CheckpointError(message, path=str(path))


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
