"""Tiny models with known predictions, and a driver that runs the REPL on a pipe.

A fixed-window model with window 1 is a bigram model: with one-hot embeddings and a saturated
tanh layer its hidden state is the one-hot of the last token, so decoder column j is the
next-token logits after token j. That gives exact, hand-written predictions in tests.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch
from prompt_toolkit.formatted_text import fragment_list_to_text
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from rnnrepl.config import ModelConfig
from rnnrepl.model.lm import build_model
from rnnrepl.store.modelfile import LoadedModel, save_model
from rnnrepl.text.tokenizers import CharVocab, WordVocab


def to_plain(renderable, width: int = 80) -> str:
    """A renderable as a terminal without colours shows it."""
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(renderable)
    return console.file.getvalue()


# "dog, sun.\ndog, sun.\n..." — every character has one successor.
CHAIN = dict(zip("dog, sun.\n", "og, sun.\nd", strict=True))
CHAIN_ALPHABET = "dog, sun.\nthe cat"
STRONG = 12.0


def char_vocab(alphabet: str = "the cat sat on mat.\n") -> CharVocab:
    counts: Counter[str] = Counter()
    CharVocab.count(alphabet, counts)
    return CharVocab.build(counts)


def bigram(tok, table: dict[str, str], bias: dict[str, float] | None = None) -> LoadedModel:
    """A model whose prediction after token a is table[a] (p > 0.99), or `bias` elsewhere."""
    v = tok.size
    cfg = ModelConfig(vocab_size=v, arch="window", window=1, embed=v + 1, hidden=v + 1)
    model = build_model(cfg).eval()
    with torch.no_grad():
        model.embed.weight.copy_(torch.eye(v + 1))
        model.hidden.weight.copy_(torch.eye(v + 1) * 20)  # tanh(20) = 1: one-hot hidden state
        model.hidden.bias.zero_()
        model.decoder.weight.zero_()
        model.decoder_bias.zero_()
        for a, b in table.items():
            model.decoder.weight[tok.index[b], tok.index[a]] = STRONG
        for t, logit in (bias or {}).items():
            model.decoder_bias[tok.index[t]] = logit
    return LoadedModel(model, cfg, tok, {"made_by": "tests"}, Path("bigram.safetensors"))


def random_lstm(tok, hidden: int = 16, seed: int = 0, arch: str = "lstm") -> LoadedModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=tok.size, arch=arch, embed=8, hidden=hidden, layers=2, window=3)
    model = build_model(cfg).eval()
    return LoadedModel(model, cfg, tok, {}, Path(f"random-{arch}.safetensors"))


def word_model(words: list[str], bias: dict[str, float], table=None, lowercase=False):
    tok = WordVocab(["<unk>", "\n", *words], lowercase=lowercase)
    return bigram(tok, table or {}, bias)


def save(loaded: LoadedModel, path: Path) -> Path:
    return save_model(path, loaded.model, loaded.tokenizer, loaded.training)


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


class Driver:
    """A ReplApp running on a pipe in a thread; type into it and read its session."""

    def __init__(self, repl, pipe) -> None:
        self.repl, self.pipe = repl, pipe
        self.session = repl.session  # plain data: settings, document, model info, view
        self.buffer = repl.ui.buffer  # the input line
        self.printed: list = []
        self.result: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result.append(self.repl.run(handle_sigint=False))

    def type(self, text: str) -> None:
        self.pipe.send_text(text)

    def view_for(self, text: str, ghost: bool = True):
        """Wait until the panel shows the prediction for `text` (and its ghost text)."""
        s = self.session
        wait_for(
            lambda: (
                s.view is not None
                and s.view.text == text
                and (not ghost or s.view.ghost is not None)
            ),
            what=f"view of {text!r}",
        )
        return s.view

    def panel(self) -> str:
        return fragment_list_to_text(self.repl.ui.panel_control())

    def status(self) -> str:
        return fragment_list_to_text(self.repl.ui.status_control())

    def output(self) -> str:
        return "".join(to_plain(x, width=100) for x in self.printed)

    def idle(self) -> None:
        wait_for(lambda: self.session.streaming is None, what="the stream to end")


@contextmanager
def running_repl(loaded, settings=None, history=None, **kw):
    from rnnrepl.repl.app import ReplApp

    with create_pipe_input() as pipe:
        printed: list = []
        repl = ReplApp(
            lambda: loaded,
            settings,
            history=history or InMemoryHistory(),
            input=pipe,
            output=DummyOutput(),
            emit=printed.append,
            **kw,
        )
        driver = Driver(repl, pipe)
        driver.printed = printed
        driver.thread.start()
        try:
            wait_for(lambda: repl.session.info is not None, what="the model to load")
            yield driver
        finally:
            if driver.thread.is_alive():
                app = repl.ui.application
                app.loop.call_soon_threadsafe(lambda: app.exit(result=0))
                driver.thread.join(10)
