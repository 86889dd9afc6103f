"""Surprisal colours: token spans in the text (a property over random texts at every level),
rank buckets, the REPL's incremental ranks against scoring the whole text, and
`rnnrepl score --color` as a user runs it: the colour of each token read back from the SGR
codes, and never a colour code with NO_COLOR or on a pipe."""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrepl.infer.buckets import scheme_for
from rnnrepl.infer.predictor import Predictor
from rnnrepl.text.bpe import BpeVocab
from rnnrepl.text.spans import token_spans
from rnnrepl.text.tokenizers import CharVocab, WordVocab
from tests.helpers import invoke, run_cli
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, random_lstm, save

CORPUS = "The well-known cat sat on the mat, didn't it? 1,000 cats: é 日本.\n" * 4
BPE = BpeVocab.train([CORPUS], 300)
BPE_LOWER = BpeVocab.train([CORPUS], 300, lowercase=True)
WORDS = ["the", "cat", "sat", "well", "known", "@-@", "@,@", "1", "000", "do", "n't", ",", "."]
TOKENIZERS = [
    CharVocab(["<unk>", *"abc Tt.\n"]),
    CharVocab(["<unk>", *"abc t.\n"], lowercase=True),
    WordVocab(["<unk>", "\n", *WORDS]),
    WordVocab(["<unk>", "\n", *WORDS], lowercase=True),
    WordVocab(["<unk>", "\n", "the", "cat"]),
    BPE,
    BPE_LOWER,
]
PIECES = ["the", "The", "cat", "well-known", "1,000", "don't", "<unk>", "@-@", ",", ".", "'",
          "(", ")", "a", "é", "日本", "İ", "ß", " ", "  ", "\n", "\t", "-", "3.5", "x@y"]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, which=st.integers(0, len(TOKENIZERS) - 1))
def test_spans_are_in_order_inside_the_text_and_cover_every_visible_character(text, which):
    tok = TOKENIZERS[which]
    spans = token_spans(tok, text)
    assert len(spans) == len(tok.encode(text))
    pos = 0
    for start, end in spans:
        assert pos <= start <= end <= len(text)  # in order, inside, not overlapping
        pos = end
    covered = {i for start, end in spans for i in range(start, end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_word_spans_find_the_tokens_as_written():
    tok = WordVocab(["<unk>", "\n", *WORDS], lowercase=True)
    text = "The well-known cat,\n1,000 don't zebra"
    got = [(tok.token_text(i), text[a:b]) for i, (a, b) in zip(tok.encode(text), token_spans(tok, text), strict=True)]  # fmt: skip
    assert got == [
        ("the", "The"), ("well", "well"), ("@-@", "-"), ("known", "known"), ("cat", "cat"),
        (",", ","), ("\n", "\n"), ("1", "1"), ("@,@", ","), ("000", "000"), ("do", "do"),
        ("n't", "n't"), ("<unk>", "zebra"),
    ]  # fmt: skip


def test_bpe_spans_give_a_split_character_to_the_token_with_its_first_byte():
    text = "cat 日本"
    spans = token_spans(BPE, text)
    pieces = [text[a:b] for a, b in spans]
    assert "".join(pieces) == text  # byte-level BPE: the spans tile the text
    assert len(pieces) == len(BPE.encode(text))


def test_buckets_by_rank_and_by_probability():
    char, word, prob = (
        scheme_for("rank", "char"),
        scheme_for("rank", "bpe"),
        scheme_for("prob", "word"),
    )
    assert [char.bucket(r, 0.0) for r in (1, 2, 3, 4, 10, 11)] == [0, 1, 1, 2, 2, 3]
    assert [word.bucket(r, 0.0) for r in (1, 2, 10, 11, 100, 101)] == [0, 1, 1, 2, 2, 3]
    assert [prob.bucket(99, p) for p in (0.5, 0.49, 0.1, 0.05, 0.01, 0.009)] == [0, 1, 1, 2, 2, 3]
    assert char.labels == ("top 1", "top 3", "top 10", "beyond 10")
    assert prob.labels == ("p ≥ 0.5", "p ≥ 0.1", "p ≥ 0.01", "p < 0.01")


@pytest.mark.parametrize("level", ["char", "word"])
def test_incremental_ranks_equal_scoring_the_whole_text_and_typing_costs_no_model_call(level):
    """Random typing, backspaces, pastes and edits in the middle: the ranks kept along the
    way equal a fresh score of the text; a typed character is ranked without a model call."""
    if level == "char":
        alphabet = list("abcdefgh .\n")
        tok = char_vocab("abcdefgh .\n")
    else:
        alphabet = ["the ", "cat ", "sat", " ", "on ", "mat", ",", ".", "x", "\n", "dog "]
        tok = WordVocab(["<unk>", "\n", *"the cat sat on mat dog , .".split()])
    loaded = random_lstm(tok, seed=3)
    typed, fresh = Predictor(loaded), Predictor(loaded)
    rng, text = random.Random(5), ""
    for _ in range(120):
        text = _edit(text, alphabet, rng)
        typed.predict(text)  # the panel's prediction, as the REPL's worker makes it first
        marks = typed.colors(text, "rank")
        ids, partial = tok.split_partial(text)
        body = text[: len(text) - len(partial)]
        rows, _ = fresh.score(body, 1) if ids else ([], None)
        assert [m.rank for m in marks] == [r.rank for r in rows]
        assert [(m.start, m.end) for m in marks] == token_spans(tok, body)
    fed = []
    typed.runner.forward = lambda ids, state, run=None, f=typed.runner.forward: (fed.append(len(ids)), f(ids, state, run))[1]  # fmt: skip
    for ch in "abc" if level == "char" else ["cat ", "sat "]:
        text += ch
        typed.predict(text)
        typed.colors(text, "rank")
    assert fed == []  # the ranks came from the distributions the panel had computed


def test_a_long_paste_colours_its_last_tokens_read_as_the_panel_reads_them():
    """More than LIMIT tokens at once: the last LIMIT are coloured, read as if the text began
    there (the prefix cache's FEED_LIMIT), and no more than those are fed."""
    from rnnrepl.infer.surprisal import LIMIT

    tok = char_vocab("abcdefgh .\n")
    loaded = random_lstm(tok, seed=3)
    rng = random.Random(1)
    text = "".join(rng.choice("abcdefgh .\n") for _ in range(LIMIT + 900))
    typed, fresh = Predictor(loaded), Predictor(loaded)
    fed = []
    forward = typed.runner.forward
    typed.runner.forward = lambda ids, state, run=None: (fed.append(len(ids)), forward(ids, state, run))[1]  # fmt: skip
    typed.predict(text)
    fed.clear()
    marks = typed.colors(text, "rank")
    assert sum(fed) < LIMIT
    assert [(m.start, m.end) for m in marks] == [(i, i + 1) for i in range(900, len(text))]
    rows, _ = fresh.score(text[900:], 1)
    assert [m.rank for m in marks] == [r.rank for r in rows]


def _edit(text: str, alphabet: list[str], rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return text + rng.choice(alphabet)
    if r < 0.75:
        return text[:-1]
    if r < 0.85:
        return text + "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 120)))
    i = rng.randint(0, len(text))
    return text[:i] + rng.choice(alphabet) + text[i:]


# ---- rnnrepl score --color ------------------------------------------------------------------
SGR = re.compile(r"\x1b\[([0-9;]*)m")
FG = {"32": 0, "33": 1, "31": 2, "35": 3}  # green, yellow, red, magenta -> bucket


def colours_of(out: str) -> tuple[str, list[int | None]]:
    """(the text without escape codes, the bucket each character is drawn in)."""
    text, colours, current = [], [], None
    pos = 0
    for m in SGR.finditer(out):
        chunk = out[pos : m.start()]
        text.append(chunk)
        colours += [current] * len(chunk)
        for code in m.group(1).split(";"):
            current = None if code in ("", "0", "39") else FG.get(code, current)
        pos = m.end()
    text.append(out[pos:])
    colours += [current] * (len(out) - pos)
    return "".join(text), colours


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("surprisal")
    word = WordVocab(["<unk>", "\n", *WORDS])
    return {
        "char": str(save(random_lstm(char_vocab("the cat sat on mat.\n"), seed=1), d / "c")),
        "word": str(save(random_lstm(word, seed=2), d / "w")),
        "chain": str(save(bigram(char_vocab(CHAIN_ALPHABET), CHAIN), d / "chain")),
    }


@pytest.mark.parametrize(
    ("level", "text", "kind"),
    [
        ("char", "the cat sat on the mat.", "rank"),
        ("word", "the well-known cat sat, 1,000", "rank"),
        ("chain", "dog, sun. the cat", "prob"),
    ],  # fmt: skip
)
def test_score_color_draws_each_token_in_the_colour_of_its_bucket(models, level, text, kind):
    r = invoke("score", models[level], text, "--color", kind, env={"NO_COLOR": "", "FORCE_COLOR": "1"})  # fmt: skip
    assert (r.exit_code, r.stderr) == (0, "")
    plain, colours = colours_of(r.stdout)
    assert plain.splitlines()[0] == text
    steps = json.loads(invoke("score", models[level], text, "--json").stdout)["steps"]
    from rnnrepl.infer.loading import load_for_inference

    tok = load_for_inference(models[level]).tokenizer
    scheme = scheme_for(kind, tok.level)
    seen, spans = set(), token_spans(tok, text)
    for (a, b), step in zip(spans, steps, strict=True):
        want = scheme.bucket(step["rank"], step["prob"])
        assert colours[a:b] == [want] * (b - a), (text[a:b], step)
        seen.add(want)
    inside = {i for a, b in spans for i in range(a, b)}
    assert all(colours[i] is None for i in range(len(text)) if i not in inside)  # gaps plain
    assert len(seen) > 1  # a random model: the test sees several colours
    legend = plain.splitlines()[1]
    assert legend.startswith(f"colour by {kind}: green ")
    counts = [int(n) for n in re.findall(r"\((\d+)\)", legend)]
    assert sum(counts) == len(steps)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, "NO_COLOR is set"),
        ({"NO_COLOR": ""}, "standard output is not a terminal"),
    ],  # fmt: skip
)
def test_score_color_never_writes_a_colour_code_with_no_color_or_on_a_pipe(models, env, why):
    r = run_cli("score", models["char"], "the cat sat.", "--color", env=env)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr
    assert r.stdout.splitlines()[0] == "the cat sat."
    assert r.stdout.splitlines()[1].startswith("colour by rank: green top 1 (")
    assert r.stderr == f"rnnrepl: note: no colours ({why}) — FORCE_COLOR=1 forces them; --json gives each token's rank\n"  # fmt: skip


def test_score_color_and_json_together_is_a_usage_error(models):
    r = invoke("score", models["char"], "the cat", "--color", "--json")
    assert r.exit_code == 2
    assert r.stderr.startswith("rnnrepl: error: --color is for the terminal")
