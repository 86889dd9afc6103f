"""The catalog of well-known public corpora: what to download, what it must hash to, what it yields.

The catalog is corpora/catalog.json in the repository; pyproject.toml maps corpora/ into the
package as `rnnrepl.corpora_data`, so the same file is found after a non-editable install. Each
corpus names its files (URL, sha256, size), the files it yields with their roles
(train/valid/test, possibly members of a downloaded archive), its licence, and the
`rnnrepl train` command to run next. Loading validates everything and rejects unknown keys.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from rnnrepl.config import LEVELS
from rnnrepl.errors import InputDataError, RnnreplError, UsageError
from rnnrepl.package_data import CORPORA, package_file
from rnnrepl.text.archives import SUFFIXES as ARCHIVES
from rnnrepl.text.archives import safe_member_name

CATALOG_PACKAGE = CORPORA  # corpora/ mapped into the package by pyproject.toml
CATALOG_FILE = "catalog.json"
SCHEMES = ("http", "https", "file")

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: where from, and the bytes it must have."""

    url: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        """Local file name (and mirror file name): the last path component of the URL."""
        return unquote(posixpath.basename(urlsplit(self.url).path))


@dataclass(frozen=True)
class Output:
    """A file the corpus yields: a downloaded file itself, or a member of an archive (`source`)."""

    path: str
    role: str
    source: str | None = None
    sha256: str | None = None
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"path": self.path, "role": self.role, "from": self.source}
        d |= {"sha256": self.sha256, "size": self.size}
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class Corpus:
    name: str
    description: str
    license: str
    level: str
    files: tuple[RemoteFile, ...]
    outputs: tuple[Output, ...]
    train: str  # command template; {dir} is replaced by the quoted destination directory
    eval: str | None = None
    homepage: str = ""
    license_note: str = ""
    provenance: str = ""

    @property
    def size(self) -> int:
        """Bytes to download."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "homepage": self.homepage,
            "license": self.license,
            "license_note": self.license_note,
            "provenance": self.provenance,
            "level": self.level,
            "size": self.size,
            "files": [{"url": f.url, "sha256": f.sha256, "size": f.size} for f in self.files],
            "yields": [o.to_dict() for o in self.outputs],
            "train": self.train,
            **({"eval": self.eval} if self.eval else {}),
        }


def load_catalog(path: str | Path | None = None) -> dict[str, Corpus]:
    """The catalog at `path`, or the one shipped with rnnrepl; name -> Corpus, in file order."""
    text, source = _read_catalog(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputDataError(f"corpus catalog is not valid JSON: {exc}", path=source) from None
    return parse_catalog(data, source)


def _read_catalog(path: str | Path | None) -> tuple[str, str]:
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputDataError(f"cannot read corpus catalog: {exc}", path=str(path)) from None
    shipped = package_file(CATALOG_PACKAGE, CATALOG_FILE)
    try:
        if shipped is not None:
            return shipped.read_text(encoding="utf-8"), str(shipped)
    except OSError:
        pass
    raise RnnreplError(
        "the corpus catalog is missing from this installation", hint="reinstall rnnrepl"
    )


def parse_catalog(data: Any, source: str = "catalog") -> dict[str, Corpus]:
    """Validate a decoded catalog; InputDataError naming the entry and field on any problem."""
    top = _fields(data, {"corpora"}, {"format", "version"}, "catalog", source)
    if not isinstance(top["corpora"], list):
        raise InputDataError("catalog: 'corpora' must be a list", path=source)
    catalog: dict[str, Corpus] = {}
    for i, entry in enumerate(top["corpora"]):
        corpus = _parse_corpus(entry, f"corpora[{i}]", source)
        if corpus.name in catalog:
            raise InputDataError(f"catalog: duplicate corpus {corpus.name!r}", path=source)
        catalog[corpus.name] = corpus
    return catalog


def _parse_corpus(entry: Any, where: str, source: str) -> Corpus:
    required = {"name", "description", "license", "level", "files", "yields", "train"}
    optional = {"eval", "homepage", "license_note", "provenance"}
    d = _fields(entry, required, optional | {"size"}, where, source)
    for key in required - {"files", "yields"} | (optional & d.keys()):
        _expect(isinstance(d[key], str), f"{where}.{key} must be a string", source)
    where = f"corpus {d['name']!r}"
    _expect(bool(_NAME.fullmatch(d["name"])), f"{where}: name must match {_NAME.pattern}", source)
    _expect(d["level"] in LEVELS, f"{where}: level must be one of {', '.join(LEVELS)}", source)
    _expect(d["train"].startswith("rnnrepl train "), f"{where}: bad train command", source)
    _expect(isinstance(d["files"], list) and bool(d["files"]), f"{where}: no files", source)
    _expect(isinstance(d["yields"], list) and bool(d["yields"]), f"{where}: no yields", source)
    files = tuple(_parse_file(f, where, source) for f in d["files"])
    outputs = tuple(_parse_output(o, where, source) for o in d["yields"])
    _check_sources(files, outputs, where, source)
    total = sum(f.size for f in files)  # `corpus list --json` adds it; its output is a catalog
    _expect(d.get("size", total) == total, f"{where}: size is not the sum of the files", source)
    keep = {
        k: d[k] for k in {"name", "description", "license", "level", "train"} | optional & d.keys()
    }
    return Corpus(files=files, outputs=outputs, **keep)


def _parse_file(entry: Any, where: str, source: str) -> RemoteFile:
    d = _fields(entry, {"url", "sha256", "size"}, set(), f"{where} file", source)
    ok = isinstance(d["url"], str) and urlsplit(d["url"]).scheme in SCHEMES
    _expect(ok, f"{where}: bad url {d['url']!r}", source)
    f = RemoteFile(url=d["url"], sha256=d["sha256"], size=d["size"])
    _expect(bool(_FILE_NAME.fullmatch(f.name)), f"{where}: bad file name in {f.url}", source)
    _check_digest(f.sha256, f.size, f"{where} {f.name}", source)
    return f


def _parse_output(entry: Any, where: str, source: str) -> Output:
    d = _fields(entry, {"path", "role"}, {"from", "sha256", "size"}, f"{where} yield", source)
    out = Output(d["path"], d["role"], d.get("from"), d.get("sha256"), d.get("size"))
    _expect(isinstance(out.role, str) and bool(out.role), f"{where}: bad role", source)
    ok = isinstance(out.path, str) and safe_member_name(out.path) == out.path
    _expect(ok, f"{where}: unsafe yield path {out.path!r}", source)
    _expect(out.source is None or isinstance(out.source, str), f"{where}: bad 'from'", source)
    if out.sha256 is not None or out.size is not None:
        _check_digest(out.sha256, out.size, f"{where} {out.path}", source, optional=True)
    return out


def _check_sources(
    files: tuple[RemoteFile, ...], outputs: tuple[Output, ...], where: str, source: str
) -> None:
    names = {f.name for f in files}
    _expect(len(names) == len(files), f"{where}: two files share a name", source)
    for out in outputs:
        if out.source is None:
            _expect(out.path in names, f"{where}: {out.path!r} is not a downloaded file", source)
        else:
            ok = out.source in names and out.source.endswith(ARCHIVES)
            _expect(ok, f"{where}: {out.source!r} is not a downloaded archive", source)


def _check_digest(sha: Any, size: Any, what: str, source: str, optional: bool = False) -> None:
    sha_ok = (optional and sha is None) or (isinstance(sha, str) and bool(_SHA256.fullmatch(sha)))
    size_ok = (optional and size is None) or (type(size) is int and size >= 0)
    _expect(sha_ok, f"{what}: sha256 must be 64 lowercase hex digits", source)
    _expect(size_ok, f"{what}: size must be a byte count", source)


def _fields(obj: Any, required: set[str], optional: set[str], where: str, source: str) -> dict:
    _expect(isinstance(obj, dict), f"{where} must be an object", source)
    missing, unknown = required - obj.keys(), obj.keys() - required - optional
    _expect(not missing, f"{where}: missing {', '.join(sorted(missing))}", source)
    _expect(not unknown, f"{where}: unknown key(s) {', '.join(sorted(unknown))}", source)
    return obj


def _expect(ok: bool, message: str, source: str) -> None:
    if not ok:
        raise InputDataError(f"corpus catalog: {message}", path=source)


def get_corpus(name: str, catalog: Mapping[str, Corpus] | None = None) -> Corpus:
    """The catalog entry `name`; UsageError listing the known names otherwise."""
    catalog = load_catalog() if catalog is None else catalog
    if name not in catalog:
        known = ", ".join(catalog) or "none"
        raise UsageError(f"unknown corpus {name!r}", hint=f"known corpora: {known}")
    return catalog[name]
