"""Whole-word completions (#15 part 2): the N most likely whole words completing the word being
typed, or the next word after a boundary. Char models by a beam search checked against the
model's own step probabilities; word models from their vocabulary, never <unk>."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.prefix_cache import Superseded
from rnnrepl.infer.words import Beam, in_word
from tests.helpers import invoke
from tests.repl_support import (
    CHAIN,
    CHAIN_ALPHABET,
    bigram,
    char_vocab,
    random_lstm,
    save,
    word_model,
)

torch.set_num_threads(1)

CHARS = char_vocab("the cat sat on mat, a hat.\n")
LSTM = random_lstm(CHARS, hidden=16, seed=3)  # high entropy: many words compete
# "<unk>" is the likeliest token and "," the next: neither is ever a word suggestion.
WORDS = word_model(
    ["the", "then", "them", "cat", ",", "."],
    {"<unk>": 5.0, ",": 3.0, "then": 2.0, "them": 1.0, "cat": 0.5},
)
NEXT_TOTAL = 3 + math.e**3 + math.e**2 + math.e + math.e**0.5  # all but <unk>: \n the . , ...


def direct_prob(loaded, text: str, rest: str) -> float:
    """p(rest, then a boundary | text), token by token through the model itself (batch 1)."""
    tok, model = loaded.tokenizer, loaded.model
    ends = [i for i, t in enumerate(tok.tokens) if i and not in_word(t[0])]
    ids = [tok.index["\n"], *tok.encode(text)]
    prob, state = 1.0, None
    with torch.inference_mode():
        logits, state = model(torch.tensor([ids]), state)
        for ch in rest:
            p = torch.softmax(logits[0, -1].double(), -1)
            prob *= float(p[tok.index[ch]])
            logits, state = model(torch.tensor([[tok.index[ch]]]), state)
        return prob * float(torch.softmax(logits[0, -1].double(), -1)[ends].sum())


@pytest.mark.parametrize("text", ["the c", "on m", "the ", "", "a hat"])
def test_char_words_are_sorted_whole_words_with_the_models_own_probabilities(text):
    typed = text.rsplit(" ", 1)[-1].strip()
    found = Predictor(LSTM).words(text, 5)
    assert len(found) == 5
    probs = [p for _, p in found]
    assert probs == sorted(probs, reverse=True)
    for word, p in found:
        assert word.startswith(typed) and word and all(in_word(c) for c in word)
        assert p == pytest.approx(direct_prob(LSTM, text, word[len(typed) :]), rel=1e-4)


def test_a_wide_beam_finds_exactly_the_best_words_of_an_exhaustive_search():
    letters = [t for t in CHARS.tokens[1:] if in_word(t)]
    every = ["".join(w) for n in range(1, 4) for w in itertools.product(letters, repeat=n)]
    best = sorted(every, key=lambda w: -direct_prob(LSTM, "on ", w))[:4]
    found = Predictor(LSTM).words("on ", 4, Beam(width=len(letters) ** 3, depth=3))
    assert [w for w, _ in found] == best


def test_the_search_stops_at_a_boundary_and_at_its_depth():
    chain = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)  # "dog, sun.\n" and round again
    p = Predictor(chain)
    assert [w for w, _ in p.words("d", 1)] == ["dog"]
    assert p.words("d", 1)[0][1] == pytest.approx(direct_prob(chain, "d", "og"), rel=1e-5)
    assert [w for w, _ in p.words("dog, ", 1)] == ["sun"]
    shallow = [w for w, _ in p.words("d", 3, Beam(width=4, depth=1))]
    assert shallow and all(len(w) <= 2 for w in shallow)  # "dog" needs two more letters


def test_word_models_list_words_from_the_vocabulary_never_unk():
    p = Predictor(WORDS)
    z = 1 + math.e**2 + math.e  # the, then, them: renormalised over the words "th" begins
    assert p.words("on th", 3) == [
        ("then", pytest.approx(math.e**2 / z)),
        ("them", pytest.approx(math.e / z)),
        ("the", pytest.approx(1 / z)),
    ]
    # After a boundary: p(next token) with <unk> left out; "," is no word, so it is not listed.
    found = p.words("the cat ", 10)
    assert [w for w, _ in found] == ["then", "them", "cat", "the"]
    assert found[0][1] == pytest.approx(math.e**2 / NEXT_TOTAL)
    assert p.words("The", 1) == []  # a cased vocabulary has no word that begins so
    lower = word_model(["the", "then"], {"then": 1.0}, lowercase=True)
    assert [w for w, _ in Predictor(lower).words("On Th", 2)] == ["Then", "The"]  # as typed


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("words")
    chain = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)
    return str(save(WORDS, d / "words")), str(save(chain, d / "chain"))


def test_predict_words_prints_the_list(saved):
    r = invoke("predict", saved[0], "on th", "--words", "-n", "2", "--no-cache")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "words beginning with 'th'\n"
        "then ███████████████████▌            66.5%\n"
        "them ███████                         24.5%\n"
    )
    r = invoke("predict", saved[1], "dog, ", "--words", "-n", "1", "--no-cache")
    assert r.stdout == "next words\nsun █████████████████████████████▌ 100.0%\n"


def test_predict_words_json_is_a_list(saved):
    r = invoke("predict", saved[0], "the cat ", "--words", "--json", "--no-cache")
    data = json.loads(r.stdout)
    assert [d["word"] for d in data] == ["then", "them", "cat"]  # -n defaults to 3
    assert data[0]["prob"] == pytest.approx(math.e**2 / NEXT_TOTAL)


def test_n_without_words_is_a_usage_error(saved):
    r = invoke("predict", saved[0], "on th", "-n", "2")
    assert r.exit_code == 2
    assert r.stderr == (
        "rnnrepl: error: -n is the number of --words suggestions — add --words, or use -k\n"
    )


@pytest.mark.parametrize("arch", ["gru", "rnn"])
def test_every_recurrent_cell_steps_the_beam_as_one_batch(arch):
    loaded = random_lstm(CHARS, hidden=16, seed=5, arch=arch)
    for word, p in Predictor(loaded).words("the c", 4):
        assert p == pytest.approx(direct_prob(loaded, "the c", word[1:]), rel=1e-4)


def test_a_newer_request_abandons_the_search_between_beam_steps():
    p = Predictor(LSTM)
    before = p.words("the ", 3)  # the cache holds "the ": only the beam could poll now
    with pytest.raises(Superseded):
        p.words("the ", 3, interrupt=lambda: True)
    assert p.words("the ", 3) == before


@pytest.mark.parametrize("arch", ["lstm", "window"])  # their states are batched differently
def test_keystrokes_reuse_the_beam_steps_of_the_previous_ones_and_find_the_same_words(arch):
    loaded = random_lstm(CHARS, hidden=16, seed=3, arch=arch)
    typing = ["t", "th", "the", "th", "the", "the ", "the c", "the ", "the c", "the ca"]
    p, stepped, alone = Predictor(loaded), [], 0
    for text in typing:
        before = p.word_completer.rows_stepped
        found = p.words(text, 3)
        stepped.append(p.word_completer.rows_stepped - before)
        fresh = Predictor(loaded)  # a search with nothing kept
        expected = fresh.words(text, 3)
        alone += fresh.word_completer.rows_stepped
        assert [w for w, _ in found] == [w for w, _ in expected], text
        assert [q for _, q in found] == pytest.approx([q for _, q in expected], rel=1e-5)
    assert stepped[3] == stepped[4] == stepped[7] == stepped[8] == 0  # searched before: no step
    assert sum(stepped) < alone


# ---- a subword level: the typed piece is spelt again from the boundary before it (healing) ----
def bpe_direct_prob(loaded, text: str, spelt: str, covered: bool = False) -> float:
    """p(`spelt`, in any tokenization, then a boundary | text up to its last pre-token): the sum
    over every way of cutting `spelt` into tokens, through the model itself (batch 1). With
    `covered`: p(the text goes on with `spelt` | the same), the last token going on past it
    with any characters and no boundary asked for."""
    tok, model = loaded.tokenizer, loaded.model
    ids, _ = tok.split_partial(text)
    texts = [tok.token_text(i) for i in range(tok.size)]
    index = {t: i for i, t in enumerate(texts) if i}
    ends = [i for i in range(1, tok.size) if not in_word(texts[i][:1] or "a")]

    def rest(logits, state, s: str) -> float:
        p = torch.softmax(logits[0, -1].double(), -1)
        if not s:
            return float(p[ends].sum())
        total = 0.0
        if covered:  # a token that spells all of s, or more: the path has spelt it
            total += float(sum(p[i] for i in range(1, tok.size) if texts[i].startswith(s)))
        for k in range(1, len(s) + (0 if covered else 1)):
            if s[:k] in index:
                i = index[s[:k]]
                out, after = model(torch.tensor([[i]]), state)
                total += float(p[i]) * rest(out, after, s[k:])
        return total

    with torch.inference_mode():
        logits, state = model(torch.tensor([[tok.index.get("\n", 0), *ids]]), None)
        return rest(logits, state, spelt)


@pytest.mark.parametrize("text", ["the c", "the cat s", "the dog sat on the ", "the"])
def test_bpe_words_spell_the_typed_piece_from_the_boundary_in_every_tokenization(text):
    from tests.test_bpe import MODEL

    tok = MODEL.tokenizer
    _, partial = tok.split_partial(text)
    typed = text.rsplit(" ", 1)[-1]
    # nothing is pruned while fewer than n words are finished: every spelling of the six best
    # words within the depth is summed (the search stops early on a live beam at n words)
    every = Predictor(MODEL).words(text, 100_000, Beam(width=20_000, depth=4))
    found = every[:6]
    assert len(found) == 6
    assert [p for _, p in every] == sorted((p for _, p in every), reverse=True)
    # conditional on the typed piece, as at char level: p(piece + rest, boundary) / p(piece)
    piece = bpe_direct_prob(MODEL, text, partial, covered=True)
    assert 0 < piece < 1
    exact = 0
    for word, p in found:
        assert word.startswith(typed) and word and all(in_word(c) for c in word)
        spelt = partial + word[len(typed) :]
        direct = bpe_direct_prob(MODEL, text, spelt) / piece
        if len(word) - len(typed) <= 4:  # every spelling of it fits the depth: all summed
            assert p == pytest.approx(direct, rel=1e-4)
            exact += 1
        else:  # spellings of more tokens than the depth are missing from its sum
            assert p <= direct * (1 + 1e-4)
    assert exact >= 3
    assert sum(p for _, p in every) <= 1 + 1e-5  # disjoint events, given the same piece


def test_bpe_keystrokes_reusing_beam_steps_find_what_a_fresh_search_finds():
    from tests.test_bpe import MODEL

    p = Predictor(MODEL)
    for text in ["the c", "the ca", "the cat", "the ca", "the cat ", "the cat s", "the cat sa"]:
        found, expected = p.words(text, 3), Predictor(MODEL).words(text, 3)
        assert [w for w, _ in found] == [w for w, _ in expected], text
        assert [q for _, q in found] == pytest.approx([q for _, q in expected], rel=1e-5)


@pytest.mark.parametrize("text", ["the cat s", "the dog sat on the "])
def test_predict_words_at_bpe_level_reads_given_the_typed_piece(tmp_path, text):
    from tests.test_bpe import MODEL

    args = (text, "--words", "-n", "20", "--json", "--no-cache")
    r = invoke("predict", str(save(MODEL, tmp_path / "bpe")), *args)
    assert (r.exit_code, r.stderr) == (0, "")
    found = json.loads(r.stdout)
    assert len(found) == 20 and sum(d["prob"] for d in found) <= 1 + 1e-6
    _, partial = MODEL.tokenizer.split_partial(text)
    piece = bpe_direct_prob(MODEL, text, partial, covered=True)  # the search's denominator
    typed = text.rsplit(" ", 1)[-1]
    for d in found[:3]:
        spelt = partial + d["word"][len(typed) :]
        # the beam of 3 drops a few spellings of the word and of the piece alike: not exact
        assert d["prob"] == pytest.approx(bpe_direct_prob(MODEL, text, spelt) / piece, rel=0.01)


@pytest.fixture(scope="module")
def bpe_typing():
    from tests.test_bpe import MODEL

    return Predictor(MODEL)  # one predictor: its kept beam steps serve the next text too


@settings(max_examples=30, deadline=None)
@given(st.text(alphabet="the cat sat.\n  éö", max_size=14))
def test_bpe_words_given_the_typed_piece_sum_to_at_most_one(bpe_typing, text):
    found = bpe_typing.words(text, 30)
    assert sum(p for _, p in found) <= 1 + 1e-5, text
