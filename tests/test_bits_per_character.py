"""Bits per character of the text from `eval` and `score` at every level (#15): the bits of all
the tokens over the characters of the text as read, so char and word models compare on one scale,
and the caveat when some tokens were scored as <unk>.

The models are unigrams written by hand (tests.repl_support.bigram with no table, only a bias):
after any token, p(first) = 5/8 and every other token 1/8 (vocabulary of 4, one logit ln 5), so
each figure below is computed by hand: log2(8/5) bits for the favoured token, 3 bits for any other.
"""

from __future__ import annotations

import json
import math

import pytest

from tests.helpers import invoke
from tests.repl_support import bigram, char_vocab, save, word_model

FAVOURED = math.log2(8 / 5)  # bits of the token whose logit is ln 5
OTHER = 3.0  # bits of each of the other three: p = 1/8


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bpc")
    char = bigram(char_vocab("ab\n"), {}, {"a": math.log(5)})  # <unk> \n a b
    word = word_model(["the", "cat"], {"the": math.log(5)})  # <unk> \n the cat
    return {"char": str(save(char, d / "char")), "word": str(save(word, d / "word"))}


def _json(*args: str) -> dict:
    r = invoke(*args, "--json")
    assert (r.exit_code, r.stderr) == (0, ""), r.stderr
    return json.loads(r.stdout)


def test_word_eval_divides_the_bits_of_the_tokens_by_the_characters(models, tmp_path):
    known, unknown = tmp_path / "known.txt", tmp_path / "unknown.txt"
    known.write_text("the cat\n")  # the, cat, \n: 3 tokens, 8 characters
    unknown.write_bytes(b"the the dog\r\n")  # read as "the the dog\n": 4 tokens, 12 characters
    r = invoke("eval", models["word"], str(known), str(unknown), "--no-cache")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        f"{known}: 3 tokens, 1.5430 nats (ppl 4.68), perplexity 4.678, 0 unknown; "
        "8 characters, 0.835 bits per character of text",
        f"{unknown}: 4 tokens, 1.2747 nats (ppl 3.58), perplexity 3.578, 1 unknown; "
        "12 characters, 0.613 bits per character of text "
        "(optimistic: 1 unknown token scored as <unk>)",
        "total: 7 tokens, 1.3897 nats (ppl 4.01); "
        "20 characters, 0.702 bits per character of text "
        "(optimistic: 1 unknown token scored as <unk>)",
    ]
    data = _json("eval", models["word"], str(known), str(unknown))
    first, second = data["files"]
    assert (first["characters"], first["unknown_tokens"]) == (8, 0)
    assert first["bits_per_character_of_text"] == pytest.approx((FAVOURED + 2 * OTHER) / 8)
    assert (second["characters"], second["unknown_tokens"]) == (12, 1)
    assert second["bits_per_character_of_text"] == pytest.approx((2 * FAVOURED + 2 * OTHER) / 12)
    total = data["total"]
    assert (total["tokens"], total["characters"], total["unknown_tokens"]) == (7, 20, 1)
    assert total["bits_per_character_of_text"] == pytest.approx((3 * FAVOURED + 4 * OTHER) / 20)
    assert "bits_per_char" not in total  # that one stays the char level's bits per token
    assert total["bits_per_token"] == pytest.approx((3 * FAVOURED + 4 * OTHER) / 7)


def test_word_score_reports_it_and_the_caveat_only_with_unknown_tokens(models):
    r = invoke("score", models["word"], "the cat\n")
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines()[-1] == (
        "3 tokens, mean J = 1.5430 nats (ppl 4.68), perplexity 4.678; "
        "8 characters, 0.835 bits per character of text"
    )
    r = invoke("score", models["word"], "the dog  dog")  # two <unk>; spaces count as characters
    assert r.stdout.splitlines()[-1] == (
        "3 tokens, mean J = 1.5430 nats (ppl 4.68), perplexity 4.678; "
        "12 characters, 0.557 bits per character of text "
        "(optimistic: 2 unknown tokens scored as <unk>)"
    )
    data = _json("score", models["word"], "the dog  dog")
    assert (data["characters"], data["unknown_tokens"]) == (12, 2)
    assert data["bits_per_character_of_text"] == pytest.approx((FAVOURED + 2 * OTHER) / 12)


def test_char_figure_equals_bits_per_token_and_shows_the_caveat_for_unknown_characters(models):
    r = invoke("score", models["char"], "ab\n")
    assert r.stdout.splitlines()[-1] == (
        "3 tokens, mean J = 1.5430 nats (2.226 bpc), perplexity 4.678; "
        "3 characters, 2.226 bits per character of text"
    )
    r = invoke("score", models["char"], "abz")  # z was never seen: <unk>
    assert r.stdout.splitlines()[-1].endswith(
        "3 characters, 2.226 bits per character of text "
        "(optimistic: 1 unknown token scored as <unk>)"
    )
    data = _json("score", models["char"], "aab")
    expected = (2 * FAVOURED + OTHER) / 3
    assert data["bits_per_character_of_text"] == pytest.approx(expected)
    assert data["bits_per_char"] == data["bits_per_token"] == pytest.approx(expected)
    assert (data["characters"], data["unknown_tokens"]) == (3, 0)


def test_char_eval_counts_the_characters_after_newline_normalisation(models, tmp_path):
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"ab\r\nab\r\n")  # read as "ab\nab\n": 6 characters, 6 tokens
    r = invoke("eval", models["char"], str(path))
    assert r.stdout == (
        f"{path}: 6 tokens, 1.5430 nats (2.226 bpc), perplexity 4.678, 0 unknown; "
        "6 characters, 2.226 bits per character of text\n"
    )
    total = _json("eval", models["char"], str(path))["total"]
    assert total["characters"] == 6
    assert total["bits_per_character_of_text"] == pytest.approx((2 * FAVOURED + 4 * OTHER) / 6)
