"""`eval --ksr` computes its suggestions in batches (ksr_batch): every suggestion it computes
equals Predictor.words at that position (same words, same order, probabilities to float
rounding), at char, word and BPE level, across lane boundaries; the figures equal the one-text
simulator's."""

from __future__ import annotations

import json

import pytest
import torch

from rnnrepl.infer.ksr import simulate
from rnnrepl.infer.ksr_batch import SuggestionTable, cached, plan, simulate_batched
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.words import Beam
from rnnrepl.text.bpe import BpeVocab
from rnnrepl.text.tokenizers import WordVocab
from tests.helpers import invoke
from tests.repl_support import bigram, char_vocab, random_lstm, save

torch.set_num_threads(1)

TEXT = (
    "the cat sat on the mat, a hat.\nthe cat's hat sat on a mat; that cat sat.\n"
    "a mat-hat? the hat sat on the cat.\n\n  then 1,000 at ten.\n"
) * 3  # ~420 characters: several lanes of 64 tokens when lanes are 3 wide
CHARS = char_vocab("the cat sat on mat, a hat.\n';?-10")
# "1,000" is "1" "@,@" "000" in the text, but "1" "," while "000" is typed: a query with its own
# complete tokens after those it shares with the text.
WORDS = WordVocab(["<unk>", "\n", "the", "then", "cat", "sat", "on", "mat", ",", ".", "hat", "@,@"])
BPE = BpeVocab.train([TEXT * 3], 300)
MODELS = {
    "char-lstm": random_lstm(CHARS, hidden=16, seed=3),
    "char-gru": random_lstm(CHARS, hidden=16, seed=4, arch="gru"),
    "char-window": random_lstm(CHARS, hidden=16, seed=5, arch="window"),
    "word-lstm": random_lstm(WORDS, hidden=16, seed=6),
    "word-bigram": bigram(WORDS, {"the": "cat", "cat": "sat", "sat": "on", "on": "the"}),
    "bpe-lstm": random_lstm(BPE, hidden=16, seed=7),
}


def assert_same(found: list, expected: list) -> None:
    assert [w for w, _ in found] == [w for w, _ in expected]
    for (_, p), (_, q) in zip(found, expected, strict=True):
        assert p == pytest.approx(q, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize(
    ("name", "width"), [*((name, 3) for name in MODELS), ("char-lstm", 1), ("word-lstm", 1)]
)
def test_every_batched_suggestion_equals_predictor_words_there(name, width):
    predictor = Predictor(MODELS[name])
    table = SuggestionTable(predictor, 3, width=width).build(TEXT)
    assert len(table) > 100  # the random models accept few words: most positions are computed
    check = Predictor(MODELS[name])
    for pos, found in sorted(table.items()):
        assert_same(found, check.words(TEXT[:pos], 3))


@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("name", MODELS)
def test_the_batched_simulation_gives_the_figures_of_the_one_text_simulation(name, cache):
    words = Predictor(MODELS[name]).words
    assert simulate_batched(Predictor(MODELS[name]), TEXT, 2, cache=cache) == simulate(
        lambda text, n: words(text, n, cache=cache), TEXT, 2
    )


@pytest.mark.parametrize("name", MODELS)
def test_with_the_cache_every_list_the_typist_sees_is_predictor_words_with_the_cache(name):
    predictor, check = Predictor(MODELS[name]), Predictor(MODELS[name])
    table = SuggestionTable(predictor, 3, skip=False).build(TEXT)
    assert len(table) == len(plan(predictor.tok, TEXT)[1])  # no position skipped
    at = cached(table, TEXT, 3)
    for pos, _ in sorted(table.items()):
        assert_same(at(pos), check.words(TEXT[:pos], 3, cache=True))


def test_a_query_that_reads_other_tokens_than_the_text_steps_them():
    ref, queries = plan(WORDS, TEXT)
    assert [(q.extra, q.typed) for q in queries if q.extra][:1] == [((WORDS.index[","],), "")]


def test_a_narrow_shallow_beam_is_kept_too():
    beam = Beam(width=2, depth=3)
    table = SuggestionTable(Predictor(MODELS["char-lstm"]), 4, beam, width=3).build(TEXT)
    check = Predictor(MODELS["char-lstm"])
    for pos, found in sorted(table.items())[::7]:
        assert_same(found, check.words(TEXT[:pos], 4, beam))


@pytest.mark.parametrize("cache", [True, False])
def test_eval_ksr_types_with_the_batched_suggestions(tmp_path, cache):
    model = save(MODELS["char-lstm"], tmp_path / "m.safetensors")
    (tmp_path / "t.txt").write_text(TEXT)
    flag = "--cache" if cache else "--no-cache"
    r = invoke("eval", str(model), str(tmp_path / "t.txt"), "--ksr", "--json", flag)
    assert r.exit_code == 0, r.output
    words = Predictor(MODELS["char-lstm"]).words
    expected = simulate(lambda text, n: words(text, n, cache=cache), TEXT, 3)
    assert json.loads(r.stdout)["total"] == expected.to_dict()
