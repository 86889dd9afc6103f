"""`rnnrepl embed` and `rnnrepl similar`: contextual string embeddings from a forward and a
backward character model (Akbik et al. 2018; the core is rnnrepl/infer/embedding.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from rnnrepl.cli.common import console, read_prompt_file
from rnnrepl.cli.models import complete_model
from rnnrepl.errors import UsageError
from rnnrepl.ui.textsafe import safe_json, safe_text

if TYPE_CHECKING:  # torch comes with the core, imported when a command runs
    from rnnrepl.infer.embedding import Embeddings

FORMAT = "rnnrepl-embeddings"


def _embed(forward: str, backward: str, text: str | None, file: str | None, chunk: int):
    """(embeddings, the text) of TEXT or -f FILE (exactly one) under the two models."""
    from rnnrepl.infer.embedding import embed_text
    from rnnrepl.infer.loading import load_for_inference

    if (text is None) == (file is None):
        raise UsageError("give TEXT or -f FILE (exactly one)")
    fwd = load_for_inference(forward, backward=True)  # the pair is checked by embed_text
    bwd = load_for_inference(backward, backward=True)
    text = read_prompt_file(file) if file is not None else text
    return embed_text(fwd, bwd, text, chunk), text


def _document(emb: Embeddings) -> dict:
    """Words, offsets and dims: the JSON output without the vectors, and the file's metadata."""
    return {
        "format": FORMAT,
        "words": [w.text for w in emb.words],
        "offsets": [[w.start, w.end] for w in emb.words],
        "offset_unit": "code points of the text as read (UTF-8, BOM stripped, CRLF as LF)",
        "dims": {"forward": emb.dims[0], "backward": emb.dims[1], "total": sum(emb.dims)},
        "unknown_characters": {"forward": emb.unknown[0], "backward": emb.unknown[1]},
    }


def write_safetensors(path: Path, emb: Embeddings) -> None:
    """Tensor `vectors` (words, dims), float32, and as JSON strings in the metadata the rest:
    the safetensors layout written a block of rows at a time (no second copy of the vectors in
    memory), atomically."""
    import struct

    from rnnrepl.atomic import atomic_file

    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in _document(emb).items()}
    n, d = emb.vectors.shape
    entry = {"dtype": "F32", "shape": [n, d], "data_offsets": [0, n * d * 4]}
    header = json.dumps({"__metadata__": meta, "vectors": entry}).encode()
    header += b" " * (-len(header) % 8)  # the data starts 8-byte aligned
    with atomic_file(path) as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for a in range(0, n, 4096):
            f.write(emb.vectors[a : a + 4096].numpy().astype("<f4", copy=False).tobytes())


def _print_table(emb: Embeddings) -> None:
    """One line per word: index, offsets, the word, the vector's norm and first values."""
    out = console()
    f, b = emb.dims
    out.print(Text(f"{len(emb.words)} words x {f + b} dims (forward {f} + backward {b})"))
    norms = emb.vectors.norm(dim=1).tolist()
    for i, (w, norm) in enumerate(zip(emb.words, norms, strict=True)):
        head = " ".join(f"{x:+.2f}" for x in emb.vectors[i, :4].tolist())
        line = f"{i:>5}  {w.start:>6}-{w.end:<6} {safe_text(w.text, one_line=True):<16} "
        out.print(Text(f"{line}|v| {norm:6.2f}  [{head} ...]"), soft_wrap=True)


@click.command()
@click.argument("forward", shell_complete=complete_model)
@click.argument("backward", shell_complete=complete_model)
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="Embed this file.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with the vectors.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write OUT.safetensors instead."
)
@click.option(
    "--chunk",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="Characters per forward call (memory); the vectors do not depend on it.",
)
def embed(forward, backward, text, file, as_json, output, chunk) -> None:
    """Contextual string embeddings of each word of TEXT (or -f FILE).

    A word (a run of non-whitespace) gets FORWARD's top-layer state after the character that
    follows it, joined to BACKWARD's (a model trained with --reverse) after the character that
    precedes it. Without --json or -o: a table of words, offsets and norms."""
    if as_json and output:
        raise UsageError("--json prints the vectors and -o writes them — give one of them")
    emb, _ = _embed(forward, backward, text, file, chunk)
    if output:
        write_safetensors(Path(output), emb)
        note = f"wrote {output}: {len(emb.words)} words x {sum(emb.dims)} dims"
        console(stderr=True).print(Text(safe_text(note, one_line=True)), soft_wrap=True)
    elif as_json:
        click.echo(safe_json(_document(emb) | {"vectors": emb.vectors.tolist()}))
    else:
        _print_table(emb)


@click.command()
@click.argument("forward", shell_complete=complete_model)
@click.argument("backward", shell_complete=complete_model)
@click.argument("word_index", type=click.IntRange(0))
@click.option("-f", "--file", "file", required=True, type=click.Path(dir_okay=False))
@click.option("-k", type=click.IntRange(1), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def similar(forward, backward, word_index, file, k, as_json) -> None:
    """The K words of FILE whose contextual vectors are nearest (cosine) to word WORD_INDEX's.

    WORD_INDEX counts the words of FILE from 0, as `rnnrepl embed -f FILE` lists them. Each is
    shown with a few words of context: the same word in another sense sits further away."""
    from rnnrepl.infer.embedding import context, nearest

    emb, _ = _embed(forward, backward, None, file, 4096)
    found = nearest(emb, word_index, k)
    if as_json:
        rows = [_json_row(emb, j, sim) for j, sim in found]
        click.echo(safe_json({"query": _json_row(emb, word_index, 1.0), "nearest": rows}))
        return
    out = console()
    out.print(Text(f"word {word_index}: {_in_context(context(emb.words, word_index))}"))
    for j, sim in found:
        line = f"{sim:6.3f}  {j:>6}  {_in_context(context(emb.words, j))}"
        out.print(Text(line), soft_wrap=True)


def _in_context(parts: tuple[str, str, str]) -> str:
    before, word, after = (safe_text(p, one_line=True) for p in parts)
    return f"{before} [{word}] {after}".strip()


def _json_row(emb: Embeddings, j: int, sim: float) -> dict:
    from rnnrepl.infer.embedding import context

    w = emb.words[j]
    before, _, after = context(emb.words, j)
    return {
        "index": j,
        "word": w.text,
        "offsets": [w.start, w.end],
        "similarity": sim,
        "before": before,
        "after": after,
    }
