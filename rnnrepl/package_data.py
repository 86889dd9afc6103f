"""Files shipped inside the package: the bundled models and the corpus catalog.

pyproject.toml maps checkpoints/ into the package as `rnnrepl.bundled` and corpora/ as
`rnnrepl.corpora_data`. Each folder holds an empty __init__.py, so both are regular packages and
importlib.resources answers a real directory on every Python version (for a namespace package,
Python 3.10/3.11 answer a MultiplexedPath whose str() is not a path). Run from a source checkout
without an install, the folders beside the package are used.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

BUNDLED = "rnnrepl.bundled"
CORPORA = "rnnrepl.corpora_data"
_SOURCE_DIRS = {BUNDLED: "checkpoints", CORPORA: "corpora"}


def package_dir(package: str) -> Path | None:
    """The directory holding `package`'s data files, or None if there is none."""
    try:
        root = resources.files(package)
    except (ModuleNotFoundError, TypeError):
        root = None
    if isinstance(root, Path) and root.is_dir():
        return root
    if root is not None:  # a Traversable that is not a Path: find a real file inside it
        for child in root.iterdir():
            if isinstance(child, Path) and child.exists():
                return child.parent
    source = Path(__file__).resolve().parent.parent / _SOURCE_DIRS[package]
    return source if source.is_dir() else None


def package_file(package: str, name: str) -> Path | None:
    """`package`'s data file `name` as a real path, or None if it is not shipped."""
    root = package_dir(package)
    path = root / name if root is not None else None
    return path if path is not None and path.is_file() else None
