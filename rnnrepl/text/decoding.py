"""Bytes to text without guessing: byte-order marks honoured, binary refused, errors located.

A decoding failure names the file, the byte offset and line, the bad bytes and an --encoding to
try; a file that looks binary (NULs, many control codes) is refused before any decoding error.
"""

from __future__ import annotations

import codecs
import re

from rnnrepl.errors import InputDataError, UsageError

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


class BadTextError(InputDataError):
    """Content that is not text in the expected encoding: what `train --skip-bad` may skip."""

    reason = "undecodable"


class BinaryFileError(BadTextError):
    reason = "binary"


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


def _is_wide(codec: str) -> bool:
    return codecs.lookup(codec).name.startswith(("utf-16", "utf-32"))


def decode(data: bytes, name: str, encoding: str | None) -> tuple[str, str]:
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
        raise decode_failure(bad, offset, line, codec, name, explicit) from None


def decode_failure(
    bad: bytes, offset: int, line: int, codec: str, name: str, explicit: str | None
) -> BadTextError:
    """The error for undecodable `bad` bytes at byte `offset` (on `line`) of input `name`."""
    if explicit:
        advice = "try another --encoding (latin-1, cp1252, utf-16, ...)"
    elif codec != "utf-8":
        advice = "the file is damaged or not text; pass --encoding if it is something else"
    elif 0x80 <= bad[0] <= 0x9F:  # C1 range: Windows smart quotes and dashes
        advice = "if the file is Windows-1252 pass --encoding cp1252"
    else:
        advice = "if the file is Latin-1 pass --encoding latin-1"
    return BadTextError(
        f"cannot decode as {explicit or codec.upper()}",
        path=f"{name}:{offset}",
        hint=f"bytes {bad!r} at byte offset {offset} (line {line}); {advice}",
    )


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
