"""One way for each job (#14), held by a scan of the package's source: a model spec is loaded for
inference only by infer/loading.py (over store/modelfile.py's reader), nats become bits or
perplexity only in units.py, a shipped file is found only by package_data.py, and a model config becomes text only in ModelConfig.describe."""

from __future__ import annotations

import re

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "rnnrepl"

JOBS = [
    # (what, a pattern that does the job, the only files allowed to)
    ("load a model file", r"\bload_model\(", {"store/modelfile.py", "infer/loading.py"}),
    ("nats to bits", r"math\.log\(2", {"units.py"}),
    ("nats to perplexity", r"math\.exp\((?!-)", {"units.py"}),  # exp(-J_t) is a probability
    ("locate a file shipped in the package", r"resources\.files\(|__file__", {"package_data.py"}),
    ("format a model config", r"\{[\w.]*\.(hidden|layers|embed)\}", {"config.py"}),
]


@pytest.mark.parametrize(("job", "pattern", "allowed"), JOBS, ids=[j[0] for j in JOBS])
def test_each_job_is_done_in_one_place(job, pattern, allowed):
    found = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(pattern, path.read_text(encoding="utf-8"))
    }
    assert found <= allowed, f"{job}: also done in {sorted(found - allowed)}"
    assert found, f"{job}: the pattern no longer finds the one place; update this test"
