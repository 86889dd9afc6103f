"""Read zip and tar archives without trusting them.

open_archive() lists every member first and refuses the whole archive if any member could escape
the destination (absolute path, '..', a Windows drive or backslash, NUL) or is not a regular file
or directory (symlink, hard link, device, FIFO). Callers then copy the members they want, by name,
with their own size cap: nothing here writes to disk, so no member is ever extracted blindly.
"""

from __future__ import annotations

import contextlib
import gzip
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO

from rnnrepl.errors import InputDataError

SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# What a damaged archive raises while it is listed or read.
ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile)


@dataclass(frozen=True)
class Member:
    """A regular file in an archive: its declared size (not trusted) and how to read it."""

    size: int
    open: Callable[[], IO[bytes]]


@contextlib.contextmanager
def open_archive(path: Path) -> Iterator[dict[str, Member]]:
    """The regular-file members of a zip or tar archive, by normalised safe name. Damage found
    while listing or reading (inside the with block) becomes an InputDataError."""
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
                yield _members(
                    ((i.filename, _zip_kind(i), i.file_size, partial(zf.open, i)) for i in infos),
                    path,
                )
        else:
            with tarfile.open(path, "r:*") as tf:
                infos = tf.getmembers()
                yield _members(
                    ((m.name, _tar_kind(m), m.size, partial(_tar_open, tf, m)) for m in infos),
                    path,
                )
    except ERRORS as exc:
        raise InputDataError(f"corrupt archive: {exc}", path=str(path)) from None


def _members(entries: Iterable[tuple], archive: Path) -> dict[str, Member]:
    members: dict[str, Member] = {}
    for raw, kind, size, opener in entries:
        name = safe_member_name(raw)
        if name is None or kind not in ("file", "dir"):
            what = "an absolute or '..' path" if name is None else f"a {kind}"
            raise InputDataError(
                f"unsafe archive member {raw!r} ({what})",
                path=str(archive),
                hint="nothing was extracted; the archive is not the expected one",
            )
        if kind == "file":
            if name in members:
                raise InputDataError(f"duplicate archive member {raw!r}", path=str(archive))
            members[name] = Member(size, opener)
    return members


def safe_member_name(name: str) -> str | None:
    """The normalised relative path of a member ('./a//b' -> 'a/b'), or None if it could land
    outside the destination: absolute, '..', a Windows drive or backslash, NUL, or empty."""
    parts = [p for p in name.rstrip("/").split("/") if p not in ("", ".")]
    unsafe = (
        not parts
        or name.startswith("/")
        or any(c in name for c in "\\\0")
        or ":" in parts[0]
        or ".." in parts
    )
    return None if unsafe else "/".join(parts)


def _zip_kind(info: zipfile.ZipInfo) -> str:
    kind = (info.external_attr >> 16) & 0o170000  # st_mode type bits, when made on Unix
    if kind == 0o120000:
        return "symlink"
    if info.is_dir():
        return "dir"
    return "file" if kind in (0, 0o100000) else "special file"


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    return "link" if member.issym() or member.islnk() else "special file"


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    f = tf.extractfile(member)
    if f is None:
        raise InputDataError(f"cannot read archive member {member.name!r}")
    return f
