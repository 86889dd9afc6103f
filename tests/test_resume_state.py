"""A digest-valid resume file with nonsense in it is refused with exit 4, naming the field; a
resume with another batch layout continues with a fresh carried state.

The hostile files are written by resume.save_state itself, so their digests are exactly what
the saver computes: only validation can catch them.
"""

from __future__ import annotations

import math

import pytest
import torch

from rnnrepl.errors import CheckpointError
from rnnrepl.store import resume
from tests.test_exit_codes import invoke

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40
TRAIN = ["--hidden", "16", "--embed", "8", "--layers", "1", "--seq-len", "16", "--batch-size", "4"]
TRAIN += ["--precision", "fp32", "--arch", "lstm"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A corpus, and the resume file of a 6-step run that was told to stop at 6 of 12."""
    d = tmp_path_factory.mktemp("resume")
    corpus = d / "text.txt"
    corpus.write_text(TEXT)
    out = d / "m"
    code, err, _ = invoke(["train", str(corpus), "-o", str(out), *TRAIN, "--steps", "6"])
    assert code == 0, err
    state = resume.state_path_for(d / "m.safetensors")
    return corpus, out, state, state.read_bytes()


def _progress(**change):
    return lambda t, m: m["progress"].update(change)


def _drop_progress(key):
    return lambda t, m: m["progress"].pop(key)


def _meta(key, value):
    return lambda t, m: m.__setitem__(key, value)


def _group(key, value):
    return lambda t, m: m["optimizer"]["param_groups"][0].__setitem__(key, value)


def _drop(name):
    return lambda t, m: t.pop(name)


def _tensor(name, value):
    return lambda t, m: t.__setitem__(name, value(t[name]))


NAN = float("nan")
# (id, change to (tensors, meta), text the one-line message must contain)
HOSTILE = [
    ("huge negative step", _progress(step=-(10**18)), "progress.step"),
    ("negative step", _progress(step=-1), "progress.step"),
    ("huge step", _progress(step=10**30), "progress.step"),
    ("step as text", _progress(step="6"), "progress.step"),
    ("step as bool", _progress(step=True), "progress.step"),
    ("step as float", _progress(step=6.5), "progress.step"),
    ("position outside the data", _progress(pos=10**6), "progress.pos"),
    ("negative position", _progress(pos=-3), "progress.pos"),
    ("offset outside the span", _progress(offset=16), "progress.offset"),
    ("negative tokens", _progress(tokens_seen=-5), "progress.tokens_seen"),
    ("NaN lr scale", _progress(lr_scale=NAN), "progress.lr_scale"),
    ("zero lr scale", _progress(lr_scale=0), "progress.lr_scale"),
    ("huge lr scale", _progress(lr_scale=1e300), "progress.lr_scale"),
    ("NaN best val", _progress(best_val=NAN), "progress.best_val"),
    ("best val as text", _progress(best_val="low"), "progress.best_val"),
    ("infinite elapsed", _progress(elapsed=math.inf), "progress.elapsed"),
    ("negative elapsed", _progress(elapsed=-1.0), "progress.elapsed"),
    ("last loss as list", _progress(last_loss=[1]), "progress.last_loss"),
    ("missing epoch", _drop_progress("epoch"), "progress.epoch"),
    ("unknown progress key", _progress(bogus=1), "progress.bogus"),
    ("progress not an object", _meta("progress", [1, 2]), "progress"),
    ("NaN learning rate", _group("lr", NAN), "optimizer.param_groups.lr"),
    ("NaN beta", _group("betas", [NAN, 0.999]), "optimizer.param_groups.betas"),
    ("infinite eps", _group("eps", math.inf), "optimizer.param_groups.eps"),
    ("eps as text", _group("eps", "tiny"), "optimizer.param_groups.eps"),
    ("optimizer not an object", _meta("optimizer", "adam"), "optimizer"),
    ("fingerprint as number", _meta("fingerprint", 5), "fingerprint"),
    ("hidden as text", _meta("hidden", "yes"), "hidden"),
    ("history as text", _meta("history", "long"), "history"),
    ("history entry of text", _meta("history", [[1, "a", 2.0]]), "history"),
    ("train config nonsense", _meta("train_config", {"seq_len": -1}), "train_config"),
    ("missing RNG", _drop("rng.torch"), "rng.torch"),
    ("missing data RNG", _drop("rng.data"), "rng.data"),
    ("missing weight", _drop("model.embed.weight"), "model.embed.weight"),
    ("missing moment", _drop("opt.0.exp_avg"), "opt.0.exp_avg"),
    ("missing hidden", _drop("hidden.1"), "hidden"),
    ("NaN weight", _tensor("model.embed.weight", lambda x: x * NAN), "model.embed.weight"),
    ("NaN moment", _tensor("opt.0.exp_avg", lambda x: x * NAN), "opt.0.exp_avg"),
    ("negative Adam step", _tensor("opt.0.step", lambda x: -x), "opt.0.step"),
    ("moment of the wrong shape", _tensor("opt.0.exp_avg", lambda x: x[:2]), "opt.0.exp_avg"),
    ("weight of the wrong shape", _tensor("model.embed.weight", lambda x: x[:, :4]), "embed"),
    ("weight as ints", _tensor("model.embed.weight", lambda x: x.long()), "model.embed.weight"),
    ("NaN hidden state", _tensor("hidden.0", lambda x: x * NAN), "hidden.0"),
    ("hidden state of the wrong shape", _tensor("hidden.0", lambda x: x[:, :2]), "hidden.0"),
    ("RNG of the wrong size", _tensor("rng.torch", lambda x: x[:10]), "RNG"),
]


@pytest.mark.parametrize(
    ("change", "needle"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_digest_valid_resume_file_with_nonsense_is_refused_naming_the_field(run, change, needle):
    corpus, out, state, good = run
    state.write_bytes(good)
    tensors, meta = resume.load_state(state)
    assert meta["hidden"] and "hidden.1" in tensors  # the cases above need a carried LSTM state
    change(tensors, meta)
    resume.save_state(state, tensors, meta)  # the saver's own digests: only validation can tell
    try:
        code, err, _ = invoke(
            ["train", str(corpus), "-o", str(out), *TRAIN, "--steps", "12", "--resume"]
        )
    finally:
        state.write_bytes(good)
    assert code == 4, err
    last = err.splitlines()[-1]
    assert err.count("\n") == 1 and last.startswith("rnnrepl: error: "), err
    assert needle in last and "Traceback" not in err


def test_the_untouched_file_resumes(run):
    corpus, out, state, good = run
    state.write_bytes(good)
    code, err, _ = invoke(
        ["train", str(corpus), "-o", str(out), *TRAIN, "--steps", "8", "--resume"]
    )
    assert code == 0, err
    state.write_bytes(good)


@pytest.mark.parametrize("batch", ["2", "8"])
def test_resume_with_another_batch_size_continues_with_a_fresh_state(run, batch):
    corpus, out, state, good = run
    state.write_bytes(good)
    args = [*TRAIN, "--steps", "8", "--resume", "--batch-size", batch]
    code, err, _ = invoke(["train", str(corpus), "-o", str(out), *args])
    state.write_bytes(good)
    assert code == 0, err
    assert f"note: batch {batch} x 16 (was 4 x 16): continuing with a fresh carried state\n" in err


def test_warm_start_on_a_smaller_corpus_with_the_automatic_batch(run, tmp_path):
    corpus, out, state, good = run
    small = tmp_path / "small.txt"
    small.write_text(TEXT[: len(TEXT) // 3])
    args = [*TRAIN[:6], *TRAIN[10:]]  # no --seq-len or --batch-size: sized to the corpus
    state.write_bytes(good)
    code, err, _ = invoke(
        ["train", str(small), "-o", str(out), *args, "--steps", "8", "--resume", "--warm-start"]
    )
    state.write_bytes(good)
    assert code == 0, err
    assert "Traceback" not in err and "rnnrepl: error" not in err
    assert "(was 4 x 16): continuing with a fresh carried state" in err


def test_warm_start_with_another_vocabulary_is_one_line(run, tmp_path):
    corpus, out, state, good = run
    other = tmp_path / "other.txt"
    other.write_text("ZYXWVU zyx wvu QRS!?\n" * 60)
    state.write_bytes(good)
    args = [*TRAIN, "--steps", "8", "--resume", "--warm-start"]
    code, err, _ = invoke(["train", str(other), "-o", str(out), *args])
    state.write_bytes(good)
    assert code == 4, err
    assert err.count("\n") == 1 and err.startswith("rnnrepl: error: tensor model.")
    assert "[16" in err  # the 16 characters of the first corpus
    assert "--warm-start needs the same vocabulary" in err


def test_a_resume_file_rewritten_by_the_saver_unchanged_still_resumes(run):
    """The crafted files above differ from a good one only by the change: the harness is fair."""
    corpus, out, state, good = run
    state.write_bytes(good)
    tensors, meta = resume.load_state(state)
    resume.save_state(state, tensors, meta)
    code, err, _ = invoke(
        ["train", str(corpus), "-o", str(out), *TRAIN, "--steps", "8", "--resume"]
    )
    state.write_bytes(good)
    assert code == 0, err
    assert torch.equal(tensors["rng.torch"], resume.load_state(state)[0]["rng.torch"])


@pytest.mark.parametrize("change", [[], ["--optimizer", "adamw", "--weight-decay", "0.1"]])
def test_resume_takes_the_weight_decay_it_is_given(run, change):
    """The saved optimizer's groups would keep their decay; the resumed run uses (and notes) the
    one its options give, so the recorded train_config is what trained."""
    corpus, out, state, good = run
    state.write_bytes(good)
    args = [*TRAIN, "--steps", "8", "--resume", *change]
    code, err, _ = invoke(["train", str(corpus), "-o", str(out), *args])
    groups = resume.load_state(state)[1]["optimizer"]["param_groups"]
    state.write_bytes(good)
    assert code == 0, err
    if change:
        assert "note: weight decay 0.1 (was 0)\n" in err
        assert {g["weight_decay"] for g in groups} == {0.1}
    else:
        assert "weight decay" not in err
        assert {g["weight_decay"] for g in groups} == {0.0}


def test_the_meta_alone_reads_as_the_whole_state_does_and_refuses_what_it_refuses(run, tmp_path):
    """`train --resume` reads the meta alone to size the model (cli/train_config.py): it is the
    same entry load_state returns, and a file that is not a resume state is refused alike."""
    _, out, state, good = run
    state.write_bytes(good)
    assert resume.load_state_meta(out) == resume.load_state(out)[1]
    assert resume.load_state_meta(out)["model_config"]["hidden"] == 16
    text = tmp_path / "x.state.safetensors"
    text.write_text("not a state\n")
    with pytest.raises(CheckpointError):
        resume.load_state_meta(text)
    model = state.with_name("m.safetensors")  # a model file, named as a state, is not one
    text.write_bytes(model.read_bytes())
    for read in (resume.load_state, resume.load_state_meta):
        with pytest.raises(CheckpointError, match="state"):
            read(text)
