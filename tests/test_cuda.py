"""CUDA paths, through the commands. They need a CUDA device: bench/bench_gpu.py runs them on a
GPU machine; elsewhere they skip, saying so (the CPU tests cover the code they share)."""

from __future__ import annotations

import json

import pytest
import torch

from rnnrepl.store import modelfile
from tests.helpers import TOY, run_cli

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = pytest.mark.skipif(GPUS == 0, reason="no CUDA device on this machine")

SMALL = ["--hidden", "32", "--embed", "8", "--layers", "2", "--seq-len", "16", "--batch-size", "8"]


def train(tmp_path, name: str, *extra: str):
    corpus = tmp_path / "toy.txt"
    corpus.write_text(TOY * 300)
    done = run_cli(
        "train", str(corpus), "-o", str(tmp_path / name), "--steps", "20", *SMALL, *extra
    )
    assert done.returncode == 0, done.stderr
    return tmp_path / f"{name}.safetensors", done


def test_auto_trains_on_the_gpu_and_the_model_loads_on_the_cpu(tmp_path):
    path, done = train(tmp_path, "gpu")
    assert "parameters on cuda" in done.stderr
    loaded = modelfile.load_model(path, "cpu")
    assert next(loaded.model.parameters()).device.type == "cpu"
    got = run_cli("predict", str(path), "the cat", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)


def test_a_cpu_model_runs_on_the_gpu_as_on_the_cpu(tmp_path):
    path, _ = train(tmp_path, "cpu", "--device", "cpu")
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    logits = []
    for device in ("cpu", "cuda"):
        model = modelfile.load_model(path, device).model.eval()
        with torch.no_grad():
            logits.append(model(ids.to(device))[0].float().cpu())
    assert torch.allclose(logits[0], logits[1], atol=1e-3)
    streamed = run_cli("generate", str(path), "the cat", "-n", "40", "--device", "cuda", "--exact")
    assert streamed.returncode == 0 and streamed.stdout.strip(), streamed.stderr


@pytest.mark.skipif(GPUS < 2, reason="needs two CUDA devices")
def test_two_gpus_train_data_parallel_over_nccl(tmp_path):
    path, done = train(tmp_path, "ddp", "--nproc", "2")
    assert "parameters on cuda:0" in done.stderr
    assert modelfile.load_model(path, "cpu")
