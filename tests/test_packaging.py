"""Out of the box: the bundled models and the corpus catalog ship inside the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rnnrepl.store import home, modelfile
from tests.helpers import REPO, run_cli

BUNDLED = ("shakespeare-char", "wikitext-bpe", "wikitext-word")
WHEEL_BUDGET = 32_000_000  # bytes of bundled models a wheel carries (README, "Bundled models")


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_models_load_by_name_and_record_their_command(name):
    assert name in home.bundled_names()
    loaded = modelfile.load_model(name)
    assert loaded.training["command"].startswith("rnnrepl train ")
    assert loaded.training["val_loss"] > 0
    assert loaded.model.embed.weight.dtype.is_floating_point
    assert str(loaded.model.embed.weight.dtype) == "torch.float32"  # fp16 on disk, fp32 in memory


def test_the_bundled_models_stay_small_enough_to_ship_in_the_wheel():
    sizes = {name: home.bundled_model(name).stat().st_size for name in BUNDLED}
    assert sum(sizes.values()) < WHEEL_BUDGET, sizes


def test_the_bundled_bpe_model_carries_its_tokenizer_and_spells_any_text():
    loaded = modelfile.load_model("wikitext-bpe")
    assert loaded.tokenizer.level == "bpe" and loaded.training["command"].count("--level bpe")
    text = "Zyxomorphic naïveté, 42 £ — ok"
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(text)) == text


def test_plain_rnnrepl_opens_the_word_model_in_line_mode():
    r = run_cli(stdin="The city of\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "\x1b" not in r.stdout


def test_chat_without_a_model_is_the_bundled_word_model():
    def greedy(*model: str) -> str:
        r = run_cli("chat", *model, "--temperature", "0", "-n", "12", stdin="The city of\n")
        assert r.returncode == 0, r.stderr
        return r.stdout

    default = greedy()
    assert default == greedy("wikitext-word") != greedy("shakespeare-char")


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


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a clean copy of the sources, so no stale build/ folder leaks into the wheel."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.state.safetensors", "*.lock", "*.tmp-*")
    for name in ("rnnrepl", "checkpoints", "corpora"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    out = subprocess.run(
        [*pip, "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return next((tmp_path / "dist").glob("rnnrepl-*.whl"))


@pytest.mark.slow
def test_plain_install_finds_bundled_models_and_catalog_outside_the_source_tree(tmp_path):
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    # System site packages bring torch without a download; they also hold the editable rnnrepl,
    # which the venv's own copy installed from the wheel must shadow.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=60,
    )
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"NO_COLOR": "1"}
    # --ignore-installed: pip would otherwise take the editable rnnrepl 0.1.0 as already there.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    out = subprocess.run(
        [*pip, "--ignore-installed", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=60, env=env, cwd=elsewhere
        )

    where = run(str(python), "-c", "import rnnrepl, rnnrepl.package_data as d; "
                "print(rnnrepl.__file__); print(d.package_dir(d.BUNDLED))")  # fmt: skip
    assert where.returncode == 0, where.stderr
    site = str(venv / "lib")
    module, bundled = where.stdout.splitlines()
    assert module.startswith(site) and bundled.startswith(site), where.stdout
    rnnrepl = str(venv / "bin" / "rnnrepl")
    predicted = run(rnnrepl, "predict", "shakespeare-char", "To be", "-k", "3", "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)["top"]) == 3
    info = run(rnnrepl, "info", "wikitext-word")
    assert info.returncode == 0 and "word" in info.stdout, info.stderr
    catalog = run(rnnrepl, "corpus", "list", "--json")
    assert catalog.returncode == 0 and "tinyshakespeare" in catalog.stdout, catalog.stderr
