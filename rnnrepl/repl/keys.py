"""Key bindings of the REPL: each a tiny function that changes state; none runs the model.

They sit on top of prompt-toolkit's defaults (emacs editing, Up/Down history, Ctrl-R search).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.filters import Condition, is_searching
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

if TYPE_CHECKING:
    from rnnrepl.repl.app import ReplApp


def build_key_bindings(repl: ReplApp) -> KeyBindings:
    kb = KeyBindings()
    streaming = Condition(lambda: repl.streaming is not None)
    ghost = Condition(lambda: bool(repl.ghost())) & ~is_searching
    command = Condition(lambda: repl.command_mode) & ~is_searching
    empty = Condition(lambda: not repl.buffer.text)
    typing = ~streaming & ~is_searching  # Ctrl-R search has its own Enter, Ctrl-C, Tab
    spaced = Condition(lambda: repl.auto_space()) & typing

    @kb.add("enter", filter=typing)
    def _submit(event: KeyPressEvent) -> None:
        """Run the slash command, or let the model continue the document."""
        event.current_buffer.validate_and_handle()

    @kb.add("escape", "enter", filter=typing)
    def _newline(event: KeyPressEvent) -> None:
        """Esc Enter / Alt-Enter: a line break inside the input."""
        event.current_buffer.insert_text("\n")

    @kb.add("c-c", filter=~is_searching)
    @kb.add(Keys.SIGINT)
    def _interrupt(event: KeyPressEvent) -> None:
        """Stop generating at once; on the prompt, clear the line."""
        if repl.streaming is not None:
            repl.stop_stream()
        else:
            event.current_buffer.reset()

    @kb.add("c-d", filter=empty & typing)
    def _quit(event: KeyPressEvent) -> None:
        """Ctrl-D on an empty line: leave with status 0."""
        repl.quit()

    @kb.add("tab", filter=ghost & ~command)
    @kb.add("right", filter=ghost)
    def _accept(event: KeyPressEvent) -> None:
        """Accept the ghost text (the rest of the word)."""
        repl.accept_ghost()

    @kb.add("escape", "f", filter=ghost)
    def _accept_token(event: KeyPressEvent) -> None:
        """Alt-F: accept one token of the ghost text."""
        repl.accept_ghost(1)

    @kb.add(".", filter=spaced)
    @kb.add(",", filter=spaced)
    @kb.add(";", filter=spaced)
    @kb.add(":", filter=spaced)
    @kb.add("!", filter=spaced)
    @kb.add("?", filter=spaced)
    @kb.add(")", filter=spaced)
    def _punctuate(event: KeyPressEvent) -> None:
        """A closing mark right after an accepted word's space replaces that space."""
        repl.punctuate(event.data)

    @kb.add("tab", filter=command)
    def _complete(event: KeyPressEvent) -> None:
        """Complete a slash command, a setting name or a path."""
        buffer = event.current_buffer
        if buffer.complete_state:
            buffer.complete_next()
        else:
            buffer.start_completion(insert_common_part=True)

    return kb
