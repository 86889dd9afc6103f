"""The quality benchmark's pieces (issue #19): the fair plain-LSTM reference's settings, its
tuned table lookup and corpus choice, and the Python-stdlib code corpus. The budgets themselves
are measured by bench/bench_budget.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

sys.path.append(str(REPO / "bench"))  # last: bench/common.py etc. shadow nothing

import code_corpus  # noqa: E402
import reference  # noqa: E402


def test_the_char_reference_is_the_issue_s_plain_lstm():
    c = reference.CHAR
    assert (c.nlayers, c.nhid, c.emsize, c.bptt, c.batch_size) == (2, 512, 128, 100, 64)
    assert (c.lr, c.clip, c.dropout) == (2e-3, 5.0, 0.0)


def test_settings_are_typed_and_unknown_keys_refused():
    got = reference.parse_settings(["lr=4e-3", "batch_size=32", "nhid=256"])
    assert got == {"lr": 0.004, "batch_size": 32, "nhid": 256}
    assert isinstance(got["batch_size"], int)
    with pytest.raises(SystemExit, match="unknown setting 'hiden'"):
        reference.parse_settings(["hiden=3"])


def test_tuned_takes_the_nearest_swept_budget(monkeypatch):
    table = {("shakespeare", 71): {"lr": 4e-3}, ("shakespeare", 300): {"lr": 2e-3}}
    monkeypatch.setattr(reference, "TUNED", table)
    assert reference.tuned("shakespeare", 60) == {"lr": 4e-3}
    assert reference.tuned("shakespeare", 960) == {"lr": 2e-3}
    assert reference.tuned("code", 71) == {}


def test_code_corpus_is_a_deterministic_spread_of_stdlib_sources_without_tests(tmp_path):
    stdlib = tmp_path / "lib"
    for name in ["a.py", "b.py", "c.py", "pkg/d.py", "pkg/e.py", "test/t.py", "pkg/tests/u.py"]:
        (stdlib / name).parent.mkdir(parents=True, exist_ok=True)
        (stdlib / name).write_text(f"x = {name!r}\n", encoding="utf-8")
    (stdlib / "bad.py").write_bytes(b"\xff\xfe\x00")
    files = code_corpus.source_files(stdlib)
    assert all("test" not in p.parts and "tests" not in p.parts for p in files)
    everything = sorted(
        p for p in stdlib.rglob("*.py") if not {"test", "tests"} & set(p.relative_to(stdlib).parts)
    )
    assert files == everything[:: code_corpus.STRIDE]
    text = code_corpus.build_text(stdlib)
    assert text == code_corpus.build_text(stdlib)
    assert text.startswith("# file: a.py\nx = 'a.py'\n\n")


def test_the_reference_trains_and_scores_a_given_corpus(tmp_path: Path):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("def f(x):\n    return x + 1\n" * 200, encoding="utf-8")
    out = tmp_path / "ref.json"
    argv = [sys.executable, str(REPO / "bench" / "reference.py"), "char", "--time", "1"]
    argv += ["--corpus", str(corpus), "--set", "nhid=16", "--set", "emsize=8", "--out", str(out)]
    argv += ["--set", "batch_size=4", "--set", "bptt=16"]
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    assert res["corpus"] == str(corpus) and res["config"]["nhid"] == 16
    assert res["steps"] >= 1 and res["val_total_tokens"] == 5400 - int(5400 * 0.9)
    assert 0 < res["val_loss"] < 4.0  # below uniform over the 20-odd characters


def test_a_variant_from_a_source_tree_runs_that_tree_s_rnnrepl_not_the_installed_one(tmp_path):
    import bench_quality

    tree = tmp_path / "tree"
    (tree / "rnnrepl").mkdir(parents=True)
    (tree / "rnnrepl" / "__init__.py").write_text("", encoding="utf-8")
    marker = tmp_path / "which.txt"
    (tree / "rnnrepl" / "__main__.py").write_text(
        f"import rnnrepl, pathlib\npathlib.Path({str(marker)!r}).write_text(rnnrepl.__file__)\n",
        encoding="utf-8",
    )
    res = bench_quality.rnnrepl_train(["corpus.txt"], [], tmp_path / "m", str(tree))
    assert res["tree"] == str(tree)
    assert Path(marker.read_text(encoding="utf-8")) == tree / "rnnrepl" / "__init__.py"
