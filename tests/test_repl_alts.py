"""/alts N and /keep I: sampled continuations side by side, one kept."""

from __future__ import annotations

import threading

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.repl.alts import COLUMN_MIN
from rnnrepl.repl.state import Settings
from tests.repl_support import (
    CHAIN,
    CHAIN_ALPHABET,
    bigram,
    char_vocab,
    random_lstm,
    running_repl,
    to_plain,
    wait_for,
)

torch.set_num_threads(1)

MODEL = random_lstm(char_vocab(), hidden=32)
SEEDED = Settings(SampleConfig(max_tokens=30, seed=7))
CTRL_C = "\x03"


@pytest.fixture
def repl():
    with running_repl(MODEL, SEEDED) as driver:
        yield driver


def alts(repl, line: str) -> list:
    """Run /alts; wait for the alternatives on offer and return their texts."""
    shown = len(repl.printed)
    repl.type(line + "\r")
    wait_for(lambda: repl.session.branches.offer is not None, what=f"the offer of {line}")
    wait_for(lambda: len(repl.printed) > shown, what="the alternatives printed")
    return [alt.text for alt in repl.session.branches.offer.alts]


def enter(repl, text: str) -> None:
    turns = len(repl.session.doc.turns)
    repl.type(text + "\r")
    wait_for(lambda: len(repl.session.doc.turns) == turns + 1, what="a new turn")
    repl.idle()


def test_alts_samples_n_numbered_continuations_in_columns_or_stacked_by_width(repl):
    enter(repl, "the cat")
    assert len(alts(repl, "/alts")) == 3
    texts = alts(repl, "/alts 4")
    assert len(texts) == 4 and len(set(texts)) == 4 and all(texts)
    view = repl.printed[-1]
    wide = to_plain(view, width=4 * COLUMN_MIN).splitlines()
    assert wide[0].split() == ["1", "┃", "2", "┃", "3", "┃", "4"]  # one column each
    assert "━" in wide[1] and "/keep I appends one" in wide[-1]
    narrow = to_plain(view, width=4 * COLUMN_MIN - 1).splitlines()
    starts = [line.split()[0] for line in narrow if line[:1].isdigit()]
    assert starts == ["1", "2", "3", "4"]  # one under another
    first = texts[0].splitlines()[0].strip()[:8]
    assert first in narrow[0] and "┃" not in "".join(narrow)


def test_after_alts_the_next_key_costs_one_model_step():
    """Sampling leaves the prefix cache as it found it: no re-read of the document after it."""
    with running_repl(MODEL, Settings(SampleConfig(max_tokens=100, seed=3))) as repl:
        enter(repl, "the cat sat")
        repl.view_for(repl.session.doc.text)
        alts(repl, "/alts 2")
        fed = repl.repl.worker.predictor.tokens_fed
        repl.type("t")
        repl.view_for(repl.session.doc.text + "t")
        assert repl.repl.worker.predictor.tokens_fed - fed == 1


@pytest.mark.parametrize("line", ["/alts 1", "/alts 7", "/alts x", "/alts ²", "/alts -3"])
def test_alts_counts_out_of_range_say_why(repl, line):
    repl.type(line + "\r")
    wait_for(lambda: "usage: /alts [N] — N from 2 to 6 (default 3)" in repl.output())
    assert repl.session.branches.offer is None and not repl.session.branches.sampling


def test_keep_appends_one_as_a_generated_turn_and_typing_on_discards_them(repl):
    enter(repl, "the cat")
    before = repl.session.doc.text
    texts = alts(repl, "/alts 3")
    repl.type("/keep 2\r")
    wait_for(lambda: len(repl.session.doc.turns) == 2)
    turn = repl.session.doc.turns[-1]
    assert (turn.user, turn.model) == ("", texts[1])
    assert repl.session.doc.text == before + texts[1]
    assert len(turn.scores) == 30  # each token's rank and p, for /color, as after Enter
    wait_for(lambda: repl.output().rstrip().endswith(texts[1].rstrip()), what="the turn printed")
    repl.view_for(repl.session.doc.text)  # the panel predicts after the kept text
    repl.type("/keep 1\r")  # kept: no longer on offer
    wait_for(lambda: "no alternatives on offer — /alts N samples some" in repl.output())
    alts(repl, "/alts 2")
    repl.type("/keep 3\r")
    wait_for(lambda: "usage: /keep I — I from 1 to 2" in repl.output())
    enter(repl, " on")  # typing on
    repl.type("/keep 1\r")
    wait_for(lambda: repl.output().count("no alternatives on offer") == 2)
    assert repl.session.doc.turns[-1].user == " on"


def test_seeded_alternatives_repeat_and_the_first_is_what_enter_writes():
    runs = []
    for _ in range(2):
        with running_repl(MODEL, SEEDED) as repl:
            enter(repl, "the mat")
            runs.append(alts(repl, "/alts 3"))
            enter(repl, "")  # Enter on an empty line: the continuation with the same seed
            runs.append([repl.session.doc.turns[-1].model])
    assert runs[0] == runs[2] and len(set(runs[0])) == 3
    assert runs[1] == runs[3] == runs[0][:1]


def test_sampling_runs_off_the_ui_thread_and_ctrl_c_stops_it_keeping_what_it_has():
    endless = Settings(SampleConfig(temperature=1.0, max_tokens=10_000_000))
    model = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
    threads: list[str] = []
    with running_repl(model, endless) as repl:
        predictor = repl.repl.worker.predictor
        stream = predictor.stream
        produced: list[int] = []

        def counted(steps):
            for step in steps:
                produced.append(1)
                yield step

        def streaming(*a):
            threads.append(threading.current_thread().name)
            return counted(stream(*a))

        predictor.stream = streaming
        repl.type("/alts 2\r")
        wait_for(lambda: "sampling 2 alts…" in repl.status())  # cut at 80 columns
        repl.type("dog")  # typing goes on meanwhile
        wait_for(lambda: repl.buffer.text == "dog")
        wait_for(lambda: produced, what="a first sampled token")  # a busy machine is slow
        repl.type(CTRL_C)
        wait_for(lambda: repl.session.branches.offer is not None, what="the stopped offer")
        offer = repl.session.branches.offer.alts
        assert len(offer) == 1 and offer[0].ended == "stopped" and offer[0].text
        assert repl.buffer.text == "dog"  # Ctrl-C stopped the sampling, not the line
        assert "[stopped]" in repl.output() and "sampling" not in repl.status()
        assert threads == ["rnnrepl-model"]
        repl.type(CTRL_C + "/keep 1\r")
        wait_for(lambda: repl.session.doc.turns, what="the kept turn")
        assert repl.session.doc.turns[0].model == offer[0].text
        assert repl.session.doc.turns[0].ended == "stopped"
