"""Contextual string embeddings (Akbik, Blythe and Vollgraf 2018, "Contextual String Embeddings
for Sequence Labeling"): a word's vector is the forward character LM's top-layer hidden state
after the character that follows the word, joined to the backward LM's after the character that
precedes it (the backward LM reads the text reversed, so that state has read the rest of the
text, from its end back to the word's first character).

Words are maximal runs of non-whitespace (Python's str.split); offsets count code points, so
text[start:end] is the word. As in Flair, the text is read after the start token and with a space
added at each end, so the first and the last word have a character on either side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnrepl.errors import InputDataError, UsageError
from rnnrepl.model.lm import LanguageModel
from rnnrepl.store.modelfile import LoadedModel
from rnnrepl.text.reverse import reverse_text
from rnnrepl.train.validation import start_token

CHUNK = 4096  # characters per forward call: memory stays bounded however long the text
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # code point offset of its first character
    end: int  # one past its last


@dataclass(frozen=True)
class Embeddings:
    words: list[Word]
    vectors: Tensor  # (words, forward dims + backward dims), float32
    dims: tuple[int, int]  # (forward, backward)
    unknown: tuple[int, int]  # characters each model read as <unk>


def split_words(text: str) -> list[Word]:
    """The whitespace-separated words of `text`, with their code point offsets."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def check_pair(forward: LoadedModel, backward: LoadedModel) -> None:
    """Both character models, the first forward and the second backward (sizes may differ)."""
    for role, loaded in (("FORWARD", forward), ("BACKWARD", backward)):
        if loaded.tokenizer.level != "char":
            raise UsageError(
                f"{role} is a {loaded.tokenizer.level}-level model; contextual string embeddings "
                "need character models",
                path=str(loaded.path),
                hint="train one with `rnnrepl train FILES` (char is the default level)",
            )
    for role, loaded, want in (("FORWARD", forward, "forward"), ("BACKWARD", backward, "backward")):
        if loaded.direction != want:
            fix = "train it with --reverse" if want == "backward" else "train it without --reverse"
            raise UsageError(
                f"{role} must be a {want} model, and this one is {loaded.direction}",
                path=str(loaded.path),
                hint=f"give the models in the order FORWARD BACKWARD, or {fix}",
            )


def embed_text(
    forward: LoadedModel, backward: LoadedModel, text: str, chunk: int = CHUNK
) -> Embeddings:
    """Every word's vector: [forward state after the character after the word ; backward state
    after (reading backwards) the character before it]; the models fed `chunk` characters at a
    time with the state carried."""
    check_pair(forward, backward)
    words = split_words(text)
    if not words:
        raise InputDataError(
            "nothing to embed: the text is empty or only whitespace", hint="give at least one word"
        )
    n = len(text)
    ends = np.array([w.end for w in words], dtype=np.int64)
    starts = np.array([w.start for w in words], dtype=np.int64)
    # index 0 is the start token, so text[i] is fed at i + 1: forward reads text + " " and the
    # character after a word is text[end]; backward reads reversed(" " + text), where the
    # character before a word, (" " + text)[start], comes at n - start.
    f_ids = _ids(forward, text + " ")
    b_ids = _ids(backward, reverse_text(" " + text))
    df, db = forward.config.hidden, backward.config.hidden
    vectors = torch.empty(len(words), df + db)  # filled in place: the largest thing held
    hidden_at(forward.model, f_ids, ends + 1, chunk, vectors[:, :df])
    hidden_at(backward.model, b_ids, n - starts + 1, chunk, vectors[:, df:])
    unknown = (int((f_ids[1:] == 0).sum()), int((b_ids[1:] == 0).sum()))
    return Embeddings(words, vectors, (df, db), unknown)


def _ids(loaded: LoadedModel, text: str) -> np.ndarray:
    """The start token, then one id per code point of `text`."""
    tok = loaded.tokenizer
    ids = tok.encode_array(text)
    if len(ids) != len(text):  # lowercasing İ gives two code points: offsets would slip
        raise InputDataError(
            "the text holds a character whose lowercase is longer (such as İ), which this "
            "lowercasing model reads as two",
            path=str(loaded.path),
            hint="lowercase the text first, or use models trained without --lowercase",
        )
    return np.concatenate([[start_token(tok)], ids]).astype(np.int64)


@torch.inference_mode()
def hidden_at(
    model: LanguageModel, ids: np.ndarray, positions: np.ndarray, chunk: int, out: Tensor
) -> None:
    """Row i of `out` (len(positions), hidden): the top layer's output after reading
    ids[:positions[i] + 1], the ids fed `chunk` at a time with the state carried."""
    order = np.argsort(positions, kind="stable")
    sorted_pos = positions[order]
    device = next(model.parameters()).device
    state = None
    for a in range(0, len(ids), chunk):
        block = torch.from_numpy(ids[a : a + chunk]).to(device)
        h, state = model.features(block[None], state)  # h: (1, t, hidden)
        lo, hi = np.searchsorted(sorted_pos, [a, a + len(block)])
        if hi > lo:
            rows = torch.from_numpy(sorted_pos[lo:hi] - a).to(device)
            out[torch.from_numpy(order[lo:hi])] = h[0].index_select(0, rows).float().cpu()


def nearest(emb: Embeddings, index: int, k: int) -> list[tuple[int, float]]:
    """The k words (index, cosine similarity) whose vectors are nearest to word `index`'s,
    itself left out, most similar first."""
    if not 0 <= index < len(emb.words):
        raise UsageError(
            f"word index {index} is out of range: the text has {len(emb.words)} words",
            hint=f"give 0 to {len(emb.words) - 1} (`rnnrepl embed` lists them)",
        )
    unit = torch.nn.functional.normalize(emb.vectors, dim=1)
    sims = unit @ unit[index]  # (words,)
    sims[index] = -float("inf")
    k = min(k, len(emb.words) - 1)
    top = torch.topk(sims, k)
    return list(zip(top.indices.tolist(), top.values.tolist(), strict=True))


def context(words: list[Word], index: int, width: int = 4) -> tuple[str, str, str]:
    """(the `width` words before, the word, the `width` words after), each joined by spaces."""
    before = " ".join(w.text for w in words[max(0, index - width) : index])
    after = " ".join(w.text for w in words[index + 1 : index + 1 + width])
    return before, words[index].text, after
