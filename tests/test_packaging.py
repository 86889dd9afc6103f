"""Out of the box: the bundled models and the corpus catalog ship inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from rnnrepl import checkpoint as ckpt
from tests.helpers import REPO, run_cli

BUNDLED = ("shakespeare-char", "wikitext-word")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_load_by_name_and_record_their_command(name):
    assert name in ckpt.bundled_models()
    loaded = ckpt.load_model(name)
    assert loaded.training["command"].startswith("rnnrepl train ")
    assert loaded.training["val_loss"] > 0
    assert loaded.model.embed.weight.dtype.is_floating_point
    assert str(loaded.model.embed.weight.dtype) == "torch.float32"  # fp16 on disk, fp32 in memory


def test_plain_rnnrepl_defaults_to_the_char_model_in_line_mode():
    r = run_cli(stdin="ROMEO:\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "\x1b" not in r.stdout


@pytest.mark.slow
def test_wheel_carries_models_and_catalog(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("rnnrepl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in BUNDLED:
        assert f"rnnrepl/bundled/{name}.safetensors" in names
    assert "rnnrepl/corpora_data/catalog.json" in names
    assert not any(n.endswith(".state.safetensors") or n.endswith(".lock") for n in names)
