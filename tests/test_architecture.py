"""The import rules of .importlinter hold: the core never imports click, rich or prompt_toolkit,
the REPL's state never imports the toolkit, and nothing imports the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    got = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "0 broken" in got.stdout and "5 kept" in got.stdout, got.stdout
