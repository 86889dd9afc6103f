from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.errors import CheckpointError
from rnnrepl.vocab import CharVocab, WordVocab, iter_word_tokens, tokenizer_from_dict, word_pieces

ALPHABET = "abcé \n.,!?'’-()[]😀\t"


def char_vocab(text: str = ALPHABET) -> CharVocab:
    return CharVocab.build(Counter(text))


@given(st.text(alphabet=ALPHABET, max_size=200))
def test_char_round_trip(text):
    v = char_vocab()
    assert v.decode(v.encode(text)) == text


@given(st.text(max_size=60))
def test_char_unknown_symbols_never_raise(text):
    v = char_vocab("abc")
    ids = v.encode(text)
    assert len(ids) == len(text)
    assert all(0 <= i < v.size for i in ids)
    assert all((ch in "abc") == (i != 0) for ch, i in zip(text, ids, strict=True))


WORD_TOKENS = [
    "a",
    "bb",
    "end",
    "U.S.",
    "@-@",
    "<unk>",
    ".",
    ",",
    "(",
    ")",
    "'",
    "it's",
    "-",
    "—",
    "...",
    "\n",
    "[",
    "!",
    "x-y",
    "é",
    "N",
    "'s",
    "n't",
    "?",
    ":",
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(WORD_TOKENS), max_size=15))
def test_word_decode_encode_round_trip(seq):
    """Any token sequence decodes to text that encodes back to the same tokens."""
    v = WordVocab.build(Counter(WORD_TOKENS))
    ids = [v.index[t] for t in seq]
    assert v.encode(v.decode(ids)) == ids


@given(st.text(alphabet="ab .,()\n", max_size=80))
def test_word_text_round_trip_up_to_spacing(text):
    """decode(encode(text)) keeps every token of a text made of training symbols."""
    c = Counter()
    WordVocab.count(text, c)
    v = WordVocab.build(c)
    ids = v.encode(text)
    assert 0 not in ids
    assert v.encode(v.decode(ids)) == ids
    assert [v.tokens[i] for i in ids] == list(iter_word_tokens(text))


def test_word_split_punctuation_and_markers():
    assert word_pieces("The end.") == ["The", "end", "."]
    assert word_pieces("(see it's x-y) U.S. @-@ <unk> ...") == [
        "(",
        "see",
        "it's",
        "x-y",
        ")",
        "U.S.",
        "@-@",
        "<unk>",
        "...",
    ]
    assert list(iter_word_tokens("a b\n\nc")) == ["a", "b", "\n", "\n", "c"]


def test_end_predicts_full_stop_token_ordering():
    c = Counter()
    WordVocab.count("the end. the end.\n", c)
    v = WordVocab.build(c)
    ids = v.encode("the end.")
    assert [v.tokens[i] for i in ids] == ["the", "end", "."]


def test_word_vocab_caps_and_min_freq():
    c = Counter({"a": 5, "b": 3, "c": 1, "d": 1})
    assert WordVocab.build(c, min_freq=2).tokens == ["<unk>", "\n", "a", "b"]
    assert WordVocab.build(c, max_vocab=3).tokens == ["<unk>", "\n", "a"]
    v = WordVocab.build(c, min_freq=2)
    assert v.encode("a zzz c") == [2, 0, 0]


def test_lowercase_applies_to_prompts():
    c = Counter()
    WordVocab.count("hello world", c, lowercase=True)
    v = WordVocab.build(c, lowercase=True)
    assert v.encode("Hello WORLD") == v.encode("hello world")
    assert 0 not in v.encode("Hello WORLD")


def test_split_partial():
    c = Counter()
    WordVocab.count("the cat sat on the mat.\n", c)
    v = WordVocab.build(c)
    ids, partial = v.split_partial("the ca")
    assert [v.tokens[i] for i in ids] == ["the"] and partial == "ca"
    assert v.split_partial("the cat ")[1] == ""
    assert v.split_partial("")[0] == []
    assert char_vocab("ab").split_partial("ab") == ([1, 2], "")


@pytest.mark.parametrize(
    "data",
    [
        {"level": "char", "tokens": ["x", "a"]},
        {"level": "char", "tokens": ["<unk>", "ab"]},
        {"level": "char", "tokens": ["<unk>", "a", "a"]},
        {"level": "word", "tokens": ["<unk>", "a b"]},
        {"level": "bpe", "tokens": ["<unk>"]},
        {"level": "char", "tokens": ["<unk>"], "extra": 1},
        "nope",
    ],
)
def test_bad_tokenizer_metadata_is_a_checkpoint_error(data):
    with pytest.raises(CheckpointError):
        tokenizer_from_dict(data)


def test_to_dict_round_trip():
    for v in (char_vocab(), WordVocab.build(Counter(WORD_TOKENS), lowercase=True)):
        w = tokenizer_from_dict(v.to_dict())
        assert w.tokens == v.tokens and w.level == v.level and w.lowercase == v.lowercase
