"""Atomic, durable writes and the one-writer lock: a crash never leaves a half-written file.

A write goes to a temp file in the same directory (.NAME.tmp-PID-RANDOM), is flushed and fsynced,
then os.replace'd over the target and the directory fsynced. On any exception, KeyboardInterrupt
included, the temp file is removed and the old file is untouched. Temp files of dead processes
are swept by the next write of the same target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from rnnrepl.errors import ResourceError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` by `data` atomically and durably; on any failure the old file is untouched."""
    with atomic_file(path) as f:
        _durable(lambda: f.write(data), path)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Stream into `path` atomically: the body writes to a temp file in the same directory, which
    replaces `path` (flushed, fsynced) only if the body returns. If the body raises (a failed check
    included), the temp file is removed, the exception goes on, and `path` is untouched."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise resource_error(exc, path) from None
    _sweep_temps(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise resource_error(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            _durable(lambda: (f.flush(), os.fsync(f.fileno())), path)
        _durable(lambda: os.replace(tmp, path), path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path)


def _durable(step: Callable[[], object], path: Path) -> None:
    """Run one finishing step of a write; its OSError (disk full, ...) becomes a ResourceError."""
    try:
        step()
    except OSError as exc:
        raise resource_error(exc, path) from exc


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise resource_error(exc, path) from exc
    finally:
        os.close(fd)


def _sweep_temps(path: Path) -> None:
    """Remove temp files of this target left behind by processes that no longer exist."""
    prefix = f".{path.name}.tmp-"
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix) :].split("-", 1)[0] if name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def resource_error(exc: OSError, path: Path) -> ResourceError:
    hints = {
        errno.ENOSPC: "free some disk space",
        errno.EDQUOT: "free some disk space (quota exceeded)",
        errno.EROFS: "the filesystem is read-only; choose another output",
        errno.EACCES: "check permissions or choose another output",
        errno.EPERM: "check permissions or choose another output",
    }
    reason = exc.strerror or str(exc)
    hint = hints.get(exc.errno or 0, "")
    return ResourceError(f"cannot write {path.name}: {reason}", hint=hint, path=str(path))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill would terminate it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    try:  # a zombie has exited: its lock is stale
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class OutputLock:
    """One writer per output: TARGET.lock held with flock through `filelock`. The kernel releases
    it when its process ends, however it ends, so a killed training never blocks the next. The
    empty lock file stays after release (removing it would let a waiter lock an orphaned inode)."""

    def __init__(self, target: str | Path) -> None:
        from filelock import FileLock  # imported here: 0.1 s that shell completion never needs

        target = Path(target)
        self.path = target.with_name(target.name + ".lock")
        self._lock = FileLock(self.path, timeout=0)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self) -> None:
        from filelock import Timeout

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except Timeout:  # an OSError too: caught first
            raise ResourceError(
                "another training is writing this output",
                path=str(self.path),
                hint="wait for it to finish or choose another output",
            ) from None
        except OSError as exc:
            raise resource_error(exc, self.path) from None
