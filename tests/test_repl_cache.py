"""Predictor's prefix cache: incremental results equal a fresh computation; costs are O(edit)."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrepl.config import SampleConfig
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.prefix_cache import DENSE, FEED_LIMIT, MAX_SPARSE, SPACING, Superseded
from rnnrepl.text.tokenizers import WordVocab
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, random_lstm, word_model

torch.set_num_threads(1)  # one-token steps: threads only add contention on shared CPUs

ALPHABET = "the cat sat on mat.\n"
WORDS = "the cat sat on mat . dog log".split()
CHAR = random_lstm(char_vocab(ALPHABET))
WINDOW = random_lstm(char_vocab(ALPHABET), arch="window")
WORD = random_lstm(WordVocab(["<unk>", "\n", *WORDS]))

# An edit: ("type", text) appends; ("back", n) deletes n at the end; ("put", i, text) replaces
# one character at a relative position; ("cut", i) truncates at a relative position.
_text = st.text(alphabet=ALPHABET + "Zé", max_size=12)
EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("type"), _text),
        st.tuples(st.just("back"), st.integers(1, 6)),
        st.tuples(st.just("put"), st.floats(0, 1), _text),
        st.tuples(st.just("cut"), st.floats(0, 1)),
        st.tuples(st.just("paste"), st.integers(1, 6)),
    ),
    max_size=25,
)


def apply(text: str, edit) -> str:
    kind = edit[0]
    if kind == "type":
        return text + edit[1]
    if kind == "back":
        return text[: max(0, len(text) - edit[1])]
    if kind == "paste":
        return text + "the cat sat on the mat. " * (edit[1] * 6)
    i = int(edit[1] * len(text))
    if kind == "put":
        return text[:i] + edit[2] + text[i + 1 :]
    return text[:i]


@pytest.mark.parametrize("loaded", [CHAR, WINDOW, WORD], ids=["char-lstm", "char-window", "word"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=EDITS)
def test_incremental_distribution_equals_a_fresh_computation(loaded, edits):
    p = Predictor(loaded)
    text = ""
    for edit in edits:
        text = apply(text, edit)
        probs, partial = p.distribution(text)
        fresh, fresh_partial = Predictor(loaded).distribution(text)
        assert partial == fresh_partial
        torch.testing.assert_close(probs, fresh, atol=1e-5, rtol=1e-4)
        assert p.split(text) == loaded.tokenizer.split_partial(text)
        assert p.unknown_count == p.split(text)[0].count(0)
        assert p.cache.states.ids == p.split(text)[0]  # the states belong to exactly these tokens


def test_split_of_another_text_between_distributions_does_not_confuse_the_cache():
    p = Predictor(CHAR)
    base = "the cat sat on the mat. " * 10
    p.distribution(base)
    p.split("mat" + base)  # the encoder moves on alone...
    probs, _ = p.distribution("mat" + base + "s")  # ...so its "unchanged prefix" is not the cache's
    assert p.cache.states.ids == CHAR.tokenizer.encode("mat" + base + "s")
    fresh, _ = Predictor(CHAR).distribution("mat" + base + "s")
    torch.testing.assert_close(probs, fresh, atol=1e-5, rtol=1e-4)


def record_features(p: Predictor, calls: list) -> None:
    """Append (length, oneDNN on) for each batched call through the model's recurrent body."""
    features = p.model.features

    def spy(ids, state):
        calls.append((ids.shape[1], torch.backends.mkldnn.enabled))
        return features(ids, state)

    p.model.features = spy


def test_long_paste_is_batched_then_backspace_costs_one_step():
    p = Predictor(CHAR)
    calls = []
    record_features(p, calls)
    text = ("the cat sat on the mat. " * 200)[:FEED_LIMIT]
    before = p.tokens_fed
    p.distribution(text)
    assert p.tokens_fed - before == FEED_LIMIT
    lengths = [n for n, _ in calls]  # batched calls; single steps take the fast path
    assert sum(lengths) <= FEED_LIMIT
    assert len(lengths) <= FEED_LIMIT // SPACING + DENSE + 2  # grid-sized batches
    for n in range(1, DENSE):  # backspace through the dense tail: one step each
        before = p.tokens_fed
        p.distribution(text[:-n])
        assert p.tokens_fed - before == 1
    before = p.tokens_fed
    cut = text[: len(text) - 500]  # far back: at most one grid segment is re-fed
    probs, _ = p.distribution(cut)
    assert p.tokens_fed - before <= SPACING
    torch.testing.assert_close(probs, Predictor(CHAR).distribution(cut)[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("length", [10, 1_000, 10_000])
def test_typing_at_the_end_costs_one_token_whatever_the_context(length):
    p = Predictor(CHAR)
    text = ("the cat sat on the mat. " * 500)[:length]
    p.distribution(text)
    for ch in "the dog":
        before = p.tokens_fed
        text += ch
        p.distribution(text)
        assert p.tokens_fed - before == 1


def test_memory_stays_bounded_for_long_contexts():
    p = Predictor(WINDOW)
    text = "the cat sat on the mat. " * 2000  # 48,000 tokens
    p.distribution(text)
    cache = p.cache.states
    assert len(cache.states) <= MAX_SPARSE + DENSE + 2
    assert cache.spacing > SPACING
    assert cache.last[1].shape == (WINDOW.tokenizer.size,)  # one logits vector, not one per token
    probs, _ = p.distribution(text[:-7])
    torch.testing.assert_close(probs, Predictor(WINDOW).distribution(text[:-7])[0])


def test_a_stream_extends_the_cache_so_the_next_keystroke_is_free():
    p = Predictor(CHAR)
    generated = p.generate("the c", SampleConfig(max_tokens=40, seed=3))
    before = p.tokens_fed
    p.distribution("the c" + generated)
    assert p.tokens_fed == before


def test_stream_is_the_same_with_and_without_a_warm_cache():
    cfg = SampleConfig(max_tokens=60, seed=11, temperature=1.0)
    warm = Predictor(CHAR)
    warm.distribution("the cat sat on the")
    warm.distribution("the cat")
    assert warm.generate("the cat sat", cfg) == Predictor(CHAR).generate("the cat sat", cfg)


def test_superseded_feed_keeps_a_consistent_cache():
    p = Predictor(CHAR)
    text = "the cat sat on the mat. " * 100
    ticks = iter(range(1000))
    with pytest.raises(Superseded):
        p.distribution(text, interrupt=lambda: next(ticks) >= 3)
    probs, _ = p.distribution(text)
    torch.testing.assert_close(probs, Predictor(CHAR).distribution(text)[0], atol=1e-5, rtol=1e-4)


def test_score_in_a_context_matches_scoring_the_whole_text():
    p = Predictor(CHAR)
    rows, summary = p.score("cat", k=3, context="the ")
    whole, _ = Predictor(CHAR).score("the cat", k=3)
    assert [r.token for r in rows] == ["c", "a", "t"]
    for got, want in zip(rows, whole[4:], strict=True):
        assert got.loss == pytest.approx(want.loss, abs=1e-5)
    assert summary.tokens == 3


def test_word_level_partial_word_filters_and_renormalises():
    loaded = word_model(["cat", "car", "dog"], {"cat": 3.0, "car": 2.0, "dog": 4.0})
    p = Predictor(loaded)
    probs, partial = p.distribution("the ca")
    assert partial == "ca"
    top = dict(p.top_of(probs, 5))
    assert set(top) == {"cat", "car"}
    assert top["cat"] == pytest.approx(1 / (1 + torch.e**-1), rel=1e-5)
    probs, partial = p.distribution("the zz")  # no word starts with it: what follows it
    assert partial == "zz" and p.top_of(probs, 1)[0][0] == "dog"


def test_word_level_partial_matches_case_insensitively_when_lowercased():
    loaded = word_model(["cat", "car"], {"cat": 1.0}, lowercase=True)
    p = Predictor(loaded)
    assert p.complete("The Ca") == ["t", " "]


def test_ghost_text_is_the_rest_of_the_word():
    p = Predictor(bigram(char_vocab(CHAIN_ALPHABET), CHAIN))
    assert p.complete("a do") == ["g"]  # stops before the comma
    assert p.complete("a dog") == [",", " ", "s", "u", "n"]  # at a boundary: the next word
    assert p.complete("sun") == []  # never across a line break
    loaded = word_model(["the", "cat", "car"], {"cat": 3.0, "car": 1.0}, {"cat": "the"})
    w = Predictor(loaded)
    assert w.complete("the ca") == ["t", " "]  # a completed word brings its space
    assert w.complete("the cat") == [" the", " "]  # a whole word typed: the next one
    assert w.complete("the ") == ["cat", " "]
    assert w.complete("the zz") == []  # no word begins with it: nothing to complete


def test_word_pieces_join_the_context_like_decode():
    loaded = word_model(["cat", "."], {"cat": 1.0})
    p = Predictor(loaded)
    assert p.piece(loaded.tokenizer.index["cat"], "the") == " cat"
    assert p.piece(loaded.tokenizer.index["cat"], "the ") == "cat"
    assert p.piece(loaded.tokenizer.index["."], "the cat") == "."


def test_batched_inputs_take_few_shapes_through_onednn():
    """oneDNN compiles and keeps a kernel per input length: only multiples of SHAPE_STEP go
    to it; other lengths run with it switched off. Same logits as one plain call."""
    from rnnrepl.infer.runner import SHAPE_STEP

    p = Predictor(CHAR)
    calls = []
    p.model.register_forward_hook(
        lambda mod, args, out: calls.append((args[0].shape[1], torch.backends.mkldnn.enabled))
    )
    ids = CHAR.tokenizer.encode(("the cat sat on the mat. " * 40)[:777])
    out, state = p.runner.forward(ids, None)
    assert [n for n, onednn in calls] == [768, 9]
    assert all(n % SHAPE_STEP == 0 for n, onednn in calls if onednn)
    assert not calls[-1][1] and torch.backends.mkldnn.enabled  # switched back on afterwards
    with torch.inference_mode():
        expect, expect_state = CHAR.model(torch.tensor([ids]))
    torch.testing.assert_close(out, expect, atol=1e-5, rtol=1e-4)
    for a, b in zip(state, expect_state, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    calls.clear()
    record_features(p, calls)
    p.distribution("the cat sat on the mat. " * 30)  # the prefix cache's chunks obey it too
    assert len(calls) > 1
    assert all(n % SHAPE_STEP == 0 for n, onednn in calls if onednn)


def test_a_paste_longer_than_the_feed_limit_is_read_from_its_end():
    """A 200 kB paste: the panel comes within seconds (the last FEED_LIMIT tokens are fed, in
    batched calls), equal to a fresh computation over the text's last FEED_LIMIT tokens, and the
    next keystroke costs one step."""
    p = Predictor(CHAR)
    text = ("the cat sat on the mat. " * 9000)[:200_000]
    start = time.perf_counter()
    probs, _ = p.distribution(text)
    assert time.perf_counter() - start < 30
    assert p.tokens_fed - 1 <= FEED_LIMIT + 1  # (+1: the start token)
    tail = text[-FEED_LIMIT:]
    torch.testing.assert_close(probs, Predictor(CHAR).distribution(tail)[0], atol=1e-5, rtol=1e-4)
    before = p.tokens_fed
    p.distribution(text + "s")
    assert p.tokens_fed - before == 1
