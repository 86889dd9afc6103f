"""Branches of the document: /fork /branches /switch /load, /undo and /save per branch."""

from __future__ import annotations

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.branch_states import MAX_BRANCHES
from rnnrepl.infer.predictor import Predictor
from rnnrepl.repl.branch_commands import LOAD_MAX
from rnnrepl.repl.state import Settings
from tests.repl_support import (
    CHAIN,
    CHAIN_ALPHABET,
    bigram,
    char_vocab,
    random_lstm,
    running_repl,
    wait_for,
)

torch.set_num_threads(1)

CHAR = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=12))


@pytest.fixture
def repl():
    with running_repl(CHAR, GREEDY) as driver:
        yield driver


def enter(repl, text: str) -> None:
    """Type `text` and Enter; wait until the model's turn has ended."""
    turns = len(repl.session.doc.turns)
    repl.type(text + "\r")
    wait_for(lambda: len(repl.session.doc.turns) == turns + 1, what="a new turn")
    repl.idle()


def command(repl, line: str, shows: str) -> None:
    """Run a slash command; wait until its output holds `shows` once more than before."""
    before = repl.output().count(shows)
    repl.type(line + "\r")
    wait_for(lambda: repl.output().count(shows) > before, what=f"{shows!r} after {line}")


def test_fork_switch_and_undo_keep_each_branch_apart(repl):
    enter(repl, "dog")
    shared = repl.session.doc.text
    command(repl, "/fork", "on b1, forked from main at 15 characters")
    enter(repl, " sun")
    b1 = repl.session.doc.text
    assert b1.startswith(shared) and len(repl.session.doc.turns) == 2
    command(repl, "/switch main", "on main: 1 turn")
    assert repl.session.doc.text == shared and repl.session.branches.current == "main"
    repl.view_for(shared)  # the panel follows the branch
    command(repl, "/undo", "dropped the last turn")
    assert repl.session.doc.text == ""
    command(repl, "/switch b1", "on b1: 2 turns")
    assert repl.session.doc.text == b1  # main's undo did not touch b1
    command(repl, "/undo", "dropped the last turn")
    assert repl.session.doc.text == shared
    command(repl, "/switch main", "on main: 0 turns")
    assert repl.session.doc.text == ""


def test_each_branch_keeps_its_own_meter(repl):
    repl.type("dog")
    wait_for(lambda: repl.session.meter.typed == 3)
    repl.type("\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    command(repl, "/fork mine", "on mine")
    repl.type("d")
    wait_for(lambda: repl.session.meter.typed == 4)
    repl.type("\x03")  # Ctrl-C clears the line
    command(repl, "/switch main", "on main")
    assert repl.session.meter.typed == 3
    command(repl, "/switch mine", "on mine")
    assert repl.session.meter.typed == 4


def test_branches_lists_names_turns_last_lines_and_marks_the_current_one(repl):
    enter(repl, "dog")
    command(repl, "/fork", "on b1")
    enter(repl, "x")
    command(repl, "/fork idea", "on idea")
    command(repl, "/fork", "on b2")  # the first free default name
    command(repl, "/switch b1", "on b1")
    command(repl, "/branches", "last line")
    table = repl.output().rsplit("branch", 1)[1].splitlines()[1:]
    rows = {line.split()[0] if line[0] == " " else line.split()[1]: line for line in table}
    assert rows.keys() == {"main", "b1", "idea", "b2"}
    assert rows["b1"].startswith("*") and not rows["main"].startswith("*")
    assert rows["main"].split()[1:3] == ["1", "dog,"]  # turns, then the last line
    assert rows["idea"].split()[1] == "2"
    assert rows["b1"].split()[2] == "2" and repl.session.doc.text.endswith(rows["b1"][-6:].strip())


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("/fork main", "a branch named 'main' exists — /switch main goes to it"),
        ("/fork two words", "'two words' is no branch name"),
        ("/switch nowhere", "no branch 'nowhere' — one of: main"),
        ("/switch", "usage: /switch NAME"),
        ("/switch main", "already on main"),
        ("/load", "usage: /load FILE"),
    ],
)
def test_bad_branch_commands_say_why_and_change_nothing(repl, line, why):
    command(repl, line, why)
    assert repl.session.branches.current == "main" and repl.session.doc.text == ""


def test_switch_names_complete_with_tab(repl):
    command(repl, "/fork idea", "on idea")
    repl.type("/sw")
    wait_for(lambda: repl.buffer.text == "/sw")
    repl.type("\t")
    wait_for(lambda: repl.buffer.text == "/switch")
    repl.type(" ma")
    state = lambda: repl.buffer.complete_state  # noqa: E731
    wait_for(lambda: state() and state().original_document.text == "/switch ma", what="the menu")
    repl.type("\t")
    wait_for(lambda: repl.buffer.text == "/switch main")


def test_a_switch_reads_no_token_of_the_shared_prefix_again(tmp_path):
    """The branch left keeps its cached states aside; the one entered gets its own back. (The
    shared cache alone re-reads from its last grid state before the fork point: 32 tokens
    here, and all of b1's 107 after it, on every switch.)"""
    text = "the cat sat on the mat.\n" * 20  # 480 characters: 480 tokens of context
    (tmp_path / "doc.txt").write_text(text, encoding="utf-8")
    model = random_lstm(char_vocab(), hidden=32)
    with running_repl(model, Settings(SampleConfig(max_tokens=100, seed=1))) as repl:
        command(repl, f"/load {tmp_path / 'doc.txt'}", "read 480 characters")
        repl.view_for(text)
        command(repl, "/fork", "on b1")
        enter(repl, "the cat")
        b1 = repl.session.doc.text
        predictor = repl.repl.worker.predictor
        for name, shown in (("main", text), ("b1", b1), ("main", text)):
            repl.view_for(repl.session.doc.text)
            fed = predictor.tokens_fed
            command(repl, f"/switch {name}", f"on {name}")
            repl.view_for(shown)
            assert predictor.tokens_fed == fed


def test_the_panel_after_switches_is_the_one_a_fresh_model_computes(tmp_path):
    """Kept caches bring back the right states; past MAX_BRANCHES the oldest is dropped and
    the branch is read again from before its fork point, with the same panel."""
    model = random_lstm(char_vocab(), hidden=32)
    fresh = Predictor(model)
    with running_repl(model, Settings(SampleConfig(max_tokens=40, seed=5))) as repl:
        enter(repl, "the mat")
        main = repl.session.doc.text
        for i in range(1, MAX_BRANCHES + 2):  # main's kept cache is the oldest: dropped
            command(repl, "/fork", f"on b{i}")
            enter(repl, " cat")
        predictor = repl.repl.worker.predictor
        for name in ("main", "b3", f"b{MAX_BRANCHES + 1}", "b3"):
            repl.view_for(repl.session.doc.text)
            fed = predictor.tokens_fed
            command(repl, f"/switch {name}", f"on {name}")
            text = repl.session.doc.text
            view = repl.view_for(text)
            expected = fresh.top_k(text, 10)
            assert [t for t, _ in view.top] == [t for t, _ in expected]
            assert [p for _, p in view.top] == pytest.approx([p for _, p in expected], abs=1e-5)
            fed = predictor.tokens_fed - fed
            assert 0 < fed <= len(main) if name == "main" else fed == 0, (name, fed, len(main))


def test_save_writes_the_current_branch(repl, tmp_path):
    enter(repl, "dog")
    command(repl, "/fork", "on b1")
    enter(repl, " sun")
    command(repl, "/switch main", "on main")
    command(repl, f"/save {tmp_path / 'main.txt'}", "wrote")
    command(repl, "/switch b1", "on b1")
    command(repl, f"/save {tmp_path / 'b1.txt'}", "wrote")
    saved = {p.stem: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.txt")}
    assert saved["main"] == "dog" + ", sun.\ndog, "
    assert saved["b1"] == repl.session.doc.text and saved["b1"].startswith(saved["main"] + " sun")


def test_load_reads_a_unicode_document_as_one_turn_of_the_current_branch(repl, tmp_path):
    enter(repl, "dog")
    path = tmp_path / "notes é.txt"
    path.write_bytes("\ufeffthé cat — ☃\r\nsat 🐈\r\n".encode())  # BOM, CRLF, beyond the BMP
    command(repl, "/fork draft", "on draft")
    command(repl, f"/load {path}", "read 18 characters")
    assert repl.session.doc.text == "thé cat — ☃\nsat 🐈\n"
    assert [t.user for t in repl.session.doc.turns] == [repl.session.doc.text]
    repl.view_for(repl.session.doc.text)  # unknown characters: read as <unk>, no crash
    enter(repl, "d")
    command(repl, "/undo", "dropped")
    command(repl, "/undo", "dropped")
    assert repl.session.doc.text == ""
    command(repl, "/switch main", "on main")
    assert repl.session.doc.text == "dog" + ", sun.\ndog, "  # the fork point is untouched


def test_load_refuses_binary_huge_and_unreadable_files_with_one_line(repl, tmp_path):
    enter(repl, "dog")
    kept = repl.session.doc.text
    (tmp_path / "model.bin").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with open(tmp_path / "huge.txt", "wb") as fh:
        fh.truncate(LOAD_MAX + 1)  # sparse: the size is refused before any byte is read
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    cases = {
        "model.bin": "looks like a binary file",
        "huge.txt": f"is {LOAD_MAX + 1:,} bytes, more than /load reads",
        "latin.txt": "cannot decode as UTF-8",
        "missing.txt": "no such file",
        "": "is a directory",
    }
    for name, why in cases.items():
        before = len(repl.printed)
        command(repl, f"/load {tmp_path / name}", why)
        new = repl.printed[before:]
        assert len(new) == 1 and str(new[0].style) == "red"
        assert len(repl.output().rstrip().splitlines()[-1]) > 0 and "\n" not in new[0].plain
    assert repl.session.doc.text == kept and repl.thread.is_alive()
