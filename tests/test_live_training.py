"""Live training: `train --eval-seconds`, and /train in the REPL driven through a pipe: the
training runs in a child process, each checkpoint is swapped in, stopping saves, errors are one
line, and no training outlives the REPL."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from rnnrepl.train.background import train_command
from tests.helpers import REPO, invoke, run_cli
from tests.repl_support import Driver, wait_for

pytestmark = pytest.mark.slow
CTRL_C = "\x03"
# A tiny model that validates often on a small slice: checkpoints come fast even on a busy CPU.
TINY = "--hidden 16 --layers 1 --embed 8 --seq-len 16 --batch-size 8 --eval-tokens 256"


def corpus(path: Path) -> Path:
    rng = random.Random(0)
    words = "the cat sat on a mat and dog ran to log".split()
    path.write_text(" ".join(rng.choice(words) for _ in range(3000)) + "\n")
    return path


def test_eval_seconds_validates_by_time_as_well_as_by_steps(tmp_path):
    log = tmp_path / "log.jsonl"
    result = invoke(
        "train", str(corpus(tmp_path / "c.txt")), "-o", str(tmp_path / "m"), *TINY.split(),
        "--eval-every", "100000", "--eval-seconds", "0.5", "--time", "2s", "--log", str(log),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    evals = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "eval"]
    assert len(evals) >= 3  # 0.5 s, then 1 s later, then the end of the 2 s budget
    assert evals[0]["seconds"] < 1.5 and evals[0]["step"] < evals[-1]["step"]


def test_the_train_command_line_takes_live_defaults_unless_given():
    argv = train_command(["c.txt", "--eval-seconds", "5"], Path("l.jsonl"))
    assert argv[argv.index("train") :] == [
        "train", "c.txt", "--eval-seconds", "5", "--eval-tokens", "4096", "--log", "l.jsonl",
    ]  # fmt: skip
    from rnnrepl.errors import UsageError

    with pytest.raises(UsageError, match="--log cannot be given"):
        train_command(["c.txt", "--log=x.jsonl"], Path("l.jsonl"))


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--level", "word"], "--level goes with --train FILE — add --train FILE"),
        (["shakespeare-char", "--train", "c.txt"], "give a MODEL or --train FILE, not both"),
        (["--train", "c.txt"], "chat --train needs a terminal"),  # CliRunner: not a terminal
        (["--train", "c.txt", "--train-args", "'--hidden"], "--train-args: No closing quotation"),
    ],
)
def test_chat_train_usage_errors_are_one_line_and_exit_2(args, said):
    result = invoke("chat", *args)
    assert result.exit_code == 2 and said in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rnnrepl: error: ")


def test_the_event_log_is_read_a_whole_line_at_a_time(tmp_path):
    from rnnrepl.train.background import Figures, read_events

    log = tmp_path / "events.jsonl"
    start = {"event": "start", "step": 0, "level": "char", "model": "m.safetensors"}
    evaluated = {"event": "eval", "step": 7, "seconds": 1.5, "val_loss": 2.0}
    line = json.dumps(evaluated) + "\n"
    log.write_text(json.dumps(start) + "\n" + line[:20])  # the child is writing the second
    offset, figures = read_events(log, 0, Figures())
    assert (figures.started, figures.model, figures.step) == (True, "m.safetensors", 0)
    with open(log, "a") as f:
        f.write(line[20:])
    offset, figures = read_events(log, offset, figures)
    assert (figures.step, figures.val_loss, figures.seconds) == (7, 2.0, 1.5)
    assert offset == log.stat().st_size and not figures.resumed


@contextmanager
def repl_without_model():
    """The REPL as `chat --train` starts it: no model until a training's first checkpoint."""
    from rnnrepl.repl.app import ReplApp

    with create_pipe_input() as pipe:
        printed: list = []
        repl = ReplApp(
            None, history=InMemoryHistory(), input=pipe, output=DummyOutput(), emit=printed.append
        )
        driver = Driver(repl, pipe)
        driver.printed = printed
        driver.thread.start()
        try:
            yield driver
        finally:
            if driver.thread.is_alive():
                app = repl.ui.application
                app.loop.call_soon_threadsafe(lambda: app.exit(result=0))
                driver.thread.join(30)


def flat(driver: Driver) -> str:
    """What the REPL printed, its lines (wrapped at 100 columns) joined."""
    return " ".join(driver.output().split())


def train_in_repl(driver: Driver, args: str) -> None:
    driver.type(f"/train {args}\r")
    wait_for(lambda: driver.repl.training.job is not None, what="the training to start")


def test_train_swaps_in_each_checkpoint_keeps_the_text_and_stops_resumably(tmp_path):
    out = tmp_path / "live"
    with repl_without_model() as repl:
        assert "loading" in repl.panel()
        train_in_repl(repl, f"{corpus(tmp_path / 'c.txt')} -o {out} {TINY} --time 60s")
        assert "waiting for its first checkpoint" in repl.panel()
        repl.type("the\r")  # Enter without a model: said, nothing else happens
        wait_for(lambda: "no model yet" in repl.output(), what="the notice")
        assert not repl.session.doc.turns
        repl.type("the ca")
        wait_for(lambda: repl.session.info is not None, 60, "the first checkpoint")
        first = repl.view_for("the ca")
        wait_for(lambda: "val " in repl.status() and "tok/s" in repl.status(), 10, "figures")
        wait_for(lambda: repl.session.view.top != first.top, 60, "a later checkpoint")
        assert repl.buffer.text == "the ca" and "training step" in repl.status()
        repl.type(CTRL_C + "/train\r")
        wait_for(lambda: "training running" in repl.output(), what="/train's state")
        repl.type("/train stop\r")
        wait_for(lambda: repl.repl.training.state == "stopped", 30, "the stop")
        assert repl.repl.training.job.proc.returncode == 130
        assert f"training stopped: {out}.safetensors (resume: /train" in flat(repl)
    assert Path(f"{out}.state.safetensors").is_file()  # resumable
    info = run_cli("info", str(out))
    assert info.returncode == 0, info.stderr


def test_a_failing_training_is_one_line_and_the_session_goes_on(tmp_path):
    with repl_without_model() as repl:
        train_in_repl(repl, f"{tmp_path / 'missing.txt'} -o {tmp_path / 'm'}")
        wait_for(lambda: repl.repl.training.state == "failed", 60, "the failure")
        assert flat(repl).count("training failed") == 1 and "missing.txt" in flat(repl)
        assert "Traceback" not in repl.output()
        assert "training failed" in repl.panel()  # still no model: the panel says why
        repl.type("/train\r")
        wait_for(lambda: "training failed:" in repl.output().split("\n", 1)[1], what="/train")
        assert repl.thread.is_alive()


def test_usage_errors_of_train_are_one_line_from_the_child(tmp_path):
    with repl_without_model() as repl:
        train_in_repl(repl, f"{corpus(tmp_path / 'c.txt')} --hidden -3")
        wait_for(lambda: repl.repl.training.state == "failed", 60, "the failure")
        assert "--hidden" in repl.repl.training.detail and "\n" not in repl.repl.training.detail


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


def test_ctrl_c_twice_stops_and_quitting_leaves_no_training_behind(tmp_path):
    text = corpus(tmp_path / "c.txt")
    with repl_without_model() as repl:
        train_in_repl(repl, f"{text} -o {tmp_path / 'a'} {TINY} --time 60s")
        wait_for(lambda: repl.repl.training.figures.started, 60, "the training")
        repl.type(CTRL_C)
        repl.type(CTRL_C)
        wait_for(lambda: repl.repl.training.state == "stopped", 30, "the stop")
        train_in_repl(repl, f"{text} -o {tmp_path / 'b'} {TINY} --time 60s")
        wait_for(lambda: repl.repl.training.figures.started, 60, "the second training")
        pid = repl.repl.training.job.proc.pid
    assert not _alive(pid)  # /quit (the app's exit) stopped it and waited
    assert (
        Path(tmp_path / "b.state.safetensors").exists()
        or not Path(tmp_path / "b.safetensors").exists()
    )


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killing_the_repl_stops_its_training(tmp_path, sig):
    """SIGTERM: the REPL quits as /quit does; SIGKILL: the child's parent-death signal."""
    import subprocess

    master, slave = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "HOME": str(tmp_path)}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    cmd = [sys.executable, "-m", "rnnrepl", "chat", "--train", str(corpus(tmp_path / "c.txt"))]
    cmd += ["-o", str(tmp_path / "m"), "--time", "60s", "--train-args", TINY]
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    try:
        wait_for(lambda: _drain(master) or bool(_children(proc.pid)), 60, "the training process")
        child = _children(proc.pid)[0]
        wait_for(lambda: _drain(master) or Path(tmp_path / "m.safetensors").exists(), 60, "a model")
        proc.send_signal(sig)
        wait_for(lambda: _drain(master) or not _alive(child), 30, "the training to stop")
        assert proc.wait(30) == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
        assert Path(tmp_path / "m.state.safetensors").exists()  # it saved before it stopped
    finally:
        proc.kill()
        os.close(master)


def _drain(fd: int) -> bool:
    """Read what the REPL drew (a full pty would block it); always False."""
    import select

    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 65536):
                break
        except OSError:
            break
    return False


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_chat_train_in_a_terminal_sharpens_stops_and_leaves_a_model(tmp_path):
    """End to end: `chat --train` in tmux; the status line's step advances, the panel changes
    with the checkpoints, /train stop saves, and the model file loads with `rnnrepl info`."""
    from tests.test_repl_tmux import Tmux, _top_row

    out = tmp_path / "live"
    env = {"PYTHONPATH": str(REPO), "HOME": str(tmp_path), "TERM": "xterm-256color"}
    env |= {"XDG_DATA_HOME": str(tmp_path / "data"), "PATH": os.environ.get("PATH", "/bin")}
    command = " ".join(
        ["env -i", *(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
         "-m rnnrepl chat --train", shlex.quote(str(corpus(tmp_path / "c.txt"))),
         "-o", shlex.quote(str(out)), "--time 60s --train-args", shlex.quote(TINY),
         "; echo EXIT=$?; sleep 60"]
    )  # fmt: skip
    tmux = Tmux(f"rnnrepl-live-{os.getpid()}")
    tmux("new-session", "-d", "-s", "repl", "-x", "120", "-y", "30", command)
    try:
        tmux.wait(lambda s: "waiting for its first checkpoint" in s, "the waiting panel")
        screen = tmux.wait(lambda s: re.search(r"training step \d", s), "a first checkpoint")
        tmux("send-keys", "-t", "repl", "-l", "the ca")
        screen = tmux.wait(lambda s: "%" in _top_row(s) and "ctx 6 tok" in s, "the panel")
        step, row = _step(screen), _top_row(screen)
        tmux.wait(lambda s: _step(s) > step and _top_row(s) != row, "a later checkpoint")
        tmux("send-keys", "-t", "repl", "C-c")
        tmux("send-keys", "-t", "repl", "-l", "/train stop")
        tmux("send-keys", "-t", "repl", "Enter")
        tmux.wait(lambda s: "training stopped" in s, "the stop")
        tmux("send-keys", "-t", "repl", "C-d")
        screen = tmux.wait(lambda s: "EXIT=" in s, "the exit")
        assert "EXIT=0" in screen and "Traceback" not in screen
    finally:
        tmux("kill-server")
    assert run_cli("info", str(out)).returncode == 0


def _step(screen: str) -> int:
    found = re.search(r"training step ([\d,]+)", screen)
    return int(found[1].replace(",", "")) if found else -1
