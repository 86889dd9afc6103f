"""Loss curves (issue #17): the history training records in the model file (bounded, resumable
from a state file of the older layout), `train --log FILE.jsonl`, the curve `info` draws, the image
`info --plot` writes, and the live sparkline of the training display."""

from __future__ import annotations

import json
import math
import re
import sys
from unittest import mock

import pytest
import torch

from rnnrepl.store import modelfile, resume
from rnnrepl.train import history
from rnnrepl.units import bits
from tests.helpers import TOY, run_cli, run_main

LOOPBACK = {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}  # gloo reaches nothing else
TINY = ["--arch", "gru", "--layers", "1", "--hidden", "16", "--embed", "8", "--seq-len", "8"]
TINY += ["--batch-size", "2", "--eval-tokens", "64", "--precision", "fp32"]


def train(tmp_path, *extra: str, name: str = "m", text: str = TOY * 40):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(text)
    out = tmp_path / name
    code, stdout, err = run_main(["train", str(corpus), "-o", str(out), *TINY, *extra])
    assert code == 0, err
    return out.with_name(name + ".safetensors")


def saved_history(model) -> list[history.Point]:
    summary = modelfile.load_model(model).training["history"]
    assert summary["columns"] == ["step", "tokens", "seconds", "train_loss", "val_loss"]
    return history.from_summary(summary)


def test_history_in_the_model_file_and_the_log_agree(tmp_path):
    log = tmp_path / "run.jsonl"
    model = train(tmp_path, "--steps", "30", "--eval-every", "5", "--log", str(log))
    points = saved_history(model)
    assert [p.step for p in points] == [5, 10, 15, 20, 25, 30]
    assert [p.tokens for p in points] == [16 * s for s in (5, 10, 15, 20, 25, 30)]
    assert all(b.seconds >= a.seconds for a, b in zip(points, points[1:]))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "end"
    assert lines[-1]["step"] == 30 and lines[-1]["model"] == str(model)
    evals = [e for e in lines if e["event"] == "eval"]
    fields = ("step", "tokens", "seconds", "train_loss", "val_loss")
    assert [tuple(e[k] for k in fields) for e in evals] == [tuple(p) for p in points]
    assert {e["event"] for e in lines} <= {"start", "step", "eval", "sample", "nan", "end"}
    assert 1 <= sum(e["event"] == "step" for e in lines) < 30  # thinned: at most one a second


def test_log_appends_across_a_resume(tmp_path):
    log = tmp_path / "run.jsonl"
    train(tmp_path, "--steps", "10", "--eval-every", "5", "--log", str(log))
    train(tmp_path, "--steps", "20", "--eval-every", "5", "--log", str(log), "--resume")
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert events.count("start") == 2 and events.count("end") == 2
    assert events.count("eval") == 4


@pytest.mark.parametrize("where", ["missing/dir/run.jsonl", "."])
def test_a_bad_log_path_is_one_line_before_training(tmp_path, where):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40)
    out = tmp_path / "m"
    argv = ["train", str(corpus), "-o", str(out), *TINY, "--steps", "5", "--log"]
    code, stdout, err = run_main([*argv, str(tmp_path / where)])
    assert code == 2, err
    assert err.startswith("rnnrepl: error: ") and err.count("\n") == 1
    assert "--log" in err if where == "." else "cannot write the log" in err
    assert not out.with_name("m.safetensors").exists()


def _rewrite_state(model, change) -> None:
    path = resume.state_path_for(model)
    tensors, meta = resume.load_state(path)
    change(meta)
    resume.save_state(path, tensors, meta)


def test_a_state_file_of_the_older_layout_resumes(tmp_path):
    """Before the history kept tokens and seconds, its entries were [step, loss, val]."""
    model = train(tmp_path, "--steps", "10", "--eval-every", "5")
    old = [[step, loss, val] for step, _, _, loss, val in saved_history(model)]
    _rewrite_state(model, lambda meta: meta.__setitem__("history", old))
    train(tmp_path, "--steps", "20", "--eval-every", "5", "--resume")
    points = saved_history(model)
    assert [p.step for p in points] == [5, 10, 15, 20]
    assert [[p.step, p.train_loss, p.val_loss] for p in points[:2]] == old
    assert [p.tokens for p in points] == [None, None, 240, 320]


def test_a_long_history_is_thinned_keeping_first_last_and_best(tmp_path):
    """A resumed run whose state already holds 2,500 validations (the older layout, as a long
    run would have left it) goes past the bound at its next validation and is thinned."""
    model = train(tmp_path, "--steps", "10", "--eval-every", "5")
    n = 2500
    old = [[s, 3.0, 3.0 - s / n] for s in range(1, n + 1)]
    old[1232][2] = 0.25  # the best, at step 1233, where no step of the even spread falls

    def change(meta):
        meta["history"] = old
        meta["progress"]["step"] = n

    _rewrite_state(model, change)
    train(tmp_path, "--steps", str(n + 10), "--eval-every", "5", "--resume")
    points = saved_history(model)
    assert history.KEEP <= len(points) <= history.MAX_POINTS
    assert points[0].step == 1 and points[-1].step == n + 10
    assert points[-2].step == n + 5 and points[-1].tokens is not None
    assert 1233 in [p.step for p in points]
    gaps = [b.step - a.step for a, b in zip(points, points[1:])]
    assert max(gaps) <= 2 * n / history.KEEP + 1  # spread evenly, not just the newest kept


def test_info_draws_the_curve(tmp_path):
    model = train(tmp_path, "--steps", "30", "--eval-every", "5")
    points = saved_history(model)
    code, out, err = run_main(["info", str(model)])
    assert code == 0, err
    assert "\x1b" not in out and "history" not in out.split("bits per character")[0]
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("bits per character"))
    plot = lines[top + 1 : top + 11]
    assert all(re.match(r"^ *[0-9.]* [┤│]", row) for row in plot)
    assert sum("●" in row for row in plot) >= 1
    assert lines[top + 11].lstrip().startswith("└")
    assert lines[top + 12].split() == ["5", "30", "steps"]
    last = f"last validation {bits(points[-1].val_loss):.3f} bpc at step 30"
    assert lines[top + 13].startswith(last)


def test_info_draws_the_curve_in_ascii_on_an_ascii_console(tmp_path):
    model = train(tmp_path, "--steps", "20", "--eval-every", "5")
    r = run_cli("info", str(model), env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii() and "bits per character  o validation  . train" in r.stdout
    assert "?" not in r.stdout.split("bits per character")[1]


def test_info_of_a_word_model_shows_perplexity(tmp_path):
    model = train(tmp_path, "--steps", "20", "--eval-every", "10", "--level", "word")
    code, out, err = run_main(["info", str(model)])
    assert code == 0, err
    val = saved_history(model)[-1].val_loss
    assert "perplexity (log scale)" in out
    assert f"last validation ppl {math.exp(val):.1f} at step 20" in out


def test_info_of_a_model_without_history_draws_nothing(tmp_path):
    code, out, err = run_main(["info", "shakespeare-char"])
    assert code == 0, err
    assert "val_loss" in out and "● validation" not in out


def test_plot_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib", reason="the [plot] extra (matplotlib) is not installed")
    model = train(tmp_path, "--steps", "20", "--eval-every", "5")
    png, svg = tmp_path / "curve.png", tmp_path / "curve.svg"
    for image in (png, svg):
        code, out, err = run_main(["info", str(model), "--plot", str(image)])
        assert code == 0, err
        assert f"wrote {image}" in err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:1000]


def test_plot_without_the_extra_names_it(tmp_path):
    image = tmp_path / "curve.png"
    with mock.patch.dict(sys.modules, {"matplotlib": None}):  # as if not installed
        code, out, err = run_main(["info", "shakespeare-char", "--plot", str(image)])
    assert code == 2
    assert err == (
        "rnnrepl: error: --plot needs matplotlib, which is not installed"
        " — pip install 'rnnrepl[plot]'\n"
    )
    assert not image.exists()


def test_plot_refuses_what_it_cannot_draw(tmp_path):
    code, out, err = run_main(["info", "shakespeare-char", "--plot", str(tmp_path / "x.gif")])
    assert code == 2 and "--plot writes .png, .svg or .pdf" in err
    pytest.importorskip("matplotlib", reason="the [plot] extra (matplotlib) is not installed")
    code, out, err = run_main(["info", "shakespeare-char", "--plot", str(tmp_path / "x.png")])
    assert code == 4 and "no training history" in err and err.count("\n") == 1


@pytest.mark.slow
def test_the_training_display_draws_validation_on_a_terminal_only(tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40)
    argv = ["train", str(corpus), *TINY, "--steps", "150", "--eval-every", "10"]
    tty = run_cli(*argv, "-o", str(tmp_path / "a"), env={"TTY_COMPATIBLE": "1", "FORCE_COLOR": "1"})
    assert tty.returncode == 0, tty.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.stderr)  # the live display's redraws
    assert re.search(r"val [▁▂▃▄▅▆▇█]{2,} [0-9.]+ bpc", shown)
    pipe = run_cli(*argv[:-4], "--steps", "30", "--eval-every", "10", "-o", str(tmp_path / "b"))
    assert pipe.returncode == 0, pipe.stderr
    assert not re.search("[▁▂▃▄▅▆▇█]", pipe.stderr)


@pytest.mark.slow
@pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)
def test_with_several_processes_rank_0_alone_writes_the_log(tmp_path):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 40)
    log, out = tmp_path / "run.jsonl", tmp_path / "m"
    argv = ["train", str(corpus), "-o", str(out), *TINY, "--batch-size", "4", "--nproc", "2"]
    r = run_cli(*argv, "--steps", "20", "--eval-every", "5", "--log", str(log), env=LOOPBACK)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    events = [e["event"] for e in lines]
    assert events.count("start") == 1 and events.count("end") == 1
    evals = [tuple(e[k] for k in history.COLUMNS) for e in lines if e["event"] == "eval"]
    assert evals == [tuple(p) for p in saved_history(out.with_name("m.safetensors"))]
    assert [e[0] for e in evals] == [5, 10, 15, 20]


def test_thinning_spreads_points_evenly_and_keeps_first_last_and_best():
    points = [history.Point(s, s * 16, s / 10, 3.0, 3.0 - s / 1e4) for s in range(1, 5001)]
    points[4321] = points[4321]._replace(val_loss=0.5)
    kept = history.thin(points)
    steps = [p.step for p in kept]
    assert steps == sorted(set(steps)) and len(kept) <= history.KEEP + 3
    assert steps[0] == 1 and steps[-1] == 5000 and 4322 in steps
    assert max(b - a for a, b in zip(steps, steps[1:])) <= 2 * 5000 / history.KEEP
    grown = points[:2000]
    for p in points[2000:2100]:
        grown = history.add(grown, p)
    assert history.KEEP < len(grown) < history.MAX_POINTS and grown[-1].step == 2100
