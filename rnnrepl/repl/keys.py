"""Key bindings of the REPL: each a tiny function that changes state; none runs the model.

They sit on top of prompt-toolkit's defaults (emacs editing, Up/Down history, Ctrl-R search),
edit the input buffer they are given and act on the rest through ``actions.Actions``.
"""

from __future__ import annotations

from prompt_toolkit.buffer import Buffer
from prompt_toolkit.filters import (
    Condition,
    Filter,
    emacs_insert_mode,
    is_searching,
    shift_selection_mode,
)
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

from rnnrepl.repl.actions import Actions
from rnnrepl.repl.meter import Shown, shown
from rnnrepl.repl.state import WORDS_MAX, Session, is_command, word_rest

CLOSING_MARKS = ".,;:!?)"  # typed right after an accepted word's space, they replace it


def build_key_bindings(repl: Actions, buffer: Buffer) -> KeyBindings:
    """Enter, Ctrl-C and Ctrl-D; accepting ghost text; completing slash commands."""
    kb = KeyBindings()
    streaming = Condition(lambda: repl.session.streaming is not None)
    typing = ~streaming & ~is_searching  # Ctrl-R search has its own Enter, Ctrl-C, Tab
    command = Condition(lambda: is_command(buffer.text)) & ~is_searching
    _turn_keys(kb, repl, buffer, typing)
    _ghost_keys(kb, repl.session, buffer, typing, command)
    _word_keys(kb, repl.session, buffer, typing & ~command)
    _typing_keys(kb, repl.session, buffer, typing & ~command)
    _command_keys(kb, command)
    return kb


def _turn_keys(kb: KeyBindings, repl: Actions, buffer: Buffer, typing: Filter) -> None:
    empty = Condition(lambda: not buffer.text)

    @kb.add("enter", filter=typing)
    def _submit(event: KeyPressEvent) -> None:
        """Run the slash command, or let the model continue the document."""
        event.current_buffer.validate_and_handle()

    @kb.add("escape", "enter", filter=typing)
    def _newline(event: KeyPressEvent) -> None:
        """Esc Enter / Alt-Enter: a line break inside the input."""
        type_char(repl.session, event.current_buffer, "\n")

    @kb.add("c-c", filter=~is_searching)
    @kb.add(Keys.SIGINT)
    def _interrupt(event: KeyPressEvent) -> None:
        """Stop generating (or sampling /alts) at once; on the prompt, clear the line."""
        if repl.session.streaming is not None or repl.session.branches.sampling:
            repl.stop_stream()
        else:
            event.current_buffer.reset()
            repl.training.ctrl_c()  # twice within a second: stop a live training

    @kb.add("c-d", filter=empty & typing)
    def _quit(event: KeyPressEvent) -> None:
        """Ctrl-D on an empty line: leave with status 0."""
        repl.quit()


def _ghost_keys(
    kb: KeyBindings, session: Session, buffer: Buffer, typing: Filter, command: Filter
) -> None:
    ghost = Condition(lambda: bool(session.ghost(buffer.document))) & ~is_searching
    spaced = Condition(lambda: session.after_auto_space(buffer.document)) & typing

    @kb.add("tab", filter=ghost & ~command)
    @kb.add("right", filter=ghost)
    def _accept(event: KeyPressEvent) -> None:
        """Accept the ghost text (the rest of the word)."""
        accept_ghost(session, buffer)

    @kb.add("escape", "f", filter=ghost)
    def _accept_token(event: KeyPressEvent) -> None:
        """Alt-F: accept one token of the ghost text."""
        accept_ghost(session, buffer, 1)

    def _punctuate(event: KeyPressEvent) -> None:
        """A closing mark right after an accepted word's space replaces that space."""
        buffer.delete_before_cursor(1)
        session.meter.unspace()
        type_char(session, buffer, event.data)

    for mark in CLOSING_MARKS:
        kb.add(mark, filter=spaced)(_punctuate)


def _word_keys(kb: KeyBindings, session: Session, buffer: Buffer, typing: Filter) -> None:
    """Alt-1..Alt-9 insert the panel's i-th whole word and a space. While words are shown they
    replace emacs's numeric arguments (Alt-digit), which stay as they were with /set words 0."""
    shown = Condition(lambda: session.settings.words > 0) & typing

    def _accept(event: KeyPressEvent) -> None:
        """Insert the i-th suggested word (the rest of the word being typed) and a space."""
        accept_word(session, buffer, int(event.key_sequence[-1].data) - 1)

    for i in range(1, WORDS_MAX + 1):
        kb.add("escape", str(i), filter=shown)(_accept)


def accept_word(session: Session, buffer: Buffer, index: int) -> None:
    """Insert suggestion `index` of the panel's words, if it is for this very text: what is
    left of it after the typed part, then a space (a closing mark typed next replaces it)."""
    words = session.words(buffer.document)
    if index < len(words):
        before, offered = panel_offer(session, buffer)
        text = word_rest(before, words[index][0]) + " "
        buffer.insert_text(text)
        session.auto_space = buffer.text
        session.meter.accept(before, text, offered)


def _command_keys(kb: KeyBindings, command: Filter) -> None:
    @kb.add("tab", filter=command)
    def _complete(event: KeyPressEvent) -> None:
        """Complete a slash command, a setting name or a path."""
        buffer = event.current_buffer
        if buffer.complete_state:
            buffer.complete_next()
        else:
            buffer.start_completion(insert_common_part=True)


def accept_ghost(session: Session, buffer: Buffer, tokens: int | None = None) -> None:
    """Insert the ghost text, or its first `tokens` pieces. The space that follows a
    completed word comes with the piece that completes it (as on a phone keyboard)."""
    pieces = session.ghost(buffer.document)
    if tokens is not None and pieces[tokens:] == (" ",):
        tokens = None
    if pieces:
        before, offered = panel_offer(session, buffer)
        text = "".join(pieces[:tokens])
        buffer.insert_text(text)
        session.auto_space = buffer.text if text.endswith(" ") else None
        session.meter.accept(before, text, offered)


def _typing_keys(kb: KeyBindings, session: Session, buffer: Buffer, typing: Filter) -> None:
    """Typing a character: prompt-toolkit's self-insert, counted by the meter (``meter.py``).
    Paste, history, deleting and undoing have keys of their own and are not counted."""
    plain = typing & emacs_insert_mode & ~shift_selection_mode

    @kb.add(Keys.Any, filter=plain, save_before=lambda event: not event.is_repeat)
    def _type(event: KeyPressEvent) -> None:
        """Insert the character typed (repeated by a numeric argument: not counted)."""
        if event.arg == 1 and len(event.data) == 1:
            type_char(session, buffer, event.data)
        else:
            buffer.insert_text(event.data * event.arg)


def type_char(session: Session, buffer: Buffer, char: str) -> None:
    """Insert a typed character; the meter counts it unless the input is a slash command."""
    before, offered = panel_offer(session, buffer)
    buffer.insert_text(char)
    if not is_command(buffer.text):
        session.meter.type(before, char, offered)


def panel_offer(session: Session, buffer: Buffer) -> tuple[str, Shown | None]:
    """The text before the cursor, and what the panel on screen offered for it (if it is for
    that very text)."""
    before = session.prediction_text(buffer.document)
    word_level = session.info is not None and session.info.level == "word"
    return before, shown(session.view, before, word_level, session.settings.words > 0)
