"""The byte-level BPE level: any text encodes and round-trips, the tokenizer travels inside the
model file, the REPL's incremental encoding equals a full one, every command works at it."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrepl.errors import CheckpointError
from rnnrepl.infer.predictor import Predictor
from rnnrepl.infer.words import in_word
from rnnrepl.store.modelfile import load_model
from rnnrepl.text.bpe import BpeVocab, bpe_from_dict, default_vocab_size, readable
from rnnrepl.text.tokens import encode_corpus
from tests.helpers import invoke
from tests.repl_support import random_lstm, save

torch.set_num_threads(1)

CORPUS = (
    "the cat sat on the mat. the dog sat on the log.\n\n"
    "Ünïcödé wörds, 日本語 and émoji 🙂 too;  two  spaces\tand tabs.\n"
) * 30
TOK = BpeVocab.train([CORPUS], 400)
MODEL = random_lstm(TOK)
# Any text Python can hand to a Rust string: every code point but the lone surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
TYPED = st.text(alphabet="the cat sat.\n  \t\u3000éö日🙂", max_size=12)


def test_vocabulary_size_rule():
    assert default_vocab_size(0) == 512
    assert default_vocab_size(1_115_394) == 5576  # tiny Shakespeare
    assert default_vocab_size(10_000_000) == 8000


def test_ids_are_shifted_past_unk_and_learnt_merges_are_used():
    assert TOK.tokens[0] == "<unk>" and TOK.size <= 400
    ids = TOK.encode("the cat sat on the mat.")
    assert 0 not in ids and len(ids) < 10  # merged: far fewer tokens than bytes
    assert TOK.encode("<unk>") != [0]  # a typed "<unk>" is text like any other


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_any_text_round_trips_without_unknown(text):
    ids = TOK.encode(text)
    assert 0 not in ids
    assert TOK.decode(ids) == text


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=40))
def test_any_byte_string_round_trips_as_tokens(raw):
    text = raw.decode("utf-8", "replace")
    ids = TOK.encode(text)
    assert b"".join(TOK.token_bytes(i) for i in ids) == text.encode()


@settings(max_examples=200, deadline=None)
@given(text=TEXT)
def test_split_partial_is_the_encoding_cut_at_the_last_pre_token(text):
    ids, partial = TOK.split_partial(text)
    assert text.endswith(partial)
    assert ids + TOK.encode(partial) == TOK.encode(text)
    assert bool(partial) == bool(text)


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet="ab .\n\t🙂é", max_size=300), block=st.integers(1, 40))
def test_corpus_encoded_in_blocks_equals_encoding_it_whole(text, block):
    assert encode_corpus(text, TOK, block_chars=block).tolist() == TOK.encode(text)


def test_readable_token_text():
    assert readable(b" cat") == " cat"
    assert readable("日".encode()[:2]) == "<0xE6><0x97>"
    assert readable(b"a\xff") == "a<0xFF>"


@settings(max_examples=50, deadline=None)
@given(text=TEXT)
def test_tokenizer_survives_the_model_file_with_identical_ids(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("m") / "bpe.safetensors"
    if not path.exists():
        save(MODEL, path)
    loaded = load_model(path).tokenizer
    assert loaded.level == "bpe" and loaded.tokens == TOK.tokens
    assert loaded.encode(text) == TOK.encode(text)


def test_a_tokenizer_that_is_not_plain_byte_level_bpe_is_refused():
    data = json.loads(json.dumps(TOK.to_dict()))
    data["bpe"]["normalizer"] = {"type": "Lowercase"}
    with pytest.raises(CheckpointError):
        bpe_from_dict(data)
    data = json.loads(json.dumps(TOK.to_dict()))
    data["bpe"]["model"]["type"] = "WordPiece"
    with pytest.raises(CheckpointError):
        bpe_from_dict(data)


EDITS = st.lists(
    st.one_of(
        st.tuples(st.just("type"), TYPED),
        st.tuples(st.just("back"), st.integers(1, 6)),
        st.tuples(st.just("paste"), st.integers(1, 4)),
    ),
    max_size=25,
)


def _apply(text: str, edit) -> str:
    if edit[0] == "type":
        return text + edit[1]
    if edit[0] == "back":
        return text[: max(0, len(text) - edit[1])]
    return text + "the cat sat on the mat. " * (edit[1] * 4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=EDITS)
def test_incremental_encoding_and_distribution_equal_a_fresh_computation(edits):
    p = Predictor(MODEL)
    text = ""
    for edit in edits:
        text = _apply(text, edit)
        probs, partial = p.distribution(text)
        assert p.split(text) == TOK.split_partial(text)
        assert p.cache.states.ids == p.split(text)[0]
        fresh, fresh_partial = Predictor(MODEL).distribution(text)
        assert partial == fresh_partial
        torch.testing.assert_close(probs, fresh, atol=1e-5, rtol=1e-4)


@settings(max_examples=60, deadline=None)
@given(text=TYPED)
def test_completions_never_contradict_the_typed_characters(text):
    pred = Predictor(MODEL).predict(text)
    assert text.endswith(pred.partial)
    if pred.completions is not None:  # tokens the piece begins, or a spelling of it begins with
        offered = [TOK.token_text(i) for i in pred.completions.nonzero().flatten().tolist()]
        begun = all(t.startswith(pred.partial) for t in offered)
        spelt = all(pred.partial.startswith(t) and t != pred.partial for t in offered)
        assert offered and (begun or spelt), offered
        assert float(pred.completions.sum()) == pytest.approx(1.0, abs=1e-5)
    if pred.partial and pred.next is not None:  # after the piece as a whole word: no token
        after = [TOK.token_text(i) for i in pred.next.nonzero().flatten().tolist()]  # goes on
        assert not any(in_word(t[:1]) for t in after), after


def test_a_piece_no_token_begins_with_offers_the_tokens_its_spellings_begin_with():
    p = Predictor(MODEL)
    pred = p.predict("the cat Zq")
    assert pred.partial == " Zq" and not any(t.startswith(" Zq") for t in TOK.tokens)
    ids = [i for i, t in enumerate(TOK.tokens) if i and " Zq".startswith(t) and t != " Zq"]
    assert ids  # " " at least: the piece is never read from a boundary inside it
    probs = torch.softmax(p.logits_for(TOK.encode("the cat")).double(), -1)[ids]
    expected = (probs / probs.sum()).tolist()
    assert pred.completions[ids].tolist() == pytest.approx(expected, abs=1e-5)
    assert float(pred.completions.sum()) == pytest.approx(1.0, abs=1e-5)


def test_a_lowercased_bpe_model_reads_typed_capitals_as_lowercase():
    tok = BpeVocab.train([CORPUS], 300, lowercase=True)
    assert tok.encode("THE Cat") == tok.encode("the cat")
    ids, partial = tok.split_partial("THE Ca")
    assert ids == tok.encode("the") and partial == " Ca"
    assert bpe_from_dict(json.loads(json.dumps(tok.to_dict()))).lowercase


def test_completions_agree_with_the_typed_piece_and_ghost_is_text():
    p = Predictor(MODEL)
    pred = p.predict("the cat s")
    assert pred.partial == " s"
    assert all(t.startswith(" s") for t, _ in p.top_of(pred.completions, 50))
    ghost = "".join(p.complete("the cat s"))
    assert "\n" not in ghost and "<0x" not in ghost


def test_stream_decodes_characters_split_across_tokens():
    torch.manual_seed(0)
    from rnnrepl.config import SampleConfig

    text = Predictor(MODEL).generate("日本", SampleConfig(seed=1, max_tokens=40))
    assert "<0x" not in text
    assert TOK.decode(TOK.encode(text)) == text


@pytest.mark.slow
def test_train_predict_generate_eval_score_resume_at_bpe_level(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS * 4)
    model = str(tmp_path / "m")
    common = ["--level", "bpe", "--vocab-size", "300", "--hidden", "16", "--embed", "16"]
    common += ["--seq-len", "16", "--batch-size", "4", "--seed", "1", "--device", "cpu"]
    r = invoke("train", str(corpus), "-o", model, "--steps", "6", *common)
    assert r.exit_code == 0, r.output
    assert "bpe level, vocabulary 300" in r.stderr
    assert "gru 2x16" in r.stderr  # the BPE default architecture (README, "Choosing the defaults")
    r = invoke("train", str(corpus), "-o", model, "--steps", "10", *common, "--resume")
    assert r.exit_code == 0, r.output
    r = invoke("predict", model, "the cat s", "-k", "3", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["partial"] == " s"
    r = invoke("generate", model, "-p", "the", "-n", "20", "--seed", "1")
    assert r.exit_code == 0 and r.stdout.startswith("the"), r.output
    r = invoke("eval", model, str(corpus), "--json")
    assert r.exit_code == 0, r.output
    total = json.loads(r.stdout)["total"]
    assert total["tokens"] == len(load_model(model).tokenizer.encode(CORPUS * 4))
    r = invoke("score", model, "-f", str(corpus))
    assert r.exit_code == 0 and "␣cat" in r.stdout, r.output
    r = invoke("chat", model, "-n", "5", "--seed", "1", "--int8", stdin="the dog\nthe c\n")
    assert r.exit_code == 0, r.output


def test_repl_panel_and_ghost_at_bpe_level():
    from rnnrepl.config import SampleConfig
    from rnnrepl.repl.state import Settings
    from tests.repl_support import running_repl, wait_for

    greedy = Settings(SampleConfig(temperature=0.0, max_tokens=4))
    with running_repl(MODEL, greedy) as repl:
        repl.type("the ca")
        view = repl.view_for("the ca")
        assert view.partial == " ca" and view.tokens == len(TOK.encode("the"))
        assert all(t.startswith(" ca") for t, _ in view.top)
        assert "completions of '␣ca'" in repl.panel()
        ghost = "".join(view.ghost)
        repl.type("\t")  # accept the ghost text
        wait_for(lambda: repl.buffer.text == "the ca" + ghost, what="the accepted ghost")
        repl.type("\x7f" * (len(ghost) + 1))  # backspace past it
        view = repl.view_for("the c")
        assert view.partial == " c"
        assert repl.session.view.tokens == len(TOK.split_partial("the c")[0])
        repl.type("\r")
        wait_for(lambda: repl.session.doc.turns, what="a streamed continuation")
        repl.idle()
        assert repl.session.doc.text.startswith("the c")
        assert "<0x" not in repl.session.doc.text


def test_vocab_size_at_another_level_is_a_usage_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS)
    r = invoke("train", str(corpus), "-o", str(tmp_path / "m"), "--vocab-size", "300")
    assert r.exit_code == 2
    assert r.stderr.strip() == (
        "rnnrepl: error: --vocab-size needs --level bpe — or cap words with --max-vocab"
    )
    assert not (tmp_path / "m.safetensors").exists()


def test_word_vocabulary_options_at_the_bpe_level_are_a_usage_error(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS)
    for flag in (["--max-vocab", "500"], ["--min-freq", "2"]):
        out = tmp_path / "m"
        r = invoke("train", str(corpus), "-o", str(out), "--level", "bpe", *flag)
        assert r.exit_code == 2
        assert r.stderr.strip() == (
            "rnnrepl: error: --min-freq and --max-vocab need --level word"
            " — size a BPE vocabulary with --vocab-size"
        )
        assert not (tmp_path / "m.safetensors").exists()
