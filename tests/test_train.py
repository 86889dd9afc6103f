from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from rnnrepl.cli import train as cli_train
from rnnrepl.cli import train_config as cli_config
from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.store import modelfile, resume
from rnnrepl.train import loop as tr
from rnnrepl.train.validation import CHUNK, held_out_loss, start_token
from tests.helpers import TOY, run_cli, train_opts

QUIET = Console(file=open("/dev/null", "w"))  # noqa: SIM115


def build(tmp_path, text=TOY * 60, **over):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    opts = train_opts([str(corpus)], str(tmp_path / "model"), **over)
    tok, train_ids, val_ids, summary = cli_train.prepare_data(opts, QUIET)
    model_cfg, train_cfg = cli_config.make_configs(opts, tok, len(train_ids), len(val_ids))
    return opts, tok, train_ids, val_ids, summary, model_cfg, train_cfg


def trainer_for(tmp_path, stop_after=None, **over):
    opts, tok, train_ids, val_ids, summary, model_cfg, train_cfg = build(tmp_path, **over)
    model = tr.new_model(model_cfg, train_cfg.seed, "cpu")
    count = {"n": 0}

    def should_stop():
        count["n"] += 1
        return stop_after is not None and count["n"] > stop_after

    return tr.Trainer(
        model,
        tok,
        train_ids,
        val_ids,
        train_cfg,
        tmp_path / "model",
        summary,
        should_stop=should_stop,
    )


def test_tiny_corpus_is_learned_quickly(tmp_path):
    trainer = trainer_for(tmp_path, steps=150, hidden=64, embed=16, eval_every=50)
    result = trainer.run()
    log_vocab = math.log(trainer.tokenizer.size)
    assert result.best_val < 0.25 * log_vocab, (result.best_val, log_vocab)
    assert result.model_path.exists() and result.state_path.exists()
    loaded = modelfile.load_model(result.model_path)
    assert loaded.training["val_loss"] == pytest.approx(result.best_val)


@pytest.mark.parametrize("arch", ["lstm", "gru", "rnn", "window"])
def test_every_architecture_trains(tmp_path, arch):
    trainer = trainer_for(tmp_path, arch=arch, steps=60, hidden=32, eval_every=30, window=4)
    first = held_out_loss(trainer.model, trainer.val_ids, start_token(trainer.tokenizer))[0]
    result = trainer.run()
    assert result.best_val < first - 0.5


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_word_level_trains_with_tied_weights(tmp_path, softmax):
    trainer = trainer_for(
        tmp_path,
        level="word",
        tie=True,
        softmax=softmax,
        hidden=24,
        embed=24,
        steps=80,
        seq_len=8,
        eval_every=40,
    )
    assert (trainer.model.clusters is not None) == (softmax == "adaptive")
    result = trainer.run()
    assert result.best_val < math.log(trainer.tokenizer.size) / 2


@pytest.mark.parametrize(("tie", "tied"), [(None, True), (False, False)])
def test_large_word_vocabularies_tie_by_default_with_frequency_classes(tmp_path, tie, tied):
    """Over 8,000 words `auto` picks frequency classes; that no longer unties the model."""
    words = " ".join(f"w{i}" for i in range(9000))
    corpus = tmp_path / "big.txt"
    corpus.write_text((words + "\n") * 2)
    opts = train_opts([str(corpus)], str(tmp_path / "m"), level="word", tie=tie)
    for key in ("arch", "layers", "hidden", "embed"):  # no size options: autosize decides
        opts[key] = None
    tok, train_ids, val_ids, _ = cli_train.prepare_data(opts, QUIET)
    model_cfg, _ = cli_config.make_configs(opts, tok, len(train_ids), len(val_ids))
    assert tok.size > 8000 and model_cfg.cutoffs and model_cfg.tie is tied
    model = tr.new_model(model_cfg, 0, "cpu")
    assert (model.clusters is not None, model.asm is not None) == (tied, not tied)


def _state_tensors(path):
    tensors, meta = resume.load_state(path)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "opt."))}, meta


def test_interrupted_and_resumed_in_a_fresh_process_equals_straight_run(tmp_path):
    """N steps, stop, resume in another process to 2N == 2N steps straight: bitwise."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    over = {"steps": 24, "eval_every": 7, "dropout": 0.2, "layers": 2}
    trainer = trainer_for(a, stop_after=11, **over)
    part = trainer.run()
    assert part.interrupted and part.steps == 11
    corpus = str(a / "corpus.txt")
    args = [
        "train",
        corpus,
        "-o",
        str(a / "model"),
        "--steps",
        "24",
        "--eval-every",
        "7",
        "--dropout",
        "0.2",
        "--layers",
        "2",
        "--hidden",
        "16",
        "--embed",
        "8",
        "--seq-len",
        "16",
        "--batch-size",
        "4",
        "--lr",
        "0.01",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--precision",
        "fp32",  # the in-process first half runs fp32 too
        "--arch",
        "lstm",  # as train_opts gives the in-process half
    ]
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    (b / "corpus.txt").write_text((a / "corpus.txt").read_text())
    straight = run_cli(*[x if x != str(a / "model") else str(b / "model") for x in args])
    assert straight.returncode == 0, straight.stderr
    ta, meta_a = _state_tensors(a / "model.state.safetensors")
    tb, meta_b = _state_tensors(b / "model.state.safetensors")
    assert meta_a["progress"]["step"] == meta_b["progress"]["step"] == 24
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def test_resume_with_different_data_is_refused(tmp_path):
    trainer_for(tmp_path, stop_after=3).run()
    other = trainer_for(tmp_path, text=TOY.upper() * 60)
    with pytest.raises(Exception, match="differ"):
        other.load_state()


def test_early_stopping_and_best_checkpoint(tmp_path):
    trainer = trainer_for(tmp_path, steps=400, eval_every=5, patience=2, lr=0.5, optimizer="sgd")
    result = trainer.run()
    vals = [point.val_loss for point in result.history]
    assert result.stopped_early or result.steps == 400
    assert result.best_val == pytest.approx(min(vals))


def test_nan_loss_is_skipped_then_rolled_back_then_fails(tmp_path):
    trainer = trainer_for(tmp_path, steps=30, eval_every=5)
    events = []
    trainer.on_event = events.append
    calls = {"n": 0}
    real_forward = trainer.model.forward

    def poisoned(ids, state=None):
        calls["n"] += 1
        logits, st = real_forward(ids, state)
        if trainer.model.training and trainer.progress.step >= 12:
            logits = logits * float("nan")
        return logits, st

    trainer.model.forward = poisoned
    from rnnrepl.errors import NumericalError

    with pytest.raises(NumericalError):
        trainer.run()
    assert any("rolled back" in e.text for e in events if e.kind == "nan")
    assert modelfile.load_model(tmp_path / "model.safetensors").training["steps"] <= 12


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert tr.lr_at(cfg, 0, 0) == pytest.approx(0.1)
    assert tr.lr_at(cfg, 10, 0.0) == pytest.approx(1.0)
    assert tr.lr_at(cfg, 50, 0.5) == pytest.approx(0.55)
    assert tr.lr_at(cfg, 99, 1.0) == pytest.approx(0.1)
    to_zero = TrainConfig(lr=1.0, warmup=0, min_lr_ratio=0.0)  # no warm-up, down to nothing
    assert tr.lr_at(to_zero, 0, 0.0) == pytest.approx(1.0)
    assert tr.lr_at(to_zero, 99, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_batchify_keeps_streams_contiguous():
    ids = np.arange(23, dtype=np.int32)
    streams = tr.batchify(ids, 4)
    assert streams.shape == (4, 5)
    assert streams[1].tolist() == [5, 6, 7, 8, 9]


def test_held_out_loss_is_the_cross_entropy_of_one_carried_stream():
    """Every token is scored, each after all of the text before it (the first after the start
    token): the same figure as one forward pass over the whole text, however it is chunked."""
    torch.manual_seed(0)
    model = tr.build_model(ModelConfig(vocab_size=7, embed=4, hidden=8, layers=1)).eval()
    ids = np.random.default_rng(0).integers(0, 7, 2 * CHUNK + 50).astype(np.int32)
    loss, count = held_out_loss(model, ids, start_id=3)
    x = torch.tensor([3, *ids[:-1]], dtype=torch.long)[None]
    with torch.no_grad():
        logits, _ = model(x)
    expect = torch.nn.functional.cross_entropy(logits[0], torch.tensor(ids, dtype=torch.long))
    assert count == len(ids)
    assert loss == pytest.approx(expect.item(), rel=1e-5)


def test_validation_loss_is_what_eval_reports_for_the_validation_file(tmp_path):
    """One held-out loss: the val_loss training records for its best model is the cross
    entropy `rnnrepl eval` gives that model on the same validation file."""
    train, val = tmp_path / "train.txt", tmp_path / "val.txt"
    train.write_text(TOY * 60)
    val.write_text(TOY * 8)
    out = tmp_path / "m"
    args = ["--steps", "40", "--hidden", "32", "--embed", "8", "--layers", "1", "--seq-len", "16"]
    r = run_cli("train", str(train), "--val", str(val), "-o", str(out), *args, "--eval-tokens", "0")
    assert r.returncode == 0, r.stderr
    training = modelfile.load_model(tr.model_file(out)).training
    e = run_cli("eval", str(tr.model_file(out)), str(val), "--json")
    assert e.returncode == 0, e.stderr
    total = json.loads(e.stdout)["total"]
    assert total["tokens"] == training["val_tokens"] == len(TOY * 8)
    assert total["cross_entropy"] == pytest.approx(training["val_loss"], rel=1e-5)


def test_pretrained_word_vectors_initialise_the_embedding(tmp_path):
    vectors = tmp_path / "glove.txt"
    vectors.write_text("the 0.5 0.25 -1 2\ncat 1 1 1 1\nunseen 9 9 9 9\n")
    opts, tok, train_ids, val_ids, summary, model_cfg, train_cfg = build(
        tmp_path, level="word", embeddings=str(vectors), embed=None
    )
    assert model_cfg.embed == 4  # taken from the file
    model = tr.new_model(model_cfg, 0, "cpu")
    cli_train._init_embeddings(opts, tok, model, QUIET)
    assert model.embed.weight[tok.index["the"]].tolist() == [0.5, 0.25, -1.0, 2.0]
    assert model.embed.weight[tok.index["cat"]].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_word2vec_header_and_bad_rows(tmp_path):
    from rnnrepl.errors import InputDataError
    from rnnrepl.text.vectors import load_vectors, vector_dim

    good = tmp_path / "w2v.txt"
    good.write_text("2 3\nthe 1 2 3\ncat 4 5 6\n")
    assert vector_dim(good) == 3
    weight = torch.zeros(4, 3)
    assert load_vectors(good, {"cat": 2}, weight) == 1
    assert weight[2].tolist() == [4.0, 5.0, 6.0]
    bad = tmp_path / "bad.txt"
    bad.write_text("the 1 2\ncat 1 x 3\n")
    with pytest.raises(InputDataError, match="line 2"):
        load_vectors(bad, {"cat": 1}, torch.zeros(2, 3))


def test_training_from_stdin(tmp_path):
    r = run_cli(
        "train",
        "-",
        "-o",
        str(tmp_path / "s"),
        "--steps",
        "5",
        "--hidden",
        "8",
        "--embed",
        "4",
        "--seq-len",
        "8",
        "--batch-size",
        "2",
        "--eval-every",
        "5",
        stdin=TOY * 30,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.safetensors").exists()


def test_in_training_validation_is_capped_and_says_how_much_it_scored(tmp_path):
    # 3,700 validation tokens; passes capped at 1,000 score exactly the first 1,000 (one
    # stream: none is left over), and the model file says how many it scored.
    over = {"text": TOY * 250, "val_fraction": 0.3, "steps": 10}
    _, _, _, val_ids, _, _, train_cfg = build(tmp_path, eval_tokens=1000, **over)
    assert len(val_ids) > 3000 and train_cfg.eval_tokens == 1000
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    result = trainer_for(tmp_path / "a", eval_tokens=1000, **over).run()
    scored = modelfile.load_model(result.model_path).training["val_tokens"]
    assert scored == 1000
    whole = trainer_for(tmp_path / "b", eval_tokens=0, **over).run()
    assert modelfile.load_model(whole.model_path).training["val_tokens"] == len(val_ids)


def test_default_validation_cap_is_a_thirty_second_of_the_tokens_between_passes():
    opts = {"eval_tokens": None, "eval_every": 200}
    assert cli_config.eval_tokens(opts, {"batch_size": 64, "seq_len": 128}) == 200 * 64 * 128 // 32
    assert cli_config.eval_tokens(opts, {"batch_size": 4, "seq_len": 16}) == 16_384
    assert cli_config.eval_tokens(opts | {"eval_tokens": 0}, {"batch_size": 4, "seq_len": 16}) == 0


def _cli_args(opts: dict) -> list[str]:
    """The `rnnrepl train` command line equal to a train_opts() dict (the options used here)."""
    args = ["train", *opts["inputs"], "-o", opts["output"]]
    for key in ("arch", "layers", "hidden", "embed", "window", "dropout", "seq_len",
                "batch_size", "lr", "steps", "eval_every", "seed", "precision"):  # fmt: skip
        if opts.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(opts[key])]
    if opts.get("tie") is not None:
        args.append("--tie" if opts["tie"] else "--no-tie")
    return args


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    arch=st.sampled_from(["rnn", "gru", "lstm", "window"]),
    tie=st.booleans(),
    dropout=st.sampled_from([0.0, 0.3]),
    stop_after=st.integers(1, 29),
)
def test_resume_in_a_fresh_process_is_bitwise_for_any_model_and_moment(
    tmp_path_factory, arch, tie, dropout, stop_after
):
    """Interrupted after any step (before or after the epoch boundary at step 20), resumed in a
    new process: weights, optimizer, RNG and carried state, and the data position all equal
    an uninterrupted run, bit for bit."""
    a, b = tmp_path_factory.mktemp("resumed"), tmp_path_factory.mktemp("straight")
    over = {"steps": 30, "eval_every": 9, "dropout": dropout, "layers": 2, "arch": arch,
            "tie": tie, "window": 3, "batch_size": 8}  # fmt: skip
    # One thread on every side: oneDNN's LSTM rounds differently with 1 and 2 threads, and
    # an in-process REPL test earlier in the session may have left this process at 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        part = trainer_for(a, stop_after=stop_after, **over).run()
    finally:
        torch.set_num_threads(threads)
    assert part.interrupted and part.steps == stop_after
    first = tr.spans_per_epoch(trainer_for(b, **over).streams, 16)
    assert first == 20  # so that the runs cross an epoch boundary
    opts = train_opts([str(a / "corpus.txt")], str(a / "model"), **over)
    one = {"OMP_NUM_THREADS": "1"}
    resumed = run_cli(*_cli_args(opts), "--resume", env=one)
    assert resumed.returncode == 0, resumed.stderr
    straight_opts = train_opts([str(b / "corpus.txt")], str(b / "model"), **over)
    straight = run_cli(*_cli_args(straight_opts), env=one)
    assert straight.returncode == 0, straight.stderr
    ta, meta_a = resume.load_state(a / "model.state.safetensors")
    tb, meta_b = resume.load_state(b / "model.state.safetensors")
    pa, pb = meta_a["progress"], meta_b["progress"]
    assert pa["step"] == pb["step"] == 30 and pa["epoch"] == pb["epoch"] == 1
    for key in pa:
        if key != "elapsed":
            assert pa[key] == pb[key], key
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
