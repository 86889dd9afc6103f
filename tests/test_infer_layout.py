"""rnnrepl/infer stays cut by responsibility (issue 14): small modules, short functions, and a
Predictor that only delegates (no model calls of its own)."""

from __future__ import annotations

import ast
from pathlib import Path

INFER = Path(__file__).resolve().parents[1] / "rnnrepl" / "infer"


def functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_infer_modules_are_small_and_their_functions_short():
    for path in INFER.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) < 400, path.name
        for fn in functions(ast.parse(source)):
            assert fn.end_lineno - fn.lineno + 1 < 50, f"{path.name}: {fn.name}"


def test_the_predictor_facade_only_delegates():
    tree = ast.parse((INFER / "predictor.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "torch" not in imported  # tensors are computed by the parts, never here
    for fn in functions(tree):
        assert fn.end_lineno - fn.lineno + 1 <= 12, fn.name
