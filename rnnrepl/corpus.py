"""Text in, tokens out: read files, directories, globs or stdin, and encode them compactly.

Reading decodes strictly (UTF-8 by default, byte-order marks honoured), refuses binary files and
normalises line endings, reporting what it did in a ``TextReport``. Encoding works in blocks of
text, so a large corpus becomes a uint16/int32 array without ever holding a Python object per token.
"""

from __future__ import annotations

import codecs
import glob
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from rnnrepl.errors import InputDataError, ResourceError, UsageError
from rnnrepl.vocab import counter_for

# Skipped when walking a directory (a file named explicitly is still read and sniffed).
BINARY_EXTENSIONS = frozenset(
    ".7z .a .arrow .avi .bin .bmp .bz2 .ckpt .class .db .dll .dylib .exe .flac .gguf .gif .gz .h5"
    " .hdf5 .ico .jar .jpeg .jpg .lz4 .mkv .mov .mp3 .mp4 .npy .npz .o .ogg .onnx .otf .parquet"
    " .pdf .pickle .pkl .png .pt .pth .pyc .rar .safetensors .so .sqlite .tar .tgz .tif .tiff .ttf"
    " .wav .webm .webp .whl .woff .woff2 .xz .zip .zst".split()
)
# Checked longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF = 1 << 16  # bytes (or characters) looked at for control characters
_MAX_CONTROL = 0.2  # a larger fraction of control characters means binary
# C0 controls except \t \n \v \f \r and ESC (coloured logs), plus DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BREAK = re.compile(r"[ \n]")
_VISIBLE = re.compile(r"\S")


class BadTextError(InputDataError):
    """Content that is not text in the expected encoding: what `train --skip-bad` may skip."""

    reason = "undecodable"


class BinaryFileError(BadTextError):
    reason = "binary"


@dataclass(frozen=True)
class Skipped:
    """An input left out: reason is "extension", "binary" or "undecodable"."""

    path: str
    reason: str
    detail: str = ""


@dataclass
class TextReport:
    """What reading did, for the CLI to show."""

    files: list[str] = field(default_factory=list)
    bytes: int = 0
    chars: int = 0
    crlf_normalised: int = 0  # CRLF pairs and lone CRs turned into LF
    encodings: dict[str, str] = field(default_factory=dict)  # path -> encoding used
    sizes: list[int] = field(default_factory=list)  # bytes read, per file in `files`
    ends: list[int] = field(default_factory=list)  # where each file's text ends in the corpus
    skipped: list[Skipped] = field(default_factory=list)


def expand_inputs(specs: Sequence[str], skipped: list[Skipped] | None = None) -> list[str]:
    """Files named by "-", paths, directories (recursive) and globs, in order, without repeats.
    Files a directory walk leaves out for their extension are appended to `skipped`."""
    out: list[str] = []
    seen: set[str] = set()
    skipped = [] if skipped is None else skipped
    for spec in specs:
        for path in _expand_one(spec, skipped):
            key = path if path == "-" else os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    if not out:
        raise InputDataError(
            "no input files",
            path=_describe(list(specs)) or None,
            hint="pass text files, directories or globs "
            "(directories skip hidden files and binary extensions such as .png, .gz)",
        )
    return out


def _expand_one(spec: str, skipped: list[Skipped]) -> list[str]:
    if spec == "-":
        return ["-"]
    if os.path.isdir(spec):
        return _walk(spec, skipped)
    if os.path.lexists(spec):
        return [spec]
    if any(c in spec for c in "*?["):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise InputDataError("no files match the pattern", path=spec)
        return [p for m in matches for p in (_walk(m, skipped) if os.path.isdir(m) else [m])]
    raise InputDataError("no such file or directory", path=spec)


def _walk(root: str, skipped: list[Skipped]) -> list[str]:
    """Regular files under root, sorted by path components, skipping hidden and binary names
    (hidden ones silently, binary extensions into `skipped`)."""

    def fail(exc: OSError) -> None:
        raise InputDataError("cannot read directory", path=exc.filename, hint=exc.strerror or "")

    found = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            full = os.path.join(dirpath, name)
            if name.startswith(".") or not os.path.isfile(full):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in BINARY_EXTENSIONS:
                skipped.append(Skipped(full, "extension", ext))
            else:
                found.append(full)
    found.sort(key=lambda p: os.path.relpath(p, root).split(os.sep))
    return found


def _display(path: str) -> str:
    return "<stdin>" if path == "-" else path


def _describe(paths: list[str]) -> str:
    names = [_display(p) for p in paths]
    if len(names) <= 3:
        return ", ".join(names)
    return f"{', '.join(names[:2])} and {len(names) - 2} more"


def read_text(
    path: str, encoding: str | None = None, stdin: BinaryIO | None = None
) -> tuple[str, TextReport]:
    """Decode one input ("-" is stdin) strictly, with line endings normalised to LF."""
    if encoding is not None:
        check_encoding(encoding)
    data = _read_stdin(stdin) if path == "-" else _read_file(path)
    text, used = _decode(data, _display(path), encoding)
    text, fixed = normalise_newlines(text)
    return text, TextReport([path], len(data), len(text), fixed, {path: used})


def check_encoding(encoding: str) -> None:
    """UsageError unless encoding names a text codec Python knows."""
    try:
        b"\0\0\0\0".decode(encoding)  # empty bytes would skip the codec lookup
    except UnicodeDecodeError:
        pass
    except LookupError:
        raise UsageError(
            f"unknown encoding {encoding!r}",
            hint="pass a Python codec name such as utf-8, latin-1, cp1252 or utf-16",
        ) from None


def normalise_newlines(text: str) -> tuple[str, int]:
    """CRLF and lone CR -> LF; returns the text and how many line endings changed."""
    crlf = text.count("\r\n")
    if crlf:
        text = text.replace("\r\n", "\n")
    lone = text.count("\r")
    if lone:
        text = text.replace("\r", "\n")
    return text, crlf + lone


def _read_stdin(stdin: Any) -> bytes:
    source = stdin if stdin is not None else sys.stdin
    if source is None:
        raise InputDataError("there is no standard input to read", path="<stdin>")
    source = getattr(source, "buffer", source)
    if not isinstance(source, CappedInput):
        source = CappedInput(source)
    try:
        data = source.read()
    except OSError as exc:
        raise InputDataError(f"cannot read: {exc.strerror or exc}", path="<stdin>") from None
    if isinstance(data, str):  # a text stream without a binary buffer (StringIO)
        data = data.encode("utf-8", "surrogateescape")
    return data


MAX_STDIN = 1 << 30  # default cap: a pipe has no size to check first, and may never end


class CappedInput:
    """A binary stream whose read() refuses to hold more than `limit` bytes (train --max-stdin)."""

    def __init__(self, stream: Any, limit: int = MAX_STDIN) -> None:
        self.stream, self.limit = stream, limit

    def read(self) -> bytes:
        chunks, total = [], 0
        while chunk := self.stream.read(min(1 << 20, self.limit + 1 - total)):
            if isinstance(chunk, str):  # a text stream without a binary buffer (StringIO)
                chunk = chunk.encode("utf-8", "surrogateescape")
            chunks.append(chunk)
            total += len(chunk)
            if total > self.limit:
                raise InputDataError(
                    f"standard input holds more than {self.limit:,} bytes",
                    path="<stdin>",
                    hint="save it to a file and pass its path, or raise --max-stdin",
                )
        return b"".join(chunks)


def _read_file(path: str) -> bytes:
    # O_NONBLOCK: opening a FIFO must not hang before fstat can refuse it.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputDataError("no such file", path=path) from None
    except PermissionError:
        raise InputDataError("permission denied", path=path) from None
    except OSError as exc:
        raise InputDataError(f"cannot open: {exc.strerror or exc}", path=path) from None
    try:
        _require_regular(os.fstat(fd).st_mode, path)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        try:
            return fh.read()
        except OSError as exc:
            raise InputDataError(f"cannot read: {exc.strerror or exc}", path=path) from None
        except MemoryError:
            size = os.fstat(fd).st_size
            raise ResourceError(f"out of memory reading a {size}-byte file", path=path) from None


def _require_regular(mode: int, path: str) -> None:
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise InputDataError(
            f"is {what}", path=path, hint="pass a text file, or '-' to read a pipe"
        )


def _is_wide(codec: str) -> bool:
    return codecs.lookup(codec).name.startswith(("utf-16", "utf-32"))


def _decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str]:
    """(text, encoding used). Binary content is refused before any decoding error."""
    if encoding is not None:
        wide = _is_wide(encoding)
        if not wide:
            _check_binary_bytes(data, name)
        text = _strict(data, 0, encoding, name, encoding)
        if wide:
            _check_binary_text(text, name)
        return text.removeprefix("\ufeff"), encoding
    for bom, codec in _BOMS:
        if data.startswith(bom):
            plain = "utf-8" if codec == "utf-8-sig" else codec
            text = _strict(data, len(bom), plain, name, None)
            _check_binary_text(text, name)
            return text, codec
    _check_binary_bytes(data, name)
    return _strict(data, 0, "utf-8", name, None), "utf-8"


def _strict(data: bytes, skip: int, codec: str, name: str, explicit: str | None) -> str:
    try:
        return str(memoryview(data)[skip:], codec, "strict")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        bad = data[offset : skip + max(exc.end, exc.start + 1)][:8]
        line = data.count(b"\n", 0, offset) + 1
        if explicit:
            advice = "try another --encoding (latin-1, cp1252, utf-16, ...)"
        elif codec != "utf-8":
            advice = "the file is damaged or not text; pass --encoding if it is something else"
        elif 0x80 <= bad[0] <= 0x9F:  # C1 range: Windows smart quotes and dashes
            advice = "if the file is Windows-1252 pass --encoding cp1252"
        else:
            advice = "if the file is Latin-1 pass --encoding latin-1"
        raise BadTextError(
            f"cannot decode as {explicit or codec.upper()}",
            path=f"{name}:{offset}",
            hint=f"bytes {bad!r} at byte offset {offset} (line {line}); {advice}",
        ) from None


def _check_binary_bytes(data: bytes, name: str) -> None:
    nul = data.find(b"\x00")
    hint = _nul_hint(data, nul) if nul >= 0 else ""
    _refuse_binary(hint, data[:_SNIFF].decode("latin-1"), name)


def _check_binary_text(text: str, name: str) -> None:
    nul = text.find("\x00")
    _refuse_binary(f"NUL character at offset {nul}" if nul >= 0 else "", text[:_SNIFF], name)


def _refuse_binary(nul_hint: str, sample: str, name: str) -> None:
    count = len(_CONTROL.findall(sample))
    if not nul_hint and count <= _MAX_CONTROL * len(sample):
        return
    hint = nul_hint or f"{count} of the first {len(sample)} characters are control codes"
    raise BinaryFileError("looks like a binary file", path=name, hint=f"{hint}; pass a text file")


def _nul_hint(data: bytes, nul: int) -> str:
    """Point at UTF-16 when the NULs sit at every other byte of a mostly-ASCII sample."""
    sample = data[: _SNIFF & ~1]
    for guess, zeros in (("utf-16-le", sample[1::2]), ("utf-16-be", sample[0::2])):
        if zeros and zeros.count(0) > 0.9 * len(zeros):
            return f"NUL at every other byte: UTF-16 without a byte-order mark? --encoding {guess}"
    return f"NUL byte at byte offset {nul}"


def load_corpus(
    specs: Sequence[str],
    encoding: str | None = None,
    stdin: BinaryIO | None = None,
    skip_bad: bool = False,
) -> tuple[str, TextReport]:
    """All inputs as one text, a newline between files that lack one (the last file is kept as
    it is, so a one-file corpus is exactly that file); refuses text nothing can learn from.
    With skip_bad, binary and undecodable files are left out (listed in report.skipped)."""
    if encoding is not None:
        check_encoding(encoding)
    report = TextReport()
    paths = expand_inputs(specs, report.skipped)
    parts: list[str] = []
    for path in paths:
        # One file is never skipped: its own error says more than "no readable input files".
        text = _read_one(path, encoding, stdin, len(paths) > 1, skip_bad, report)
        if text is None:
            continue
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
            _extend_last(report.ends)
        if text:
            parts.append(text)
        report.ends.append((report.ends[-1] if report.ends else 0) + len(text))
    text = "".join(parts)
    del parts
    report.chars = len(text)
    if not report.files:
        raise InputDataError(
            f"no readable input files: all {len(paths)} were skipped",
            path=_describe(paths),
            hint="pass --encoding if they are text in another encoding",
        )
    _check_content(text, report.files)
    return text, report


def _read_one(
    path: str,
    encoding: str | None,
    stdin: BinaryIO | None,
    many: bool,
    skip_bad: bool,
    report: TextReport,
) -> str | None:
    """One file's text, added to report; None when skip_bad leaves it out."""
    try:
        text, one = read_text(path, encoding, stdin)
    except BadTextError as exc:
        if not many:
            raise
        if skip_bad:
            why = f"{exc.message}: {exc.hint.split(';')[0]}" if exc.hint else exc.message
            report.skipped.append(Skipped(path, exc.reason, why))
            return None
        raise type(exc)(
            exc.message, path=exc.path, hint=f"{exc.hint}; or pass --skip-bad to skip such files"
        ) from None
    report.files.append(path)
    report.sizes.append(one.bytes)
    report.bytes += one.bytes
    report.crlf_normalised += one.crlf_normalised
    report.encodings.update(one.encodings)
    return text


def _extend_last(ends: list[int]) -> None:
    """A newline joined after the last text belongs to it (and to empty files after it), so
    every file's text ends its own line."""
    last = ends[-1]
    for i in range(len(ends) - 1, -1, -1):
        if ends[i] != last:
            break
        ends[i] = last + 1


def _check_content(text: str, files: list[str]) -> None:
    where = _describe(files)
    n_files = f"{len(files)} file" + ("" if len(files) == 1 else "s")
    if not text:
        raise InputDataError(
            f"corpus is empty: 0 characters in {n_files}",
            path=where,
            hint="need at least 2 distinct symbols; pass files that contain text",
        )
    first = _VISIBLE.search(text)
    if first is None:
        raise InputDataError(
            f"corpus is only whitespace: {len(text)} characters, 0 visible",
            path=where,
            hint="need at least 2 distinct visible symbols; check the input files and --encoding",
        )
    symbol = first.group()
    if re.search(rf"[^\s{re.escape(symbol)}]", text[first.end() :]) is None:
        raise InputDataError(
            f"corpus has only 1 distinct visible symbol ({symbol!r}, {text.count(symbol)} times)",
            path=where,
            hint="need at least 2 distinct symbols to learn anything; pass more varied text",
        )


def token_dtype(size: int) -> type[np.unsignedinteger[Any]] | type[np.signedinteger[Any]]:
    """The compact dtype for ids of a vocabulary of this size."""
    return np.uint16 if size <= 65535 else np.int32


def encode_corpus(text: str, tokenizer: Any, block_chars: int = 1 << 20) -> np.ndarray:
    """Token ids of text, identical to encoding it whole, built block by block."""
    dtype = token_dtype(tokenizer.size)
    encode = getattr(tokenizer, "encode_array", None) or tokenizer.encode
    lowercase = bool(getattr(tokenizer, "lowercase", False))
    parts = [
        np.asarray(encode(block)).astype(dtype, copy=False)
        for block in _blocks(text, block_chars, tokenizer.level, lowercase)
    ]
    if not parts:
        return np.zeros(0, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def count_symbols(
    text: str, level: str, lowercase: bool, block_chars: int = 1 << 20
) -> Counter[str]:
    """Token counts for vocab.build_tokenizer, identical to counting the text whole."""
    if level not in ("char", "word"):
        raise UsageError(f"unknown level {level!r}", hint="use --level char or --level word")
    count = counter_for(level)
    counts: Counter[str] = Counter()
    for block in _blocks(text, block_chars, level, lowercase):
        count(block, counts, lowercase)
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
    description of the split. Files too small for MIN_FILE_VAL_TOKENS are split as one text
    together; one file is split exactly as split_train_val does (views, no copy)."""
    share = f"{100 * val_fraction:g}%"
    if len(token_ends) <= 1:
        train, val = split_train_val(ids, val_fraction)
        return train, val, f"last {share} of the text"
    _check_fraction(val_fraction)
    heads, tails, small, start = [], [], [], 0
    for end in token_ends:
        piece, start = ids[start:end], end
        if len(piece) - int(len(piece) * (1 - val_fraction)) < MIN_FILE_VAL_TOKENS:
            small.append(piece)
            continue
        head, tail = split_train_val(piece, val_fraction)
        heads.append(head)
        tails.append(tail)
    if small:
        head, tail = split_train_val(np.concatenate(small), val_fraction)
        heads.append(head)
        tails.append(tail)
    return np.concatenate(heads), np.concatenate(tails), _split_text(share, len(token_ends), small)


def _split_text(share: str, n_files: int, small: list[np.ndarray]) -> str:
    big = n_files - len(small)
    if not small:
        return f"last {share} of each of {n_files} files"
    if not big:
        return f"last {share} of the {n_files} files as one text (each too small alone)"
    each = f"each of {big} files" if big > 1 else "1 file"
    return f"last {share} of {each}, and of the other {len(small)} as one text"


def check_length(ids: np.ndarray, need: int, what: str, option_hint: str) -> None:
    """InputDataError with have/need numbers when ids is shorter than need tokens."""
    if len(ids) < need:
        raise InputDataError(
            f"{what} too short: {len(ids)} tokens, need at least {need}", hint=option_hint
        )
