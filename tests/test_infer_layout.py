"""rnnrepl/infer stays cut by responsibility (issue 14): the Predictor only delegates (no model
calls of its own); tests/test_architecture.py holds every module's and function's length."""

from __future__ import annotations

import ast
from pathlib import Path

INFER = Path(__file__).resolve().parents[1] / "rnnrepl" / "infer"


def functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_the_predictor_facade_only_delegates():
    tree = ast.parse((INFER / "predictor.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "torch" not in imported  # tensors are computed by the parts, never here
    for fn in functions(tree):
        assert fn.end_lineno - fn.lineno + 1 <= 12, fn.name
