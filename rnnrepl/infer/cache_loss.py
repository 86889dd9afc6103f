"""The held-out loss with a unigram cache: the model's probability of each token mixed with the
share of that token among the tokens the text has already used (README "Perplexity with the word
cache").

The word cache of the suggestions (``word_cache``), at the level of token ids, as a proper
distribution over the vocabulary (Kuhn & De Mori 1990; the unigram cache Grave et al. 2017
compare their neural cache with):

    p(w_t) = (1 - LAMBDA) p_model(w_t | w_<t) + LAMBDA c(w_t) / sum_w c(w)

where c(w) = sum over the earlier tokens equal to w of DECAY ** (tokens since it). Before the
first token the cache is empty and the model's probability is kept as it is. Every token takes
part, <unk> and the line break included, as in Grave et al. LAMBDA and DECAY were chosen on
WikiText-2's test.txt, which none of the README's figures score.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rnnrepl.infer.scoring import ScoreSummary
from rnnrepl.train.validation import held_out_token_losses, start_token

LAMBDA = 0.1
DECAY = 0.995
RESCALE = 1e100  # the running scale past which the stored counts are brought back to 1


def cache_token_losses(
    ids: np.ndarray | list[int], losses: np.ndarray, lam: float = LAMBDA, decay: float = DECAY
) -> np.ndarray:
    """-log p of each token under the model mixed with the cache, from the model's own -log p
    (`losses`, one per token of `ids`)."""
    if len(ids) != len(losses):
        raise ValueError("one loss per token")
    share = np.zeros(len(losses))  # c(w_t) / sum c, from the tokens before t
    counts: dict[int, float] = {}
    total, scale = 0.0, 1.0  # the stored count of the token j tokens back is scale * decay**j
    for t, token in enumerate(np.asarray(ids).tolist()):
        if t:
            share[t] = counts.get(token, 0.0) / total
        scale /= decay
        if scale > RESCALE:
            counts = {k: c / scale for k, c in counts.items()}
            total, scale = total / scale, 1.0
        counts[token] = counts.get(token, 0.0) + scale
        total += scale
    model = np.exp(-np.asarray(losses, dtype=np.float64))
    mixed = (1 - lam) * model + lam * share
    mixed[:1] = model[:1]  # nothing read yet: the model alone
    with np.errstate(divide="ignore"):
        return -np.log(mixed)


def score_text(
    loaded, ids: list[int], characters: int, cache: bool, on_progress: Callable | None = None
) -> tuple[ScoreSummary, ScoreSummary | None]:
    """The held-out figures of one text of `characters` characters encoded as `ids` under a
    loaded model, and with `cache` the same under the cache (else None)."""
    losses = held_out_token_losses(loaded.model, ids, start_token(loaded.tokenizer), on_progress)
    n, unknown = len(losses), ids.count(0)
    plain = ScoreSummary(n, float(losses.sum()) / n, characters, unknown)
    if not cache:
        return plain, None
    mixed = cache_token_losses(ids, losses)
    return plain, ScoreSummary(n, float(mixed.sum()) / n, characters, unknown)
