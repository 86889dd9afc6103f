"""The REPL's state without any UI: settings, the growing document, what the panel shows, and
the ``Session`` that holds them all; "is this a command" is decided here (``is_command``).

Nothing here imports prompt_toolkit, rich or torch, so it is cheap to import at start-up and
easy to test. The application (``app.py``) owns the Session and changes it on the UI thread; keys,
layout and slash commands read it and act through ``actions.Actions``. ``compute_view`` runs on the
worker thread; everything else on the UI thread.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rnnrepl.config import SampleConfig
from rnnrepl.repl.branches import Branches
from rnnrepl.repl.meter import Meter

K_MAX = 50  # rows the panel can show
WORDS_MAX = 9  # whole-word suggestions the panel can show: one per key, Alt-1..Alt-9
SETTING_NAMES = ("temperature", "top_k", "top_p", "k", "words", "cache", "max_tokens", "seed", "stop", "unk")  # fmt: skip
_OFF = ("none", "off", "-")
_SWITCH = {"on": True, "yes": True, "true": True, "1": True}
_SWITCH.update(dict.fromkeys(("off", "no", "false", "0"), False))


class SettingError(ValueError):
    """A /set value that cannot be used; the message says why."""


@dataclass(frozen=True)
class Settings:
    """Sampling settings for Enter, and the panel's size."""

    sample: SampleConfig = field(default_factory=SampleConfig)
    k: int = 10
    words: int = 3  # whole-word suggestions beside the bars (0: none)
    cache: bool = True  # the words mixed with those the text already holds (infer.word_cache)
    color: str = "off"  # surprisal colours of the document: "rank", "prob" or "off" (/color)


def apply_setting(settings: Settings, name: str, value: str) -> Settings:
    """A copy of `settings` with one setting changed, from its text (as typed after /set)."""
    name = name.lower().replace("-", "_")
    if name not in SETTING_NAMES:
        raise SettingError(f"unknown setting {name!r}; one of: {', '.join(SETTING_NAMES)}")
    if name == "k":
        k = _parse(int, name, value)
        if not 1 <= k <= K_MAX:
            raise SettingError(f"k must be between 1 and {K_MAX}, not {k}")
        return dataclasses.replace(settings, k=k)
    if name == "words":
        words = _parse(int, name, value)
        if not 0 <= words <= WORDS_MAX:
            raise SettingError(f"words must be between 0 (off) and {WORDS_MAX}, not {words}")
        return dataclasses.replace(settings, words=words)
    if name in ("unk", "cache"):
        if value.lower() not in _SWITCH:
            raise SettingError(f"{name} must be on or off, not {value!r}")
        on = _SWITCH[value.lower()]
        if name == "cache":
            return dataclasses.replace(settings, cache=on)
        return dataclasses.replace(settings, sample=settings.sample.replace(allow_unk=on))
    parsed: Any
    if name == "seed":
        parsed = None if value.lower() in _OFF else _parse(int, name, value)
    elif name == "stop":
        parsed = None if value.lower() in _OFF or not value else unescape(value)
    elif name in ("top_k", "max_tokens"):
        parsed = _parse(int, name, value)
    else:
        parsed = _parse(float, name, value)
    try:
        return dataclasses.replace(settings, sample=settings.sample.replace(**{name: parsed}))
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _parse(kind: type, name: str, value: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingError(f"{name} must be {what}, not {value!r}") from None
    if kind is float and not math.isfinite(number):  # NaN passes every range check
        raise SettingError(f"{name} must be a number (finite), not {value!r}")
    if kind is int and name == "seed" and not -(2**63) <= number < 2**64:
        raise SettingError(f"seed must fit in 64 bits, not {value!r}")
    return number


def unescape(text: str) -> str:
    r"""'\n' -> newline, '\t' -> tab, '\\' -> backslash; anything else stays as typed."""
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in ("\\n", "\\t", "\\\\"):
            out.append({"\\n": "\n", "\\t": "\t", "\\\\": "\\"}[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def describe_settings(settings: Settings) -> list[tuple[str, str]]:
    s = settings.sample
    return [
        ("temperature", f"{s.temperature:g}"),
        ("top_k", f"{s.top_k}" + (" (off)" if s.top_k == 0 else "")),
        ("top_p", f"{s.top_p:g}"),
        ("k", f"{settings.k} (rows in the panel)"),
        ("words", f"{settings.words} (Alt-1.. inserts one)" if settings.words else "off"),
        ("cache", "on (words the text holds are mixed in)" if settings.cache else "off"),
        ("max_tokens", f"{s.max_tokens}"),
        ("seed", "none" if s.seed is None else str(s.seed)),
        ("stop", "none" if s.stop is None else repr(s.stop)),
        ("unk", "on (the model may write <unk>)" if s.allow_unk else "off (never generated)"),
    ]


@dataclass(frozen=True)
class ModelInfo:
    """What the status line and /show say about the loaded model (plain data)."""

    name: str
    path: str
    level: str
    arch: str  # ModelConfig.describe(): "lstm 2x512, embed 64, dropout 0.2"
    parameters: int
    vocab_size: int
    training: dict = field(default_factory=dict)
    int8: bool = False  # single-token steps run the int8 recurrent matrices


def model_info(loaded, int8: bool = False) -> ModelInfo:
    name = Path(str(loaded.path)).name
    name = name[: -len(".safetensors")] if name.endswith(".safetensors") else name
    return ModelInfo(
        name=name,
        path=str(loaded.path),
        level=loaded.tokenizer.level,
        arch=loaded.config.describe(),
        parameters=loaded.model.num_parameters(),
        vocab_size=loaded.tokenizer.size,
        training=dict(loaded.training),
        int8=int8,
    )


def inference_threads(parameters: int, cpus: int | None = None) -> int:
    """Threads for one-token-at-a-time inference. A small model's step is a few matrix-vector
    products: thread start-up and contention cost more than they save (a 16-unit LSTM ran
    100x slower with 2 busy OpenMP threads than with 1). OMP_NUM_THREADS, if set, wins."""
    if os.environ.get("OMP_NUM_THREADS"):
        return 0  # leave torch's own choice alone
    cpus = cpus or os.cpu_count() or 1
    return 1 if parameters < 20_000_000 else min(4, cpus)


@dataclass(frozen=True)
class View:
    """What the panel shows for one text, computed off the UI thread."""

    text: str  # the text the prediction is for (document + input up to the cursor)
    top: tuple[tuple[str, float], ...]  # completions of `partial`, else the next token
    partial: str  # word level: the half-typed word the distribution is restricted to
    tokens: int  # complete tokens in the context
    unknown: int  # how many of them are <unk>
    ghost: tuple[str, ...] | None = None  # greedy rest of the word, as tokens; None: pending
    error: str = ""  # the model failed on this text
    after: tuple[tuple[str, float], ...] | None = None  # next word after `partial` as a whole
    words: tuple[tuple[str, float], ...] = ()  # whole words completing the word at the end
    # Words still being computed: the previous ones, whose column keeps its place, blank.
    words_pending: tuple[tuple[str, float], ...] | None = None
    # Surprisal marks (infer.surprisal.Mark: start, end in `text`, bucket) of the tokens from
    # the input line on, when /color is on.
    colors: tuple = ()


def compute_view(
    predictor,
    text: str,
    k: int,
    interrupt: Callable[[], bool],
    words: int = 0,
    cache: bool = False,
) -> View:
    """Top-k next tokens after `text` (word level: completions of the partial word and, when
    it is a whole word, the next word after it), and the `words` most likely whole words
    (mixed with the word cache if `cache`)."""
    pred = predictor.predict(text, interrupt)
    ids, _ = predictor.split(text)
    completions, following = (
        None if probs is None else tuple(predictor.top_of(probs, k))
        for probs in (pred.completions, pred.next)
    )
    found = tuple(predictor.words(text, words, interrupt=interrupt, cache=cache)) if words else ()
    if not pred.partial:
        return View(text, following or (), "", len(ids), predictor.unknown_count, words=found)
    return View(
        text,
        completions or (),
        pred.partial,
        len(ids),
        predictor.unknown_count,
        after=following,
        words=found,
    )


def word_rest(text: str, word: str) -> str:
    """What accepting `word` adds after `text`: the word less its part already typed.

    A suggested word begins with the typed part of the word at the end of `text`, exactly as
    typed, and holds no boundary (space, punctuation); so the typed part is the longest end of
    `text` that begins `word`."""
    for size in range(min(len(word), len(text)), 0, -1):
        if text.endswith(word[:size]):
            return word[size:]
    return word


def with_ghost(predictor, view: View, interrupt: Callable[[], bool]) -> View:
    """`view` plus its ghost text (a few more model steps, so computed after the panel)."""
    pieces = predictor.complete(view.text, interrupt=interrupt)
    return dataclasses.replace(view, ghost=tuple(pieces))


@dataclass
class Turn:
    """One Enter: what the user added to the document, then what the model wrote."""

    start: int  # length of the document before this turn
    user: str
    model: str = ""
    ended: str = ""  # why the stream ended: "", "stopped", or an error
    unknown: int = 0  # <unk> tokens the model wrote (not the user's unknown input)
    # Per token the model wrote: (start, end in `model`, rank, p), for /color while it streams.
    scores: list[tuple[int, int, int, float]] = field(default_factory=list)


class Document:
    """The session's one growing text: the user's and the model's words are both context."""

    def __init__(self) -> None:
        self.text = ""
        self.turns: list[Turn] = []

    def begin(self, user: str) -> Turn:
        turn = Turn(len(self.text), user)
        self.turns.append(turn)
        self.text += user
        return turn

    def add(self, piece: str, unknown: bool = False, score: tuple[int, float] = (0, 0.0)) -> None:
        """Append generated text (the unknown token if `unknown`) to the current turn, with
        the token's (rank, p) under the model."""
        turn = self.turns[-1]
        lead = len(piece) - len(piece.lstrip(" "))  # word level writes " word": colour the word
        start = len(turn.model) + min(lead, max(len(piece) - 1, 0))
        turn.scores.append((start, len(turn.model) + len(piece), *score))
        turn.model += piece
        turn.unknown += unknown
        self.text += piece

    @property
    def generated_unknown(self) -> int:
        """<unk> tokens written by the model: the panel's notice counts only the user's."""
        return sum(turn.unknown for turn in self.turns)

    def undo(self) -> Turn | None:
        """Drop the last turn; the document is exactly what it was before it."""
        if not self.turns:
            return None
        turn = self.turns.pop()
        self.text = self.text[: turn.start]
        return turn

    def reset(self) -> None:
        self.text = ""
        self.turns.clear()


def history_path() -> Path:
    """$XDG_DATA_HOME/rnnrepl/history (default ~/.local/share/rnnrepl/history)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(base):  # the spec says relative values are to be ignored
        base = str(Path.home() / ".local" / "share")
    return Path(base) / "rnnrepl" / "history"


def is_command(text: str) -> bool:
    """Is this input a slash command? "/set k 5" is; "//x" (an escaped slash) and "x" are not."""
    return text.startswith("/") and not text.startswith("//")


def prompt_text(text: str) -> str:
    """Input that is no command, as the model reads it: "//x" -> "/x"."""
    return text[1:] if text.startswith("//") else text


class Input(Protocol):
    """The input line and its cursor (prompt-toolkit's Document has these)."""

    @property
    def text(self) -> str: ...

    @property
    def text_before_cursor(self) -> str: ...

    @property
    def is_cursor_at_the_end(self) -> bool: ...


@dataclass
class Session:
    """What the REPL knows between two keystrokes; every change happens on the UI thread."""

    settings: Settings = field(default_factory=Settings)
    doc: Document = field(default_factory=Document)
    info: ModelInfo | None = None  # None until the first model has loaded
    view: View | None = None  # the panel's latest prediction (and ghost text)
    notice: str = ""  # a one-line message shown in the panel
    streaming: Turn | None = None  # the turn being generated, if any
    auto_space: str | None = None  # the input right after accepting a word + space
    meter: Meter = field(default_factory=Meter)  # what the suggestions saved, over the session
    branches: Branches = field(default_factory=Branches)  # the others, by name (/fork, /switch)

    def prediction_text(self, line: Input) -> str:
        """The document followed by the input up to the cursor (the input alone is a command)."""
        if is_command(line.text):
            return self.doc.text
        return self.doc.text + prompt_text(line.text_before_cursor)

    def ghost(self, line: Input) -> tuple[str, ...]:
        """The ghost text to show after the cursor, if the latest view is for this very text."""
        view = self.view
        if (
            view is None
            or not view.ghost
            or self.streaming is not None
            or is_command(line.text)
            or not line.is_cursor_at_the_end
            or view.text != self.prediction_text(line)
        ):
            return ()
        return view.ghost

    def words(self, line: Input) -> tuple[tuple[str, float], ...]:
        """The whole-word suggestions, if the latest view is for this very text."""
        view = self.view
        if (
            view is None
            or self.streaming is not None
            or is_command(line.text)
            or view.text != self.prediction_text(line)
        ):
            return ()
        return view.words

    def after_auto_space(self, line: Input) -> bool:
        """Is the cursor right after a space that accepting a word inserted (nothing since)?"""
        return (
            self.auto_space is not None
            and line.text == self.auto_space
            and line.is_cursor_at_the_end
        )

    def show(self, view: View) -> None:
        """Make `view` the panel's; its unknown-token notice counts the user's input only."""
        generated = self.doc.generated_unknown
        if generated and view.unknown:
            view = dataclasses.replace(view, unknown=max(0, view.unknown - generated))
        self.view = view
