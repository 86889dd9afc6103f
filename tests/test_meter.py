"""The REPL's live meter: top-1, words in the suggestions and keystrokes saved over a session."""

from __future__ import annotations

import string
from types import SimpleNamespace

import pytest
import torch

from rnnrepl.infer.words import in_word as infer_in_word
from rnnrepl.repl.meter import Meter, Shown, in_word, shown
from rnnrepl.repl.panel import status, to_ansi
from tests.repl_support import running_repl, to_plain, wait_for, word_model
from tests.test_repl import CHAR, ESC, GREEDY, TAB
from tests.test_repl_panel import INFO, VIEW

torch.set_num_threads(1)
PASTE = "\x1b[200~{}\x1b[201~"  # how a terminal delivers a paste
BACKSPACE = "\x7f"


def offer(char=None, words=(), word=None) -> Shown:
    return Shown(char, word, tuple(words))


def test_a_scripted_session_gives_exact_figures():
    m = Meter()
    m.type("", "d", offer("d", ["dog", "do", "d"]))  # top-1 hit; the word "dog" begins
    m.type("d", "o", offer("x", ["dog"]))  # miss
    m.accept("do", "g ", offer("g", ["dog"]))  # one key for "g ": the word ends, offered
    m.type("dog ", "c", None)  # the panel had not caught up: not scored, word not offered
    for before, ch in (("dog c", "a"), ("dog ca", "t"), ("dog cat", " ")):
        m.type(before, ch, offer(ch, ["cat"]))  # three hits; "cat" ends, never scored
    m.type("dog cat ", "x", offer("y", ["sun"]))  # miss; "x" begins a word
    m.type("zzz", "q", offer("q", ["q"]))  # the text changed under it: "x…" is dropped
    m.type("zzzq", ".", offer(".", []))  # hit; "zzzq" was not followed: no word ends
    assert (m.typed, m.accepted, m.characters, m.keystrokes) == (9, 1, 11, 10)
    assert (m.chars_scored, m.chars_top1) == (8, 6)
    assert (m.words, m.words_shown, m.words_first, m.words_any, m.words_top) == (2, 1, 1, 1, 0)
    assert m.status(3) == "top-1 75% · in 3 100% · saved 9%"


def test_word_level_scores_whole_words_and_any_point_counts_later_suggestions():
    m = Meter()
    for i, ch in enumerate("the "):  # top-1 and the column before "t" offer other words
        before = "the "[:i]
        m.type(
            before, ch, offer(None, ["the"] if before == "t" else ["dog"], "dog" if not i else None)
        )
    m.accept("the ", "dog ", offer(None, ["dog", "cat"], "dog"))
    assert (m.words, m.words_top, m.words_top1) == (2, 2, 1)
    assert (m.words_shown, m.words_first, m.words_any) == (2, 1, 2)
    assert m.status(2) == "top-1 50% · in 2 50% · saved 38%"  # 3 of 8 characters


def test_a_closing_mark_that_replaces_an_accepted_space_takes_it_back():
    m = Meter()
    m.accept("", "dog ", offer(None, ["dog"]))
    m.unspace()
    m.type("dog", ".", None)
    assert (m.characters, m.keystrokes) == (4, 2)  # "dog." as eval --ksr counts it
    assert m.status(3).endswith("saved 50%")


def test_nothing_typed_shows_nothing_and_stats_say_none_scored():
    m = Meter()
    assert m.status(3) == ""
    rows = dict(m.rows())
    assert rows["top-1 character"] == "none scored (typed characters)"
    m.type("", "a", None)
    assert m.status(3) == ""  # typed, but nothing scored or accepted yet


def view(text, top, partial="", after=None, words=()):
    return SimpleNamespace(text=text, top=top, partial=partial, after=after, words=words)


def test_what_the_panel_offered_by_level():
    char = view("do", (("g", 0.9), ("t", 0.1)), words=(("dog", 0.8),))
    assert shown(char, "do", False, True) == Shown("g", None, ("dog",))
    assert shown(char, "d", False, True) is None  # a panel for another text: not on screen
    assert shown(char, "do", False, False) == Shown("g", None, None)  # /set words 0
    bpe = view("the ca", ((" cat", 0.7),), partial=" ca")
    assert shown(bpe, "the ca", False, True).char == "t"
    whole = view("the ca", ((" ca", 0.7),), partial=" ca", after=(("r", 1.0),))
    assert shown(whole, "the ca", False, True).char == "r"
    boundary = view("the ", (("dog", 0.5),))
    assert shown(boundary, "the ", True, True).word == "dog"
    assert shown(view("the d", (("dog", 1.0),), partial="d"), "the d", True, True).word is None


def test_word_characters_are_those_of_the_word_suggestions():
    for ch in string.printable + "é’ß–—日":
        assert in_word(ch) == infer_in_word(ch), repr(ch)


def type_each(repl, before: str, text: str) -> None:
    """Type `text` a key at a time, each after the panel for the text before it."""
    for ch in text:
        repl.view_for(before)
        repl.type(ch)
        before += ch
    repl.view_for(before)


def test_the_status_line_counts_typing_and_accepting_but_not_paste_or_delete():
    with running_repl(CHAR, GREEDY) as repl:
        type_each(repl, "", "do")  # "d" and "o" are the chain's top-1 after "" and "d"
        repl.type(ESC + "1")  # Alt-1: "dog" was the first word before "d": "g " saved 1 key
        wait_for(lambda: repl.buffer.text == "dog ")
        type_each(repl, "dog ", "sa")  # "s" top-1, "a" not ("u" is)
        wait_for(lambda: "saved" in repl.status())
        assert repl.status().endswith("ctx 6 tok · top-1 75% · in 3 100% · saved 17%")
        repl.type(PASTE.format(" sun"))  # neither a paste nor deleting is typing
        wait_for(lambda: repl.buffer.text == "dog sa sun")
        repl.type(BACKSPACE * 4)
        wait_for(lambda: repl.buffer.text == "dog sa")
        repl.view_for("dog sa")
        assert (repl.session.meter.typed, repl.session.meter.accepted) == (4, 1)
        assert repl.status().endswith("top-1 75% · in 3 100% · saved 17%")
        repl.type("\x15/stats\r")  # Ctrl-U clears the line
        wait_for(lambda: "keystrokes" in repl.output())
        out = repl.output()
        assert "6 entered: 4 typed, 2 by 1 accepted suggestions" in out
        assert "3 of 4 typed characters (75%)" in out
        assert "1 of 1 before the first letter (100%)" in out
        assert repl.session.meter.typed == 4  # a slash command is not typing
        repl.type("/reset\r")
        wait_for(lambda: "meter cleared" in repl.output())
        repl.view_for("")
        assert "top-1" not in repl.status() and "k 10" in repl.status()


def test_tab_accepting_the_ghost_text_is_one_keystroke_for_all_it_inserts():
    with running_repl(CHAR, GREEDY) as repl:
        type_each(repl, "", "d")
        repl.type(TAB)  # the ghost text "og" (a comma follows "dog": no space comes with it)
        wait_for(lambda: repl.buffer.text == "dog")
        type_each(repl, "dog", ",")  # the top-1 after "dog"; the comma ends the word
        wait_for(lambda: "saved" in repl.status())
        # 2 typed + "og" accepted = 4 characters for 3 keystrokes
        assert repl.status().endswith("top-1 100% · in 3 100% · saved 25%")


def test_a_word_model_scores_whole_words_at_their_boundary():
    loaded = word_model(["the", "cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 5.0})
    with running_repl(loaded, GREEDY) as repl:
        type_each(repl, "", "the ")  # top-1 and the words before "t": dog, cat, car
        repl.type(ESC + "1")  # dog, the top-1
        wait_for(lambda: repl.buffer.text == "the dog ")
        type_each(repl, "the dog ", "c")
        repl.type(ESC + "1")  # cat: in the words before "c", not the top-1
        wait_for(lambda: repl.buffer.text == "the dog cat ")
        repl.view_for("the dog cat ")
        # words: the, dog, cat; characters 12, keystrokes 4 + 1 + 1 + 1
        wait_for(lambda: "saved 42%" in repl.status(), what=repl.status())
        assert repl.status().endswith("top-1 33% · in 3 67% · saved 42%")


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_the_meter_takes_room_from_the_sampling_settings_never_the_context(width):
    meter = "top-1 41% · in 3 62% · saved 18%"
    line = to_plain(status(INFO, GREEDY, VIEW, meter=meter, width=width), width=200).rstrip()
    assert line.endswith("ctx 1 tok · " + meter)
    assert len(line) <= max(width, len(" notes · word · ctx 1 tok · " + meter))
    assert ("top-p 1" in line) == (width >= 120)
    assert "\n" not in to_ansi(
        status(INFO, GREEDY, VIEW, meter=meter, width=width), width, one_line=True
    )


def test_a_full_stop_that_replaces_an_accepted_space_is_counted_as_eval_ksr_counts_it():
    loaded = word_model(["the", "cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 5.0})
    with running_repl(loaded, GREEDY) as repl:
        type_each(repl, "", "c")
        repl.type(ESC + "1")  # "at "
        wait_for(lambda: repl.buffer.text == "cat ")
        repl.type(".")
        wait_for(lambda: repl.buffer.text == "cat.")
        wait_for(lambda: repl.session.meter.typed == 2)
        # "cat." is 4 characters for 3 keystrokes: c, Alt-1, "."
        assert repl.status().endswith("top-1 0% · in 3 100% · saved 25%")
