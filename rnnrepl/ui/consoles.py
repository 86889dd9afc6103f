"""Console streams that never raise on text they cannot encode (PYTHONIOENCODING=ascii, LC_ALL=C).

A character the console's encoding lacks becomes an ASCII look-alike where one keeps the text
readable (the em dash of every error line becomes "-", bars become "#"), otherwise "?" on stdout
(one column per character, so tables stay aligned) or a backslash escape on stderr and on
line-mode chat's stdout (a file name in an error line, or what the model wrote, stays
identifiable). Pure stdlib: any layer may call it.
"""

from __future__ import annotations

import codecs
from typing import TextIO

STDOUT_ERRORS = "rnnrepl-replace"
STDERR_ERRORS = "rnnrepl-backslash"  # also line-mode chat's stdout: generated text only, no tables

LOOK_ALIKES = {
    "\u2014": "-",  # em dash
    "\u2013": "-",  # en dash
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",  # ellipsis
    "\u00b7": ".",  # middle dot (status line separators)
    "\u203a": ">",  # the REPL prompt
    "\u2192": "->",
    "\u2588": "#",  # full block (probability bars)
    "\u258c": "|",  # left half block
    "\u25cf": "o",  # black circle (validation points of a loss curve)
    "\u2502": "|",  # box drawing: a curve's axes
    "\u2524": "+",
    "\u2514": "+",
    "\u2500": "-",
}


def _fallback(escape: bool):
    def handler(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeEncodeError):
            raise exc
        bad = exc.object[exc.start : exc.end]
        return "".join(_one(ch, escape) for ch in bad), exc.end

    return handler


def _one(ch: str, escape: bool) -> str:
    if ch in LOOK_ALIKES:
        return LOOK_ALIKES[ch]
    if not escape:
        return "?"
    return ch.encode("ascii", "backslashreplace").decode("ascii")


codecs.register_error(STDOUT_ERRORS, _fallback(escape=False))
codecs.register_error(STDERR_ERRORS, _fallback(escape=True))


def tolerate(stream: TextIO | None, escapes: bool = False) -> None:
    """Make `stream` degrade instead of raising UnicodeEncodeError (no-op if it cannot).

    Look-alikes first; then "?" (tables stay aligned) or, with escapes, a backslash escape."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None:
        return
    try:
        reconfigure(errors=STDERR_ERRORS if escapes else STDOUT_ERRORS)
    except (ValueError, OSError):  # a closed or detached stream: nothing to protect
        pass
