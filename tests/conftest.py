from __future__ import annotations

import signal
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _isolated_session_home(tmp_path_factory):
    """The same for module-scoped fixtures, which run before the per-test isolation below (a
    training writes its token cache under XDG_DATA_HOME)."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for var, sub in XDG_DIRS.items():
            mp.setenv(var, str(home / sub))
        yield


XDG_DIRS = {
    "XDG_DATA_HOME": ".local/share",
    "XDG_CONFIG_HOME": ".config",
    "XDG_STATE_HOME": ".local/state",
    "XDG_CACHE_HOME": ".cache",
}


@pytest.fixture(autouse=True)
def _sigpipe_ignored():
    """Each test starts with SIGPIPE ignored, as Python starts. In-process runs of the console
    script set its default action (a quiet `| head`); if that ever outlives a test, a test's own
    local server writing to a socket its client closed would end the whole run (exit 141)."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    yield


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's history or config: HOME and XDG dirs point into a temp dir."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))


@pytest.fixture
def shared_data() -> Path:
    """The real corpora in ../shared/data (tiny Shakespeare, WikiText-2, PTB), or a skip."""
    if not (SHARED_DATA / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip(f"real corpora not found at {SHARED_DATA} (a fresh clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture
def tiny_text() -> str:
    return "the cat sat on the mat. the dog sat on the log.\n" * 40


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
