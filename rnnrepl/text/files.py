"""Read the user's text: files, directories, globs or stdin, strictly decoded, as one corpus.

Reading refuses binary files and non-regular files, caps stdin, normalises line endings and reports
what it did in a ``TextReport``; ``load_corpus`` joins many inputs and remembers where each ended.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from rnnrepl.errors import InputDataError, ResourceError
from rnnrepl.text.decoding import BadTextError, check_encoding, decode, normalise_newlines

_VISIBLE = re.compile(r"\S")

# Skipped when walking a directory (a file named explicitly is still read and sniffed).
BINARY_EXTENSIONS = frozenset(
    ".7z .a .arrow .avi .bin .bmp .bz2 .ckpt .class .db .dll .dylib .exe .flac .gguf .gif .gz .h5"
    " .hdf5 .ico .jar .jpeg .jpg .lz4 .mkv .mov .mp3 .mp4 .npy .npz .o .ogg .onnx .otf .parquet"
    " .pdf .pickle .pkl .png .pt .pth .pyc .rar .safetensors .so .sqlite .tar .tgz .tif .tiff .ttf"
    " .wav .webm .webp .whl .woff .woff2 .xz .zip .zst".split()
)


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
    text, used = decode(data, _display(path), encoding)
    text, fixed = normalise_newlines(text)
    return text, TextReport([path], len(data), len(text), fixed, {path: used})


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
    with open_input(path) as fh:
        try:
            return fh.read()
        except OSError as exc:
            raise InputDataError(f"cannot read: {exc.strerror or exc}", path=path) from None
        except MemoryError:
            size = os.fstat(fh.fileno()).st_size
            raise ResourceError(f"out of memory reading a {size}-byte file", path=path) from None


def open_input(path: str) -> BinaryIO:
    """An input file opened for binary reading; a missing, unreadable or non-regular file (a
    FIFO, a device, a directory) is an InputDataError, and opening never blocks."""
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
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _require_regular(mode: int, path: str) -> None:
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise InputDataError(
            f"is {what}", path=path, hint="pass a text file, or '-' to read a pipe"
        )


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
            extend_last(report.ends)
        if text:
            parts.append(text)
        report.ends.append((report.ends[-1] if report.ends else 0) + len(text))
    text = "".join(parts)
    del parts
    report.chars = len(text)
    if not report.files:
        raise no_readable_files(paths)
    check = ContentCheck()
    check.feed(text)
    check.finish(report.files)
    return text, report


def no_readable_files(paths: list[str]) -> InputDataError:
    return InputDataError(
        f"no readable input files: all {len(paths)} were skipped",
        path=_describe(paths),
        hint="pass --encoding if they are text in another encoding",
    )


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
        skip_or_raise(exc, path, many, skip_bad, report)
        return None
    report.files.append(path)
    report.sizes.append(one.bytes)
    report.bytes += one.bytes
    report.crlf_normalised += one.crlf_normalised
    report.encodings.update(one.encodings)
    return text


def skip_or_raise(
    exc: BadTextError, path: str, many: bool, skip_bad: bool, report: TextReport
) -> None:
    """A bad file among many is skipped with --skip-bad (listed in report.skipped), else its
    error names the option; one file is never skipped: its own error says more."""
    if not many:
        raise exc
    if skip_bad:
        why = f"{exc.message}: {exc.hint.split(';')[0]}" if exc.hint else exc.message
        report.skipped.append(Skipped(path, exc.reason, why))
        return
    raise type(exc)(
        exc.message, path=exc.path, hint=f"{exc.hint}; or pass --skip-bad to skip such files"
    ) from None


def extend_last(ends: list[int]) -> None:
    """A newline joined after the last text belongs to it (and to empty files after it), so
    every file's text ends its own line."""
    last = ends[-1]
    for i in range(len(ends) - 1, -1, -1):
        if ends[i] != last:
            break
        ends[i] = last + 1


class ContentCheck:
    """Refuses text nothing can learn from (empty, only whitespace, one visible symbol), fed
    piece by piece: the same verdict and message for a corpus read whole or in chunks."""

    def __init__(self) -> None:
        self.chars, self.symbol, self.count, self.varied = 0, "", 0, False

    def feed(self, text: str) -> None:
        self.chars += len(text)
        if self.varied:
            return
        rest = text
        if not self.symbol:
            first = _VISIBLE.search(text)
            if first is None:
                return
            self.symbol, rest = first.group(), text[first.start() :]
        self.count += rest.count(self.symbol)
        self.varied = re.search(rf"[^\s{re.escape(self.symbol)}]", rest) is not None

    def finish(self, files: list[str]) -> None:
        where = _describe(files)
        n_files = f"{len(files)} file" + ("" if len(files) == 1 else "s")
        if not self.chars:
            raise InputDataError(
                f"corpus is empty: 0 characters in {n_files}",
                path=where,
                hint="need at least 2 distinct symbols; pass files that contain text",
            )
        if not self.symbol:
            raise InputDataError(
                f"corpus is only whitespace: {self.chars} characters, 0 visible",
                path=where,
                hint="need at least 2 distinct visible symbols; check the input files and --encoding",
            )
        if not self.varied:
            raise InputDataError(
                f"corpus has only 1 distinct visible symbol ({self.symbol!r}, {self.count} times)",
                path=where,
                hint="need at least 2 distinct symbols to learn anything; pass more varied text",
            )
