"""Keystrokes saved (#15 part 3): `eval --ksr` types a text word by word with N whole-word
suggestions and counts the keystrokes. Exact figures on hand-built models and texts."""

from __future__ import annotations

import json

import pytest
import torch

from rnnrepl.infer.ksr import KsrResult, limit_words, simulate
from rnnrepl.infer.predictor import Predictor
from tests.helpers import invoke, run_cli
from tests.repl_support import CHAIN, CHAIN_ALPHABET, bigram, char_vocab, save, word_model
from tests.test_eval_progress import _run_with_terminal_stderr as run_with_terminal_stderr

torch.set_num_threads(1)

# After "\n" it says "the", then "cat", "sat", "the" ... (p > 0.99): always the right next word.
CYCLE = word_model(
    ["the", "cat", "sat"], {}, {"\n": "the", "the": "cat", "cat": "sat", "sat": "the"}
)
# Whatever the text, the suggestions are "the", "cat", "sat" in that order.
RANKED = word_model(["the", "cat", "sat"], {"the": 3.0, "cat": 2.0, "sat": 1.0})
CHARS = bigram(char_vocab(CHAIN_ALPHABET), CHAIN)  # "dog, sun.\n" over and over


def after_letters(text: str, letters: int):
    """Suggests exactly the word being typed once `letters` of it are typed, else nothing."""

    def suggest(before: str, n: int) -> list[tuple[str, float]]:
        typed = before.rsplit(" ", 1)[-1].rsplit("\n", 1)[-1]
        if len(typed) < letters:
            return [("zzz", 0.5)] * n
        rest = text[len(before) :].split(" ", 1)[0].split("\n", 1)[0]
        return [(typed + rest, 1.0)]

    return suggest


def test_a_model_always_right_saves_all_but_one_key_a_word_and_the_line_breaks():
    # 5 words, 1 key each, their spaces taken by the acceptances; the final "\n" typed.
    r = simulate(Predictor(CYCLE).words, "the cat sat the cat\n")
    assert r == KsrResult(characters=20, keystrokes=6, words=5, accepted=5, accepted_first=5)
    assert r.ksr == pytest.approx(1 - 6 / 20)
    assert (r.first_share, r.keystrokes_per_word) == (1.0, 1.2)


def test_punctuation_and_line_breaks_are_typed_so_a_space_after_a_comma_costs_a_key():
    # per line: dog (1), "," (1), " " (1: no acceptance right before it), sun (1), "." (1), "\n" (1)
    r = simulate(Predictor(CHARS).words, "dog, sun.\ndog, sun.\n")
    assert (r.characters, r.keystrokes, r.words, r.accepted_first) == (20, 12, 4, 4)
    assert r.ksr == pytest.approx(0.4)


def test_a_model_that_never_suggests_the_word_saves_nothing():
    r = simulate(Predictor(CYCLE).words, "dog emu, yak\n")  # none in its vocabulary
    assert r == KsrResult(characters=13, keystrokes=13, words=3, accepted=0, accepted_first=0)
    assert r.ksr == 0.0


def test_a_word_accepted_after_two_letters_costs_three_keys():
    text = "hello world\na b"
    r = simulate(after_letters(text, 2), text)
    # hello: h e + accept (space taken); world: w o + accept; "\n"; "a", " ", "b" typed (1 each)
    assert r == KsrResult(characters=15, keystrokes=10, words=4, accepted=2, accepted_first=0)


def test_more_suggestions_save_more_when_the_word_is_ranked_second():
    suggest = Predictor(RANKED).words
    one, two = simulate(suggest, "cat cat", 1), simulate(suggest, "cat cat", 2)
    assert (one.keystrokes, one.accepted_first) == (4, 0)  # c + accept, twice
    assert (two.keystrokes, two.accepted_first) == (2, 2)


def test_a_lowercased_word_model_matches_a_capital_only_after_its_first_letter():
    lower = Predictor(word_model(["the", "cat"], {"the": 3.0}, lowercase=True))
    r = simulate(lower.words, "The the")  # T + accept "The" (and its space); "the" at once
    assert (r.keystrokes, r.accepted, r.accepted_first) == (3, 2, 1)


def test_progress_is_reported_per_word():
    seen = []
    simulate(Predictor(CYCLE).words, "the cat sat", on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_limit_words_ends_the_text_after_the_nth_word():
    assert limit_words("the cat, sat on\nit", 2) == "the cat"
    assert limit_words("the cat", 5) == "the cat"
    assert limit_words("the cat", None) == "the cat"


@pytest.fixture
def files(tmp_path):
    model = save(CYCLE, tmp_path / "cycle.safetensors")
    (tmp_path / "a.txt").write_text("the cat sat the cat\n")
    (tmp_path / "b.txt").write_text("dog emu, yak\n")
    return str(model), str(tmp_path / "a.txt"), str(tmp_path / "b.txt")


def test_eval_ksr_prints_the_figures_of_each_file_and_the_total(files):
    model, a, b = files
    result = invoke("eval", model, a, b, "--ksr")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{a}: KSR 70.00% with 3 suggestions, 100.00% of words accepted before their first "
        "letter, 1.200 keystrokes per word; 20 characters, 6 keystrokes, 5 words",
        f"{b}: KSR 0.00% with 3 suggestions, 0.00% of words accepted before their first "
        "letter, 4.333 keystrokes per word; 13 characters, 13 keystrokes, 3 words",
        "total: KSR 42.42% with 3 suggestions, 62.50% of words accepted before their first "
        "letter, 2.375 keystrokes per word; 33 characters, 19 keystrokes, 8 words",
    ]


def test_eval_ksr_json_and_limit_words(files):
    model, a, _ = files
    result = invoke("eval", model, a, "--ksr", "--limit-words", "2", "--suggestions", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    figures = {
        "ksr": 1 - 2 / 7,  # "the cat": the, accept with its space; cat
        "accepted_before_first_letter": 1.0,
        "keystrokes_per_word": 1.0,
        "characters": 7,
        "keystrokes": 2,
        "words": 2,
        "accepted": 2,
        "accepted_first": 2,
    }
    expected = {"suggestions": 1, "cache": True, "files": [{"file": a, **figures}]}
    assert data == {**expected, "total": figures}


def test_ksr_options_without_ksr_and_a_text_without_words_are_one_line_errors(files, tmp_path):
    model, a, _ = files
    result = invoke("eval", model, a, "--limit-words", "3")
    assert result.exit_code == 2
    assert result.stderr.startswith("rnnrepl: error: --suggestions and --limit-words apply to")
    (tmp_path / "empty.txt").write_text("... ,\n")
    result = invoke("eval", model, str(tmp_path / "empty.txt"), "--ksr")
    assert result.exit_code == 3
    assert "nothing to type: the file has no words" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_eval_ksr_shows_a_words_bar_on_a_terminal_and_nothing_on_a_pipe(tmp_path):
    path = tmp_path / "held.txt"
    path.write_text("the cat sat on the mat. the dog sat on the log.\n")
    code, out, terminal = run_with_terminal_stderr(
        "eval", "shakespeare-char", str(path), "--ksr", "--limit-words", "4"
    )
    assert code == 0, terminal
    assert "typing held.txt" in terminal and "4/4 words" in terminal, terminal
    assert out.startswith(f"{path}: KSR ") and out.endswith(", 4 words\n")
    piped = run_cli("eval", "shakespeare-char", str(path), "--ksr", "--limit-words", "4")
    assert (piped.returncode, piped.stderr, piped.stdout) == (0, "", out)
