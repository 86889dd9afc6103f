"""The REPL's logic driven through prompt-toolkit's pipe input, without a terminal."""

from __future__ import annotations

import errno
import os
import re
import threading
import time

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.errors import CheckpointError
from rnnrepl.infer.prefix_cache import SPACING
from rnnrepl.repl.state import Settings
from rnnrepl.repl.worker import BARS_WAIT
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
    word_model,
)

torch.set_num_threads(1)

ESC, CTRL_C, CTRL_D, TAB, RIGHT = "\x1b", "\x03", "\x04", "\t", "\x1b[C"
CHAR = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
GREEDY = Settings(SampleConfig(temperature=0.0, max_tokens=12))
ENDLESS = Settings(SampleConfig(temperature=0.0, max_tokens=10_000_000))


@pytest.fixture
def repl():
    with running_repl(CHAR, GREEDY) as driver:
        yield driver


def test_panel_and_status_follow_every_keystroke(repl):
    repl.view_for("")
    assert "d" in repl.panel() and "%" in repl.panel()
    repl.type("do")
    repl.view_for("do")
    panel = repl.panel()
    assert panel.splitlines()[0].startswith("next token")
    first = panel.splitlines()[1]
    assert first.split()[0] == "g" and first.endswith("100.0%")
    status = repl.status()
    for part in ("bigram", "char", "T 0", "top-k off", "top-p 1", "k 10", "ctx 2 tok"):
        assert part in status
    repl.type("g,")
    repl.view_for("dog,")
    assert repl.panel().splitlines()[1].split()[0] == "␣"  # whitespace shown visibly
    assert "ctx 4 tok" in repl.status()


def test_newline_token_is_shown_visibly(repl):
    repl.type("sun.")
    repl.view_for("sun.")
    assert repl.panel().splitlines()[1].split()[0] == "⏎"


def test_ghost_text_tab_right_and_alt_f(repl):
    repl.type("dog")
    assert repl.view_for("dog").ghost == (",", " ", "s", "u", "n")
    repl.type(ESC + "f")  # Alt-F: one token
    wait_for(lambda: repl.buffer.text == "dog,")
    repl.view_for("dog,")
    repl.type(TAB)
    wait_for(lambda: repl.buffer.text == "dog, sun")
    repl.type(CTRL_C + "d")
    repl.view_for("d")
    repl.type(RIGHT)
    wait_for(lambda: repl.buffer.text == "dog")


def test_right_moves_the_cursor_when_it_is_not_at_the_end(repl):
    repl.type("dog" + "\x1b[D")  # left
    wait_for(lambda: repl.buffer.cursor_position == 2)
    repl.view_for("do")
    assert repl.session.ghost(repl.buffer.document) == ()  # ghost text only at the end of the input
    repl.type(RIGHT)
    wait_for(lambda: repl.buffer.cursor_position == 3)
    assert repl.buffer.text == "dog"


def test_a_double_slash_is_text_that_starts_with_one_slash(repl):
    repl.type("//do")
    view = repl.view_for("/do")  # no command: the model reads one slash, the panel predicts
    assert view.top[0][0] == "g" and not repl.printed
    repl.type("\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    assert repl.session.doc.turns[-1].user == "/do"
    assert repl.session.doc.text.startswith("/dog, sun")


def test_enter_streams_a_continuation_into_one_growing_document(repl):
    repl.type("do\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    assert repl.session.doc.text == "do" + "g, sun.\ndog,"
    turn = repl.session.doc.turns[-1]
    assert (turn.user, turn.model, turn.ended) == ("do", "g, sun.\ndog,", "")
    assert "dog, sun." in repl.output()
    repl.type("\r")  # Enter on an empty line continues
    wait_for(lambda: len(repl.session.doc.turns) == 2)
    repl.idle()
    assert repl.session.doc.text == "dog, sun.\ndog," + " sun.\ndog, s"
    repl.view_for(repl.session.doc.text)  # the panel predicts after everything
    assert repl.buffer.text == ""


def test_ctrl_c_stops_the_stream_at_once_and_keeps_the_text():
    with running_repl(CHAR, ENDLESS) as repl:
        repl.type("d\r")
        wait_for(lambda: len(repl.session.doc.text) > 200, what="some generated text")
        repl.type(CTRL_C)
        repl.idle()
        turn = repl.session.doc.turns[-1]
        # doc.text is "d" + the model's text, so at least 200 generated characters were kept
        assert turn.ended == "stopped" and len(turn.model) >= 200
        kept = repl.session.doc.text
        assert kept == "d" + turn.model and "[stopped]" in repl.output()
        time.sleep(0.2)
        assert repl.session.doc.text == kept  # nothing arrives after the stop
        repl.type("x")
        wait_for(lambda: repl.buffer.text == "x")  # back at the prompt


def test_ctrl_c_on_the_prompt_clears_the_line(repl):
    repl.type("dog, s")
    wait_for(lambda: repl.buffer.text == "dog, s")
    repl.type(CTRL_C)
    wait_for(lambda: repl.buffer.text == "")
    assert repl.thread.is_alive()


@pytest.mark.parametrize("keys", [CTRL_D, "/quit\r"])
def test_ctrl_d_and_quit_exit_with_status_zero(keys):
    with running_repl(CHAR, GREEDY) as repl:
        repl.type(keys)
        repl.thread.join(10)
        assert repl.result == [0]


def test_ctrl_d_with_text_does_not_exit(repl):
    repl.type("dog" + "\x01" + CTRL_D)  # Ctrl-A, Ctrl-D: delete a character
    wait_for(lambda: repl.buffer.text == "og")
    assert repl.thread.is_alive()


def test_multiline_input_with_escape_enter(repl):
    repl.type("dog," + ESC + "\r" + "sun")
    wait_for(lambda: repl.buffer.text == "dog,\nsun")
    assert not repl.session.doc.turns


def test_set_changes_settings_and_the_panel(repl):
    repl.type("/set k 3\r/set temperature 0.5\r/set top_p 0.9\r/set stop \\n\r/set seed 7\r")
    wait_for(lambda: repl.session.settings.sample.seed == 7)
    s = repl.session.settings
    assert (s.k, s.sample.temperature, s.sample.top_p, s.sample.stop) == (3, 0.5, 0.9, "\n")
    wait_for(lambda: len(repl.panel().splitlines()) == 4, what="a 3-row panel")
    assert "T 0.5" in repl.status() and "k 3" in repl.status()


def test_the_panel_shows_whole_words_and_alt_digit_inserts_one_with_its_space():
    loaded = word_model(["the", "cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 5.0})
    with running_repl(loaded, GREEDY) as repl:
        repl.type("the ca")
        view = repl.view_for("the ca")
        assert [w for w, _ in view.words] == ["cat", "car"]  # the default: 3, two begin "ca"
        assert view.words[0][1] == pytest.approx(0.7311, abs=1e-4)
        lines = repl.panel().splitlines()
        assert lines[0].split()[-1] == "words"
        assert lines[2].split()[-3:] == ["2", "car", "26.9%"]
        repl.type(ESC + "2")  # Alt-2
        wait_for(lambda: repl.buffer.text == "the car ")
        view = repl.view_for("the car ")
        # the next word; the word cache lifts "car" and "the", which the text holds, over "cat"
        assert [w for w, _ in view.words] == ["dog", "car", "the"]
        repl.type(ESC + "1" + ".")  # a closing mark typed next replaces the space
        wait_for(lambda: repl.buffer.text == "the car dog.")
        repl.type(ESC + "9")  # no ninth word: nothing happens
        repl.type("x")
        wait_for(lambda: repl.buffer.text == "the car dog.x")


def test_alt_digit_completes_a_char_models_word_and_set_words_0_hides_them(repl):
    repl.type("do")
    assert repl.view_for("do").words[0][0] == "dog"
    repl.type(ESC + "1")
    wait_for(lambda: repl.buffer.text == "dog ")
    repl.type(CTRL_C + "/set words 0\r")
    wait_for(lambda: repl.session.settings.words == 0)
    repl.type("d")
    view = repl.view_for("d")
    assert view.words == () and "words" not in repl.panel()
    repl.type(ESC + "2" + "o")  # Alt-2 is emacs's numeric argument again: "o" twice
    wait_for(lambda: repl.buffer.text == "doo")


def test_the_word_search_is_abandoned_when_a_newer_key_arrives(repl):
    predictor = repl.repl.worker.predictor
    words, calls = predictor.words, []
    predictor.words = lambda text, n, **kw: calls.append((text, kw)) or words(text, n, **kw)
    repl.type("d")
    repl.view_for("d")
    text, kw = calls[-1]
    assert text == "d" and kw["interrupt"]() is False  # still the newest request
    repl.type("o")
    repl.view_for("do")
    assert kw["interrupt"]() is True  # the search for "d" would now raise Superseded


def test_set_cache_off_shows_the_models_words_alone():
    loaded = word_model(["the", "cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 5.0})
    with running_repl(loaded, GREEDY) as repl:
        repl.type("/set cache off\r")
        wait_for(lambda: not repl.session.settings.cache)
        repl.type("the car ")
        assert [w for w, _ in repl.view_for("the car ").words] == ["dog", "cat", "car"]


def test_a_long_word_search_has_the_bars_shown_first_never_with_another_texts_words(repl):
    predictor = repl.repl.worker.predictor
    words, release = predictor.words, threading.Event()

    def slow(text, n, interrupt, cache):  # a search still running past BARS_WAIT, between steps
        time.sleep(BARS_WAIT)
        interrupt()
        release.wait(10)
        return words(text, n, interrupt=interrupt, cache=cache)

    predictor.words = slow
    repl.type("d")
    wait_for(lambda: repl.session.view is not None and repl.session.view.text == "d")
    view = repl.session.view  # the search for "d" has not finished: the bars are shown already
    assert view.top and view.words == () and view.words_pending is not None
    assert repl.panel().splitlines()[0].rstrip().endswith("words")  # the column's place
    # no word for "d" yet: Alt-1 inserts nothing (the "o" after it shows it was handled; the
    # words cannot come before the release)
    repl.type(ESC + "1" + "o")
    wait_for(lambda: repl.buffer.text == "do", what="Alt-1 and o handled")
    release.set()
    assert repl.view_for("do").words[0][0] == "dog"
    assert repl.buffer.text == "do"


@pytest.mark.parametrize(
    "line, why",
    [
        ("/set temperature -1", "temperature must be >= 0"),
        ("/set k 0", "k must be between 1 and 50"),
        ("/set top_p 2", "top_p must be in (0, 1]"),
        ("/set top_k x", "top_k must be an integer"),
        ("/set seed 1.5", "seed must be an integer"),
        ("/set temperature nan", "temperature must be a number"),
        ("/set words 10", "words must be between 0 (off) and 9"),
        ("/set colour red", "unknown setting 'colour'"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("/score", "usage: /score TEXT"),
    ],
)
def test_bad_commands_say_why_and_change_nothing(repl, line, why):
    repl.type(line + "\r")
    wait_for(lambda: why in repl.output(), what=why)
    assert repl.session.settings == GREEDY
    assert repl.thread.is_alive()


def test_slash_commands_complete_with_tab(repl):
    repl.type("/se")
    wait_for(lambda: repl.buffer.text == "/se")
    repl.type(TAB)
    wait_for(lambda: repl.buffer.text == "/set")
    repl.type(" tem")
    state = lambda: repl.buffer.complete_state  # noqa: E731
    wait_for(lambda: state() and state().original_document.text == "/set tem", what="the menu")
    repl.type(TAB)
    wait_for(lambda: repl.buffer.text == "/set temperature")


def test_show_and_help(repl):
    repl.type("/show\r/help\r")
    wait_for(lambda: "Alt-Enter" in repl.output())
    out = repl.output()
    for text in ("temperature", "max_tokens", "bigram.safetensors", "window 1", "/undo", "Ctrl-R"):
        assert text in out


def test_undo_drops_the_last_turn_and_reuses_the_cached_state(repl):
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    first = repl.session.doc.text
    repl.type(" and\r")
    wait_for(lambda: len(repl.session.doc.turns) == 2)
    repl.idle()
    repl.view_for(repl.session.doc.text)
    predictor = repl.repl.worker.predictor
    fed = predictor.tokens_fed
    repl.type("/undo\r")
    wait_for(lambda: len(repl.session.doc.turns) == 1)
    assert repl.session.doc.text == first
    repl.view_for(first)
    assert predictor.tokens_fed - fed <= SPACING + 1  # no re-read of the context
    repl.type("/undo\r/undo\r")
    wait_for(lambda: "nothing to undo" in repl.output())
    assert repl.session.doc.text == ""


def test_reset_clears_the_document(repl):
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    repl.type("/reset\r")
    wait_for(lambda: repl.session.doc.text == "")
    assert repl.view_for("").tokens == 0


def test_score_shows_a_table_and_the_mean_loss_in_the_current_context(repl):
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    repl.type("/score sun\r")
    wait_for(lambda: "mean J" in repl.output())
    out = repl.output()
    assert "3 tokens" in out and "perplexity" in out and "J_t" in out
    assert "3 characters, 0.000 bits per character" in out  # as `score` prints


def test_score_shows_the_panels_k_predictions_at_most_five(repl):
    repl.type("/score sun\r")
    wait_for(lambda: "mean J" in repl.output())
    assert "top 5 predicted" in repl.output()  # k is 10: capped to fit the width
    repl.type("/set k 2\r")
    wait_for(lambda: "k = 2" in repl.output())
    repl.type("/score dog\r")
    wait_for(lambda: repl.output().count("mean J") == 2)
    table = repl.output().split("k = 2")[1]
    assert "top 2 predicted" in table
    rows = [line for line in table.splitlines() if line.strip()[:1].isdigit() and "│" in line]
    assert len(rows) == 3  # s, u, n: each with two predictions
    assert all(len(re.findall(r"\d\.\d\d\b", r.split("│")[-1])) == 2 for r in rows)


def test_save_writes_the_transcript(repl, tmp_path):
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    target = tmp_path / "t.txt"
    repl.type(f"/save {target}\r")
    wait_for(lambda: target.exists() and "wrote" in repl.output())
    assert target.read_text(encoding="utf-8") == repl.session.doc.text
    repl.type(f"/save {tmp_path / 'missing' / 'x.txt'}\r")
    wait_for(lambda: "cannot write" in repl.output())


def test_model_switches_and_a_bad_path_is_reported(repl, tmp_path):
    other = save(word_model(["hello", "world"], {"world": 5.0}), tmp_path / "words")
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    repl.type(f"/model {tmp_path / 'nope'}\r")
    wait_for(lambda: "error: model not found" in repl.output())
    assert repl.session.info.name == "bigram"
    repl.type(f"/model {other}\r")
    wait_for(lambda: repl.session.info.name == "words")
    assert repl.session.info.level == "word"
    view = repl.view_for(repl.session.doc.text)  # the document is kept as context
    assert view.top[0][0] == "world" and "words" in repl.status()


def test_word_level_panel_completes_the_partial_word():
    loaded = word_model(["the", "cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 5.0})
    with running_repl(loaded, GREEDY) as repl:
        repl.type("the ca")
        view = repl.view_for("the ca")
        assert view.partial == "ca" and [t for t, _ in view.top] == ["cat", "car"]
        panel = repl.panel()
        assert panel.splitlines()[0].startswith("completions of 'ca'")
        assert "73.1%" in panel and "26.9%" in panel  # renormalised over cat, car
        assert view.ghost == ("t", " ")
        repl.type(TAB)
        wait_for(lambda: repl.buffer.text == "the cat ")


def test_unknown_characters_are_read_as_unk_with_a_notice(repl):
    repl.type("d€g")
    view = repl.view_for("d€g")
    assert view.unknown == 1
    assert "1 unknown token" in repl.panel()
    repl.type("\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()
    assert repl.session.doc.turns[-1].ended == ""


def test_empty_prompt_works_without_space_or_newline_in_the_vocabulary():
    loaded = bigram(char_vocab("abc"), {"a": "b", "b": "c", "c": "a"}, bias={"a": 1.0})
    with running_repl(loaded, GREEDY) as repl:
        repl.view_for("")
        repl.type("\r")
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        assert repl.session.doc.text == "abcabcabcabc"


def test_markup_and_escape_sequences_in_the_vocabulary_are_shown_harmlessly():
    hostile = ["[bold]", "\x1b[2J\x1b[31m", "evil\u202ecod", "[/]", "\x07"]
    bias = {t: 5.0 - i for i, t in enumerate(hostile)}
    table = dict.fromkeys(hostile, "[bold]")
    with running_repl(word_model(hostile, bias, table), GREEDY) as repl:
        repl.view_for("")
        panel = repl.panel()
        assert "[bold]" in panel and "[/]" in panel
        assert "\\x1b[2J\\x1b[31m" in panel and "evil\\u202ecod" in panel and "\\x07" in panel
        fragments = repl.repl.ui.panel_control()
        assert not any(ch in text for _, text, *_ in fragments for ch in "\x1b\x07\u202e")
        repl.type("\r")
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        out = repl.output()
        assert "[bold]" in out and "\x1b" not in out
        status = repl.status()
        assert "\x1b" not in status


def test_history_is_saved_in_the_xdg_data_dir(tmp_path, monkeypatch):
    from rnnrepl.repl.app import file_history

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with running_repl(CHAR, GREEDY, history=file_history()) as repl:
        repl.type("dog\r")
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        repl.type("\x1b[A")  # Up: the previous input comes back
        wait_for(lambda: repl.buffer.text == "dog")
    assert "+dog" in (tmp_path / "data" / "rnnrepl" / "history").read_text()


def test_the_model_never_runs_on_the_ui_thread_and_stale_requests_are_skipped(monkeypatch):
    import rnnrepl.repl.worker as worker

    loaded = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
    threads: set[str] = set()
    forward = loaded.model.forward

    def slow_forward(*args, **kwargs):
        threads.add(threading.current_thread().name)
        time.sleep(0.5)  # every model call takes half a second
        return forward(*args, **kwargs)

    texts: list[str] = []
    compute = worker.compute_view
    monkeypatch.setattr(
        worker, "compute_view", lambda p, text, *a: texts.append(text) or compute(p, text, *a)
    )
    loaded.model.forward = slow_forward
    with running_repl(loaded, GREEDY) as repl:
        repl.view_for("")
        start = time.monotonic()
        repl.type("dog, sun")
        wait_for(lambda: repl.buffer.text == "dog, sun")
        typed = time.monotonic() - start
        repl.view_for("dog, sun", ghost=False)
        repl.type("x")  # the worker is busy with this key's panel: Ctrl-C must not wait for it
        wait_for(lambda: repl.buffer.text == "dog, sunx")
        begin = time.monotonic()
        repl.type(CTRL_C)
        wait_for(lambda: repl.buffer.text == "", what="Ctrl-C while the panel computes")
        cleared = time.monotonic() - begin
    assert threads == {"rnnrepl-model"}
    assert typed < 1.0  # 8 keys would take >= 4 s if each waited for the model
    assert cleared < 0.3
    assert "dog, sun" in texts and len(texts) < 1 + 8  # superseded requests were skipped


def test_a_missing_model_fails_before_any_ui(tmp_path):
    from rnnrepl.repl.app import model_loader

    with pytest.raises(CheckpointError, match="model not found"):
        model_loader(str(tmp_path / "nothing-here"), "cpu")


def test_a_corrupt_model_given_on_the_command_line_ends_the_app_with_its_error(tmp_path):
    from rnnrepl.repl.app import ReplApp

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from rnnrepl.repl.app import model_loader

    with create_pipe_input() as pipe:
        app = ReplApp(model_loader(str(bad), "cpu"), input=pipe, output=DummyOutput(), emit=print)
        with pytest.raises(CheckpointError):
            app.run(handle_sigint=False)


def test_ctrl_r_searches_the_history(repl):
    for line in ("/set k 5", "/set k 4"):
        repl.type(line + "\r")
    wait_for(lambda: repl.session.settings.k == 4)
    repl.type("\x12" + "k 5")  # Ctrl-R, then the text to find
    wait_for(lambda: repl.repl.ui.application.layout.search_target_buffer_control is not None)
    repl.type("\r")  # accept the search result
    wait_for(lambda: repl.buffer.text == "/set k 5", what="the search result")
    repl.type("\r")  # then run it
    wait_for(lambda: repl.session.settings.k == 5)


def test_a_1mb_paste_lands_at_once_and_the_panel_work_it_starts_is_cancellable():
    # A 2x256 LSTM needs about 25 s for the panel of a million characters on this machine:
    # an answer to the next keystroke within 2 s means the stale computation was abandoned.
    slow = random_lstm(char_vocab(CHAIN_ALPHABET), hidden=256)
    with running_repl(slow, GREEDY) as repl:
        repl.view_for("")
        text = "dog, sun.\n" * 100_000
        start = time.monotonic()
        repl.type("\x1b[200~" + text + "\x1b[201~")  # how a terminal delivers a paste
        wait_for(lambda: len(repl.buffer.text) == len(text), timeout=30, what="the paste")
        landed = time.monotonic() - start
        time.sleep(0.3)  # the worker is now feeding the million tokens
        repl.type(CTRL_C)
        wait_for(lambda: repl.buffer.text == "", timeout=2, what="Ctrl-C to clear the line")
        repl.type("d")
        begin = time.monotonic()
        repl.view_for("d")
        answered = time.monotonic() - begin
    assert landed < 10, landed
    assert answered < 2, answered


def test_a_panel_put_aside_for_a_job_is_computed_after_it():
    """A job (/score, a stream) supersedes the panel in progress; the panel must still come
    after the job, or it would stay stale until the next key."""
    from rnnrepl.repl.worker import Worker

    loaded = random_lstm(char_vocab(CHAIN_ALPHABET), hidden=256)
    events: list[str] = []
    worker = Worker(lambda fn: fn())  # run callbacks on the worker thread itself
    ready = threading.Event()
    worker.load(lambda: loaded, lambda info, error: ready.set())
    assert ready.wait(20)
    text = "dog, sun.\n" * 3000  # 30,000 tokens: most of a second of model work
    try:
        worker.request_view(text, 5, lambda view: events.append(f"view {len(view.text)}"))
        wait_for(lambda: worker.predictor.tokens_fed > 0, what="the panel to start")
        worker.call(lambda p: "job", lambda result, error: events.append(result))
        wait_for(lambda: f"view {len(text)}" in events, what="the panel after the job")
    finally:
        worker.close()
    assert events.index("job") < events.index(f"view {len(text)}")


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_save_on_a_full_disk_keeps_the_old_file_and_the_session(repl, tmp_path, monkeypatch, fails):
    target = tmp_path / "t.txt"
    target.write_text("old transcript\n" * 100, encoding="utf-8")
    repl.type("dog\r")
    wait_for(lambda: repl.session.doc.turns)
    repl.idle()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, fails, full)
    repl.type(f"/save {target}\r")
    wait_for(lambda: "No space left on device" in repl.output())
    monkeypatch.undo()
    out = " ".join(repl.output().split())  # one message, however the panel width wraps it
    assert out.count("error:") == 1 and "Traceback" not in out
    assert "error: cannot write t.txt: No space left on device" in out
    assert "free some disk space" in out
    assert target.read_text(encoding="utf-8") == "old transcript\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]  # no temp file left
    repl.type(f"/save {target}\r")  # the session goes on; with space again the save works
    wait_for(lambda: "wrote" in repl.output())
    assert target.read_text(encoding="utf-8") == repl.session.doc.text


@pytest.mark.parametrize("kind", ["directory", "parent is a file"])
def test_unusable_history_path_warns_once_and_runs_without_history(
    tmp_path, monkeypatch, capfd, kind
):
    from rnnrepl.repl.app import file_history

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if kind == "directory":
        (tmp_path / "data" / "rnnrepl" / "history").mkdir(parents=True)
    else:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "rnnrepl").write_text("a file where a directory should be")
    history = file_history()
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "warning: cannot use the history file" in err
    assert "running without history" in err and "Traceback" not in err
    with running_repl(CHAR, GREEDY, history=history) as repl:
        repl.type("dog\r")
        wait_for(lambda: repl.session.doc.turns)
        repl.idle()
        repl.type("\x1b[A")  # Up: in-memory history still works for this session
        wait_for(lambda: repl.buffer.text == "dog")
    out = capfd.readouterr()
    assert "Traceback" not in out.err + out.out and "Press ENTER" not in out.err + out.out


def test_a_50k_paste_without_spaces_on_a_word_model_never_freezes_typing():
    """One 50,000-character chunk: the old word splitter backtracked over it for minutes,
    holding the GIL on the worker thread, so typing and Ctrl-C froze too."""
    loaded = random_lstm(WordVocab(["<unk>", "\n", "a", "b", ".", "the"]), hidden=64)
    with running_repl(loaded, GREEDY) as repl:
        repl.view_for("")
        text = "a" * 50_000 + ".b"
        repl.type("\x1b[200~" + text + "\x1b[201~")
        wait_for(lambda: len(repl.buffer.text) == len(text), timeout=30, what="the paste")
        start = time.monotonic()
        repl.type("x")
        wait_for(lambda: repl.buffer.text.endswith("x"), timeout=2, what="the key")
        repl.view_for(text + "x", ghost=False)
        panel = time.monotonic() - start
        repl.type(CTRL_C)
        wait_for(lambda: repl.buffer.text == "", timeout=2, what="Ctrl-C to clear the line")
    assert panel < 10, panel


@pytest.mark.slow
def test_the_panel_of_a_1mb_paste_arrives_within_10_s_with_the_bundled_char_model():
    from rnnrepl.store.modelfile import load_model

    with running_repl(load_model("shakespeare-char"), GREEDY) as repl:
        repl.view_for("")
        text = "First Citizen: Before we proceed any further, hear me speak.\n" * 17_500
        repl.type("\x1b[200~" + text + "\x1b[201~")
        start = time.monotonic()
        wait_for(lambda: len(repl.buffer.text) == len(text), timeout=30, what="the paste")
        view = repl.view_for(text, ghost=False)
        elapsed = time.monotonic() - start
        assert view.tokens == len(text) and view.top
        repl.type("F")  # and the next key costs one step
        begin = time.monotonic()
        repl.view_for(text + "F", ghost=False)
        assert time.monotonic() - begin < 2
    assert elapsed < 10, elapsed
