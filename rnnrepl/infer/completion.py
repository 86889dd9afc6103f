"""Word completion: what may follow a text (the completions of a half-typed word, the next
word after it) and the ghost text (the greedy rest of the current word)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rnnrepl.infer.distributions import Prediction, Vocabulary, without_unk
from rnnrepl.infer.generation import piece
from rnnrepl.infer.prefix_cache import PrefixCache, Superseded
from rnnrepl.infer.runner import ModelRunner
from rnnrepl.model.sampling import mask_unk

WORD_CHARS = "_'’-"  # besides letters and digits, these continue a word at char level
OPENING = ("(", "[", "{")  # a word-level ghost after these is not followed by a space


def in_word(ch: str) -> bool:
    return ch.isalnum() or ch in WORD_CHARS


class Completer:
    """Predictions and ghost text over one prefix cache."""

    def __init__(self, runner: ModelRunner, cache: PrefixCache, vocab: Vocabulary) -> None:
        self.runner = runner
        self.cache = cache
        self.vocab = vocab
        self.tok = vocab.tok
        self._starts: torch.Tensor | None = None  # tokens whose first character ends a word

    def predict(self, text: str, interrupt: Callable[[], bool] | None = None) -> Prediction:
        """What may follow `text`: completions of the half-typed word and/or the next token.

        At word level a half-typed word restricts the distribution to the words it begins,
        renormalised. When that word is itself a whole word (or no word begins with it), the
        next token after it is computed too, as if a space followed. <unk> is never offered:
        it is left out of every list and the rest renormalised. `interrupt` is polled between
        batched calls while a long text is fed; when it returns True, ``Superseded`` is raised
        (the cache keeps the work done so far).
        """
        ids, partial, logits = self.cache.read(text, interrupt)
        probs = torch.softmax(logits.float(), dim=-1)
        if not partial:
            return Prediction("", None, *without_unk(probs))
        completions = self.vocab.completions(probs, partial)
        if completions is None and self.tok.level == "bpe":  # healed: no boundary inside it
            completions = self.vocab.spelling_starts(probs, partial)
        word = self.tok.encode(partial)
        if completions is not None and 0 in word:  # it only begins longer words
            return Prediction(partial, completions, None, 0.0)
        after, _ = self.runner.step(word, self.cache.state(len(ids)))
        return Prediction(partial, completions, *without_unk(self._after_word(after)))

    def _after_word(self, logits: torch.Tensor) -> torch.Tensor:
        """The next token after a word read as whole: at a subword level only the tokens that
        do not go on with that word (renormalised), as if the word had ended there."""
        probs = torch.softmax(logits.float(), -1)
        if self.tok.level != "bpe":
            return probs
        if self._starts is None:
            flags = [not in_word(t[:1]) for t in self.tok.tokens]
            self._starts = torch.tensor(flags, dtype=torch.bool, device=probs.device)
        kept = probs.masked_fill(~self._starts, 0.0)
        total = kept.sum()
        return kept / total if total > 0 else probs

    def complete(
        self, text: str, max_tokens: int = 24, interrupt: Callable[[], bool] | None = None
    ) -> list[str]:
        """Greedy continuation of `text` to the end of the current word, as token pieces.

        Mid-word: the rest of that word. At a word boundary: the separator and the next word.
        A completed word is followed by a " " piece, as on a phone keyboard: always at word
        level (except after an opening bracket); at char level when the model's most likely
        next character is a space. Never crosses a line break, never offers <unk>. Runs after
        ``predict(text)`` without moving the cache.
        """
        pred = self.predict(text, interrupt)
        if self.tok.level == "word":
            return self._complete_word(text, pred)
        if self.tok.level == "bpe":
            return self._complete_bpe(pred, max_tokens, interrupt)
        return self._complete_chars(max_tokens, interrupt)

    def _complete_chars(self, max_tokens: int, interrupt: Callable[[], bool] | None) -> list[str]:
        """Char level: step greedily from the cache's end until the word is over."""
        state, logits = self.cache.end()
        pieces: list[str] = []
        in_word = False
        for _ in range(max_tokens):
            nxt = int(mask_unk(logits).argmax())
            ch = self.tok.token_text(nxt)
            word = ch.isalnum() or ch in WORD_CHARS
            if nxt == 0 or ch == "\n" or (in_word and not word):
                if in_word and ch == " ":
                    pieces.append(" ")
                break
            in_word = in_word or word
            pieces.append(ch)
            if interrupt is not None and interrupt():
                raise Superseded
            logits, state = self.runner.step([nxt], state)
        return pieces if in_word else []

    def _complete_bpe(
        self, pred: Prediction, max_tokens: int, interrupt: Callable[[], bool] | None
    ) -> list[str]:
        """BPE level: the likeliest token that continues the typed piece, then greedy tokens
        until the next one starts a new word (a " " piece then) or a line, or is not whole
        UTF-8 text on its own."""
        state, logits = self.cache.end()
        pieces: list[str] = []
        typed = pred.partial
        if pred.completions is not None:
            best = int(pred.completions.argmax())
            pieces.append(self.tok.token_text(best)[len(self.tok.cased(typed)) :])
            logits, state = self.runner.step([best], state)
        elif typed:
            logits, state = self.runner.step(self.tok.encode(typed), state)
        started = bool(typed.strip()) or any(p.strip() for p in pieces)
        for _ in range(max_tokens):
            nxt = int(mask_unk(logits).argmax())
            text = self.tok.token_text(nxt)
            if nxt == 0 or "\n" in text or not _whole_text(self.tok.token_bytes(nxt)):
                break
            if started and text[:1].isspace():
                pieces.append(" ")
                break
            pieces.append(text)
            started = started or bool(text.strip())
            if interrupt is not None and interrupt():
                raise Superseded
            logits, state = self.runner.step([nxt], state)
        return [p for p in pieces if p]

    def _complete_word(self, text: str, pred: Prediction) -> list[str]:
        """Word level: the rest of the half-typed word, or the next word after a whole one."""
        if pred.partial and pred.completions is None:
            return []  # no word begins with it: nothing to complete
        if pred.completions is not None:
            best = int(pred.completions.argmax())
            word = self.tok.token_text(best)
            typed = pred.partial.lower() if self.tok.lowercase else pred.partial
            if word != typed:
                return [word[len(typed) :], " "]
        if pred.next is None or not pred.next.any():
            return []
        best = int(pred.next.argmax())
        text_of_best = self.tok.token_text(best)
        if text_of_best == "\n":
            return []
        spaced = [] if text_of_best in OPENING else [" "]
        return [piece(self.tok, best, text), *spaced]


def _whole_text(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
