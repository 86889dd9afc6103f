"""The word cache (#15): the words the text already holds, mixed into the word suggestions as
p = (1 - LAMBDA) p_model(w | text, typed) + LAMBDA p_cache(w | typed), each earlier word weighted
DECAY ** (words since it). Checked against the formula, a brute-force count and the commands."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.infer import word_cache
from rnnrepl.infer.ksr import word_spans
from rnnrepl.infer.prefix_cache import Superseded
from rnnrepl.infer.word_cache import DECAY, LAMBDA, WordCache
from tests.helpers import invoke
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save, word_model

WORDS = word_model(
    ["the", "then", "them", "cat", ",", "."],
    {"<unk>": 5.0, ",": 3.0, "then": 2.0, "them": 1.0, "cat": 0.5},
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    chain = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
    return str(save(WORDS, d / "words")), str(save(chain, d / "chain"))


def words_json(model: str, text: str, *flags: str, n: int = 10) -> dict[str, float]:
    r = invoke("predict", model, text, "--words", "-n", str(n), "--json", *flags)
    assert (r.exit_code, r.stderr) == (0, "")
    return {d["word"]: d["prob"] for d in json.loads(r.stdout)}


def brute(words: list[str], typed: str, decay: float = DECAY) -> dict[str, float]:
    """p_cache(w | typed) from the definition: word j of i weighs decay ** (i - j)."""
    weights: dict[str, float] = {}
    for j, w in enumerate(words):
        if w.startswith(typed):
            weights[w] = weights.get(w, 0.0) + decay ** (len(words) - j)
    total = sum(weights.values())
    return {w: v / total for w, v in weights.items()}


def test_predict_words_mixes_the_model_with_the_words_of_the_text(saved):
    text = "them then the cat. the th"
    model = words_json(saved[0], text, "--no-cache")
    mixed = words_json(saved[0], text)  # --cache is the default
    cache = brute(["them", "then", "the", "cat", "the"], "th")
    assert set(mixed) == set(model) | set(cache)
    for w, p in mixed.items():
        assert p == pytest.approx((1 - LAMBDA) * model.get(w, 0) + LAMBDA * cache.get(w, 0))
    assert list(mixed) == sorted(mixed, key=mixed.get, reverse=True)


def test_the_cache_offers_a_word_the_model_never_would(saved):
    # the chain model always writes "sun" after ", "; the text holds "dog"
    assert words_json(saved[1], "dog, ", "--no-cache", n=1) == pytest.approx({"sun": 1.0}, abs=1e-3)
    mixed = words_json(saved[1], "dog, ", n=2)
    assert mixed == pytest.approx({"sun": 1 - LAMBDA, "dog": LAMBDA}, abs=1e-3)
    # and nothing changes while no earlier word begins with the typed part
    assert words_json(saved[1], "dog, s") == words_json(saved[1], "dog, s", "--no-cache")


WORD = st.text("abc", min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(WORD, max_size=40), st.text("abc", max_size=2), st.integers(1, 12))
def test_the_heaviest_words_of_a_prefix_are_those_of_a_brute_force_count(words, typed, n):
    cache = WordCache(decay=0.9)
    cache.read(" ".join(words) + " ")
    found = cache.probs(typed, n)
    expected = brute(words, typed, 0.9)
    assert [w for w, _ in found] == list(dict.fromkeys(w for w, _ in found))  # no repeats
    for w, p in found:
        assert p == pytest.approx(expected[w])
    assert [p for _, p in found] == pytest.approx(sorted(expected.values(), reverse=True)[:n])


def test_reading_on_adds_words_and_an_edit_starts_again(monkeypatch):
    monkeypatch.setattr(word_cache, "REBASE", 3)  # rescale the stored weights every 3 words
    text = "ab abc b ab, abd\nb abc "
    once, stepwise = WordCache(decay=0.5), WordCache(decay=0.5)
    once.read(text)
    for start, _ in word_spans(text):  # the text before each word, as the REPL reads it
        stepwise.read(text[:start])
    stepwise.read(text)
    assert once.count == stepwise.count == 7
    for typed in ("", "a", "ab", "b"):
        assert stepwise.probs(typed, 5) == pytest.approx(once.probs(typed, 5))
        expected = brute(text.replace(",", " ").split(), typed, 0.5)
        assert dict(once.probs(typed, 5)) == pytest.approx(expected)
    stepwise.read("zz ")  # not a continuation: the cache holds only the new text
    assert stepwise.count == 1 and stepwise.probs("", 5) == [("zz", 1.0)]


def test_without_a_matching_word_or_with_lambda_zero_the_models_list_is_kept():
    found = [("then", 0.6), ("them", 0.3), ("the", 0.1)]
    cache = WordCache()
    assert cache.words(found, "cat dog th", 2) == found[:2]  # no earlier word begins "th"
    assert WordCache(lam=0.0).words(found, "this that th", 3) == found
    mixed = cache.words(found, "this that th", 3)
    assert [w for w, _ in mixed] == ["then", "them", "that"]  # "that" is the later, heavier


def held(cache: WordCache, prefixes=("", "c", "d", "do")) -> dict:
    return {typed: dict(cache.probs(typed, 9)) for typed in prefixes}


@pytest.mark.parametrize(
    "before, after",
    [
        ("cat dog emu ", "cat dig emu fox "),  # a word changed in the middle
        ("cat dog emu ", "cat dog "),  # backspaces over the last word and its space
        ("cat dog emu ", "cat dogs "),  # a word read whole is whole no longer
        ("cat dog " * 200, "cat dog " * 199 + "cow "),  # past TAKE_BACK words: read again
        ("cat dog ", "dog cat "),  # nothing kept
        # "a" falls from the heaviest nine to last: "b", not listed before, takes its place
        ("a b c d e f g h i j a ", "a b c d e f g h i j "),
    ],
)
def test_after_an_edit_the_cache_holds_what_reading_the_new_text_afresh_gives(before, after):
    edited, fresh = WordCache(decay=0.9), WordCache(decay=0.9)
    edited.read(before)
    edited.read(after)
    fresh.read(after)
    assert edited.count == fresh.count and edited.text == after
    for typed, probs in held(fresh).items():
        assert held(edited)[typed] == pytest.approx(probs), typed


def test_a_long_read_polls_and_goes_on_where_it_was_interrupted(monkeypatch):
    monkeypatch.setattr(word_cache, "POLL", 4)
    text = "cat dog cow emu " * 10
    cache, polls = WordCache(), []
    with pytest.raises(Superseded):
        cache.read(text, lambda: polls.append(1) or len(polls) == 2)
    assert cache.count == 8 and text.startswith(cache.text)
    cache.read(text)
    fresh = WordCache()
    fresh.read(text)
    assert cache.count == 40 and held(cache) == held(fresh)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("ab", min_size=1, max_size=3), max_size=60),
    st.integers(0, 60),
    st.lists(WORD, max_size=10),
)
def test_taking_words_back_leaves_the_counts_and_order_of_a_fresh_read(words, keep, more):
    edited, fresh = WordCache(decay=0.9), WordCache(decay=0.9)
    edited.read(" ".join(words) + " ")
    after = " ".join(words[:keep] + more) + " "
    edited.read(after)
    fresh.read(after)
    assert edited.count == fresh.count
    for typed in ("", "a", "b", "ab", "c"):
        got, exact = edited.probs(typed, 9), brute(after.split(), typed, 0.9)
        assert [p for _, p in got] == pytest.approx([p for _, p in fresh.probs(typed, 9)])
        assert [p for _, p in got] == pytest.approx(sorted(exact.values(), reverse=True)[:9])
        assert all(p == pytest.approx(exact[w]) for w, p in got), typed
