"""The keystroke-savings baselines in bench/ (issue #15 part 3): frequency completion and nltk's
interpolated Kneser-Ney, typed by rnnrepl's simulator. The frequency baseline and the candidate
search need no nltk; the Kneser-Ney tests skip when nltk (bench/requirements-baselines.txt) is
not installed, as in CI's set-up."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from itertools import product

import pytest
from helpers import REPO

sys.path.append(str(REPO / "bench"))  # last: bench/common.py etc. shadow nothing

from baselines import Prefixed, best, context_words, top_n  # noqa: E402

HAS_NLTK = importlib.util.find_spec("nltk") is not None
needs_nltk = pytest.mark.skipif(
    not HAS_NLTK, reason="nltk is not installed (pip install -r bench/requirements-baselines.txt)"
)

TRAIN = (
    "the cat sat on the mat\nthe dog sat on the log\nThe cat ran to the dog\n"
    "a cat and a dog sat\nthe cattle ran on the mat, the cat sat.\n"
)


def run_bench(tmp_path, train: str, text: str, *args: str) -> list[dict]:
    (tmp_path / "train.txt").write_text(train, encoding="utf-8")
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    argv = [sys.executable, str(REPO / "bench" / "ksr_baselines.py"), "--json"]
    argv += ["--train", str(tmp_path / "train.txt"), "--text", str(tmp_path / "text.txt"), *args]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_frequency_baseline_types_a_text_with_the_known_keystrokes(tmp_path):
    # Training counts: the 4, cat 2, sat 1, The 1. One suggestion: the most frequent word with
    # the typed prefix. "the" 1 key + its space; "cat": c -> cat, 2 keys + space; "sat": s -> sat,
    # 2 keys + space; "The": T -> The, 2 keys, then "\n" 1 key: 1 + 2 + 2 + 2 + 1 = 8 keys for 16 characters.
    rows = run_bench(
        tmp_path,
        "the the the the cat cat sat The\n",
        "the cat sat The\n",
        "--baseline",
        "frequency",
        "--suggestions",
        "1",
    )
    (row,) = rows
    assert (row["characters"], row["keystrokes"], row["words"]) == (16, 8, 4)
    assert (row["accepted"], row["accepted_first"]) == (4, 1)
    assert row["ksr"] == pytest.approx(1 - 8 / 16)


def test_frequency_baseline_keeps_case_and_needs_the_exact_word(tmp_path):
    # "The" is never suggested for "the" nor the reverse; "dog" was never seen: typed in full.
    rows = run_bench(tmp_path, "The The\n", "the dog", "--baseline", "frequency")
    assert (rows[0]["keystrokes"], rows[0]["accepted"]) == (7, 0)


def test_limit_words_types_a_prefix(tmp_path):
    rows = run_bench(
        tmp_path, "a b c\n", "a b c d e\n", "--baseline", "frequency", "--limit-words", "2"
    )
    assert (rows[0]["words"], rows[0]["characters"]) == (2, 3)


def test_context_is_the_last_whole_words_on_the_current_line():
    assert context_words("one two, three fo", 2) == ("two", "three")
    assert context_words("one two ", 2) == ("one", "two")
    assert context_words("one two\nthree", 2) == ()
    assert context_words("one two\nthree ", 2) == ("three",)


def toy_interpolated(seen: dict[tuple, dict[str, float]], vocab: list[str]):
    """A hand-built interpolated model: alpha from `seen` per context, gamma 0.3, unigram last."""
    unigram = {w: (i + 1) / 100 for i, w in enumerate(vocab)}

    def score(word: str, context: tuple) -> float:
        if not context:
            return unigram[word]
        return seen.get(context, {}).get(word, 0.0) + 0.3 * score(word, context[1:])

    return score


def test_top_n_equals_brute_force_on_a_hand_built_model():
    vocab = ["ab", "abc", "b", "ba", "bb", "c", "ca", "cab"]
    seen = {("x",): {"ab": 0.2, "ca": 0.5}, ("y", "x"): {"b": 0.4, "cab": 0.1, "abc": 0.05}}
    score = toy_interpolated(seen, vocab)
    context = ("y", "x")
    levels = []
    for i in range(len(context), -1, -1):
        ctx = context[i:]
        words = vocab if not ctx else list(seen[ctx])
        level_score = lambda w, ctx=ctx: score(w, ctx)  # noqa: E731
        levels.append((Prefixed(best(words, level_score, len(words))), level_score))
    for prefix, n in product(["", "a", "b", "c", "ca", "z"], [1, 2, 3]):
        brute = best([w for w in vocab if w.startswith(prefix)], lambda w: score(w, context), n)
        assert top_n(prefix, n, levels) == brute, (prefix, n)


@needs_nltk
def test_indexed_kneser_ney_scores_equal_stock_nltk():
    from baselines import line_words
    from kneser_ney import IndexedKneserNeyInterpolated
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    sents = line_words(TRAIN)
    stock, ours = KneserNeyInterpolated(3), IndexedKneserNeyInterpolated(3)
    stock.fit(*padded_everygram_pipeline(3, sents))
    ours.fit(*padded_everygram_pipeline(3, sents))
    vocab = sorted(stock.vocab)
    for u, v, w in product(vocab, vocab, vocab):
        assert ours.score(w, (u, v)) == pytest.approx(stock.score(w, (u, v)), rel=1e-12)
    assert sum(ours.score(w, ("the", "cat")) for w in vocab) == pytest.approx(1.0)


@needs_nltk
def test_kneser_ney_suggestions_equal_brute_force_over_the_vocabulary():
    from baselines import KneserNeyCompleter, line_words
    from nltk.lm import KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    completer = KneserNeyCompleter(TRAIN)
    stock = KneserNeyInterpolated(3)
    stock.fit(*padded_everygram_pipeline(3, line_words(TRAIN)))
    words = sorted(completer.words)
    texts = ["", "the ", "the cat ", "dog, the ", "a cat and ", "zebra ", "x\nThe cat "]
    for text, prefix, n in product(texts, ["", "c", "ca", "d", "T", "q"], [1, 3, 5]):
        before = context_words(text, 2)
        context = ("<s>",) * (2 - len(before)) + before
        want = best(
            [w for w in words if w.startswith(prefix)], lambda w, c=context: stock.score(w, c), n
        )
        got = completer(text + prefix, n)
        assert [w for w, _ in got] == [w for w, _ in want], (text, prefix, n)
        assert [p for _, p in got] == pytest.approx([p for _, p in want], rel=1e-12)


@needs_nltk
def test_kneser_ney_baseline_runs_through_the_simulator(tmp_path):
    rows = run_bench(tmp_path, TRAIN * 3, "the cat sat on the mat\n", "--baseline", "kneser-ney")
    (row,) = rows
    assert row["baseline"] == "kneser-ney" and row["words"] == 6 and row["characters"] == 23
    assert row["keystrokes"] < 23 and row["accepted"] == 6


def test_kneser_ney_without_nltk_is_one_line_with_the_install_command(tmp_path):
    hidden = tmp_path / "hide" / "nltk"  # an nltk that fails to import, as when it is absent
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ModuleNotFoundError('No module named nltk')\n")
    (tmp_path / "t.txt").write_text("a b\n", encoding="utf-8")
    argv = [sys.executable, str(REPO / "bench" / "ksr_baselines.py"), "--train"]
    argv += [str(tmp_path / "t.txt"), "--text", str(tmp_path / "t.txt")]
    env = {"PYTHONPATH": f"{tmp_path / 'hide'}:{REPO}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        "ksr_baselines.py: error: nltk is not installed — "
        "pip install -r bench/requirements-baselines.txt\n"
    )
