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
import socket
import time
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


class PidLock:
    """A lock file created with O_EXCL holding "PID HOST"; a lock whose process is gone is stale."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._token = f"{os.getpid()} {socket.gethostname()}\n"
        self._held = False

    def __enter__(self) -> PidLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(5):
                if self._try_create():
                    return
        except OSError as exc:
            raise resource_error(exc, self.path) from None
        raise ResourceError("could not take the output lock", path=str(self.path))

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            self._refuse_if_held()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)  # stale: its owner is gone
            return False
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self._token)
        except BaseException:
            os.unlink(self.path)
            raise
        self._held = True
        return True

    def _refuse_if_held(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return
        parts = text.split()
        host_ok = len(parts) < 2 or parts[1] == socket.gethostname()
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        if pid is not None and (not host_ok or pid_alive(pid)):
            owner = f"pid {parts[0]}" + ("" if host_ok else f" on {parts[-1]}")
        elif not parts and age < 10:
            owner = "a process that is starting"
        else:
            return
        raise ResourceError(
            f"another training ({owner}) is writing this output",
            path=str(self.path),
            hint="wait for it or choose another output; if none is running, delete the lock file",
        )

    def release(self) -> None:
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(OSError):
            if self.path.read_text(encoding="utf-8") == self._token:
                os.unlink(self.path)
