"""Small helpers shared by the command modules: consoles and model/prompt loading."""

from __future__ import annotations

from rnnrepl.devices import resolve_device


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def load(spec: str, device: str = "cpu"):
    from rnnrepl.checkpoint import load_model

    return load_model(spec, device=resolve_device(device))


def read_prompt_file(path: str) -> str:
    from rnnrepl.corpus import read_text

    text, _ = read_text(path)
    return text
