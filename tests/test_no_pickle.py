"""Static guard: no module of the package may unpickle (RELIABILITY.md, "never run code").

Code is checked token by token (strings and comments are prose: "refusing a pickle file" is fine),
and the raw text is also searched for the loaders themselves, comments included.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnnrepl"

# Identifiers that have no business in this package's code.
BANNED_NAMES = {
    "pickle",
    "cPickle",
    "_pickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
    "Unpickler",
    "allow_pickle",
    "weights_only",
}
# Patterns in the code alone (strings and comments removed; safetensors.torch.load is fine).
BANNED_CODE = re.compile(
    r"(?<![\w.])torch\.load\b|\bjit\.load\b|\bserialization\.load\b"
    r"|^from torch(\.serialization)? import[^\n]*\bload\b",
    re.MULTILINE,
)
# Patterns in the raw text, comments and docstrings included.
BANNED_TEXT = re.compile(
    r"(?<![\w.])torch\.load\b|\bjit\.load\b|allow_pickle\s*=\s*True|TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
    r"|(import_module|__import__)\(\s*['\"](_?c?pickle|dill)"
)


def code_only(source: str) -> str:
    """The source with strings blanked and comments dropped, one logical line per line."""
    out: list[str] = []
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NEWLINE:
            out.append("\n")
        elif tok.type == tokenize.STRING:
            out.append('""')
        elif tok.type in (tokenize.NAME, tokenize.NUMBER):
            out.append((" " if previous in (tokenize.NAME, tokenize.NUMBER) else "") + tok.string)
        elif tok.type == tokenize.OP:
            out.append(tok.string)
        previous = tok.type
    return "".join(out)


def problems(source: str) -> list[str]:
    found = [f"text {m.group(0)!r}" for m in BANNED_TEXT.finditer(source)]
    code = code_only(source)
    found += [f"code {m.group(0)!r}" for m in BANNED_CODE.finditer(code)]
    found += [f"name {n!r}" for n in re.findall(r"\w+", code) if n in BANNED_NAMES]
    return found


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_scan_sees_the_package():
    names = {p.name for p in sources()}
    assert {"modelfile.py", "resume.py", "container.py", "atomic.py"} <= names


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_never_unpickles(path):
    assert problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle\n",
        "from pickle import loads\n",
        "import torch\nx = torch.load(path)\n",
        "m = torch.jit.load(p)\n",
        "a = np.load(p, allow_pickle=True)\n",
        "from torch import load\n",
        "import dill as d\n",
        "mod = __import__('pickle')\n",
        "state = torch.load(p, weights_only=False)\n",
        "from torch.serialization import (\n    load,\n)\n",
        "import torch.jit\nm = torch.jit.load(p)\n",
    ],
)
def test_the_scan_catches_unpickling(snippet):
    assert problems(snippet)


def test_prose_and_safetensors_are_allowed():
    source = 'raise Error("refusing a pickle file")  # pickle is never loaded\n'
    source += "tensors = safetensors.torch.load(data)\nfrom safetensors.torch import load\n"
    assert problems(source) == []
