"""Fetch a catalogued corpus: download, verify, unpack, and say how to train on it.

fetch() downloads each file into a temp file beside its target and os.replace's it only after
size and sha256 match, so a target is either absent or verified; files already present with the
right hash are skipped (and so is an archive whose catalogued members are all present). Archives
are unpacked member by member the same way, after every member name has been checked (see
archives.py); only the members the catalog lists are extracted. Progress goes to a callback
`on_progress(done_bytes, total_bytes)`; nothing is printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import shlex
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO
from urllib.parse import quote, urlsplit

from rnnrepl import __version__
from rnnrepl.atomic import atomic_file, resource_error
from rnnrepl.errors import InputDataError, ResourceError, UsageError
from rnnrepl.text.archives import Member, open_archive
from rnnrepl.text.catalog import SCHEMES, Corpus, Output, RemoteFile, get_corpus

TIMEOUT_S = 30.0  # per socket operation, not for the whole download
CHUNK = 1 << 16
MAX_MEMBER = 8 << 30  # cap on an archive member whose size the catalog does not give
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class FetchResult:
    corpus: Corpus
    directory: Path
    files: tuple[tuple[str, Path], ...]  # (role, path) of every yielded file
    downloaded: tuple[str, ...]
    skipped: tuple[str, ...]  # already present with the right sha256
    unpacked: tuple[str, ...]
    train_command: str
    eval_command: str | None


# ---- fetch -----------------------------------------------------------------------------------
def fetch(
    name: str,
    dest_dir: str | Path,
    base_url: str | None = None,
    on_progress: ProgressFn | None = None,
    catalog: Mapping[str, Corpus] | None = None,
    timeout: float = TIMEOUT_S,
) -> FetchResult:
    """Download, verify and unpack corpus `name` into `dest_dir`; skip what is already there.

    base_url replaces each file's origin: the file is fetched from BASE_URL/FILE_NAME."""
    corpus = get_corpus(name, catalog)
    dest = Path(dest_dir)
    created = _missing_dirs(dest)
    try:
        return _fetch(corpus, dest, base_url, on_progress, timeout)
    except BaseException:
        _remove_created(created)
        raise


def _missing_dirs(dest: Path) -> list[Path]:
    """dest and each of its parents that do not exist yet, deepest first: what fetch creates."""
    missing = []
    for path in (dest, *dest.parents):
        if path.exists() or path.is_symlink():
            break
        missing.append(path)
    return missing


def _remove_created(created: list[Path]) -> None:
    """After a failed fetch: remove the directories it created that are empty, deepest first.

    Verified files stay (the next try skips them); a directory that existed is never touched."""
    for path in created:
        with contextlib.suppress(OSError):  # not empty, or already gone
            path.rmdir()


def _fetch(
    corpus: Corpus, dest: Path, base_url: str | None, on_progress: ProgressFn | None, timeout: float
) -> FetchResult:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise resource_error(exc, dest) from None
    needed = [f for f in corpus.files if _needs_download(f, corpus, dest)]
    progress = _Progress(sum(f.size for f in needed), on_progress)
    for f in needed:
        _download(source_url(f, base_url), dest / f.name, f, progress, timeout)
    unpacked = _unpack_all(corpus, dest)
    for out in corpus.outputs:
        if not (dest / out.path).is_file():
            raise InputDataError(f"{out.path} is missing after the fetch", path=str(dest))
    names = {f.name for f in needed}
    return FetchResult(
        corpus=corpus,
        directory=dest,
        files=tuple((o.role, dest / o.path) for o in corpus.outputs),
        downloaded=tuple(f.name for f in corpus.files if f.name in names),
        skipped=tuple(f.name for f in corpus.files if f.name not in names),
        unpacked=tuple(unpacked),
        train_command=command(corpus.train, dest),
        eval_command=command(corpus.eval, dest) if corpus.eval else None,
    )


def source_url(remote: RemoteFile, base_url: str | None) -> str:
    """The URL to fetch `remote` from: its own, or BASE_URL/FILE_NAME with a mirror."""
    url = remote.url if base_url is None else f"{base_url.rstrip('/')}/{quote(remote.name)}"
    if urlsplit(url).scheme not in SCHEMES:
        raise UsageError(f"unsupported URL {url!r}", hint="use an http://, https:// or file:// URL")
    return url


def command(template: str, dest: Path) -> str:
    return template.replace("{dir}", shlex.quote(str(dest)))


def _needs_download(remote: RemoteFile, corpus: Corpus, dest: Path) -> bool:
    if is_present(dest / remote.name, remote.sha256, remote.size):
        return False
    members = [o for o in corpus.outputs if o.source == remote.name]
    return not members or not all(is_present(dest / o.path, o.sha256, o.size) for o in members)


def is_present(path: Path, sha256: str | None, size: int | None) -> bool:
    """True when `path` is a regular file with the given size and sha256 (those given)."""
    try:
        if not path.is_file() or (size is not None and path.stat().st_size != size):
            return False
        return sha256 is None or sha256_file(path) == sha256
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Progress:
    """Bytes done over all downloads of one fetch, reported to the callback as they arrive."""

    def __init__(self, total: int, callback: ProgressFn | None) -> None:
        self.done, self.total, self.callback = 0, total, callback
        self.add(0)

    def add(self, n: int) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(self.done, self.total)


def _download(url: str, target: Path, remote: RemoteFile, progress: _Progress, timeout: float):
    """Stream url into target through a temp file, replaced only if size and sha256 match."""
    cap = remote.size + max(remote.size // 100, CHUNK)  # stop a runaway response early
    request = urllib.request.Request(url, headers={"User-Agent": f"rnnrepl/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > cap:
                raise _mismatch(f"the server offers {int(length):,} bytes", remote, url)
            with atomic_file(target) as out:
                digest, got = _copy(response, out, cap, progress, target)
                if got != remote.size or digest != remote.sha256:
                    raise _mismatch(f"got {got:,} bytes with sha256 {digest}", remote, url)
    except urllib.error.HTTPError as exc:
        raise ResourceError(
            f"download failed: HTTP {exc.code} {exc.reason}",
            path=url,
            hint="check the URL or --mirror, or try again later",
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ResourceError(
            f"download failed: {reason}",
            path=url,
            hint="check the network connection, or fetch from elsewhere with --mirror URL",
        ) from None


def _copy(src: IO[bytes], out: BinaryIO, cap: int, progress: _Progress | None, target: Path):
    """Copy at most `cap` bytes (more is a mismatch) -> (sha256 hex, bytes copied)."""
    digest, got = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        got += len(chunk)
        if got > cap:
            raise InputDataError(
                f"{target.name}: more data than the catalog expects (over {cap:,} bytes)",
                hint="nothing was kept; the source is not the catalogued file",
            )
        digest.update(chunk)
        try:
            out.write(chunk)
        except OSError as exc:
            raise resource_error(exc, target) from None
        if progress is not None:
            progress.add(len(chunk))
    return digest.hexdigest(), got


def _mismatch(what: str, remote: RemoteFile, url: str) -> InputDataError:
    return InputDataError(
        f"{remote.name}: {what}, but the catalog expects {remote.size:,} bytes "
        f"with sha256 {remote.sha256}",
        path=url,
        hint="nothing was kept; the file at the source or mirror is not the catalogued one",
    )


# ---- unpack ----------------------------------------------------------------------------------
def _unpack_all(corpus: Corpus, dest: Path) -> list[str]:
    """Extract the catalogued members of each archive that are not already present, verified."""
    done: list[str] = []
    for f in corpus.files:
        wanted = [o for o in corpus.outputs if o.source == f.name]
        todo = [o for o in wanted if not is_present(dest / o.path, o.sha256, o.size)]
        if todo:
            with open_archive(dest / f.name) as members:
                for out in todo:
                    _extract(members.get(out.path), out, dest / out.path, dest / f.name)
                    done.append(out.path)
    return done


def _extract(member: Member | None, out: Output, target: Path, archive: Path) -> None:
    if member is None:
        raise InputDataError(f"the archive has no member {out.path!r}", path=str(archive))
    cap = out.size if out.size is not None else MAX_MEMBER
    if member.size > cap:
        raise InputDataError(f"member {out.path!r} is {member.size:,} bytes", path=str(archive))
    with member.open() as src, atomic_file(target) as dst:
        digest, got = _copy(src, dst, cap, None, target)
        if (out.size is not None and got != out.size) or out.sha256 not in (None, digest):
            raise InputDataError(
                f"{out.path}: unpacked {got:,} bytes with sha256 {digest}, but the catalog "
                f"expects {out.size} bytes with sha256 {out.sha256}",
                path=str(archive),
                hint="the unpacked file was not kept",
            )
