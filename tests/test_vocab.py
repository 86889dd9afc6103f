from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.errors import CheckpointError
from rnnrepl.store import modelfile
from rnnrepl.text.tokenizers import (
    CharVocab,
    Joiner,
    WordVocab,
    iter_word_tokens,
    tokenizer_from_dict,
    word_pieces,
)
from tests.helpers import invoke

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
        "it",
        "'s",
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


# ---- version 2: linear splitting, contractions, joining as text is written --------------------


def _timed(fn, text: str) -> float:
    start = time.perf_counter()
    fn(text)
    return time.perf_counter() - start


RUNS = {  # runs without a space; "a" * n + ".b" took 19 s at 40k characters with the old regex
    "letters": lambda n: "a" * n + ".b",
    "punctuation": lambda n: ".,;" * (n // 3) + "a",
    "digits": lambda n: "1" * n + ",5",
    "mixed": lambda n: "a'b-c" * (n // 5) + "(d).e",
    "apostrophes": lambda n: "a'" * (n // 2) + ".b",
}


@pytest.mark.parametrize("kind", sorted(RUNS))
def test_splitting_a_long_run_without_spaces_is_linear(kind):
    v = WordVocab.build(Counter(["a", "@-@", "@,@", "1", "'s"]))
    for fn in (word_pieces, v.encode, v.split_partial):
        small = min(_timed(fn, RUNS[kind](10_000)) for _ in range(3))
        big = min(_timed(fn, RUNS[kind](100_000)) for _ in range(2))
        assert big < 5.0
        assert big < 20 * max(small, 0.01), (kind, fn, small, big)


def vocab_of(text: str, **kw) -> WordVocab:
    c: Counter[str] = Counter()
    WordVocab.count(text, c, **kw)
    return WordVocab.build(c, **kw)


def test_contractions_split_like_wikitext():
    assert word_pieces("I don't know, it's O'Brien's") == [
        "I", "don", "'t", "know", ",", "it", "'s", "O", "'Brien", "'s"
    ]  # fmt: skip
    assert word_pieces("do n't wasn 't players '") == ["do", "n't", "wasn", "'t", "players", "'"]
    v = vocab_of("I don't know.\n")
    assert 0 not in v.encode("don't") and v.decode(v.encode("I don't know.")) == "I don't know."


def test_wikitext_vocabulary_reads_typed_text_in_its_own_conventions():
    v = vocab_of("the well @-@ known 1 @,@ 000 and 3 @.@ 5 , they don 't .\n")
    typed = "the well-known 1,000 and 3.5, they don't."
    assert [v.tokens[i] for i in v.encode(typed)] == (
        "the well @-@ known 1 @,@ 000 and 3 @.@ 5 , they don 't .".split()
    )
    assert v.decode(v.encode(typed)) == typed


def test_ptb_vocabulary_reads_dont_as_do_nt():
    v = vocab_of("i do n't know\n")
    assert [v.tokens[i] for i in v.encode("i don't know")] == ["i", "do", "n't", "know"]
    assert v.decode(v.encode("i don't know")) == "i don't know"


def test_version_1_vocabulary_keeps_its_whole_words():
    """Models saved before version 2 hold "don't" whole: it stays one known token."""
    old = tokenizer_from_dict({"level": "word", "tokens": ["<unk>", "\n", "don't", "it's", "go"]})
    assert old.version == 1 and "version" not in old.to_dict()
    assert old.encode("don't go, it's") == [2, 4, 0, 3]
    assert old.split_partial("go don't") == ([4], "don't")
    assert vocab_of("a").to_dict()["version"] == 2
    with pytest.raises(CheckpointError, match="upgrade"):
        tokenizer_from_dict({"level": "word", "tokens": ["<unk>"], "version": 3})


def test_join_writes_text_as_text_is_written():
    v = vocab_of("( a , b ) [ c ] { d } e ; f : g ! h ? i . j 's k n't \" l m \" n % o\n")
    toks = '( a <unk> , b ) , [ c ] e \'s ; f : " l m " , n % ! " o " .'.split()
    text = v.decode([v.index.get(t, 0) for t in toks])
    assert text == '(a <unk>, b), [c] e\'s; f: "l m", n%! "o".'


def test_streamed_pieces_equal_the_joined_text():
    v = vocab_of('the well @-@ known ( end ) , he \'s " here " .\n')
    toks = 'the well @-@ known ( end ) , he \'s " here " . \n the end'.split(" ")
    toks = [t for t in toks if t] + ["\n", "he"]
    whole = v.decode([v.index[t] for t in toks])
    streamed = ""
    for t in toks:
        streamed += Joiner(v, streamed.rpartition("\n")[2]).push(t)
    assert streamed == whole == 'the well-known (end), he\'s "here".\nthe end\nhe'


@settings(max_examples=300)
@given(st.lists(st.sampled_from([*WORD_TOKENS, "@-@", '"', "'t", "don", "do"]), max_size=15))
def test_word_round_trip_with_wikitext_joiners_and_streaming(seq):
    """decode glues a token on only when the text encodes back to the same tokens; streaming
    token by token (a fresh Joiner over the line so far each time) writes the same text."""
    v = WordVocab.build(Counter([*WORD_TOKENS, "@-@", '"', "'t", "don", "do"]))
    ids = [v.index[t] for t in seq]
    text = v.decode(ids)
    assert v.encode(text) == ids
    streamed = ""
    for t in seq:
        streamed += Joiner(v, streamed.rpartition("\n")[2]).push(t)
    assert streamed == text


def _score_tokens(model: str, text: str) -> list[str]:
    r = invoke("score", model, text, "--json")
    assert r.exit_code == 0, r.stderr
    return [step["token"] for step in json.loads(r.stdout)["steps"]]


@pytest.mark.slow
def test_a_word_model_trained_on_contractions_reads_them_and_stores_version_2(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("I don't know. It's the cat's mat, isn't it?\n" * 60, encoding="utf-8")
    args = ["train", str(corpus), "-o", str(tmp_path / "m"), "--level", "word", "--steps", "5"]
    r = invoke(*args, "--hidden", "16", "--embed", "8", "--seq-len", "8")
    assert r.exit_code == 0, r.stderr
    model = str(tmp_path / "m.safetensors")
    assert modelfile.load_model(model).tokenizer.to_dict()["version"] == 2
    assert _score_tokens(model, "I don't know, isn't it?") == [
        "I", "don", "'t", "know", ",", "isn", "'t", "it", "?"
    ]  # fmt: skip
    r = invoke("generate", model, "-p", "I", "-n", "30", "--seed", "1")
    assert r.exit_code == 0, r.stderr
    assert not re.search(r"\w ('t|'s|,|\.|\?)", r.stdout), r.stdout  # glued to the word before


@pytest.mark.slow
def test_the_bundled_word_model_reads_typed_contractions_and_hyphens():
    """It was saved before version 2 (no version key) and keeps loading; typed "don't" used to
    be one unknown token for it."""
    assert modelfile.load_model("wikitext-word").tokenizer.version == 1
    assert _score_tokens("wikitext-word", "I don't know if it's well-known.") == [
        "I", "don", "'t", "know", "if", "it", "'s", "well", "@-@", "known", "."
    ]  # fmt: skip


def test_predictor_stream_writes_what_decode_writes():
    from rnnrepl.config import SampleConfig
    from rnnrepl.infer.predictor import Predictor
    from tests.repl_support import random_lstm

    words = ["the", "cat", "don", "'t", "'s", ",", ".", "(", ")", '"', "@-@", "\n", "<unk>"]
    v = WordVocab(["<unk>", "\n", *[w for w in words if w not in ("\n", "<unk>")]])
    p = Predictor(random_lstm(v, seed=3))
    for context in ("", "the cat", "(the"):
        steps = list(p.stream(context, SampleConfig(max_tokens=200, seed=5, temperature=2.0)))
        streamed = context + "".join(s.text for s in steps)
        assert streamed == v.decode(v.encode(context) + [s.token_id for s in steps])
        assert v.encode(streamed) == v.encode(context) + [s.token_id for s in steps]
