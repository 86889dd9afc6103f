"""Streaming generation: sample a continuation one token at a time, each step extending the
prefix cache, and the text each token adds."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.prefix_cache import PrefixCache
from rnnrepl.model.sampling import mask_unk, pick
from rnnrepl.text.tokenizers import Joiner


@dataclass(frozen=True)
class Step:
    """One generated token: its id, its text, the probability it was drawn with, and its rank
    in that distribution (1 = the most likely; /color draws it)."""

    token_id: int
    text: str
    prob: float
    rank: int = 0


def piece(tok, token_id: int, before: str) -> str:
    """The text a token adds after `before` (word level spaces it as decode would)."""
    text = tok.token_text(token_id)
    if tok.level != "word":
        return text
    return Joiner(tok, before.rpartition("\n")[2][-200:]).push(text)


def _generator(seed: int | None) -> torch.Generator:
    gen = torch.Generator()
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    return gen


def stream(cache: PrefixCache, tok, text: str, cfg: SampleConfig) -> Iterator[Step]:
    """Sample a continuation of `text`, one Step at a time, as it is produced.

    Stops after cfg.max_tokens tokens or once the generated text contains cfg.stop (the stop
    string itself is not yielded beyond the token that completed it). Each step extends the
    prefix cache by one token, so the REPL's next keystroke after a stream costs nothing.
    """
    gen = _generator(cfg.seed)
    ids = tok.encode(text)
    logits = cache.logits_for(ids)
    version = cache.version
    before, produced = text[-200:], ""
    # BPE tokens are bytes: decoded as a stream, a character split across tokens comes out whole
    utf8 = codecs.getincrementaldecoder("utf-8")("replace") if tok.level == "bpe" else None
    for _ in range(cfg.max_tokens):
        probs = torch.softmax(logits.float(), dim=-1)
        nxt = int(pick(logits.cpu() if cfg.allow_unk else mask_unk(logits.cpu()), cfg, gen))
        added = utf8.decode(tok.token_bytes(nxt)) if utf8 else piece(tok, nxt, before)
        before = (before + added)[-200:]
        produced += added
        yield Step(nxt, added, float(probs[nxt]), int((probs > probs[nxt]).sum()) + 1)
        if cfg.stop and cfg.stop in produced[-(len(cfg.stop) + len(added)) :]:
            return
        ids.append(nxt)
        if cache.version == version:  # nobody moved the cache since our last step
            logits = cache.extend(nxt)
        else:
            logits = cache.logits_for(ids)
        version = cache.version
