"""The one escaping function for untrusted text on its way to a terminal or an error line.

Anything that did not come from rnnrepl's own literals (tokens, generated text, model metadata,
file names, recorded command lines, corpus catalogs, messages carrying any of these) passes
through ``safe_text`` before a renderer or stderr sees it. Control characters (C0 with ESC, DEL,
C1), bidi overrides and isolates, other invisible format characters, lone surrogates and
unassigned code points are made visible as ``\\x1b`` / ``\\u202e``, so the text cannot drive
the terminal (window title, OSC 52 clipboard, hyperlinks, clearing the screen) or hide what it
says. ``safe_json`` applies the same rule to ``--json`` output. Rich markup is a separate
matter: callers hand the result to ``rich.text.Text``, never into markup. No rich import here:
``cli.main`` prints the core's error messages (paths in them) through this too.
"""

from __future__ import annotations

import json
import unicodedata

_NAMED = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNSAFE = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def safe_text(text: object, one_line: bool = False) -> str:
    """Text for a terminal: spaces kept, newlines and tabs kept unless `one_line`, every other
    control or invisible format character escaped (idempotent: the output has none left)."""
    keep = "" if one_line else "\n\t"
    return "".join(ch if ch in keep or not is_unsafe(ch) else escape_char(ch) for ch in str(text))


def safe_json(obj: object) -> str:
    """JSON text, UTF-8 kept readable, with the same characters as ``safe_text`` escapes written
    as JSON ``\\u`` escapes (a lone surrogate included), so printing it is safe and never fails."""
    text = json.dumps(obj, ensure_ascii=False)  # escapes C0 controls, quotes and backslashes
    if text.isascii():
        return text.replace("\x7f", "\\u007f")
    return "".join(_json_escape(ch) if is_unsafe(ch) else ch for ch in text)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # beyond the BMP JSON wants a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def visible(token: str) -> str:
    """A token as a label: whitespace as symbols, control/format (bidi) characters escaped."""
    if token in _NAMED:
        return _NAMED[token]
    out = []
    for ch in token:
        if ch in _NAMED and len(token) > 1:
            out.append(_NAMED[ch])
        elif is_unsafe(ch):
            out.append(escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def escape_char(ch: str) -> str:
    """One character as the escape a shell's $'...' and Python both read back: \\n, \\x1b, \\u202e."""
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def is_unsafe(ch: str) -> bool:
    """Control, format (bidi, zero-width), surrogate, private-use, unassigned or line/paragraph
    separator: characters a terminal may act on or that do not show as themselves."""
    return unicodedata.category(ch) in _UNSAFE
