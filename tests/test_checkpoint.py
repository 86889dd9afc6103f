"""Checkpoints: exact round trips, and every malformed, foreign or hostile file is a CheckpointError."""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnrepl import atomic
from rnnrepl.config import ARCHS, ModelConfig
from rnnrepl.errors import CheckpointError, ResourceError
from rnnrepl.model.lm import build_model
from rnnrepl.store import home, modelfile, resume
from rnnrepl.text.tokenizers import CharVocab, WordVocab

TEXT = "the cat sat on the mat. the dog sat on the log.\n"


def char_tok() -> CharVocab:
    return CharVocab.build(Counter(TEXT))


def word_tok() -> WordVocab:
    counts: Counter[str] = Counter()
    WordVocab.count(TEXT, counts)
    return WordVocab.build(counts)


def tiny(tok, arch: str = "lstm", tie: bool = False, seed: int = 0):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        vocab_size=tok.size, arch=arch, embed=8, hidden=16, layers=1, tie=tie, window=3
    )
    return build_model(cfg).eval()


def logits(model, tok) -> torch.Tensor:
    ids = torch.tensor([tok.encode(TEXT)[:20]])
    with torch.no_grad():
        return model(ids)[0]


def model_meta(model, tok, **overrides: str) -> dict[str, str]:
    meta = {
        "format": "rnnrepl",
        "format_version": "1",
        "kind": "model",
        "model_config": json.dumps(model.cfg.to_dict()),
        "tokenizer": json.dumps(tok.to_dict()),
        "training": "{}",
        "dtype": "float32",
    }
    return meta | overrides


def digests(header: dict, payload: bytes) -> dict:
    """The documented digests: payload_sha256 over the data, header_sha256 over the canonical header."""
    meta = dict(header["__metadata__"])
    meta.pop("header_sha256", None)
    meta["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    canon = json.dumps({**header, "__metadata__": meta}, sort_keys=True, separators=(",", ":"))
    meta["header_sha256"] = hashlib.sha256(canon.encode()).hexdigest()
    return meta


def craft(path: Path, tensors: dict, meta: dict) -> Path:
    """Write a file by hand, with valid digests, whatever its content."""
    first = safetensors.torch.save(tensors, metadata=meta)
    header, payload = split(first)
    header["__metadata__"] = digests(header, payload)
    path.write_bytes(join(header, payload))
    return path


def split(data: bytes) -> tuple[dict, bytes]:
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header: dict, payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return len(raw).to_bytes(8, "little") + raw + payload


def saved(tmp_path: Path, name: str = "m") -> tuple[Path, object, CharVocab]:
    tok = char_tok()
    model = tiny(tok)
    return modelfile.save_model(tmp_path / name, model, tok, {"steps": 3}), model, tok


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
def test_round_trip_gives_identical_logits(tmp_path, arch, tie):
    tok = word_tok() if arch == "gru" else char_tok()
    model = tiny(tok, arch, tie)
    path = modelfile.save_model(tmp_path / "m", model, tok, {"val_loss": 1.5, "corpus": "x"})
    assert path == tmp_path / "m.safetensors"
    loaded = modelfile.load_model(path)
    assert torch.equal(logits(loaded.model, tok), logits(model, tok))
    assert loaded.config == model.cfg and loaded.tokenizer.tokens == tok.tokens
    assert loaded.training == {"val_loss": 1.5, "corpus": "x"}
    assert loaded.path == path.resolve() and not loaded.model.training
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())


def test_tied_weights_are_stored_once(tmp_path):
    tok = char_tok()
    path = modelfile.save_model(tmp_path / "m", tiny(tok, "lstm", tie=True), tok, {})
    header, _ = split(path.read_bytes())
    assert "decoder.weight" not in header and "embed.weight" in header


def test_tensors_sharing_storage_can_be_saved(tmp_path):
    """Like cuDNN's flattened RNN weights: state_dict entries that share one storage."""
    tok = char_tok()
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=tok.size, embed=16, hidden=16, layers=1)).eval()
    model.decoder.weight = model.embed.weight
    path = modelfile.save_model(tmp_path / "m", model, tok, {})
    assert torch.equal(logits(modelfile.load_model(path).model, tok), logits(model, tok))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_saved_from_cuda_loads_on_cpu_and_cuda(tmp_path):
    tok = char_tok()
    model = tiny(tok).cuda()
    path = modelfile.save_model(tmp_path / "m", model, tok, {})
    on_cpu = modelfile.load_model(path)
    assert next(on_cpu.model.parameters()).device.type == "cpu"
    assert torch.allclose(logits(on_cpu.model, tok), logits(model.cpu(), tok), atol=1e-5)
    assert next(modelfile.load_model(path, "cuda").model.parameters()).is_cuda


def test_half_loads_as_fp32_with_close_logits(tmp_path):
    tok = char_tok()
    model = tiny(tok)
    full = modelfile.save_model(tmp_path / "full", model, tok, {})
    half = modelfile.save_model(tmp_path / "half", model, tok, {}, half=True)
    assert half.stat().st_size < full.stat().st_size
    loaded = modelfile.load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert torch.allclose(logits(loaded.model, tok), logits(model, tok), atol=1e-2)


def test_paths_suffix_parents_and_directories(tmp_path):
    tok = char_tok()
    path = modelfile.save_model(tmp_path / "a" / "b" / "notes", tiny(tok), tok, {})
    assert path == tmp_path / "a" / "b" / "notes.safetensors"
    assert modelfile.load_model(tmp_path / "a" / "b" / "notes").path == path.resolve()
    (tmp_path / "run").mkdir()
    in_dir = modelfile.save_model(tmp_path / "run", tiny(tok), tok, {})
    assert in_dir == tmp_path / "run" / "run.safetensors"
    assert resume.state_path_for(path) == tmp_path / "a" / "b" / "notes.state.safetensors"
    with pytest.raises(CheckpointError):
        modelfile.save_model(tmp_path / "x.state.safetensors", tiny(tok), tok, {})


def test_save_refuses_mismatched_tokenizer_and_bad_training(tmp_path):
    tok = char_tok()
    with pytest.raises(CheckpointError, match="tokens"):
        modelfile.save_model(tmp_path / "m", tiny(word_tok()), tok, {})
    with pytest.raises(CheckpointError, match="JSON"):
        modelfile.save_model(tmp_path / "m", tiny(tok), tok, {"bad": object()})


def test_load_onto_named_device_and_bad_device(tmp_path):
    path, model, tok = saved(tmp_path)
    assert (
        next(modelfile.load_model(path, torch.device("cpu")).model.parameters()).device.type
        == "cpu"
    )
    with pytest.raises(ResourceError):
        modelfile.load_model(path, device="nonsense")


# ---------------------------------------------------------------- corrupt and hostile files


def test_flipped_payload_bit_is_caught_by_the_checksum(tmp_path):
    path, _, _ = saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or tampered") as err:
        modelfile.load_model(path)
    assert err.value.exit_code == 4 and str(path) in str(err.value)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_single_bit_flip_is_a_checkpoint_error(tmp_path, data):
    path = tmp_path / "flip.safetensors"
    if not path.exists():
        tok = char_tok()
        modelfile.save_model(path, tiny(tok, "rnn"), tok, {"steps": 1})
    good = path.read_bytes()
    pos = data.draw(st.integers(0, len(good) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = bytearray(good)
    bad[pos] ^= 1 << bit
    path.write_bytes(bytes(bad))
    try:
        with pytest.raises(CheckpointError):
            modelfile.load_model(path)
    finally:
        path.write_bytes(good)


def test_truncated_files_are_checkpoint_errors(tmp_path):
    path, _, _ = saved(tmp_path)
    good = path.read_bytes()
    n = int.from_bytes(good[:8], "little")
    for size in (0, 5, 9, 8 + n // 2, 8 + n, 8 + n + 10, len(good) - 1):
        path.write_bytes(good[:size])
        with pytest.raises(CheckpointError):
            modelfile.load_model(path)


def test_absurd_header_length(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="absurd header length"):
        modelfile.load_model(path)
    path.write_bytes((1000).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match="truncated"):
        modelfile.load_model(path)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
            },
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, "gap"),
        ({"a": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}, "do not match shape"),
        ({"a": {"dtype": "XX", "shape": [4], "data_offsets": [0, 16]}}, "corrupt header entry"),
        ({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, "corrupt header entry"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, "trailing bytes"),
    ],
)
def test_inconsistent_tensor_layout(tmp_path, entries, message):
    payload = bytes(24 if "b" in entries else 16)
    header = {"__metadata__": {"format": "rnnrepl", "format_version": "1", "kind": "model"}}
    header |= entries
    header["__metadata__"] = digests(header, payload)
    path = tmp_path / "m.safetensors"
    path.write_bytes(join(header, payload))
    with pytest.raises(CheckpointError, match=message):
        modelfile.load_model(path)


def test_duplicate_header_keys_refused(tmp_path):
    # Two readings of the same bytes (four U8 or one F32): safetensors takes one of them without
    # complaint, so refusing duplicate keys is rnnrepl's own check.
    raw = b'{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    data = len(raw).to_bytes(8, "little") + raw + bytes(4)
    assert len(safetensors.torch.load(data)) == 1
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        modelfile.load_model(path)


def test_foreign_safetensors_is_not_an_rnnrepl_checkpoint(tmp_path):
    path = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"weight": torch.ones(3)}, str(path))
    with pytest.raises(CheckpointError, match="not an rnnrepl checkpoint"):
        modelfile.load_model(path)
    state = tmp_path / "foreign.state.safetensors"
    state.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="not an rnnrepl checkpoint"):
        resume.load_state(state)
    safetensors.torch.save_file({"w": torch.ones(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not an rnnrepl checkpoint"):
        modelfile.load_model(path)


def test_newer_format_version_asks_for_an_upgrade(tmp_path):
    tok = char_tok()
    model = tiny(tok)
    path = craft(
        tmp_path / "m.safetensors", model.state_dict(), model_meta(model, tok, format_version="2")
    )
    with pytest.raises(CheckpointError, match="newer rnnrepl") as err:
        modelfile.load_model(path)
    assert "upgrade" in str(err.value)


def test_crafted_valid_file_loads(tmp_path):
    """The test's own writer agrees with the format: the refusals below are for their reason only."""
    tok = char_tok()
    model = tiny(tok)
    path = craft(tmp_path / "m.safetensors", model.state_dict(), model_meta(model, tok))
    assert torch.equal(logits(modelfile.load_model(path).model, tok), logits(model, tok))


def test_header_length_that_looks_like_pickle_magic_still_loads(tmp_path):
    """A header of 0x580 bytes starts the file with b"\\x80\\x05": a real model, not a pickle."""
    path, model, tok = saved(tmp_path)
    header, payload = split(path.read_bytes())
    raw = json.dumps(header, separators=(",", ":")).encode()
    assert len(raw) <= 0x580
    path.write_bytes((0x580).to_bytes(8, "little") + raw.ljust(0x580) + payload)
    assert path.read_bytes()[:2] == b"\x80\x05"
    assert torch.equal(logits(modelfile.load_model(path).model, tok), logits(model, tok))


def test_tampered_header_metadata(tmp_path):
    path, _, _ = saved(tmp_path)
    header, payload = split(path.read_bytes())
    header["__metadata__"]["training"] = json.dumps({"steps": 999999})
    path.write_bytes(join(header, payload))
    with pytest.raises(CheckpointError, match="header is corrupt or tampered"):
        modelfile.load_model(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_refused_at_save_and_at_load(tmp_path, value):
    tok = char_tok()
    model = tiny(tok)
    with torch.no_grad():
        model.decoder_bias[1] = value
    with pytest.raises(CheckpointError, match="decoder_bias"):
        modelfile.save_model(tmp_path / "m", model, tok, {})
    assert list(tmp_path.iterdir()) == []
    path = craft(tmp_path / "m.safetensors", model.state_dict(), model_meta(model, tok))
    with pytest.raises(CheckpointError, match="decoder_bias holds NaN or Inf"):
        modelfile.load_model(path)


def test_vocabulary_and_shape_mismatches_name_the_problem(tmp_path):
    tok, other = char_tok(), word_tok()
    model, wrong = tiny(tok), tiny(other)
    meta = model_meta(model, tok)
    path = craft(tmp_path / "a.safetensors", wrong.state_dict(), meta)
    with pytest.raises(
        CheckpointError, match=r"tensor decoder_bias has shape \[10\], the model expects \[16\]"
    ):
        modelfile.load_model(path)
    path = craft(
        tmp_path / "b.safetensors",
        model.state_dict(),
        meta | {"tokenizer": json.dumps(other.to_dict())},
    )
    with pytest.raises(CheckpointError, match="tokenizer has"):
        modelfile.load_model(path)
    partial = {k: v for k, v in model.state_dict().items() if k != "decoder_bias"}
    with pytest.raises(CheckpointError, match="missing tensor decoder_bias"):
        modelfile.load_model(craft(tmp_path / "c.safetensors", partial, meta))
    extra = model.state_dict() | {"extra": torch.zeros(2)}
    with pytest.raises(CheckpointError, match="unexpected tensor extra"):
        modelfile.load_model(craft(tmp_path / "d.safetensors", extra, meta))
    bad_cfg = meta | {"model_config": json.dumps(model.cfg.to_dict() | {"arch": "transformer"})}
    with pytest.raises(CheckpointError, match="arch"):
        modelfile.load_model(craft(tmp_path / "e.safetensors", model.state_dict(), bad_cfg))


class Evil:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Any unpickling attempt fails the test, whatever the environment says."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

    def boom(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, boom)
    monkeypatch.setattr(torch, "load", boom)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickle_is_refused_and_never_run(tmp_path, no_unpickling, protocol):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil(marker), protocol=protocol))
    for load in (modelfile.load_model, resume.load_state):
        target = path if load is modelfile.load_model else tmp_path / "evil.state.safetensors"
        target.write_bytes(path.read_bytes())
        with pytest.raises(CheckpointError, match="pickle") as err:
            load(target)
        assert err.value.exit_code == 4
    assert not marker.exists()


def test_old_protocol_pickle_is_refused(tmp_path, no_unpickling):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Evil(marker), protocol=0))
    with pytest.raises(CheckpointError):
        modelfile.load_model(path)
    assert not marker.exists()


def test_torch_save_files_are_refused_naming_the_format(tmp_path, no_unpickling):
    marker = tmp_path / "marker"
    zipped, legacy = tmp_path / "zip.pt", tmp_path / "legacy.pt"
    torch.save({"evil": Evil(marker)}, zipped)
    torch.save({"evil": Evil(marker)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="zip archive"):
        modelfile.load_model(zipped)
    with pytest.raises(CheckpointError, match="pickle"):
        modelfile.load_model(legacy)
    assert not marker.exists()


def foreign_bytes(kind: str) -> bytes:
    if kind == "numpy":
        buf = io.BytesIO()
        np.save(buf, np.zeros(4))
        return buf.getvalue()
    if kind == "tar":
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("weights.bin")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"\0\0\0\0"))
        return buf.getvalue()
    if kind == "gzip":
        return gzip.compress(b"hello" * 10)
    return b"\x89HDF\r\n\x1a\n" + bytes(600)  # HDF5


@pytest.mark.parametrize(
    ("kind", "name"), [("numpy", "numpy"), ("tar", "tar"), ("gzip", "gzip"), ("hdf5", "HDF5")]
)
def test_other_formats_are_refused_by_name(tmp_path, kind, name):
    path = tmp_path / "x.safetensors"
    path.write_bytes(foreign_bytes(kind))
    with pytest.raises(CheckpointError, match=name):
        modelfile.load_model(path)


def run_with_timeout(fn, seconds: float = 5.0):
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return thread.is_alive(), box


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo, state_fifo = tmp_path / "m.safetensors", tmp_path / "m.state.safetensors"
    os.mkfifo(fifo)
    os.mkfifo(state_fifo)
    for load in (lambda: modelfile.load_model(fifo), lambda: resume.load_state(state_fifo)):
        blocked, box = run_with_timeout(load)
        if blocked:  # release the reader before failing
            for f in (fifo, state_fifo):
                with contextlib.suppress(OSError):
                    os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail("loading a FIFO blocked")
        assert isinstance(box.get("exc"), CheckpointError)
        assert "not a regular file" in str(box["exc"])


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_file_is_refused():
    blocked, box = run_with_timeout(lambda: modelfile.load_model("/dev/zero"))
    assert not blocked and isinstance(box.get("exc"), CheckpointError)


def test_state_and_model_files_are_not_interchangeable(tmp_path):
    path, model, tok = saved(tmp_path)
    state = resume.save_state(resume.state_path_for(path), {"x": torch.ones(1)}, {})
    with pytest.raises(CheckpointError, match="not a model file"):
        modelfile.load_model(state)
    state.unlink()
    (tmp_path / "m.state.safetensors").write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="not a state file"):
        resume.load_state(path)


# ---------------------------------------------------------------- resolution


def test_directory_resolution(tmp_path):
    tok = char_tok()
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match="no model file"):
        modelfile.resolve_model_path(run)
    first = modelfile.save_model(run / "alpha", tiny(tok), tok, {})
    resume.save_state(resume.state_path_for(first), {"x": torch.ones(1)}, {})
    (run / ".alpha.safetensors.tmp-1-abcd").write_bytes(b"partial")
    os.mkfifo(run / "fifo.safetensors")
    assert modelfile.resolve_model_path(run) == first.resolve()
    assert modelfile.load_model(run).path == first.resolve()
    modelfile.save_model(run / "beta", tiny(tok), tok, {})
    with pytest.raises(CheckpointError, match="alpha.safetensors, beta.safetensors"):
        modelfile.resolve_model_path(run)
    named = modelfile.save_model(run / "run", tiny(tok), tok, {})
    assert modelfile.resolve_model_path(run) == named.resolve()


def test_unknown_name_and_bundled_models(tmp_path, monkeypatch):
    assert isinstance(home.bundled_names(), list)
    with pytest.raises(CheckpointError, match="model not found"):
        modelfile.resolve_model_path(tmp_path / "nothing-here")
    with pytest.raises(CheckpointError, match="model not found"):
        modelfile.load_model("surely-not-bundled")
    bundled = tmp_path / "bundled"
    tok = char_tok()
    modelfile.save_model(bundled / "tiny", tiny(tok), tok, {})
    monkeypatch.setattr(home, "bundled_dir", lambda: bundled)
    monkeypatch.chdir(tmp_path)
    assert home.bundled_names() == ["tiny"]
    assert modelfile.load_model("tiny").path == bundled / "tiny.safetensors"


# ---------------------------------------------------------------- atomic writes


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


@pytest.mark.parametrize("target", ["replace", "fsync"])
@pytest.mark.parametrize("failure", ["enospc", "interrupt"])
def test_atomic_write_failures_leave_the_old_file(tmp_path, monkeypatch, target, failure):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")
    exc = (
        OSError(errno.ENOSPC, "No space left on device")
        if failure == "enospc"
        else KeyboardInterrupt()
    )

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(os, target, fail)
    expected = ResourceError if failure == "enospc" else KeyboardInterrupt
    with pytest.raises(expected) as err:
        atomic.atomic_write_bytes(path, b"new contents that never land")
    monkeypatch.undo()
    assert path.read_bytes() == b"old contents"
    assert leftovers(tmp_path) == []
    if failure == "enospc":
        assert err.value.exit_code == 5 and "disk space" in str(err.value)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_atomic_write_permission_problems_are_resource_errors(tmp_path, monkeypatch, code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ResourceError):
        atomic.atomic_write_bytes(tmp_path / "new.bin", b"x")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch):
    path, model, tok = saved(tmp_path)
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ResourceError):
        modelfile.save_model(path, tiny(tok, seed=1), tok, {})
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    assert torch.equal(logits(modelfile.load_model(path).model, tok), logits(model, tok))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-S", "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_dead_processes_are_swept(tmp_path):
    path = tmp_path / "f.bin"
    stale = tmp_path / f".f.bin.tmp-{dead_pid()}-abcd1234"
    live = tmp_path / f".f.bin.tmp-{os.getppid()}-abcd1234"
    other = tmp_path / f".g.bin.tmp-{dead_pid()}-abcd1234"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    atomic.atomic_write_bytes(path, b"data")
    assert path.read_bytes() == b"data"
    assert not stale.exists() and live.exists() and other.exists()


# ---------------------------------------------------------------- resume state


def test_state_round_trip_is_exact(tmp_path):
    tensors = {
        "rng": torch.get_rng_state(),
        "weights": torch.randn(3, 4),
        "half": torch.randn(5).half(),
        "positions": torch.arange(7, dtype=torch.int64),
        "scalar": torch.tensor(2.5),
    }
    meta = {
        "step": 12,
        "lr": 0.001,
        "best": float("inf"),
        "name": "héllo ✓",
        "nested": {"a": [1, 2.5, None, True]},
    }
    path = resume.save_state(tmp_path / "run.state.safetensors", tensors, meta)
    got, got_meta = resume.load_state(path)
    assert got_meta == meta
    assert set(got) == set(tensors)
    for name, t in tensors.items():
        assert got[name].dtype == t.dtype and torch.equal(got[name], t), name
    with pytest.raises(CheckpointError, match="keys must be strings"):
        resume.save_state(path, {}, {"positions": {0: 1}})


def train_steps(model, opt, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ids = torch.randint(0, model.cfg.vocab_size, (2, 6), generator=gen)
        out, _ = model(ids)
        loss = torch.nn.functional.cross_entropy(out[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()


def assert_same(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


OPTIMIZERS = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1, amsgrad=True),
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_round_trip_resumes_bitwise(tmp_path, name):
    tok = char_tok()
    model = tiny(tok, "gru")
    opt = OPTIMIZERS[name](model.parameters())
    train_steps(model, opt, 2, seed=1)
    tensors, meta = resume.optimizer_to_tensors(opt)
    if name == "adam":
        assert {"opt.0.step", "opt.0.exp_avg", "opt.0.exp_avg_sq"} <= set(tensors)
    path = resume.save_state(
        tmp_path / "s", tensors | {"rng": torch.get_rng_state()}, {"optimizer": meta}
    )
    assert path.name == "s.state.safetensors"
    got, got_meta = resume.load_state(path)

    clone = tiny(tok, "gru", seed=5)
    clone.load_state_dict(model.state_dict())
    opt2 = OPTIMIZERS[name](clone.parameters())
    resume.optimizer_from_tensors(opt2, got, got_meta["optimizer"])
    assert_same(opt2.state_dict(), opt.state_dict())

    train_steps(model, opt, 2, seed=2)
    train_steps(clone, opt2, 2, seed=2)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)


def test_optimizer_state_for_another_model_is_refused():
    tok = char_tok()
    model = tiny(tok)
    opt = torch.optim.Adam(model.parameters())
    train_steps(model, opt, 1, seed=0)
    tensors, meta = resume.optimizer_to_tensors(opt)
    other = torch.optim.Adam(tiny(tok, "window").parameters())
    with pytest.raises(CheckpointError, match="does not fit"):
        resume.optimizer_from_tensors(other, tensors, meta)


def test_config_that_lies_about_its_size_is_refused_before_allocating(tmp_path, monkeypatch):
    tok = char_tok()
    model = tiny(tok)
    huge = model.cfg.to_dict() | {"hidden": 60_000, "layers": 60}  # ~1.7e12 weights
    path = craft(
        tmp_path / "lie.safetensors",
        model.state_dict(),
        model_meta(model, tok, model_config=json.dumps(huge)),
    )
    monkeypatch.setattr(modelfile, "build_model", lambda cfg: pytest.fail("built a lying model"))
    with pytest.raises(
        CheckpointError, match=r"needs 1,713,[\d,]+ weights but the file holds only"
    ):
        modelfile.load_model(path)


SAVER = """
import sys, torch
from rnnrepl.store import modelfile
from rnnrepl.config import ModelConfig
from rnnrepl.model.lm import build_model
from rnnrepl.text.tokenizers import CharVocab

from collections import Counter
tok = CharVocab.build(Counter("abcdefghij "))
if len(sys.argv) > 2:  # pause inside each save, after the data is written, before the rename
    import os, time
    real_fsync = os.fsync
    def slow_fsync(fd):
        print("in-save", flush=True)
        time.sleep(0.05)
        real_fsync(fd)
    os.fsync = slow_fsync
model = build_model(ModelConfig(vocab_size=tok.size, embed=32, hidden=256, layers=2)).eval()
n = 0
while True:  # save version n: every weight of the embedding equals n
    with torch.no_grad():
        model.embed.weight.fill_(float(n))
    modelfile.save_model(sys.argv[1], model, tok, {"version": n})
    print(n, flush=True)
    n += 1
"""


@pytest.mark.parametrize("delay", [0.0, 0.013, 0.031, 0.057])
def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path, delay):
    """A real SIGKILL of a process that saves in a loop, at varying moments of a save: the
    file on disk is always one whole version; its temp file is swept by the next save."""
    target = tmp_path / "m.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    try:
        for _ in range(3):  # a few whole saves first, so a previous version exists
            assert proc.stdout.readline(), "saver died"
        time.sleep(delay)
        proc.kill()
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -9
    loaded = modelfile.load_model(target)
    version = loaded.training["version"]
    assert version >= 2
    assert torch.all(loaded.model.embed.weight == float(version))  # no mix of two versions
    modelfile.save_model(target, loaded.model, loaded.tokenizer, {"version": -1})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # stray temp swept


def test_sigkill_inside_the_critical_section_keeps_the_previous_version(tmp_path):
    """Killed while a save is between writing its temp file and renaming it: the old version
    is what loads, and the half-done temp file is there until the next save sweeps it."""
    target = tmp_path / "m.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(target), "pause"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    try:
        line = ""
        while line != "2":  # three whole saves (each fsyncs its file, then the directory)
            line = proc.stdout.readline().strip()
            assert line, "saver died"
        assert proc.stdout.readline().strip() == "in-save"  # the fourth has written its file
        proc.kill()
    finally:
        proc.wait(timeout=30)
    assert len(list(tmp_path.iterdir())) == 2  # the model and the killed save's temp file
    loaded = modelfile.load_model(target)
    assert loaded.training["version"] == 2
    assert torch.all(loaded.model.embed.weight == 2.0)
    modelfile.save_model(target, loaded.model, loaded.tokenizer, {"version": -1})
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
