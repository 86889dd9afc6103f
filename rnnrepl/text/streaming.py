"""One input file decoded in chunks, with exactly the checks and errors of reading it whole
(decoding.decode: byte-order marks, binary refused, an undecodable byte located by file:offset and
line), and text re-cut where tokenizing piecewise equals tokenizing the whole.

Memory holds one chunk at a time, so a corpus of any size is read in bounded memory.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from rnnrepl.errors import InputDataError
from rnnrepl.text.bpe import SAFE_CUT
from rnnrepl.text.decoding import (
    _BOMS,
    _SNIFF,
    BinaryFileError,
    _is_wide,
    _nul_hint,
    _refuse_binary,
    decode_failure,
    normalise_newlines,
)
from rnnrepl.text.files import open_input

CHUNK_BYTES = 1 << 23


class FileText:
    """Iterate the decoded, LF-normalised text of `path` in pieces. After a full iteration:
    `bytes` read, `chars` given, `crlf` line endings normalised and `encoding` used, as
    read_text reports them."""

    def __init__(self, path: str, encoding: str | None = None, chunk: int = CHUNK_BYTES) -> None:
        self.path, self.explicit, self.chunk = path, encoding, max(chunk, _SNIFF + 4)
        self.bytes = self.crlf = self.chars = 0
        self.encoding = self.codec = encoding or "utf-8"
        self.wide = False  # checked for binary after decoding (UTF-16/32, a byte-order mark)
        self.sample = b""  # the first 64 kB, which decode sniffs for control codes

    def __iter__(self) -> Iterator[str]:
        with open_input(self.path) as f:
            block = self._read(f)
            self.codec, skip, wide = self._codec(block)
            self.sample, self.wide = block[:_SNIFF], wide
            decoder = codecs.getincrementaldecoder(self.codec)("strict")
            state = _TextState(self.explicit is not None)
            pos = 0  # the file offset of block[0]
            while True:
                more = self._read(f)
                if not wide:
                    self._check_bytes(block, pos, more, f)
                text = self._decode(decoder, block[skip:], pos + skip, more, f)
                if wide:
                    state.watch(text)
                piece = state.normalise(text, final=not more)
                if piece:
                    self.chars += len(piece)
                    yield piece
                self.crlf = state.crlf
                pos, skip, block = pos + len(block), 0, more
                if not block:
                    break
            if wide:
                state.refuse_binary(self.path)

    def _read(self, f: BinaryIO) -> bytes:
        try:
            data = f.read(self.chunk)
        except OSError as exc:
            raise InputDataError(f"cannot read: {exc.strerror or exc}", path=self.path) from None
        self.bytes += len(data)
        return data

    def _codec(self, head: bytes) -> tuple[str, int, bool]:
        """(codec, bytes of byte-order mark to skip, whether text is checked after decoding)."""
        if self.explicit is not None:
            return _endian(self.explicit, head), 0, _is_wide(self.explicit)
        for bom, codec in _BOMS:
            if head.startswith(bom):
                self.encoding = codec
                return ("utf-8" if codec == "utf-8-sig" else codec), len(bom), True
        return "utf-8", 0, False

    def _check_bytes(self, block: bytes, pos: int, more: bytes, f: BinaryIO) -> None:
        """A NUL anywhere means binary; so do many control codes in the first 64 kB, unless a
        NUL further on gives the more telling message (as decode's whole-file check does)."""
        nul = block.find(b"\x00")
        if nul >= 0:
            _refuse_binary(_nul_hint(self.sample, pos + nul), "", self.path)
        if pos == 0:
            try:
                _refuse_binary("", self.sample.decode("latin-1"), self.path)
            except BinaryFileError:
                self._refuse_nul_ahead(pos + len(block), more, f)
                raise

    def _refuse_nul_ahead(self, pos: int, more: bytes, f: BinaryIO) -> None:
        """Refuse the file as binary if a NUL lies in `more` (at `pos`) or anywhere after it."""
        while more:
            nul = more.find(b"\x00")
            if nul >= 0:
                _refuse_binary(_nul_hint(self.sample, pos + nul), "", self.path)
            pos, more = pos + len(more), f.read(self.chunk)

    def _decode(
        self, decoder: codecs.IncrementalDecoder, data: bytes, pos: int, more: bytes, f: BinaryIO
    ) -> str:
        """Decode `data` (at file offset `pos`); `more` is the next chunk (empty at the end)."""
        pending = decoder.getstate()[0]
        try:
            return decoder.decode(data, not more)
        except UnicodeDecodeError as exc:
            if not self.wide:  # a binary file is refused as such before any decoding error
                self._refuse_nul_ahead(pos + len(data), more, f)
            start = pos - len(pending) + exc.start  # exc.object: the pending bytes, then data
            bad = exc.object[exc.start : max(exc.end, exc.start + 1)][:8]
            line = self._line_of(start)
            raise decode_failure(bad, start, line, self.codec, self.path, self.explicit) from None

    def _line_of(self, offset: int) -> int:
        """The 1-based line of a byte offset, counted again from the start (errors only)."""
        lines, done = 1, 0
        with open_input(self.path) as f:
            while done < offset and (block := f.read(min(self.chunk, offset - done))):
                lines += block.count(b"\n")
                done += len(block)
        return lines


def _endian(encoding: str, head: bytes) -> str:
    """UTF-16/32 without a byte-order mark decode in the machine's order when whole; their
    incremental decoders refuse such text, so name the order."""
    name = codecs.lookup(encoding).name
    if name in ("utf-16", "utf-32") and not head.startswith(_MARKS[name]):
        return f"{name}-{'le' if sys.byteorder == 'little' else 'be'}"
    return encoding


_MARKS = {
    "utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
    "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
}


class _TextState:
    """Decoded text on its way out: CRLF/CR -> LF across chunk edges, an explicit encoding's
    BOM character dropped, and (for text checked after decoding) the first NUL and 64k sample."""

    def __init__(self, strip_bom: bool) -> None:
        self.strip_bom, self.cr, self.crlf = strip_bom, False, 0
        self.chars, self.nul, self.sample = 0, -1, ""

    def watch(self, text: str) -> None:
        if self.nul < 0 and (at := text.find("\x00")) >= 0:
            self.nul = self.chars + at
        if len(self.sample) < _SNIFF:
            self.sample += text[: _SNIFF - len(self.sample)]
        self.chars += len(text)

    def refuse_binary(self, name: str) -> None:
        hint = f"NUL character at offset {self.nul}" if self.nul >= 0 else ""
        _refuse_binary(hint, self.sample, name)

    def normalise(self, text: str, final: bool) -> str:
        if self.strip_bom and text:
            text, self.strip_bom = text.removeprefix("\ufeff"), False
        if self.cr:
            text, self.cr = "\r" + text, False
        if text.endswith("\r") and not final:
            text, self.cr = text[:-1], True
        text, fixed = normalise_newlines(text)
        self.crlf += fixed
        return text


def safe_pieces(
    pieces: Iterable[str], level: str, lowercase: bool, size: int = 1 << 22
) -> Iterator[str]:
    """The text of `pieces` again, re-cut into pieces of about `size` characters or more, only
    where tokenizing (and counting) piecewise equals doing it whole: for characters anywhere
    (unless lowercasing meets a Σ), for words after a newline or space, for BPE before a space
    or newline that follows a non-space (tokens.py and bpe.py say why)."""
    buf = ""
    for piece in pieces:
        buf += piece
        if len(buf) >= size and (cut := _last_safe_cut(buf, level, lowercase)):
            yield buf[:cut]
            buf = buf[cut:]
    if buf:
        yield buf


def _last_safe_cut(text: str, level: str, lowercase: bool) -> int:
    if level == "bpe":
        cut = 0
        for m in SAFE_CUT.finditer(text, max(1, len(text) - (1 << 16))):
            cut = m.start()
        return cut
    if level == "char" and not (lowercase and "Σ" in text):
        return len(text)
    return max(text.rfind("\n"), text.rfind(" ")) + 1
