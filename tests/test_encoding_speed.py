"""The bulk encoders (one tokenization per distinct chunk) give exactly the ids and counts of the
simple per-token rule, kept here as the reference: at every level, lowercase on and off, any text,
any block size, with the memo warm from earlier texts or starting afresh."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnrepl.store.modelfile import load_model
from rnnrepl.text import chunktable, wordsplit
from rnnrepl.text.bpe import BpeVocab
from rnnrepl.text.tokenizers import CharVocab, WordVocab, chunk_pieces
from rnnrepl.text.tokens import count_symbols, encode_blocks, encode_corpus
from tests.helpers import REPO, invoke

WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
# Characters the splitting rules treat specially, mixed into arbitrary text.
SPECIAL = [
    *WHITESPACE,
    "'",
    "’",
    "-",
    "@",
    ",",
    ".",
    "<",
    ">",
    "(",
    ")",
    "\x00",
    "\udc80",
    "Σ",
    "İ",
    "ß",
]
WORDS = ["the", "don't", "n't", "'s", "@-@", "@,@", "@.@", "<unk>", "1", "000", "well", "U.S."]
PART = st.one_of(st.sampled_from(WORDS), st.sampled_from(SPECIAL), st.characters())
TEXT = st.lists(PART, max_size=80).map("".join)
NO_SURROGATE = TEXT.filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t))
BLOCK = st.sampled_from([1, 7, 64, 1 << 20])
PIECE = st.sampled_from([1, 5, 40, 1 << 16])  # wordsplit.PIECE_CHARS
TRAINING = (
    "The cat's hat, (well-known) don't 1,000 U.S. <unk> Σίσυφος.\n" * 3
    + "do n't @-@ @,@ \n \n  two  spaces\t\tand  \n\n\n   end \t \n" * 3
)


def reference_word_ids(vocab: WordVocab, text: str) -> list[int]:
    """Today's rule one token at a time: each line's chunks, an end-of-line id per newline."""
    out: list[int] = []
    for n, line in enumerate(vocab.cased(text).split("\n")):
        if n:
            out.append(vocab.index.get("\n", 0))
        for chunk in line.split():
            out += [vocab.index.get(t, 0) for t in vocab.chunk_tokens(chunk)]
    return out


def reference_word_counts(text: str, lowercase: bool) -> Counter[str]:
    counts: Counter[str] = Counter()
    for n, line in enumerate((text.lower() if lowercase else text).split("\n")):
        if n:
            counts["\n"] += 1
        for chunk in line.split():
            counts.update(chunk_pieces(chunk))
    return counts


VOCABS = {
    (cls, lc): cls.build(count_symbols(TRAINING, level, lc), lowercase=lc)
    for cls, level in ((CharVocab, "char"), (WordVocab, "word"))
    for lc in (False, True)
}
BPES = {lc: BpeVocab.train([TRAINING * 5], 300, lowercase=lc) for lc in (False, True)}


@settings(max_examples=300, deadline=None)
@given(TEXT, st.booleans(), BLOCK, PIECE)
def test_word_ids_and_counts_equal_the_per_token_rule(text, lowercase, block, piece):
    vocab = VOCABS[WordVocab, lowercase]
    expected = reference_word_ids(vocab, text)
    with mock.patch.object(wordsplit, "PIECE_CHARS", piece):
        assert vocab.encode(text) == expected
        assert encode_corpus(text, vocab, block).tolist() == expected
        blocks = [ids.tolist() for ids in encode_blocks(text, vocab, block)]
        assert [i for ids in blocks for i in ids] == expected
        counts = count_symbols(text, "word", lowercase, block)
    assert counts == reference_word_counts(text, lowercase)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.booleans(), BLOCK)
def test_char_ids_and_counts_equal_the_per_token_rule(text, lowercase, block):
    vocab = VOCABS[CharVocab, lowercase]
    cased = text.lower() if lowercase else text
    expected = [vocab.index.get(c, 0) for c in cased]
    assert vocab.encode(text) == expected
    assert encode_corpus(text, vocab, block).tolist() == expected
    assert count_symbols(text, "char", lowercase, block) == Counter(cased)


@settings(max_examples=200, deadline=None)
@given(NO_SURROGATE, st.booleans(), BLOCK)
def test_bpe_ids_equal_encoding_the_whole_text_at_once(text, lowercase, block):
    vocab = BPES[lowercase]
    cased = text.lower() if lowercase else text
    expected = [i + 1 for i in vocab._hf.encode(cased).ids] if cased else []
    assert vocab.encode(text) == expected
    assert encode_corpus(text, vocab, block).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(TEXT, st.booleans())
def test_a_text_holding_every_mark_character_encodes_the_same(text, lowercase):
    text = " ".join(chunktable.MARKS) + "\n" + text  # no mark left for str.split: the slow way
    word, bpe = VOCABS[WordVocab, lowercase], BPES[lowercase]
    assert word.encode(text) == reference_word_ids(word, text)
    assert count_symbols(text, "word", lowercase) == reference_word_counts(text, lowercase)
    text = text.encode("utf-8", "replace").decode("utf-8")  # BPE: no lone surrogates
    expected = [i + 1 for i in bpe._hf.encode(bpe.cased(text)).ids]
    assert bpe.encode(text) == expected


@pytest.mark.parametrize("limit", ["MAX_ENTRIES", "MAX_CHARS"])
def test_a_memo_that_starts_afresh_gives_the_same_ids(monkeypatch, limit):
    text = "".join(f"w{i} x{i % 7}, " for i in range(300)) + "\nthe cat's hat\n"
    vocab = WordVocab.build(count_symbols(text, "word", False))
    bpe = BpeVocab.train([text], 300)
    monkeypatch.setattr(chunktable, limit, 10)
    for _ in range(3):  # each call finds the memo over its limit and clears it
        assert vocab.encode(text) == reference_word_ids(vocab, text)
        assert bpe.encode(text) == [i + 1 for i in bpe._hf.encode(text).ids]


def test_a_mark_character_that_was_a_chunk_before_still_reads_as_a_chunk():
    word = VOCABS[WordVocab, False]
    for text in ("a \x00 b\n", "a\nb \x00\n", "\x00\n\x01 \x00", "x \x00\x01\n \x01"):
        assert word.encode(text) == reference_word_ids(word, text)
        assert count_symbols(text, "word", False) == reference_word_counts(text, False)


def test_a_refused_text_leaves_the_memo_as_it_was():
    bpe = BPES[False]
    text = "the cat's hat \n don't"
    before = bpe.encode(text)
    with pytest.raises(TypeError):  # tokenizers takes no lone surrogate, as before
        bpe.encode("the new \udc80 words here")
    assert bpe.encode(text + " new words here") == [
        i + 1 for i in bpe._hf.encode(text + " new words here").ids
    ]
    assert bpe.encode(text) == before


def test_the_whitespace_table_is_str_splits_and_the_regex_agrees():
    everything = "".join(map(chr, range(0x110000)))
    assert [c for c in everything if c.isspace()] == chunktable.WHITESPACE
    assert re.findall(r"\s", everything) == chunktable.WHITESPACE
    assert "a\x00b".split() == ["a\x00b"] and all(not m.isspace() for m in chunktable.MARKS)


def test_empty_and_whitespace_only_texts():
    word, char, bpe = VOCABS[WordVocab, False], VOCABS[CharVocab, False], BPES[False]
    for text in ("", " ", "\n", "\n\n", " \t\n ", "\u3000"):
        assert word.encode(text) == reference_word_ids(word, text)
        assert char.encode(text) == [char.index.get(c, 0) for c in text]
        assert bpe.encode(text) == ([i + 1 for i in bpe._hf.encode(text).ids] if text else [])


@pytest.mark.parametrize("name", ["wikitext-word", "wikitext-bpe", "shakespeare-char"])
def test_bundled_models_encode_a_real_text_as_before(name):
    tok = load_model(REPO / "checkpoints" / f"{name}.safetensors").tokenizer
    text = (REPO / "README.md").read_text(encoding="utf-8")
    if tok.level == "word":
        expected = reference_word_ids(tok, text)
    elif tok.level == "bpe":
        expected = [i + 1 for i in tok._hf.encode(tok.cased(text)).ids]
    else:
        expected = [tok.index.get(c, 0) for c in (text.lower() if tok.lowercase else text)]
    assert tok.encode(text) == expected
    assert encode_corpus(text, tok, 4096).tolist() == expected


def test_score_counts_the_reference_tokens(tmp_path: Path):
    model = REPO / "checkpoints" / "wikitext-word.safetensors"
    text = "The film's plot, well-known since 1,000 B.C., doesn't (quite) hold.\n\nIt  ends.\n"
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    r = invoke("score", str(model), "-f", str(tmp_path / "t.txt"), "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    ids = reference_word_ids(load_model(model).tokenizer, text)
    assert (data["tokens"], data["unknown_tokens"]) == (len(ids), ids.count(0))


@given(TEXT, st.booleans())
def test_word_pieces_are_the_tokens_encode_numbers(text, lowercase):
    """pieces() (what text/spans.py finds in the text) and the fast encoder agree token for token."""
    vocab = VOCABS[WordVocab, lowercase]
    assert [vocab.index.get(p, 0) for p in vocab.pieces(text)] == vocab.encode(text)
