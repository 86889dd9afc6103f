"""`rnnrepl corpus list|fetch`: the catalog as a table or JSON; a fetch with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from rich.text import Text

from rnnrepl.cli.common import console
from rnnrepl.ui.textsafe import safe_json, safe_text

if TYPE_CHECKING:
    from rnnrepl.text.catalog import Corpus
    from rnnrepl.text.fetch import FetchResult

DEFAULT_ROOT = Path("data")  # `fetch NAME` without --dir writes to data/NAME


def corpus_table(corpora: list[Corpus]) -> Table:
    """name, download size, licence, description: one row per corpus."""
    table = Table(title="Known corpora (rnnrepl corpus fetch NAME)", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("license")
    table.add_column("description")
    for c in corpora:
        table.add_row(
            *(Text(safe_text(v, one_line=True)) for v in (c.name, decimal(c.size), c.license)),
            Text(safe_text(c.description)),
        )
    return table


def run_list(as_json: bool, catalog_path: str | None, out: Console) -> None:
    from rnnrepl.text.catalog import load_catalog

    corpora = list(load_catalog(catalog_path).values())
    if as_json:
        # click.echo, like every --json: UTF-8 whatever the console's encoding
        click.echo(safe_json({"corpora": [c.to_dict() for c in corpora]}))
        return
    out.print(corpus_table(corpora))


def run_fetch(
    name: str,
    directory: str | None,
    mirror: str | None,
    catalog_path: str | None,
    out: Console,
    err: Console,
) -> None:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from rnnrepl.text.catalog import get_corpus, load_catalog
    from rnnrepl.text.fetch import fetch

    catalog = load_catalog(catalog_path)
    get_corpus(name, catalog)  # an unknown name fails before any progress bar is drawn
    dest = Path(directory) if directory else DEFAULT_ROOT / name
    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(safe_text(f"fetching {name}", one_line=True), total=None)

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, visible=total > 0)

        result = fetch(name, dest, base_url=mirror, on_progress=on_progress, catalog=catalog)
    for line in summary_lines(result):
        out.print(safe_text(line, one_line=True), markup=False, highlight=False, soft_wrap=True)


def summary_lines(result: FetchResult) -> list[str]:
    """What was fetched and verified, where the files are, the licence, the command to run next."""
    c = result.corpus
    lines = []
    if result.downloaded:
        lines.append(f"downloaded and verified (sha256): {', '.join(result.downloaded)}")
    if result.skipped:
        lines.append(f"already present and verified (sha256): {', '.join(result.skipped)}")
    if result.unpacked:
        lines.append(f"unpacked: {', '.join(result.unpacked)}")
    lines.append(f"{c.name} is in {result.directory}:")
    lines += [f"  {role:<6} {path}" for role, path in result.files]
    lines.append(f"license: {c.license}" + (f" — {c.license_note}" if c.license_note else ""))
    lines.append("next, train on it:")
    lines.append(f"  {result.train_command}")
    if result.eval_command:
        lines.append("then evaluate on the test split:")
        lines.append(f"  {result.eval_command}")
    return lines


# ---- the commands (imported lazily above: `rnnrepl --help` and the REPL need no fetching code) ----
@click.group(name="corpus")
def corpus_group() -> None:
    """Well-known public corpora: list them, fetch one (sha256-verified)."""


catalog_option = click.option(
    "--catalog", type=click.Path(dir_okay=False), help="Use this catalog JSON instead of rnnrepl's."
)


@corpus_group.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@catalog_option
def corpus_list(as_json, catalog) -> None:
    """Name, download size, licence and description of each known corpus."""
    run_list(as_json, catalog, console())


@corpus_group.command(name="fetch")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Default: data/NAME.")
@click.option("--mirror", metavar="URL", help="Fetch each file from URL/FILENAME instead.")
@catalog_option
def corpus_fetch(name, directory, mirror, catalog) -> None:
    """Download corpus NAME, verify its sha256, unpack it, print the train command to run."""
    run_fetch(name, directory, mirror, catalog, console(), console(stderr=True))
