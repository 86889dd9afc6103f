"""/learn, /forget, /save-model: the model learns as you type, driven through the REPL's pipe."""

from __future__ import annotations

import re
import threading

import pytest
import torch

from rnnrepl.config import SampleConfig
from rnnrepl.infer.adapt import Adam
from rnnrepl.infer.loading import load_for_inference
from rnnrepl.infer.predictor import Predictor
from rnnrepl.model.step import int8_available
from rnnrepl.repl.state import Settings, compute_view, with_ghost
from rnnrepl.store.modelfile import load_model
from tests.repl_support import char_vocab, random_lstm, running_repl, save, wait_for

torch.set_num_threads(1)

CTRL_C = "\x03"
SHORT = Settings(SampleConfig(temperature=0.0, max_tokens=6), k=10)


def tiny(tmp_path, arch: str = "lstm"):
    """A small random model saved to a file and loaded from it (what `chat FILE` does)."""
    path = save(random_lstm(char_vocab(), hidden=32, seed=3, arch=arch), tmp_path / "tiny")
    return load_for_inference(path), path


def learned(repl, rounds: int) -> None:
    """Wait until `rounds` rounds of learning have ended."""
    wait_for(
        lambda: repl.output().count("learned from") >= rounds, timeout=120, what=f"{rounds} rounds"
    )


def said(repl, text: str) -> str:
    """Wait until `text` is printed; everything printed so far, unwrapped."""
    wait_for(lambda: text in unwrapped(repl), what=repr(text))
    return unwrapped(repl)


def unwrapped(repl) -> str:
    return " ".join(repl.output().split())


def turn(repl, text: str) -> None:
    """Type `text` and Enter; wait until the model's continuation has ended."""
    n = len(repl.session.doc.turns)
    repl.type(text + "\r")
    wait_for(
        lambda: len(repl.session.doc.turns) > n and repl.session.streaming is None,
        what="the turn",
    )


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_learn_shows_its_state_and_learns_only_when_on(tmp_path):
    loaded, _ = tiny(tmp_path)
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn\r")
        said(repl, "learning off: nothing learned yet")
        turn(repl, "the cat")
        repl.type("/learn on\r")
        said(repl, "learning on:")
        turn(repl, "the cat sat")
        learned(repl, 1)
        repl.type("/learn\r")
        line = said(repl, "learning on: 1 turn,")
        # "the cat sat": 11 characters the user typed, 2 steps, and the loss on them fell.
        m = re.search(
            r"11 tokens learned from, 2 steps; loss on the latest text (\S+) → (\S+)", line
        )
        assert m, line
        assert float(m[2]) < float(m[1])
        repl.type("/learn off\r")
        said(repl, "learning off; the model keeps what it learned")
        before = weights(loaded.model)
        turn(repl, "the mat")
        repl.type("/learn\r")
        said(repl, "learning off: 1 turn,")
        assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in before.items())
        repl.type("/learn maybe\r")
        said(repl, "usage: /learn on|off")


@pytest.mark.parametrize("int8", [False, True])
def test_after_learning_the_panel_equals_a_fresh_predictor_on_the_new_weights(tmp_path, int8):
    loaded, _ = tiny(tmp_path)
    text = "the cat sat on the ma"
    old = Predictor(load_for_inference(tmp_path / "tiny"), int8=int8)
    settings = Settings(SampleConfig(temperature=0.0, max_tokens=6), k=10, words=3)
    with running_repl(loaded, settings, int8=int8) as repl:
        repl.type("/learn on\r")
        said(repl, "learning on:")
        for _ in range(2):
            turn(repl, "the cat sat on the mat.")
        learned(repl, 2)
        repl.type("/reset\r")
        repl.type(text)
        view = repl.view_for(text)
        repl.type(CTRL_C + f"/save-model {tmp_path / 'adapted'}\r")
        said(repl, "wrote ")
    fresh = Predictor(load_for_inference(tmp_path / "adapted"), int8=int8)
    assert fresh.int8 == old.int8 == (int8 and int8_available())  # where the CPU has kernels
    expected = with_ghost(fresh, compute_view(fresh, text, 10, lambda: False), lambda: False)
    stale = compute_view(old, text, 10, lambda: False)
    assert [t for t, _ in view.top] == [t for t, _ in expected.top]
    assert [p for _, p in view.top] == pytest.approx([p for _, p in expected.top], abs=1e-6)
    assert [p for _, p in view.top] != pytest.approx([p for _, p in stale.top], abs=1e-4)
    assert view.ghost == expected.ghost
    assert [w for w, _ in view.words] == [w for w, _ in fresh.words(text, 3, cache=True)]


def test_forget_restores_the_weights_bitwise_and_the_file_never_changes(tmp_path):
    loaded, path = tiny(tmp_path, arch="gru")
    on_disk = path.read_bytes()
    original = weights(loaded.model)
    with running_repl(loaded, SHORT) as repl:
        repl.type("/forget\r")
        said(repl, "nothing to forget")
        repl.type("/learn on\r")
        turn(repl, "the cat sat on the mat.")
        learned(repl, 1)
        assert not all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in original.items())
        assert path.read_bytes() == on_disk
        repl.type("/forget\r")
        said(repl, "forgot what it learned")
        state = loaded.model.state_dict()
        assert all(torch.equal(v, state[k]) for k, v in original.items())
        assert all(torch.equal(v, state[k]) for k, v in load_model(path).model.state_dict().items())
        repl.type("/learn\r")
        said(repl, "learning on: nothing learned yet")
        repl.type(f"/save-model {tmp_path / 'copy'}\r")
        said(repl, "error: nothing learned yet")
    assert path.read_bytes() == on_disk


def test_save_model_writes_the_home_or_a_path_and_never_overwrites_unasked(tmp_path):
    loaded, path = tiny(tmp_path)
    on_disk = path.read_bytes()
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn on\r")
        turn(repl, "the cat sat")
        learned(repl, 1)
        repl.type("/save-model mine\r")
        out = said(repl, "wrote ")
        written = re.search(r"wrote (\S+) \(adapted on 11 tokens\)", out)
        assert written and written[1].endswith("rnnrepl/models/mine.safetensors"), out
        first = open(written[1], "rb").read()
        turn(repl, "the mat")
        learned(repl, 2)
        repl.type("/save-model mine\r")
        said(repl, "mine.safetensors exists — add --force to replace it")
        assert open(written[1], "rb").read() == first
        repl.type(f"/save-model {path} --force\r")
        said(repl, "is the model file that was loaded; it never changes unasked")
        repl.type("/save-model mine --force\r")
        wait_for(lambda: repl.output().count("wrote ") == 2, what="the second save")
        repl.type("/save-model\r")
        said(repl, "usage: /save-model NAME|PATH [--force]")
    assert path.read_bytes() == on_disk
    adapted = load_model("mine")  # an ordinary model file, found by its name
    assert adapted.training["adapted"] == {
        "from": "tiny.safetensors",
        "tokens": 18,
        "steps": 4,
        "turns": 2,
    }
    assert not all(
        torch.equal(v, adapted.model.state_dict()[k])
        for k, v in load_model(path).model.state_dict().items()
    )


def test_a_step_whose_loss_is_not_finite_is_skipped_with_one_line(tmp_path):
    loaded, _ = tiny(tmp_path)
    with torch.no_grad():  # a broken row: every text holding an "m" gives NaN
        loaded.model.embed.weight[loaded.tokenizer.index["m"]] = float("nan")
    before = weights(loaded.model)
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn on\r")
        turn(repl, "the mat")
        learned(repl, 1)
        out = repl.output()
        assert out.count("learning step skipped: the loss is not finite") == 2
        state = loaded.model.state_dict()
        assert all(
            torch.allclose(v, state[k], rtol=0, atol=0, equal_nan=True) for k, v in before.items()
        )
        repl.type("/learn\r")
        said(repl, "0 steps (2 skipped: not finite)")
        turn(repl, "the cat")  # the session goes on, and so does learning
        learned(repl, 2)


def test_out_of_memory_while_learning_is_one_red_line_and_learning_stops(tmp_path, monkeypatch):
    loaded, _ = tiny(tmp_path)

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 64 GB")

    monkeypatch.setattr(Adam, "step", no_memory)
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn on\r")
        turn(repl, "the cat")
        said(repl, "error: out of memory while learning — learning is off (/learn on to retry)")
        repl.type("/learn\r")
        said(repl, "learning off:")
        repl.type("the ca")
        assert repl.view_for(repl.session.doc.text + "the ca").top  # typing goes on


def test_a_model_with_frozen_weights_is_refused(tmp_path):
    loaded, _ = tiny(tmp_path)
    loaded.model.requires_grad_(False)
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn on\r")
        said(repl, "error: this model cannot learn in place: its weights are frozen")
        repl.type("/learn\r")
        said(repl, "learning off")


@pytest.mark.slow
def test_typing_a_made_up_word_with_learn_on_raises_its_probability():
    loaded = load_for_inference("shakespeare-char")
    on_disk = loaded.path.read_bytes()
    settings = Settings(SampleConfig(temperature=0.0, max_tokens=12), k=50)
    text = "My friend Zorb"

    def p_next(repl, char: str) -> float:
        repl.type(text)
        top = dict(repl.view_for(repl.session.doc.text + text).top)
        repl.type(CTRL_C)
        return top.get(char, 0.0)

    with running_repl(loaded, settings) as repl:
        before = p_next(repl, "l")
        repl.type("/learn on\r")
        for n in range(1, 5):
            turn(repl, "My friend Zorblax came home.")
            learned(repl, n)
        repl.type("/reset\r")
        said(repl, "document and meter cleared")
        after = p_next(repl, "l")
    assert after > 10 * before and after > 0.05, (before, after)
    assert loaded.path.read_bytes() == on_disk


def test_background_slices_wait_for_every_job_and_panel_request():
    from rnnrepl.repl.worker import Worker

    order: list[str] = []
    worker = Worker(lambda fn: fn())  # callbacks run on the model thread itself
    try:
        worker.predictor = Predictor(random_lstm(char_vocab(), hidden=16))
        gate = threading.Event()
        worker.call(lambda p: gate.wait(10), lambda *_: None)  # the thread is busy
        worker.background(lambda p: order.append("slice"), lambda *_: None)
        worker.request_view("the ca", 5, lambda view: order.append("panel"))
        worker.call(lambda p: order.append("job"), lambda *_: None)
        gate.set()
        wait_for(lambda: "slice" in order, what="the slice")
        assert order[0] == "job" and order[1] == "panel" and order[-1] == "slice", order
    finally:
        worker.close()


def test_after_model_switches_learning_goes_on_with_the_new_model_from_its_own_weights(tmp_path):
    loaded, _ = tiny(tmp_path)
    other = save(random_lstm(char_vocab(), hidden=24, seed=5), tmp_path / "other")
    with running_repl(loaded, SHORT) as repl:
        repl.type("/learn on\r")
        turn(repl, "the cat")
        learned(repl, 1)
        repl.type(f"/model {other}\r")
        wait_for(lambda: repl.session.info.name == "other", what="the switch")
        turn(repl, "the mat")
        learned(repl, 2)
        repl.type("/learn\r")
        said(repl, "learning on: 1 turn, 7 tokens learned from")
        assert "error" not in unwrapped(repl)


def test_the_window_learns_the_users_words_only_never_the_models_nor_unk():
    from rnnrepl.infer.adapt import learning_window
    from rnnrepl.text.tokenizers import WordVocab

    tok = WordVocab(["<unk>", "\n", "the", "cat", "sat", "on", "mat"])
    text = "the cat sat on the zorblax mat"  # the user: "the cat", then " the zorblax mat"
    user = [(0, 7), (14, len(text))]
    w = learning_window(tok, 1, text, user, 128)
    targets = [tok.tokens[t] for t, own in zip(w.y, w.own, strict=True) if own]
    assert targets == ["the", "cat", "the", "mat"]  # not "sat on" (the model's), not <unk>
    assert w.x[0] == 1 and w.x[1:] == w.y[:-1]  # read after the start token, one step behind
    assert w.new == 2  # the latest turn's own tokens: "the", "mat"
    small = learning_window(tok, 1, text, user, 3)
    assert [tok.tokens[t] for t in small.y] == ["the", "<unk>", "mat"] and small.new == 2
    assert learning_window(tok, 1, "sat on", [(0, 0)], 128) is None
