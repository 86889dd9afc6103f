"""Next-word prediction as a person expects it: a typed whole word gets both its completions and
the next word after it, accepting a word brings its space, and <unk> is never offered."""

from __future__ import annotations

import json

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.predictor import Predictor
from rnnrepl.repl.state import Settings
from tests.helpers import invoke
from tests.repl_support import bigram, char_vocab, running_repl, save, wait_for, word_model

torch.set_num_threads(1)

ESC, CTRL_C, TAB = "\x1b", "\x03", "\t"
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=3))
# After "the" comes "cat", after "cat" "sat"; elsewhere "the" (e^3) beats "then" (e^1).
WORDS = word_model(
    ["the", "then", "cat", "sat"], {"the": 3.0, "then": 1.0}, {"the": "cat", "cat": "sat"}
)
# A model that would rather write <unk> than anything else.
UNKY = word_model(["cat"], {"<unk>": 10.0, "cat": 1.0})


def words(items) -> list[str]:
    return [token for token, _ in items]


def test_a_typed_whole_word_gets_its_completions_and_the_next_word_after_it():
    p = Predictor(WORDS)
    pred = p.predict("on the")
    assert pred.partial == "the"
    completions = dict(p.top_of(pred.completions, 5))
    assert set(completions) == {"the", "then"}
    assert completions["the"] == pytest.approx(1 / (1 + torch.e**-2), rel=1e-5)
    assert words(p.top_of(pred.next, 1)) == ["cat"]  # as if a space followed "the"
    half = p.predict("on th")  # only begins words: no next-word list
    assert half.partial == "th" and half.next is None
    assert words(p.top_of(half.completions, 5)) == ["the", "then"]
    boundary = p.predict("on the ")
    assert boundary.partial == "" and boundary.completions is None
    assert words(p.top_of(boundary.next, 1)) == ["cat"]


def test_unk_is_never_offered_and_the_rest_is_renormalised():
    p = Predictor(UNKY)
    pred = p.predict("")
    top = p.top_of(pred.next, 10)
    assert "<unk>" not in words(top) and words(top)[0] == "cat"
    assert sum(prob for _, prob in top) == pytest.approx(1.0, abs=1e-5)
    assert pred.unk > 0.99  # what was left out, reported
    assert p.complete("") == ["cat", " "]  # the ghost offers the best real word


def test_generation_never_samples_unk_unless_allowed():
    p = Predictor(UNKY)
    sampled = [
        s.token_id for s in p.stream("", SampleConfig(temperature=1.0, max_tokens=50, seed=1))
    ]
    assert 0 not in sampled and len(sampled) == 50
    allowed = SampleConfig(temperature=1.0, max_tokens=50, seed=1, allow_unk=True)
    assert 0 in [s.token_id for s in p.stream("", allowed)]


def test_char_level_ghost_brings_the_space_the_model_expects_after_the_word():
    chain = {"t": "h", "h": "e", "e": " ", " ": "c", "c": "a", "a": "t"}
    p = Predictor(bigram(char_vocab("the cat"), chain))
    assert p.complete("th") == ["e", " "]
    to_comma = Predictor(bigram(char_vocab("dog, sun."), dict(zip("dog", "og,", strict=True))))
    assert to_comma.complete("do") == ["g"]  # a comma follows: no space offered


def test_tab_and_alt_f_accept_a_word_with_its_space_and_the_panel_moves_on():
    with running_repl(WORDS, GREEDY) as repl:
        repl.type("th")
        view = repl.view_for("th")
        assert view.ghost == ("e", " ") and view.after is None
        repl.type(TAB)
        wait_for(lambda: repl.buffer.text == "the ", what="the accepted word and space")
        view = repl.view_for("the ")
        assert view.partial == "" and words(view.top)[0] == "cat"
        assert repl.panel().splitlines()[0].startswith("next token")
        repl.type(ESC + "f")  # Alt-F: its one token completes a word, so the space comes too
        wait_for(lambda: repl.buffer.text == "the cat ", what="Alt-F")
        repl.type(CTRL_C + "the")
        view = repl.view_for("the")
        assert words(view.top) == ["the", "then"] and words(view.after)[0] == "cat"
        panel = repl.panel()
        assert "completions of 'the'" in panel and "next word after 'the'" in panel
        assert view.ghost == (" cat", " ")  # the typed word is the likeliest: the next one
        repl.type(TAB)
        wait_for(lambda: repl.buffer.text == "the cat ", what="the next word")
        repl.type(".")  # a full stop takes the place of the inserted space
        wait_for(lambda: repl.buffer.text == "the cat.", what="the full stop")
        repl.type(" ,")  # a typed space stays
        wait_for(lambda: repl.buffer.text == "the cat. ,", what="a typed space")


def test_set_unk_lets_the_model_write_unk_and_the_notice_counts_only_the_users():
    with running_repl(UNKY, GREEDY) as repl:
        repl.type("dog\r")  # "dog" is not in the vocabulary
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        assert repl.session.doc.text == "dog cat cat cat"
        repl.type("/set unk on\r")
        wait_for(lambda: repl.session.settings.sample.allow_unk, what="/set unk on")
        repl.type("\r")
        wait_for(lambda: len(repl.session.doc.turns) == 2)
        repl.idle()
        assert repl.session.doc.text == "dog cat cat cat <unk> <unk> <unk>"
        view = repl.view_for(repl.session.doc.text, ghost=False)
        assert view.unknown == 1
        wait_for(lambda: "1 unknown token in the context" in repl.panel(), what="the notice")
        repl.type("/set unk maybe\r")
        wait_for(lambda: "unk must be on or off" in repl.output())


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("nextword")
    return str(save(WORDS, d / "words")), str(save(UNKY, d / "unky"))


def test_predict_says_which_list_it_shows(saved):
    r = invoke("predict", saved[0], "on the", "-k", "2")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "completions of 'the'\n"
        " the ██████████████████████████      88.1%\n"
        "then ███▌                            11.9%\n"
        "next word after 'the'\n"
        "cat █████████████████████████████▌ 100.0%\n"
        "the                                  0.0%\n"
    )
    r = invoke("predict", saved[0], "on the ", "-k", "1")
    assert r.stdout == "next token\ncat █████████████████████████████▌ 100.0%\n"


def test_predict_json_has_both_lists_and_keeps_top(saved):
    data = json.loads(invoke("predict", saved[0], "on the", "-k", "2", "--json").stdout)
    assert data["partial"] == "the" and data["next_after"] == "the"
    assert [t["token"] for t in data["completions"]] == ["the", "then"]
    assert data["top"] == data["completions"]  # as before: the first list
    assert data["next"][0]["token"] == "cat"
    data = json.loads(invoke("predict", saved[1], "", "--json").stdout)
    assert data["completions"] == [] and data["top"] == data["next"]
    assert "<unk>" not in [t["token"] for t in data["next"]] and data["unk_prob"] > 0.99
    assert invoke("predict", saved[1], "").stdout == (
        "next token\n"
        "cat █████████████████████▌          73.1%\n"
        "  ⏎ ████████                        26.9%\n"
        "(<unk> 100.0% left out; the rest renormalised)\n"
    )


def test_generate_and_chat_write_unk_only_with_allow_unk(saved):
    plain = invoke("generate", saved[1], "-p", "cat", "-n", "3", "--greedy")
    assert (plain.exit_code, plain.stdout) == (0, "cat cat cat cat\n")
    allowed = invoke("generate", saved[1], "-p", "cat", "-n", "3", "--greedy", "--allow-unk")
    assert allowed.stdout == "cat <unk> <unk> <unk>\n"
    chat = invoke("chat", saved[1], "-n", "2", "--temperature", "0", "--allow-unk", stdin="cat\n")
    assert (chat.exit_code, chat.stdout) == (0, " <unk> <unk>\n")
