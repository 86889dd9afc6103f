"""`rnnrepl list|rm` and shell completion of model names: the model home as a table or JSON."""

from __future__ import annotations

import json
import time

import click
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from rnnrepl.cli.common import console
from rnnrepl.store.home import bundled_names, models_home, remove, stored_models


def complete_model(ctx, param, incomplete: str) -> list:
    """click shell_complete for MODEL: names in the model home and bundled names; when none
    matches (a path being typed), the shell's own file completion."""
    from click.shell_completion import CompletionItem

    home, bundled = stored_models(), bundled_names()
    names = [(n, "home") for n in home] + [(n, "bundled") for n in bundled if n not in home]
    hits = [CompletionItem(n, help=where) for n, where in names if n.startswith(incomplete)]
    return hits or [CompletionItem(incomplete, type="file")]


def models_table(entries: list, title: str) -> Table:
    """One row per model: name, level, architecture, parameters, validation, size, date."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name, justify in (("name", "left"), ("level", "left"), ("arch", "left"),
                          ("params", "right"), ("validation", "right"), ("size", "right"),
                          ("date", "left")):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)
    for e in entries:
        figure = e.validation
        table.add_row(
            Text(e.name),
            e.level or "?",
            e.arch or "?",
            f"{e.parameters:,}" if e.parameters is not None else "?",
            f"{figure[0]} {figure[1]:.{3 if figure[0] == 'bpc' else 1}f}" if figure else "-",
            decimal(e.size),
            time.strftime("%Y-%m-%d", time.localtime(e.modified)),
        )
    return table


def run_list(as_json: bool, out: Console) -> None:
    from rnnrepl.store.listing import list_models

    entries = list_models()
    if as_json:
        data = {"home": str(models_home()), "models": [e.to_dict() for e in entries]}
        out.print(
            json.dumps(data, ensure_ascii=False), markup=False, highlight=False, soft_wrap=True
        )
        return
    home = [e for e in entries if e.source == "home"]
    if home:
        out.print(models_table(home, f"Models in {models_home()}"))
    else:
        out.print(f"No models in {models_home()} yet: `rnnrepl train FILE` stores one there.")
    out.print(models_table([e for e in entries if e.source == "bundled"], "Bundled models"))
    for e in entries:
        if e.error:
            out.print(Text(f"{e.name}: unreadable: {e.error}"))


def run_rm(names: tuple[str, ...], out: Console) -> None:
    for name in names:
        removed = remove(name)
        out.print(f"removed {name} ({', '.join(p.name for p in removed)})", markup=False)


@click.command(name="list")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(as_json) -> None:
    """Models in the model home and the bundled ones: level, size, validation figure, date."""
    run_list(as_json, console())


@click.command()
@click.argument("names", nargs=-1, required=True, shell_complete=complete_model)
def rm(names) -> None:
    """Remove models (and their resume state) from the model home, by name."""
    run_rm(names, console())
