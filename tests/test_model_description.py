"""One line describes a model's config (ModelConfig.describe): training's summary, `info` and the
REPL's /show print the same text; `list`, which has no room for it at 80 columns, shows its
first word, the architecture."""

from __future__ import annotations

import json

import pytest

from rnnrepl.infer.loading import load_for_inference
from rnnrepl.store.home import models_home
from tests.helpers import TOY, run_main
from tests.repl_support import running_repl, wait_for

TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--dropout", "0.2"]
TINY += ["--seq-len", "16", "--batch-size", "4", "--precision", "fp32", "--steps", "2"]


def row(out: str, key: str) -> str:
    """The value of `key` in a rich summary table (`key │ value`)."""
    line = next(line for line in out.splitlines() if line.split("│")[0].strip() == key)
    return line.split("│", 1)[1].strip()


@pytest.mark.parametrize(
    ("options", "described"),
    [
        (["--arch", "gru", "--tie"], "gru 1x16, embed 8, tied, dropout 0.2"),
        (["--arch", "window", "--window", "3"], "window 3, hidden 16, embed 8, dropout 0.2"),
    ],
)
def test_train_info_show_and_list_describe_the_model_alike(tmp_path, options, described):
    corpus = tmp_path / "notes.txt"
    corpus.write_text(TOY * 20)
    code, _, err = run_main(["train", str(corpus), *TINY, *options])
    assert code == 0, err
    assert f"\n{described}: " in err  # the summary line before training starts
    assert (models_home() / "notes.safetensors").is_file()

    code, out, err = run_main(["info", "notes"])
    assert code == 0, err
    assert row(out, "model") == described

    with running_repl(load_for_inference("notes")) as repl:
        repl.type("/show\r")
        wait_for(lambda: "architecture" in repl.output(), what="/show")
    shown = next(line for line in repl.output().splitlines() if "architecture" in line)
    assert shown.split("architecture", 1)[1].strip().startswith(f"{described}, ")

    code, out, err = run_main(["list"])
    assert code == 0, err
    listed = next(line for line in out.splitlines() if line.split()[:1] == ["notes"])
    assert listed.split()[2] == described.split()[0]  # name, level, arch
    code, out, err = run_main(["list", "--json"])
    assert json.loads(out)["models"][0]["arch"] == described.split()[0]
