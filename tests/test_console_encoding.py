"""Every command on a console that cannot encode its output: ASCII-only stdio, in a real process.

PYTHONIOENCODING=ascii and the C locale (with Python's UTF-8 coercion turned off, as on systems
without a C.UTF-8 locale) must give the usual exit code, no traceback, and a readable error line.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow

ENVS = {
    "PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
    "LC_ALL=C": {
        "LC_ALL": "C",
        "LANG": "C",
        "PYTHONCOERCECLOCALE": "0",  # no silent upgrade to C.UTF-8 ...
        "PYTHONUTF8": "0",  # ... nor to UTF-8 mode: stdout really is ASCII
        "PYTHONIOENCODING": "",
    },
}
TEXT = "the caf\u00e9 sat on the mat \u2014 a na\u00efve dog sat on the log.\n" * 60
TRAIN = ["--steps", "6", "--hidden", "16", "--embed", "8", "--layers", "1", "--seq-len", "16"]
TRAIN += ["--batch-size", "4", "--eval-every", "3", "--precision", "fp32"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    (d / "text.txt").write_text(TEXT, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def model(corpus):
    r = run_cli("train", str(corpus / "text.txt"), "-o", str(corpus / "m"), *TRAIN)
    assert r.returncode == 0, r.stderr
    return str(corpus / "m.safetensors")


def _check(r, code: int = 0) -> None:
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and "UnicodeEncodeError" not in r.stderr
    assert "internal error" not in r.stderr


@pytest.fixture(params=list(ENVS), ids=list(ENVS))
def env(request):
    return ENVS[request.param]


def test_train_with_a_non_ascii_corpus(corpus, env, tmp_path):
    r = run_cli("train", str(corpus / "text.txt"), "-o", str(tmp_path / "t"), *TRAIN, env=env)
    _check(r)
    assert (tmp_path / "t.safetensors").is_file() and "saved" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "MODEL", "the caf"],
        ["score", "MODEL", "-f", "TEXT"],
        ["eval", "MODEL", "TEXT"],
        ["info", "MODEL"],
        ["generate", "MODEL", "the", "-n", "60", "--seed", "1"],
        ["corpus", "list"],
    ],
    ids=lambda a: a[0] if a[0] != "corpus" else "corpus list",
)
def test_command_degrades_to_ascii(model, corpus, env, args):
    files = {"MODEL": model, "TEXT": str(corpus / "text.txt")}
    r = run_cli(*[files.get(a, a) for a in args], env=env)
    _check(r)
    assert r.stdout.strip() and r.stdout.isascii(), r.stdout


def test_bars_and_table_use_ascii_look_alikes(model, env):
    bars = run_cli("predict", model, "the caf", env=env)
    assert "#" in bars.stdout and "%" in bars.stdout
    table = run_cli("score", model, "the caf\u00e9", env=env)
    _check(table)
    assert "mean J" in table.stdout and "?" in table.stdout  # the token é, not an escape


def test_chat_line_mode(model, env):
    r = run_cli(
        "chat", model, "-n", "40", "--seed", "1", stdin="the caf\u00e9 \u2014\n/show\n", env=env
    )
    _check(r)
    assert r.stdout.strip() and r.stdout.isascii()
    assert "temperature" in r.stderr


def test_list_if_present(model, env):
    from rnnrepl.cli.main import cli

    if "list" not in cli.commands:
        pytest.skip("this build has no `rnnrepl list`")
    _check(run_cli("list", env=env))


def test_error_line_stays_readable(corpus, env):
    r = run_cli("info", str(corpus / "no-such-model"), env=env)
    _check(r, code=4)
    line = r.stderr.strip()
    assert line.startswith("rnnrepl: error: model not found") and line.count("\n") == 0
    assert " - " in line and "\\u2014" not in line and line.isascii()


def test_json_output_stays_utf8(model, env, tmp_path):
    catalog = {
        "format": "rnnrepl-corpora",
        "version": 1,
        "corpora": [
            {
                "name": "toy",
                "description": "caf\u00e9 \u2014 a test",
                "license": "CC0",
                "level": "char",
                "files": [{"url": "https://origin.invalid/t.txt", "sha256": "0" * 64, "size": 1}],
                "yields": [{"path": "t.txt", "role": "train"}],
                "train": "rnnrepl train {dir}/t.txt",
            }
        ],
    }
    (tmp_path / "catalog.json").write_text(json.dumps(catalog), encoding="utf-8")
    r = run_cli("corpus", "list", "--json", "--catalog", str(tmp_path / "catalog.json"), env=env)
    _check(r)
    assert json.loads(r.stdout)["corpora"][0]["description"] == "caf\u00e9 \u2014 a test"
    r = run_cli("predict", model, "the caf", "-k", "50", "--json", env=env)  # every token
    _check(r)
    assert {"\u00e9", "\u2014"} <= {t["token"] for t in json.loads(r.stdout)["top"]}
