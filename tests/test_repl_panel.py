"""The panel and status line are pure functions of (view, settings): golden text."""

from __future__ import annotations

from dataclasses import replace

from rnnrepl.config import SampleConfig
from rnnrepl.repl.panel import panel, status, to_ansi, turn_text
from rnnrepl.repl.state import ModelInfo, Settings, Turn, View
from tests.repl_support import to_plain

INFO = ModelInfo("notes", "/m/notes.safetensors", "word", "lstm 2×512", 10, 50)
VIEW = View("the ca", (("cat", 0.75), ("car", 0.25)), "ca", 1, 0, ("t",))


def test_panel_golden():
    text = to_plain(panel(VIEW, Settings(k=10), width=40), width=40)
    assert text.splitlines() == [
        "completions of 'ca'",
        "cat ████████████████████         75.0%",  # 27 cells of bar at width 40
        "car ██████▌                      25.0%",
    ]


def test_a_typed_whole_word_shows_its_completions_and_the_next_word_side_by_side():
    view = View("the", (("the", 0.9), ("then", 0.1)), "the", 0, 0, after=(("cat", 0.6),))
    lines = to_plain(panel(view, Settings(k=10), width=80), width=80).splitlines()
    assert lines[0].split() == ["completions", "of", "'the'", "next", "word", "after", "'the'"]
    assert lines[1].split()[0] == "the" and lines[1].split()[-3::2] == ["cat", "60.0%"]
    assert lines[2].split()[0] == "then" and len(lines) == 3
    narrow = to_plain(panel(view, Settings(k=10), width=50), width=50).splitlines()
    heads = [line.split()[0] for line in narrow]
    assert heads == ["completions", "the", "then", "next", "cat"]
    assert narrow[3] == "next word after 'the'"
    unknown = to_plain(panel(replace(view, unknown=2), Settings(), 80), 80).splitlines()
    assert unknown[1] == "2 unknown tokens in the context (read as <unk>)"  # its own line


def test_a_word_that_begins_no_word_shows_the_next_word_after_it_read_as_unk():
    view = View("zz", (), "zz", 0, 0, after=(("cat", 1.0),))
    lines = to_plain(panel(view, Settings(), width=50), width=50).splitlines()
    assert lines[:2] == ["completions of 'zz'", "(no word begins with it)"]
    assert lines[2:4] == ["next word after 'zz'", " (read as <unk>)"]


def test_panel_shows_k_rows_whitespace_and_cuts_long_tokens():
    view = View("x", ((" ", 0.5), ("\n", 0.3), ("a" * 40, 0.1), ("b", 0.1)), "", 1, 0)
    lines = to_plain(panel(view, Settings(k=3), width=60), width=60).splitlines()
    assert lines[0] == "next token" and len(lines) == 4
    assert lines[1].split()[0] == "␣" and lines[2].split()[0] == "⏎"
    assert lines[3].startswith("a" * 15 + "…")


def test_status_line_names_everything_and_fits_one_line():
    settings = Settings(SampleConfig(temperature=0.7, top_k=40, top_p=0.9), k=5)
    line = to_plain(status(INFO, settings, VIEW), width=200).strip()
    assert line == "notes · word · T 0.7 · top-k 40 · top-p 0.9 · k 5 · ctx 1 tok"
    cropped = to_ansi(status(INFO, settings, VIEW, busy="generating…"), width=30, one_line=True)
    assert "\n" not in cropped


def test_no_color_keeps_styles_but_drops_colours(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    text = to_ansi(panel(VIEW, Settings(), 60), 60)
    assert "\x1b[1m" in text  # bold stays
    assert "\x1b[3" not in text and "\x1b[9" not in text  # no foreground colours
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b[36m" in to_ansi(panel(VIEW, Settings(), 60), 60)


def test_hostile_text_never_reaches_the_terminal_raw():
    turn = Turn(0, "[bold]me\x1b[2J", "\x1b]0;owned\x07 \u202eevil", "stopped")
    out = to_ansi(turn_text(turn), 80)
    assert "[bold]me" in out and "\\x1b[2J" in out and "\\x07" in out and "\\u202e" in out
    assert "\x07" not in out and "\u202e" not in out and "\x1b]" not in out
    info = ModelInfo("[red]x\x1b[5m", "p", "char", "lstm", 1, 2)
    assert "\x1b[5m" not in to_ansi(status(info, Settings(), None), 80)


def test_tiny_widths_render_without_error_and_never_overflow():
    wide = View("x", (("a" * 50, 0.6), ("\x1b[2J", 0.3), ("[bold]", 0.1)), "", 1, 0)
    for width in range(1, 25):
        for view in (VIEW, wide):
            for line in to_plain(
                panel(view, Settings(k=10), width=width), width=width
            ).splitlines():
                assert len(line) <= width, (width, line)
        line = to_ansi(status(INFO, Settings(), VIEW), width=width, one_line=True)
        assert "\n" not in line


def test_the_words_column_stands_beside_the_bars_from_72_columns_else_under_them():
    words = (("cat", 0.6), ("car", 0.2), ("cathedral", 0.05))
    view = replace(VIEW, words=words)
    wide = to_plain(panel(view, Settings(k=10), width=72), width=72).splitlines()
    assert [line.rstrip() for line in wide] == [
        "completions of 'ca'                                   words",
        "cat █████████████████████████████            75.0%    1 cat        60.0%",
        "car █████████▌                               25.0%    2 car        20.0%",
        "                                                      3 cathedral   5.0%",
    ]
    narrow = to_plain(panel(view, Settings(k=10), width=50), width=50).splitlines()
    assert [line.rstrip() for line in narrow] == [
        "completions of 'ca'",
        "cat ███████████████████████████▌           75.0%",
        "car █████████                              25.0%",
        "words",
        "1 cat        60.0%",
        "2 car        20.0%",
        "3 cathedral   5.0%",
    ]
    assert to_plain(panel(view, Settings(k=10, words=0), 72), 72) == to_plain(
        panel(VIEW, Settings(k=10), 72), 72
    )  # /set words 0: no column, the bars take the width back


def test_while_the_words_are_computed_their_column_keeps_its_place_blank():
    words = (("cat", 0.6), ("car", 0.2), ("cathedral", 0.05))
    done = to_plain(panel(replace(VIEW, words=words), Settings(k=10), 72), 72).splitlines()
    pending = replace(VIEW, words_pending=(("castle", 0.5), ("cathedral", 0.3), ("cab", 0.1)))
    lines = to_plain(panel(pending, Settings(k=10), 72), 72).splitlines()
    assert [line.rstrip() for line in lines] == [
        "completions of 'ca'                                   words",
        "cat █████████████████████████████            75.0%",
        "car █████████▌                               25.0%",
        "",
    ]  # the previous words' column, blank: the bars stand where they will stand with words
    assert [line[:50] for line in lines] == [line[:50] for line in done]
    first = to_plain(panel(replace(VIEW, words_pending=()), Settings(k=10), 72), 72)
    heading, *rows = [line.rstrip() for line in first.splitlines()]
    assert heading.endswith("words") and all(row.endswith("%") for row in rows)  # bars only


def test_the_panel_fragments_are_merged_without_changing_a_character_or_its_style(monkeypatch):
    from prompt_toolkit.formatted_text import ANSI, to_formatted_text
    from prompt_toolkit.formatted_text.utils import split_lines

    from rnnrepl.repl.layout import merge_fragments

    monkeypatch.setenv("FORCE_COLOR", "1")
    view = replace(VIEW, words=(("cat", 0.7), ("car", 0.2)))
    raw = to_formatted_text(ANSI(to_ansi(panel(view, Settings(), 100), 100)))
    merged = merge_fragments(raw)
    assert len(merged) * 5 < len(raw)  # a fragment per character before
    per_char = lambda fragments: [(s, ch) for s, t, *_ in fragments for ch in t]  # noqa: E731
    assert per_char(merged) == per_char(raw) and len({s for s, _ in raw}) > 2  # styled
    assert len(list(split_lines(merged))) == len(list(split_lines(raw)))
