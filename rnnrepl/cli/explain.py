"""`rnnrepl explain MODEL TEXT` (also `score --explain`): the notes' figure with the model's own
numbers — at every step the input x_t, each layer's hidden state h_t (an LSTM's cell state and
gates too, a GRU's gates), the output distribution y_t and the loss J_t."""

from __future__ import annotations

import click

from rnnrepl.cli.common import console, read_prompt_file
from rnnrepl.cli.models import complete_model
from rnnrepl.errors import UsageError
from rnnrepl.ui.textsafe import safe_json

MAX_STEPS = 500  # one block of rows per token: longer texts belong to `score`
UNITS = 16  # units shown per layer; a larger layer shows its most active ones


def read_text(text: str | None, file: str | None) -> str:
    if (text is None) == (file is None):
        raise UsageError("give TEXT or -f FILE (exactly one)")
    return read_prompt_file(file) if file else text


def run_explain(model: str, text: str, k: int, units: int, as_json: bool) -> None:
    from rnnrepl.infer.insides import trace
    from rnnrepl.infer.loading import load_for_inference
    from rnnrepl.infer.runner import start_id

    loaded = load_for_inference(model)
    tok = loaded.tokenizer
    ids = tok.encode(text)
    if not ids:
        raise UsageError("nothing to explain: the text has no tokens")
    if len(ids) > MAX_STEPS:
        raise UsageError(
            f"explain shows every step: give at most {MAX_STEPS} tokens (this text has "
            f"{len(ids):,})",
            hint="use `rnnrepl score` for long texts",
        )
    tr = trace(loaded.model, ids, start_id(tok))
    if as_json:
        click.echo(safe_json(_as_json(tr, tok, loaded.config, k)))
        return
    out = console()
    color = out.color_system is not None and not out.no_color
    for block in _blocks(tr, tok, loaded.config, k, units, color):
        out.print(block, soft_wrap=True, crop=False)


def _top(logp, tok, k: int) -> list[tuple[str, float]]:
    import numpy as np

    best = np.argsort(-logp, kind="stable")[:k]
    return [(tok.token_text(int(i)), float(np.exp(logp[i]))) for i in best]


def _blocks(tr, tok, cfg, k: int, units: int, color: bool):
    import numpy as np

    from rnnrepl.infer.insides import most_active
    from rnnrepl.ui import insides as ui

    shown = [most_active(layer, units) for layer in tr.layers]
    for n, (layer, idx) in enumerate(zip(tr.layers, shown, strict=True), 1):
        if len(idx) < layer.h.shape[1]:
            yield ui.units_line(n, idx, layer.h.shape[1])
    losses = tr.loss
    for t, (fed, target) in enumerate(zip(tr.inputs, tr.targets, strict=True)):
        how = f"one-hot #{fed}" if cfg.one_hot else f"embedding |x| {tr.input_norm[t]:.2f}"
        p = float(np.exp(-losses[t]))
        yield ui.step_header(t + 1, tok.token_text(fed), how, tok.token_text(target), p, losses[t])
        for n, (layer, idx) in enumerate(zip(tr.layers, shown, strict=True), 1):
            yield ui.unit_row(f"h{n}", layer.h[t, idx], color)
            if layer.c is not None:
                yield ui.unit_row(f"c{n}", layer.c[t, idx], color, shade=np.tanh)
            for name, values in layer.gates.items():
                shade = None if name in ("g", "n") else ui.gate_shade  # tanh gates span [-1, 1]
                yield ui.unit_row(f"{name}{n}", values[t, idx], color, shade=shade)
        yield ui.prob_bars(_top(tr.logp[t], tok, k))


def _as_json(tr, tok, cfg, k: int) -> dict:
    """Every unit's arrays (not only the ones the terminal view shows)."""
    import numpy as np

    small = cfg.vocab_size <= 1024
    steps = []
    for t, (fed, target) in enumerate(zip(tr.inputs, tr.targets, strict=True)):
        step = {
            "t": t + 1,
            "input": tok.token_text(fed),
            "input_id": fed,
            "input_norm": float(tr.input_norm[t]),
            "target": tok.token_text(target),
            "target_id": target,
            "p": float(np.exp(tr.logp[t, target])),
            "loss": float(tr.loss[t]),
            "top": [[s, p] for s, p in _top(tr.logp[t], tok, k)],
            "layers": [_layer_json(layer, t) for layer in tr.layers],
        }
        if small:
            step["y"] = np.exp(tr.logp[t]).round(6).tolist()
        steps.append(step)
    vocab = [tok.token_text(i) for i in range(cfg.vocab_size)] if small else None
    return {"arch": cfg.arch, "one_hot": cfg.one_hot, "level": tok.level, "vocab": vocab,
            "steps": steps}  # fmt: skip


def _layer_json(layer, t: int) -> dict:
    out = {"h": layer.h[t].round(6).tolist()}
    if layer.c is not None:
        out["c"] = layer.c[t].round(6).tolist()
    out |= {name: values[t].round(6).tolist() for name, values in layer.gates.items()}
    return out


@click.command()
@click.argument("model", shell_complete=complete_model)
@click.argument("text", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False))
@click.option("-k", type=click.IntRange(1, 50), default=4, show_default=True, help="Bars of y_t.")
@click.option(
    "--units",
    type=click.IntRange(1, 4096),
    default=UNITS,
    show_default=True,
    help="Units shown per layer; a larger layer shows its most active ones.",
)
@click.option("--json", "as_json", is_flag=True, help="Every unit's arrays, as JSON.")
def explain(model, text, file, k, units, as_json) -> None:
    """Inside the model at every step of TEXT: input x_t, hidden state h_t, y_t, J_t.

    Cells are white at 0, red towards +1, blue towards -1 (a gate: blue closed, red open);
    without colour (NO_COLOR, a pipe) the same rows as numbers."""
    run_explain(model, read_text(text, file), k, units, as_json)
