"""A corpus of files read in chunks, never whole: one pass checks every file (and skips bad ones
with --skip-bad) and reports exactly what load_corpus would; later passes give the same text
again, file by file, for counting, BPE training and encoding.

The corpus is load_corpus's: the files' texts in order, a newline joined after a file that lacks
one when another file follows; the joined newline belongs to the last file with text before it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rnnrepl.errors import InputDataError
from rnnrepl.text.decoding import BadTextError
from rnnrepl.text.files import (
    ContentCheck,
    Skipped,
    TextReport,
    extend_last,
    no_readable_files,
    skip_or_raise,
)
from rnnrepl.text.streaming import FileText


@dataclass
class ScannedCorpus:
    """What the checking pass found: the report, and where newlines are joined."""

    report: TextReport
    encoding: str | None
    joined: set[int] = field(default_factory=set)  # indexes into report.files
    sha256: str = ""  # of the corpus text as UTF-8, as train's summary records it

    def file_texts(self) -> Iterator[tuple[int, Iterator[str]]]:
        """(index, pieces of that file's text, its joined newline included), in order."""
        for i, path in enumerate(self.report.files):
            yield i, self._pieces(i, path)

    def pieces(self) -> Iterator[str]:
        """The whole corpus text, piece by piece."""
        for _, pieces in self.file_texts():
            yield from pieces

    def _pieces(self, i: int, path: str) -> Iterator[str]:
        text = FileText(path, self.encoding)
        yield from text
        if text.bytes != self.report.sizes[i]:
            raise InputDataError(
                f"the file changed while it was read ({self.report.sizes[i]:,} bytes, "
                f"now {text.bytes:,})",
                path=path,
                hint="train again once nothing writes to it",
            )
        if i in self.joined:
            yield "\n"


@dataclass
class _Tally:
    """The running state of the checking pass, copied before each file (a skipped file leaves
    no trace in it)."""

    sha: Any = field(default_factory=hashlib.sha256)
    check: ContentCheck = field(default_factory=ContentCheck)
    last: str = ""  # the corpus's last character so far
    last_text: int = -1  # index of the last file with text

    def fork(self) -> _Tally:
        return _Tally(self.sha.copy(), copy.copy(self.check), self.last, self.last_text)

    def add(self, text: str) -> None:
        self.sha.update(text.encode("utf-8", "surrogatepass"))
        self.check.feed(text)
        if text:
            self.last = text[-1]


def scan_corpus(paths: list[str], skipped: list[Skipped], encoding: str | None,
                skip_bad: bool) -> ScannedCorpus:  # fmt: skip
    """Check every file as load_corpus does, in chunks: the same report, skips and errors."""
    scanned = ScannedCorpus(TextReport(skipped=skipped), encoding)
    tally = _Tally()
    for path in paths:
        trial, join = tally.fork(), bool(tally.last) and tally.last != "\n"
        if join:
            trial.add("\n")
        text = FileText(path, encoding)
        try:
            for piece in text:
                trial.add(piece)
        except BadTextError as exc:
            skip_or_raise(exc, path, len(paths) > 1, skip_bad, scanned.report)
            continue
        _accept(scanned, text, join, tally)
        if text.chars:
            trial.last_text = len(scanned.report.files) - 1
        tally = trial
    report = scanned.report
    if not report.files:
        raise no_readable_files(paths)
    report.chars = tally.check.chars
    tally.check.finish(report.files)
    scanned.sha256 = tally.sha.hexdigest()
    return scanned


def _accept(scanned: ScannedCorpus, text: FileText, join: bool, before: _Tally) -> None:
    report = scanned.report
    if join:
        scanned.joined.add(before.last_text)
        extend_last(report.ends)
    chars = (report.ends[-1] if report.ends else 0) + text.chars
    report.files.append(text.path)
    report.sizes.append(text.bytes)
    report.bytes += text.bytes
    report.crlf_normalised += text.crlf
    report.encodings[text.path] = text.encoding
    report.ends.append(chars)
