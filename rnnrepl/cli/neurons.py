"""`rnnrepl neurons MODEL -f FILE`: the hidden units of a character model that best track simple
properties of the text (quotes, brackets, line position, word starts, line breaks), and with
`--unit L:I` the text coloured by one unit's activation (README "The insides, visible")."""

from __future__ import annotations

import click

from rnnrepl.cli.common import console, read_prompt_file
from rnnrepl.cli.models import complete_model
from rnnrepl.errors import UsageError
from rnnrepl.ui.textsafe import safe_json

MAX_CHARS = 10_000  # analysed: h of every unit at every character is kept (about 2 s on 2 cores)
SHOW_CHARS = 2_000  # shown by --unit


def parse_unit(spec: str, layers: list) -> tuple[int, int]:
    """ "L:I" (layer from 1, unit from 0) checked against the model's layers."""
    layer, sep, unit = spec.partition(":")
    if not sep or not layer.strip().isdigit() or not unit.strip().isdigit():
        raise UsageError(f"--unit wants LAYER:UNIT, e.g. 1:37 — not {spec!r}")
    li, ui = int(layer), int(unit)
    if not 1 <= li <= len(layers) or ui >= layers[li - 1].shape[1]:
        sizes = ", ".join(f"layer {i}: units 0-{a.shape[1] - 1}" for i, a in enumerate(layers, 1))
        raise UsageError(f"no unit {spec} in this model ({sizes})")
    return li, ui


def run_neurons(model, file, unit, top, max_chars, as_json) -> None:
    from rnnrepl.infer import neurons as nr
    from rnnrepl.infer.loading import load_for_inference
    from rnnrepl.infer.runner import start_id

    loaded = load_for_inference(model)
    tok = loaded.tokenizer
    if tok.level != "char":
        raise UsageError(
            f"neurons reads character models (the properties are of characters); this one is "
            f"{tok.level} level",
            hint="train one with --level char",
        )
    text = read_prompt_file(file)[:max_chars]
    if not text:
        raise UsageError("nothing to analyse: the file is empty")
    layers = nr.activations(loaded.model, tok.encode(text), start_id(tok))
    if unit is not None:
        li, ui = parse_unit(unit, layers)
        _show_unit(text, layers, li, ui, as_json)
        return
    props = nr.properties(text)
    matches = nr.best_units(layers, props, top)
    absent = [name for name, values in props.items() if (values == values[0]).all()]
    if as_json:
        rows = [{"property": m.prop, "unit": f"{m.layer}:{m.unit}", "r": m.r} for m in matches]
        click.echo(safe_json({"characters": len(text), "units": rows, "absent": absent}))
        return
    out = console()
    out.print(_table(matches, len(text)))
    if absent:
        out.print(f"never changes in this text: {', '.join(absent)}", markup=False)
    out.print(f"colour the text by one: rnnrepl neurons {model} -f {file} --unit L:I", markup=False)


def _show_unit(text: str, layers, li: int, ui: int, as_json: bool) -> None:
    from rnnrepl.infer import neurons as nr
    from rnnrepl.ui.insides import activation_text

    acts = layers[li - 1][:, ui]
    if as_json:
        click.echo(safe_json({"unit": f"{li}:{ui}", "text": text, "activation": acts.tolist()}))
        return
    r = {name: nr.correlations(acts[:, None], p) for name, p in nr.properties(text).items()}
    tracked = ", ".join(f"{k} {float(v[0]):+.2f}" for k, v in r.items() if v is not None)
    out = console()
    color = out.color_system is not None and not out.no_color
    shown = text[:SHOW_CHARS]
    out.print(activation_text(shown, acts[: len(shown)], color), soft_wrap=True, crop=False)
    legend = "red +1, white 0, blue -1" if color else "digits: 0 = -1 ... 9 = +1"
    out.print(f"unit {li}:{ui} ({legend}); r with {tracked}", markup=False, soft_wrap=True)


def _table(matches, chars: int):
    from rich.table import Table

    from rnnrepl.infer.neurons import PROPERTIES

    table = Table(title=f"units that track the text ({chars:,} characters)", title_justify="left")
    for name in ("property", "unit L:I", "r"):
        table.add_column(name, justify="right" if name == "r" else "left")
    last = None
    for m in matches:
        label = f"{m.prop} ({PROPERTIES[m.prop]})" if m.prop != last else ""
        table.add_row(label, f"{m.layer}:{m.unit}", f"{m.r:+.3f}")
        last = m.prop
    return table


@click.command()
@click.argument("model", shell_complete=complete_model)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), required=True)
@click.option("--unit", help="Colour the text by this unit's activation: LAYER:UNIT, e.g. 1:37.")
@click.option("--top", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Units listed per property.")  # fmt: skip
@click.option("--max-chars", type=click.IntRange(1, 1_000_000), default=MAX_CHARS,
              show_default=True, help="Characters of FILE analysed (from its start).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True)
def neurons(model, file, unit, top, max_chars, as_json) -> None:
    """Hidden units of a character model that track quotes, brackets, line position, word
    starts and line breaks in FILE; --unit L:I colours the text by one unit."""
    run_neurons(model, file, unit, top, max_chars, as_json)
