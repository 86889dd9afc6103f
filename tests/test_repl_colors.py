"""/color in the REPL, driven through prompt-toolkit's pipe input: the input line's characters
in their tokens' surprisal colours (read from the input control's fragments, as the screen
gets them), the legend in the status line, finished turns printed in colour, and colours that
follow edits; each colour checked against `score` of the same text."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.buckets import scheme_for
from rnnrepl.infer.predictor import Predictor
from rnnrepl.repl.layout import _stream_fragments
from rnnrepl.repl.state import Settings
from rnnrepl.text.spans import token_spans
from rnnrepl.text.tokenizers import WordVocab
from tests.repl_support import (
    CHAIN,
    CHAIN_ALPHABET,
    bigram,
    char_vocab,
    random_lstm,
    running_repl,
    save,
    wait_for,
)
from tests.test_repl_tmux import Tmux, _chat
from tests.test_surprisal import colours_of

torch.set_num_threads(1)

ALPHABET = "the cat sat on mat.\n"
CHAR = random_lstm(char_vocab(ALPHABET), seed=4)
WORD = random_lstm(WordVocab(["<unk>", "\n", *"the cat sat on mat .".split()]), seed=5)
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=8))
COLOURS = {"green": 0, "yellow": 1, "red": 2, "magenta": 3}


def expected(loaded, text: str, kind: str = "rank") -> dict[int, int]:
    """Character index -> bucket, from scoring the complete tokens of `text` afresh."""
    tok = loaded.tokenizer
    ids, partial = tok.split_partial(text)
    body = text[: len(text) - len(partial)]
    rows, _ = Predictor(loaded).score(body, 1) if ids else ([], None)
    scheme = scheme_for(kind, tok.level)
    out = {}
    for (a, b), r in zip(token_spans(tok, body), rows, strict=True):
        out.update(dict.fromkeys(range(a, b), scheme.bucket(r.rank, r.prob)))
    return out


def input_buckets(repl) -> dict[int, int]:
    """Index in the input line -> bucket, from the style classes of the fragments the input
    control gives the screen (its processors applied)."""
    control = repl.repl.ui.application.layout.current_control
    content = control.create_content(width=200, height=10)
    out, pos = {}, 0
    for row in range(content.line_count):
        for style, text, *_ in content.get_line(row):
            for _ in text:
                if "class:surprise-" in style:
                    out[pos] = int(style.rsplit("class:surprise-", 1)[1][0])
                pos += 1
        pos += 1  # the line break
    return {i: b for i, b in out.items() if i < len(repl.buffer.text)}


@pytest.mark.parametrize(("loaded", "typed"), [(CHAR, "the cat sat on"), (WORD, "the cat sat on ")])
def test_color_rank_colours_the_typed_text_by_its_rank_buckets_and_shows_a_legend(loaded, typed):
    with running_repl(loaded, GREEDY) as repl:
        repl.type("/color rank\r")
        wait_for(lambda: "colour by rank: green top 1" in repl.output(), what="the legend")
        repl.type(typed)
        repl.view_for(typed)
        want = expected(loaded, typed)
        wait_for(lambda: input_buckets(repl) == want, what="the input line's colours")
        assert len(set(want.values())) > 1  # a random model: several colours to tell apart
        labels = "1 ≤3 ≤10 >10" if loaded is CHAR else "1 ≤10 ≤100 >100"
        assert repl.status().endswith(f" · rank {labels}")


def test_a_paste_has_its_panel_first_and_its_colours_after():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/color rank\r")
        wait_for(lambda: repl.session.settings.color == "rank")
        views = []
        on_view = repl.repl._on_view
        repl.repl._on_view = lambda view: (views.append(view), on_view(view))
        pasted = "the cat sat on the mat. " * 8
        repl.type("\x1b[200~" + pasted + "\x1b[201~")  # a bracketed paste: one change
        repl.view_for(pasted)
        want = expected(CHAR, pasted)
        wait_for(lambda: input_buckets(repl) == want, what="the paste's colours")
        mine = [v for v in views if v.text == pasted]
        assert not mine[0].colors and len(mine[1].colors) == len(pasted)


def test_an_edit_is_recoloured_from_where_it_begins_and_color_off_clears():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/color prob\r")
        repl.type("the mat sat")
        repl.view_for("the mat sat")
        repl.type("\x7f" * 7 + "cat on ")  # backspace to "the ", then other text
        repl.view_for("the cat on ")
        want = expected(CHAR, "the cat on ", "prob")
        wait_for(lambda: input_buckets(repl) == want, what="the recoloured line")
        assert " · prob ≥.5 ≥.1 ≥.01 <.01" in repl.status()
        repl.type("\x03/color off")  # Ctrl-C clears the line
        wait_for(lambda: input_buckets(repl) == {}, what="no colours on a command line")
        repl.type("\r")
        wait_for(lambda: repl.session.settings.color == "off", what="/color off")
        repl.type("the")
        repl.view_for("the")
        assert input_buckets(repl) == {} and "≥" not in repl.status()


def test_a_finished_turn_is_printed_in_colour():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/color rank\r")
        repl.type("the c\r")
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        doc = repl.session.doc.text
        wait_for(lambda: repl.printed[-1].plain == doc, what="the coloured turn")
        printed = repl.printed[-1]
        got = {}
        for span in printed.spans:
            for colour, bucket in COLOURS.items():
                if colour in str(span.style).split():
                    got.update(dict.fromkeys(range(span.start, span.end), bucket))
        assert got == expected(CHAR, doc)
        user = [s for s in printed.spans if "bold" in str(s.style)]
        assert max(s.end for s in user) == len("the c")  # the user's part stays bold


def test_the_text_streaming_in_is_coloured_by_the_rank_it_was_sampled_at():
    """While the model writes, each token in the colour of its rank in the distribution it
    was sampled from; the same colours as the finished turn printed afterwards."""
    sampling = Settings(SampleConfig(temperature=1.5, seed=3, max_tokens=10_000_000))
    with running_repl(CHAR, sampling) as repl:
        repl.type("/color rank\r")
        repl.type("the \r")
        wait_for(lambda: len(repl.session.doc.text) > 60, what="streamed text")
        fragments = _stream_fragments(repl.session)
        repl.type("\x03")  # Ctrl-C: stop
        repl.idle()
        streamed, pos = {}, len("the ")
        for style, text in fragments[1:-1]:  # between the user's text and the cursor
            if "surprise-" in style:
                streamed.update(dict.fromkeys(range(pos, pos + len(text)), int(style[-1])))
            pos += len(text)
        assert len(set(streamed.values())) > 1  # temperature 1.5: several colours
        doc = repl.session.doc.text
        wait_for(lambda: repl.printed[-1].plain == doc + " [stopped]", what="the turn printed")
        final = expected(CHAR, doc)
        assert {i: final[i] for i in streamed} == streamed


def test_with_no_color_set_color_says_the_colours_will_not_show(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/color rank\r")
        wait_for(lambda: "NO_COLOR is set: the terminal shows no colours" in repl.output())
        assert repl.session.settings.color == "rank"


def test_a_bad_color_argument_says_how_and_changes_nothing():
    with running_repl(CHAR, GREEDY) as repl:
        repl.type("/color blue\r")
        wait_for(lambda: "usage: /color rank|prob|off" in repl.output())
        assert repl.session.settings.color == "off"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_in_a_real_terminal_the_typed_text_shows_its_colours(tmp_path):
    """tmux: after "dog, " the chain model's next character is "s" (p > 0.99); "t" ties
    with every other character for rank 2: green "dog, ", yellow "t" (top 3), escape codes
    read back from the screen."""
    model = save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), tmp_path / "chain")
    tmux = Tmux(f"rnnrepl-color-{os.getpid()}")
    _chat(tmux, model, tmp_path, 100, 30)
    try:
        tmux.wait(lambda s: "chain · char" in s and "%" in s, "the panel")
        tmux("send-keys", "-t", "repl", "-l", "/color rank")
        tmux("send-keys", "-t", "repl", "Enter")
        tmux.wait(lambda s: s.rstrip().endswith("rank 1 ≤3 ≤10 >10"), "the legend")
        tmux("send-keys", "-t", "repl", "-l", "dog, t")
        want = [0, 0, 0, 0, 0, 1]  # green "dog, ", yellow "t"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            line = _input_line(tmux("capture-pane", "-p", "-e", "-t", "repl"))
            if line == ("dog, t", want):
                break
            time.sleep(0.1)
        assert line == ("dog, t", want), line
    finally:
        tmux("kill-server")


def _input_line(screen: str) -> tuple[str, list]:
    """(the input line's text after the prompt, each character's bucket) from a capture."""
    for row in screen.splitlines():
        text, colours = colours_of(row)
        if text.startswith("› "):
            return text[2:], colours[2:]
    return "", []
