"""Terminal injection: untrusted text never drives the terminal or rich (RELIABILITY.md, issue 13).

Hostile strings (an OSC 0 window title, an OSC 52 clipboard write, an OSC 8 hyperlink, a C1 CSI,
a bidi override, rich markup) are put into every field of a model file's metadata (a crafted but
digest-valid file) and into every path a command prints. Each command runs through
`rnnrepl.cli.main.main` on a pipe and on a terminal (rich decides by FORCE_COLOR / isatty; one test
uses a real pseudo-terminal), and the output may hold no ESC except rich's own SGR colour codes,
no C1 or bidi character, and shows the markup as literal text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from rnnrepl.repl.panel import show_view, status, to_ansi
from rnnrepl.repl.state import Settings, model_info
from rnnrepl.store.container import encode, read_verified
from rnnrepl.store.modelfile import load_model
from tests.helpers import REPO, TOY, run_main

TITLE = "\x1b]0;owned\x07"  # OSC 0: set the window title
CLIP = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: write the clipboard
LINK = "\x1b]8;;https:evil.invalid\x1b\\click\x1b]8;;\x1b\\"  # OSC 8 hyperlink (no '//')
CLEAR = "\x1b[2J"
MARKUP = "[bold red]x[/]"
HOSTILE = f"{TITLE}{CLIP}{LINK}{CLEAR}\x9b31m\u202eevil\u2066 {MARKUP}"
# What the user must see instead: every control escaped, the markup as written.
SHOWN = (
    "\\x1b]0;owned\\x07",
    "\\x1b]52;c;ZXZpbA==\\x07",
    "\\x1b]8;;https:evil.invalid\\x1b\\click",
    "\\x1b[2J\\x9b31m\\u202eevil\\u2066",
    MARKUP,
)
TRAIN = ["--arch", "lstm", "--hidden", "16", "--embed", "8", "--layers", "1", "--seq-len", "16"]
TRAIN += ["--batch-size", "4", "--precision", "fp32", "--steps", "4", "--eval-every", "2"]
SGR = re.compile(r"\x1b\[[0-9;]*m")
# rich's own cursor control while a live progress display runs (train, corpus fetch)
LIVE = re.compile(r"\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A|\r")


def hostile_path(base: Path, suffix: str) -> Path:
    """base/<HOSTILE up to its '/'>/<rest>suffix: str() of it holds HOSTILE whole."""
    head, _, tail = HOSTILE.rpartition("/")
    (base / head).mkdir(parents=True, exist_ok=True)
    return base / head / (tail + suffix)


def assert_clean(text: str, live: bool = False) -> None:
    """No ESC but SGR colour codes (and rich's cursor codes while `live`), no other control,
    C1, bidi or invisible format character."""
    rest = SGR.sub("", text)
    if live:
        rest = LIVE.sub("", rest)
    bad = sorted({ch for ch in rest if ch not in "\n" and _unsafe(ch)})
    assert not bad, [f"U+{ord(ch):04X}" for ch in bad]


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def assert_shown(text: str) -> None:
    for piece in SHOWN:
        assert piece in text, (piece, text)


@pytest.fixture(params=["pipe", "terminal"])
def mode(request, monkeypatch) -> str:
    """Run with rich deciding 'not a terminal', then 'a colour terminal' (FORCE_COLOR)."""
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping: the hostile text stays on one line
    monkeypatch.delenv("NO_COLOR", raising=False)
    if request.param == "terminal":
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setenv("TERM", "xterm-256color")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    return request.param


def invoke(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the CLI run in-process."""
    return run_main([str(a) for a in argv], stdin)


def craft(source: Path, target: Path, **changes: object) -> Path:
    """A copy of a model file with metadata entries replaced, digests recomputed (valid file)."""
    meta, tensors = read_verified(source, "model")
    meta = {k: v for k, v in meta.items() if k not in ("header_sha256", "payload_sha256")}
    meta |= {k: json.dumps(v) for k, v in changes.items()}
    target.write_bytes(encode(tensors, meta, target))
    return target


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A corpus and models at hostile paths; one model's metadata hostile in every field."""
    base = tmp_path_factory.mktemp("inject")
    corpus = hostile_path(base, ".txt")
    corpus.write_text(TOY * 40, encoding="utf-8")
    model = hostile_path(base / "m", ".safetensors")
    code, out, err = invoke("train", corpus, "-o", model, *TRAIN)
    assert code == 0, err
    training = load_model(model).training
    training |= {HOSTILE: HOSTILE, "nested": {HOSTILE: [HOSTILE, 1.5]}}
    crafted = craft(model, hostile_path(base / "c", ".safetensors"), training=training)
    tokens = load_model(model).tokenizer.tokens
    # a lone surrogate, ESC, a C1 and a bidi override as vocabulary tokens
    tokens = [tokens[0], "\ud800", "\x1b", "\x9b", "\u202e", *tokens[5:]]
    vocab = craft(model, base / "vocab.safetensors", tokenizer={"level": "char", "tokens": tokens})
    return {"corpus": corpus, "model": model, "crafted": crafted, "vocab": vocab, "base": base}


def test_train_prints_hostile_paths_escaped(files, mode, tmp_path):
    out_path = hostile_path(tmp_path, "")
    code, out, err = invoke("train", files["corpus"], "-o", out_path, *TRAIN)
    assert code == 0, err
    assert_clean(out)
    assert_clean(err, live=True)
    assert_shown(out)  # saved PATH
    assert_shown(err)  # the summary table's model and resume-state rows
    # a second run refuses to replace the model, naming the path in its error line
    code, out, err = invoke("train", files["corpus"], "-o", out_path, *TRAIN)
    assert code == 2 and "exists; training would replace it" in err
    assert_clean(err)
    assert_shown(err)


def test_recorded_command_is_escaped_and_still_pastes_into_bash(files):
    command = load_model(files["model"]).training["command"]
    assert_clean(command)
    shown = subprocess.run(
        ["bash", "-c", f'f() {{ printf "%s\\0" "$@"; }}; f {command.removeprefix("rnnrepl ")}'],
        capture_output=True,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    ).stdout
    assert shown.split(b"\0")[:3] == [b"train", os.fsencode(files["corpus"]), b"-o"]


def test_info_shows_every_hostile_metadata_field_as_text(files, mode):
    code, out, err = invoke("info", files["crafted"])
    assert code == 0, err
    assert_clean(out)
    lines = SGR.sub("", out).splitlines()
    file_row = next(line for line in lines if line.lstrip().startswith("file"))
    assert_shown(file_row)
    key_row = next(line for line in lines if line.count(MARKUP) == 2)  # the key and its value
    assert key_row.count("\\x1b]0;owned\\x07") == 2
    nested = next(line for line in lines if "nested" in line)  # JSON text: C0 as \u001b
    assert "\\u001b]0;owned\\u0007" in nested and "\\u202e" in nested and MARKUP in nested
    command = next(line for line in lines if line.lstrip().startswith("command"))
    assert "$'" in command and "\\x1b]0;owned\\x07" in command and MARKUP in command
    files_row = next(line for line in lines if "corpus_files" in line)  # JSON text too
    assert "\\u001b]0;owned\\u0007" in files_row and "\\u202eevil" in files_row


def test_info_json_escapes_in_json_and_round_trips(files, mode):
    code, out, err = invoke("info", files["crafted"], "--json")
    assert code == 0, err
    assert_clean(out)
    data = json.loads(out)
    assert data["path"] == str(files["crafted"])
    assert data["training"][HOSTILE] == HOSTILE
    assert data["training"]["nested"] == {HOSTILE: [HOSTILE, 1.5]}


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_eval_escapes_the_file_name(files, mode, as_json):
    code, out, err = invoke(
        "eval", files["model"], files["corpus"], *(["--json"] if as_json else [])
    )
    assert code == 0, err
    assert_clean(out)
    if as_json:
        assert json.loads(out)["files"][0]["file"] == str(files["corpus"])
    else:
        assert_shown(out)


@pytest.mark.parametrize("command", ["predict", "score"])
@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_a_hostile_vocabulary_cannot_crash_or_inject(files, mode, command, as_json):
    argv = [command, files["vocab"], "the cat", "-k", "50", *(["--json"] if as_json else [])]
    code, out, err = invoke(*argv)
    assert code == 0, err
    assert_clean(out)
    if as_json:
        text = json.dumps(json.loads(out))
        assert all(t in text for t in ("\\ud800", "\\u001b", "\\u009b", "\\u202e"))
    else:
        assert all(t in out for t in ("\\ud800", "\\x1b", "\\x9b", "\\u202e"))


def test_generate_with_a_hostile_vocabulary_writes_escapes(files, mode):
    code, out, err = invoke("generate", files["vocab"], "-p", "the", "-n", "300", "--seed", "1")
    assert code == 0, err
    assert_clean(out)
    assert any(t in out for t in ("\\ud800", "\\x1b", "\\x9b", "\\u202e")), out


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["info", "PATH.safetensors"], 4),
        (["eval", "MODEL", "PATH.txt"], 3),
        (["score", "MODEL", "-f", "PATH.txt"], 3),
        (["train", "PATH.txt", "-o", "OUT", *TRAIN], 3),
        (["generate", "MODEL", "--prompt-file", "PATH.txt"], 3),
    ],
    ids=["info", "eval", "score", "train", "generate"],
)
def test_error_lines_escape_the_path(files, mode, tmp_path, argv, code):
    names = {"MODEL": str(files["model"]), "OUT": str(tmp_path / "out")}
    missing = str(hostile_path(tmp_path, ""))
    argv = [names.get(a, a.replace("PATH", missing)) for a in argv]
    got, out, err = invoke(*argv)
    assert got == code, err
    assert err.startswith("rnnrepl: error: ") and err.count("\n") == 1, err
    assert_clean(err)
    assert_shown(err)


def test_usage_errors_are_one_escaped_line_with_exit_2(mode):
    code, out, err = invoke("predict", f"--k{TITLE}", "m", "t")
    assert code == 2
    assert err.startswith("rnnrepl: error: No such option '--k\\x1b]0;owned\\x07'"), err
    assert err.endswith(" — run 'rnnrepl predict --help'\n") and err.count("\n") == 1
    assert "Usage:" not in err and "Try " not in err and "\x1b" not in err


def test_usage_error_forms(mode):
    cases = [
        (["no-such-command"], "No such command 'no-such-command'.", "rnnrepl"),
        (["predict", "m"], "Missing argument 'TEXT'.", "rnnrepl predict"),
        (["train", "x", "-o", "y", "--time", "soon"], "'soon' is not a duration", "rnnrepl train"),
        (["corpus", "list", "--nope"], "No such option '--nope'", "rnnrepl corpus list"),
    ]
    for argv, message, command in cases:
        code, out, err = invoke(*argv)
        assert code == 2, err
        assert err.startswith("rnnrepl: error: ") and message in err, err
        assert err.endswith(f" — run '{command} --help'\n") and err.count("\n") == 1, err


def _catalog(base: Path) -> Path:
    data = b"hello world\n" * 50
    www = base / "www"
    www.mkdir()
    (www / "train.txt").write_bytes(data)
    import hashlib

    entry = {
        "name": "toy",
        "description": HOSTILE,
        "license": HOSTILE,
        "license_note": HOSTILE,
        "level": "char",
        "files": [
            {
                "url": "https://origin.invalid/train.txt",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            }
        ],
        "yields": [{"path": "train.txt", "role": "train"}],
        "train": "rnnrepl train {dir}/train.txt --level char -o models/toy",
    }
    path = base / "catalog.json"
    path.write_text(json.dumps({"format": "rnnrepl-corpora", "version": 1, "corpora": [entry]}))
    return path


def test_corpus_list_and_fetch_escape_catalog_text_and_paths(mode, tmp_path):
    catalog = _catalog(tmp_path)
    code, out, err = invoke("corpus", "list", "--catalog", catalog)
    assert code == 0, err
    assert_clean(out)
    assert out.count(MARKUP) == 2 and "\\u202eevil" in out  # license and description
    code, out, err = invoke("corpus", "list", "--catalog", catalog, "--json")
    assert code == 0, err
    assert_clean(out)
    assert json.loads(out)["corpora"][0]["license"] == HOSTILE
    dest = hostile_path(tmp_path / "d", "")
    mirror = (tmp_path / "www").as_uri()
    argv = ["corpus", "fetch", "toy", "--catalog", catalog, "--dir", dest, "--mirror", mirror]
    code, out, err = invoke(*argv)
    assert code == 0, err
    assert (dest / "train.txt").is_file()
    assert_clean(out)
    assert_clean(err, live=True)
    assert_shown(next(line for line in out.splitlines() if line.startswith("license: ")))
    assert_shown(next(line for line in out.splitlines() if line.startswith("  rnnrepl train ")))


def test_repl_show_and_status_line_escape_metadata(files):
    named = files["base"] / f"{TITLE}\x9b\u202e[red]x.safetensors"  # the status line's name
    shutil.copy(files["crafted"], named)
    info = model_info(load_model(named))
    shown = to_ansi(show_view(info, Settings(), 3), 1000)
    assert_clean(shown)
    model_row = next(line for line in shown.splitlines() if "model" in line[:20])
    assert "\\x1b]0;owned\\x07\\x9b\\u202e[red]x.safetensors" in model_row
    assert "\\x1b]0;owned\\x07" in next(line for line in shown.splitlines() if "nested" in line)
    line = to_ansi(status(info, Settings(), None), 1000, one_line=True)
    assert_clean(line)
    assert "\\x1b]0;owned\\x07\\x9b\\u202e[red]x" in line


def test_line_mode_commands_escape_what_they_echo(files, mode):
    lines = f"/{TITLE}[red]x[/]\n/set top_k {CLIP}\n/set stop \u202e\n/show\nthe\n"
    code, out, err = invoke("chat", files["vocab"], "-n", "50", "--seed", "1", stdin=lines)
    assert code == 0, err
    assert_clean(out)
    assert_clean(err)
    assert "/\\x1b]0;owned\\x07[red]x[/] is not available" in err
    assert "\\x1b]52;c;ZXZpbA==\\x07" in err  # the refused /set value, named
    assert "stop: '\\u202e'" in err


def _on_a_pty(*argv: str) -> tuple[int, str]:
    """Run the console script with stdout and stderr on a real pseudo-terminal."""
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "1000", "TERM": "xterm-256color"}
    for var in ("NO_COLOR", "FORCE_COLOR"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnrepl", *argv],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_info_and_an_error_on_a_real_terminal(files, tmp_path):
    code, text = _on_a_pty("info", str(files["crafted"]))
    assert code == 0, text
    assert SGR.search(text)  # it is a terminal: rich colours the table
    assert_clean(text)
    assert_shown(text)
    code, text = _on_a_pty("info", str(hostile_path(tmp_path, "")))
    assert code == 4
    assert_clean(text)
    assert text.startswith("rnnrepl: error: ") and text.count("\n") == 1
