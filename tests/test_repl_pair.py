"""`rnnrepl chat MODEL_A MODEL_B`: two models' panels for the same text, driven through
prompt-toolkit's pipe input as the one-model REPL is (tests/repl_support.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.errors import CheckpointError
from rnnrepl.repl.app import model_loader
from rnnrepl.repl.pair_panel import pair_panel
from rnnrepl.repl.state import Settings
from rnnrepl.text.bpe import BpeVocab
from rnnrepl.text.tokenizers import WordVocab
from tests.helpers import invoke, run_cli
from tests.repl_support import (
    CHAIN,
    CHAIN_ALPHABET,
    bigram,
    char_vocab,
    random_lstm,
    running_repl,
    save,
    to_plain,
    wait_for,
    word_model,
)

torch.set_num_threads(1)

CHAR = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)  # "dog, sun.\n" over and over
WORD = word_model(["dog", "sun", "the", "cat", ","], {"cat": 3.0})  # "cat" after anything
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=6), words=0)
WORDS = ["the", "cat", "sat", "on", "mat", ".", "a", "dog"]


def pair_for(repl, text: str):
    """Wait until both models' figures and B's panel are for `text`."""
    pair = repl.repl.pair
    wait_for(
        lambda: (
            pair.view is not None
            and pair.view.text == text
            and pair.view.b_view is not None
            and repl.session.view is not None
            and repl.session.view.text == text
        ),
        what=f"both panels for {text!r}",
    )
    return pair.view


@pytest.fixture
def two():
    with running_repl(CHAR, GREEDY, second=lambda: WORD) as driver:
        wait_for(lambda: driver.repl.pair.info is not None, what="model B to load")
        yield driver


def test_two_panels_side_by_side_each_with_its_own_tokens_and_title(two):
    two.type("dog, th")
    shown = pair_for(two, "dog, th")
    assert shown.b_view.partial == "th"  # the word model: completions of the half-typed word
    assert [t for t, _ in shown.b_view.top] == ["the"]
    assert two.session.view.top[0][0] == "e" or two.session.view.top[0][1] < 0.99  # chars
    lines = two.panel().splitlines()  # DummyOutput: 80 columns, side by side
    assert lines[0].startswith("A  bigram · char · Enter") and "B  bigram · word" in lines[0]
    assert lines[2].startswith("next token") and "completions of 'th'" in lines[2]
    assert any(line[40:].split()[:1] == ["the"] for line in lines[3:])  # B's own tokens


def test_below_80_columns_the_panels_are_stacked(two):
    two.type("dog")
    pair_for(two, "dog")
    wide = to_plain(pair_panel(two.session, two.repl.pair, 80), 80).splitlines()
    narrow = to_plain(pair_panel(two.session, two.repl.pair, 79), 79).splitlines()
    assert "B  bigram · word" in wide[0] and len(wide) < len(narrow)
    assert narrow[0].startswith("A  bigram · char")
    b = next(i for i, line in enumerate(narrow) if line.startswith("B  bigram · word"))
    assert (
        narrow[1].startswith("last g ") and narrow[b + 1] == "nothing typed yet"
    )  # "dog" is half-typed for B
    assert narrow[2] == "next token" and narrow[3].split()[0] == ","  # A's after "dog"


def test_figures_follow_the_typed_text(two):
    two.type("dog")
    shown = pair_for(two, "dog")
    a, b = shown.a, shown.b
    assert (a.tokens, a.characters, a.last) == (3, 3, "g")
    assert a.last_prob > 0.99 and a.bits_per_character < 0.1  # the chain predicts it
    assert (b.tokens, b.characters, b.last) == (0, 0, "")  # "dog" is still being typed
    assert "nothing typed yet" in two.panel()
    two.type(" ")
    shown = pair_for(two, "dog ")
    assert (shown.b.tokens, shown.b.last, shown.b.characters) == (1, "dog", 4)
    assert shown.b.last_prob < 0.1  # B expects "cat"
    assert shown.a.tokens == 4 and shown.a.last == " "
    two.type("\x7f\x7f")  # backspaces: the figures shrink with the text
    shown = pair_for(two, "do")
    assert (shown.a.tokens, shown.a.last) == (2, "o")


def _score_json(model, text: str) -> dict:
    result = invoke("score", str(model), text, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _tiny(kind: str, tmp_path):
    """A random 2-layer model of `kind` (char LSTM, word GRU or BPE GRU), saved."""
    if kind == "char":
        loaded = random_lstm(char_vocab("the cat sat on mat.\n"), seed=1)
    elif kind == "word":
        loaded = random_lstm(WordVocab(["<unk>", "\n", *WORDS]), seed=2, arch="gru")
    else:
        tok = BpeVocab.train(["the cat sat on the mat. the dog sat on the log.\n" * 20], 300)
        loaded = random_lstm(tok, seed=3, arch="gru")
    return save(loaded, tmp_path / kind)


@pytest.mark.parametrize(("b_kind", "int8"), [("word", False), ("word", True), ("bpe", False)])
def test_the_figures_equal_what_score_reports_for_each_model(tmp_path, b_kind, int8):
    char, other = _tiny("char", tmp_path), _tiny(b_kind, tmp_path)
    text = "the cat sat on the mat. the dog "
    loaders = (model_loader(str(char), "cpu"), model_loader(str(other), "cpu"))
    with running_repl(loaders[0](), Settings(words=0), second=loaders[1], int8=int8) as repl:
        wait_for(lambda: repl.repl.pair.info is not None, what="model B")
        repl.type(text)
        shown = pair_for(repl, text)
    # char and word read every character here; BPE leaves the last pre-token (the space) out
    assert shown.a.characters == len(text) and shown.b.characters == len(text) - (b_kind == "bpe")
    for typed, model in ((shown.a, char), (shown.b, other)):
        scored = _score_json(model, text[: typed.characters])
        rel = 1e-4 if not int8 else 0.02  # int8 steps: close, not equal
        assert typed.tokens == scored["tokens"] and typed.characters == scored["characters"]
        assert typed.mean_loss == pytest.approx(scored["cross_entropy"], rel=rel)
        assert typed.perplexity == pytest.approx(scored["perplexity"], rel=rel)
        assert typed.bits_per_character == pytest.approx(
            scored["bits_per_character_of_text"], rel=rel
        )
        last = scored["steps"][-1]
        assert typed.last == last["token"]
        assert typed.last_prob == pytest.approx(last["prob"], rel=rel)
    assert shown.a.tokens == len(text)
    if b_kind == "word":
        assert shown.b.tokens == 9  # "." a token of its own


def test_a_paste_longer_than_the_scored_limit_scores_its_last_tokens(monkeypatch):
    from rnnrepl.infer import surprisal
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.pair_panel import figures

    monkeypatch.setattr(surprisal, "LIMIT", 4)
    predictor = Predictor(random_lstm(char_vocab()))
    pasted = predictor.typed_score("the cat sat")  # 11 tokens at once: the last 4 scored
    assert (pasted.tokens, pasted.skipped, pasted.last) == (4, 7, "t")
    assert math.isnan(pasted.bits_per_character) and math.isfinite(pasted.perplexity)
    typed = predictor.typed_score("the cat sat ")  # then one key: one more scored
    assert (typed.tokens, typed.skipped, typed.last) == (5, 7, " ")
    back = predictor.typed_score("the")  # backspaces into the paste: still unscored
    assert (back.tokens, back.skipped) == (0, 3)
    assert (
        to_plain(figures(back, 80), 80).strip()
        == "last e – · bpc – · ppl – · 0 tok (3 pasted unscored)"
    )
    predictor.typed_score("")  # /reset
    assert predictor.typed_score("the").skipped == 0  # typed afresh: all scored


def test_enter_streams_from_a_and_flip_makes_b_write(two):
    two.type("d\r")
    wait_for(lambda: two.session.doc.turns, what="a turn")
    two.idle()
    assert two.session.doc.text == "dog, su"  # the char chain wrote it: model A
    two.type("/flip\r")
    wait_for(lambda: two.session.info.level == "word", what="the flip")
    assert two.repl.pair.info.level == "char"
    assert "A is now bigram" in two.output()
    two.type("\r")  # Enter on an empty line: the new A (the word model) continues
    wait_for(lambda: len(two.session.doc.turns) == 2, what="a second turn")
    two.idle()
    assert two.session.doc.turns[-1].model.split() == ["cat"] * 6
    lines = two.panel().splitlines()
    assert lines[0].startswith("A  bigram · word") and "B  bigram · char" in lines[0]


def test_show_names_model_b(two):
    two.type("/show\r")
    wait_for(lambda: "model B: bigram.safetensors" in two.output(), what="/show")
    assert "word level, vocabulary 7" in " ".join(two.output().split())


def test_model_replaces_a_and_keeps_b(two, tmp_path):
    other = save(word_model(["sun"], {"sun": 2.0}), tmp_path / "suns")
    two.type(f"/model {other}\r")
    wait_for(lambda: two.session.info.name == "suns", what="the switch")
    assert two.repl.pair.info.level == "word" and two.repl.pair.info.name == "bigram"
    two.type("the ")
    shown = pair_for(two, "the ")
    assert shown.a.last == "<unk>" and shown.b.last == "the"  # A's vocabulary lacks "the"


def test_flip_with_one_model_says_it_needs_two():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/flip\r")
        wait_for(lambda: repl.printed, what="the message")
        assert "needs two models: chat MODEL_A MODEL_B" in repl.output()


def test_a_corrupt_model_b_ends_the_app_with_its_error(tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import ReplApp

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with create_pipe_input() as pipe:
        app = ReplApp(
            lambda: CHAR,
            input=pipe,
            output=DummyOutput(),
            emit=print,
            second=model_loader(str(bad), "cpu"),
        )
        with pytest.raises(CheckpointError):
            app.run(handle_sigint=False)


def test_two_models_on_a_pipe_are_a_usage_error(tmp_path):
    model = save(CHAR, tmp_path / "chain")
    done = run_cli("chat", str(model), str(model), stdin="dog\n")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("rnnrepl: error: two models need a terminal")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    one = run_cli("chat", str(model), "-n", "3", "--temperature", "0", stdin="do\n")
    assert one.returncode == 0 and one.stdout == "g, \n"  # one model: line mode as before


def test_untyped_figures_render_as_dashes_not_nan():
    from rnnrepl.infer.typed import TypedScore
    from rnnrepl.repl.pair_panel import figures

    pasted = TypedScore(5, 5 * math.log(2), 40, "x", math.nan, skipped=3)
    line = to_plain(figures(pasted, 80), 80).strip()
    assert line == "last x – · bpc – · ppl 2.00 · 5 tok (3 pasted unscored)"
