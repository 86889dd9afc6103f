"""The model home: `train` without -o stores NAME there, every command finds NAME, `list`, `rm`,
-o DIR/, refusing to overwrite without --force, and shell completion of model names.

Everything runs through `rnnrepl.cli.main.main` (the console script's entry point) in this process;
conftest points HOME and XDG_DATA_HOME into a temporary directory.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.shell_completion import BashComplete

from rnnrepl.cli.main import cli
from rnnrepl.store import modelfile, resume
from rnnrepl.store.home import bundled_names
from tests.helpers import TOY, run_cli
from tests.test_exit_codes import TRAIN, invoke

UNKNOWN = {"\ufffd", "<unk>"}  # how predict --json may show the unknown token
TOY_TOKENS = set(TOY) | UNKNOWN


def home() -> Path:
    return Path(os.environ["XDG_DATA_HOME"]) / "rnnrepl" / "models"


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text(TOY * 40)
    return path


def train(*args: str, stdin: str = "") -> tuple[int, str, str]:
    return invoke(["train", *args, *TRAIN], stdin=stdin)


def top_tokens(model: str, text: str = "the") -> set[str]:
    code, err, out = invoke(["predict", model, text, "-k", "100", "--json"])
    assert code == 0, err
    return {t["token"] for t in json.loads(out)["top"]}


def test_train_without_o_stores_in_the_home_and_commands_find_it_by_name(corpus):
    code, err, out = train(str(corpus))
    assert code == 0, err
    assert (home() / "notes.safetensors").is_file()
    assert (home() / "notes.state.safetensors").is_file()
    assert str(home() / "notes.safetensors") in out.replace("\n", "")  # rich wraps at 80
    assert top_tokens("notes") <= TOY_TOKENS
    code, err, _ = invoke(["info", "notes"])
    assert code == 0, err


def test_default_names_come_from_the_first_input(tmp_path):
    folder = tmp_path / "my corpus"
    folder.mkdir()
    (folder / "a.txt").write_text(TOY * 40)
    assert train(str(folder))[0] == 0
    assert train("-", stdin=TOY * 40)[0] == 0
    assert bundled_names()[0] not in ("my-corpus", "stdin")
    assert sorted(p.name for p in home().glob("*[!e].safetensors")) == [
        "my-corpus.safetensors",
        "stdin.safetensors",
    ]


def test_a_folder_without_a_model_does_not_hide_the_home_model_trained_on_it(tmp_path, monkeypatch):
    (tmp_path / "poems").mkdir()
    (tmp_path / "poems" / "a.txt").write_text(TOY * 40)
    monkeypatch.chdir(tmp_path)
    assert train("poems")[0] == 0
    assert top_tokens("poems") <= TOY_TOKENS


def test_a_path_beats_the_home_which_beats_a_bundled_model(tmp_path, monkeypatch):
    bundled = "shakespeare-char"
    assert len(top_tokens(bundled)) > 40  # the bundled vocabulary: 65 characters
    shadow = tmp_path / f"{bundled}.txt"
    shadow.write_text(TOY * 40)
    assert train(str(shadow))[0] == 0
    assert top_tokens(bundled) <= TOY_TOKENS  # the home's model now answers to the name
    here = tmp_path / "cwd"
    here.mkdir()
    assert train(str(shadow), "-o", str(here / bundled))[0] == 0  # same text, but ...
    (here / "abc.txt").write_text("abcab cabca bcabc\n" * 60)
    assert train(str(here / "abc.txt"), "-o", str(here / bundled), "--force")[0] == 0
    monkeypatch.chdir(here)
    assert top_tokens(bundled, "a") <= set("abc \n") | UNKNOWN  # ./shakespeare-char wins


def test_output_with_a_trailing_slash_is_a_directory(tmp_path, corpus):
    code, err, _ = train(str(corpus), "-o", f"{tmp_path / 'newdir'}/")
    assert code == 0, err
    assert (tmp_path / "newdir" / "newdir.safetensors").is_file()
    assert (tmp_path / "newdir" / "newdir.state.safetensors").is_file()
    assert not (tmp_path / "newdir.safetensors").exists()
    assert top_tokens(str(tmp_path / "newdir")) <= TOY_TOKENS


def test_an_existing_model_is_not_replaced_without_force(tmp_path, corpus):
    out = tmp_path / "m"
    model, state = tmp_path / "m.safetensors", tmp_path / "m.state.safetensors"
    assert train(str(corpus), "-o", str(out))[0] == 0
    before = model.read_bytes()
    code, err, _ = train(str(corpus), "-o", str(out))
    assert code == 2 and "--resume" in err and "--force" in err, err
    assert err.startswith("rnnrepl: error: ") and err.count("\n") == 1, err
    assert model.read_bytes() == before
    code, err, _ = train(str(corpus), "-o", str(out), "--force", "--resume")
    assert code == 2 and "not both" in err
    assert train(str(corpus), "-o", str(out), "--force", "--seed", "9")[0] == 0
    assert model.read_bytes() != before
    # A resume state left alone (a run interrupted before its first model) is refused too, and
    # --force replaces it with this run's state.
    model.unlink()
    state.write_bytes(b"stale")
    assert train(str(corpus), "-o", str(out))[0] == 2
    assert train(str(corpus), "-o", str(out), "--force")[0] == 0
    resume.load_state(state)


def test_list_shows_home_and_bundled_models(corpus):
    assert train(str(corpus))[0] == 0
    home().joinpath("broken.safetensors").write_bytes(b"not a model at all")
    code, err, out = invoke(["list", "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["home"] == str(home())
    entries = {(m["name"], m["source"]): m for m in data["models"]}
    notes = entries["notes", "home"]
    assert notes["level"] == "char" and notes["arch"] == "gru"
    assert notes["parameters"] == modelfile.load_model("notes").model.num_parameters()
    assert notes["bpc"] > 0 and notes["size"] == (home() / "notes.safetensors").stat().st_size
    assert notes["modified"].startswith(time.strftime("%Y-", time.gmtime()))
    assert entries["broken", "home"]["error"]
    assert entries["wikitext-word", "bundled"]["ppl"] > 1
    code, err, out = invoke(["list"])
    assert code == 0, err
    for word in ("notes", "bpc", "broken", "shakespeare-char", "ppl", "Bundled models"):
        assert word in out


def test_rm_removes_a_home_model_and_refuses_anything_else(corpus):
    assert train(str(corpus))[0] == 0
    code, err, out = invoke(["rm", "notes"])
    assert code == 0, err
    assert "removed notes" in out and not list(home().glob("notes*"))
    for name, says in (
        ("notes", "no model"),
        ("shakespeare-char", "bundled"),
        (str(corpus), "not a model name"),
    ):
        code, err, _ = invoke(["rm", name])
        assert code == 2 and says in err, err
    assert "shakespeare-char" in bundled_names() and corpus.is_file()


def completions(args: list[str], incomplete: str) -> list[tuple[str, str]]:
    shell = BashComplete(cli, {}, "rnnrepl", "_RNNREPL_COMPLETE")
    return [(c.type, c.value) for c in shell.get_completions(args, incomplete)]


@pytest.mark.parametrize("command", ["chat", "generate", "predict", "score", "eval", "info", "rm"])
def test_model_arguments_complete_stored_and_bundled_names(corpus, command):
    assert train(str(corpus))[0] == 0
    assert ("plain", "notes") in completions([command], "")
    assert completions([command], "wiki") == [("plain", "wikitext-bpe"), ("plain", "wikitext-word")]
    assert completions([command], "./no") == [("file", "./no")]


def test_completion_through_the_environment_variable():
    r = run_cli(env={"_RNNREPL_COMPLETE": "bash_complete", "COMP_WORDS": "rnnrepl info sh",
                     "COMP_CWORD": "2"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["plain,shakespeare-char"]
