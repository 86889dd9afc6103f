"""The second character corpus of the quality benchmarks: Python source code, built from the
standard library of the Python that runs this script (every machine has one; nothing is
downloaded and nothing is copied into the repository).

Which files: every `.py` file under the standard library's directory, in sorted path order,
leaving out tests, site-packages and generated tables (listed in SKIP); of those, every fifth
file (a spread over the whole library rather than its first modules alphabetically). Each file
is preceded by a `# file: path` line and followed by a blank line. The text depends on the
Python version, so its name carries the version and results record its SHA-256.

    python bench/code_corpus.py            # prints the path, building it if needed
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from pathlib import Path

SKIP = {
    "test", "tests", "idle_test", "site-packages", "__pycache__", "lib2to3", "turtledemo",
    "ensurepip", "pydoc_data", "encodings", "unicodedata", "idlelib",
}  # fmt: skip
STRIDE = 5


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "rnnrepl-bench"


def source_files(stdlib: Path) -> list[Path]:
    files = sorted(
        p for p in stdlib.rglob("*.py") if not SKIP.intersection(p.relative_to(stdlib).parts)
    )
    return files[::STRIDE]


def build_text(stdlib: Path) -> str:
    parts = []
    for path in source_files(stdlib):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(f"# file: {path.relative_to(stdlib).as_posix()}\n{text.rstrip()}\n\n")
    return "".join(parts)


def code_corpus() -> Path:
    """The corpus file for this Python, built once (atomically) and reused."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = cache_dir() / f"python{version}-stdlib.txt"
    if not path.exists():
        text = build_text(Path(sysconfig.get_paths()["stdlib"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    p = code_corpus()
    text = p.read_text(encoding="utf-8")
    print(f"{p}  {len(text):,} characters, {len(set(text))} distinct, sha256 {sha256(p)[:16]}")
