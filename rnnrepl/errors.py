"""Expected failures, each carrying the exit code of the contract in RELIABILITY.md.

The core raises these; only the CLI turns them into one stderr line and an exit status.
"""

from __future__ import annotations


class RnnreplError(Exception):
    """An expected failure: a message for the user, a hint, and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def __str__(self) -> str:
        text = self.message
        if self.path:
            text += f" ({self.path})"
        if self.hint:
            text += f" — {self.hint}"
        return text


class UsageError(RnnreplError):
    exit_code = 2


class InputDataError(RnnreplError):
    exit_code = 3


class CheckpointError(RnnreplError):
    exit_code = 4


class ResourceError(RnnreplError):
    exit_code = 5


class NumericalError(RnnreplError):
    exit_code = 6
