"""Sections 4 and 5: one token at batch 1 with the state carried, and streamed generation.

The default model (bundled shakespeare-char, else a random 2x512 LSTM) is stepped through:
rnnrepl's fast path (rnnrepl.model.step, what Predictor uses for one token) with int8 recurrent
matrices (the default of `generate` and the REPL) and in exact fp32 (`--exact`), rnnrepl's
model.forward (what it uses for longer chunks), and a plain nn.Embedding -> nn.LSTM ->
nn.Linear holding the same weights, with torch's default oneDNN path and with it disabled.
Each at rnnrepl's REPL thread count and at torch's default. Variants take turns in blocks;
every step is timed on its own (token in -> logits out). Equal predictions: each variant's
step-by-step logits against the model's one-call forward (int8 is measured close, not equal).
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time

from common import alternate, row, spread

TARGET_MS = 0.15
GEN_TARGET = 5000.0


def plain_lstm(loaded):
    """nn.Embedding -> nn.LSTM -> nn.Linear with the weights of rnnrepl's model."""
    import torch
    from torch import nn

    model, cfg = loaded.model, loaded.config
    if cfg.arch != "lstm" or cfg.cutoffs:
        raise ValueError("the plain baseline needs an LSTM with a full softmax")
    embed = nn.Embedding(cfg.vocab_size, cfg.embed)
    lstm = nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
    out = nn.Linear(cfg.hidden if model.proj is None else cfg.embed, cfg.vocab_size)
    with torch.no_grad():
        embed.weight.copy_(model.embed.weight[: cfg.vocab_size])
        lstm.load_state_dict(model.rnn.state_dict())
        decoder = model.embed.weight[: cfg.vocab_size] if cfg.tie else model.decoder.weight
        out.weight.copy_(decoder)
        out.bias.copy_(model.decoder_bias)
    proj = model.proj

    def step(ids, state):
        h, state = lstm(embed(ids), state)  # (1, t, hidden)
        return out(proj(h) if proj is not None else h), state

    return step


def variants(loaded) -> dict:
    """name -> (step function, context manager factory)."""
    import torch

    from rnnrepl.model.step import fast_step

    plain = plain_lstm(loaded)
    no_mkldnn = lambda: torch.backends.mkldnn.flags(enabled=False)  # noqa: E731
    return {
        "rnnrepl fast path int8 (default)": (
            fast_step(loaded.model, int8=True),
            contextlib.nullcontext,
        ),
        "rnnrepl fast path fp32 (--exact)": (fast_step(loaded.model), contextlib.nullcontext),
        "rnnrepl model.forward": (loaded.model, contextlib.nullcontext),
        "plain nn.LSTM (oneDNN)": (plain, contextlib.nullcontext),
        "plain nn.LSTM (mkldnn off)": (plain, no_mkldnn),
    }


def token_ids(loaded, n: int):
    import torch
    from bench_keystroke import TEXT

    ids = loaded.tokenizer.encode(TEXT * (n // len(TEXT) + 2))[:n]
    return torch.tensor([ids])


def equality(loaded, steps: dict, n: int = 300) -> dict:
    """Max |logit difference| of each variant, stepped, against model(ids) in one call."""
    import torch

    ids = token_ids(loaded, n)
    with torch.inference_mode():
        expect, _ = loaded.model(ids)
        out = {}
        for name, (fn, ctx) in steps.items():
            state, rows = None, []
            with ctx():
                for t in range(n):
                    logits, state = fn(ids[:, t : t + 1], state)
                    rows.append(logits)
            got = torch.cat(rows, 1)
            out[name] = {
                "max_abs_diff": float((got - expect).abs().max()),
                "argmax_agree": float((got.argmax(-1) == expect.argmax(-1)).float().mean()),
            }
    return out


def time_block(fn, ctx, ids, state, start: int, count: int) -> tuple[list[float], tuple]:
    import torch

    times = []
    with torch.inference_mode(), ctx():
        for t in range(start, start + count):
            x = ids[:, t % ids.shape[1] : t % ids.shape[1] + 1]
            begin = time.perf_counter_ns()
            _, state = fn(x, state)
            times.append((time.perf_counter_ns() - begin) / 1e3)  # microseconds
    return times, state


def step_latency(quick: bool, **_) -> dict:
    import torch
    from bench_keystroke import load_model

    from rnnrepl.repl.state import inference_threads

    loaded, described = load_model(None)
    steps = variants(loaded)
    rounds, block = (2, 60) if quick else (10, 300)
    default_threads = torch.get_num_threads()
    repl_threads = inference_threads(loaded.model.num_parameters()) or default_threads
    thread_counts = sorted({repl_threads, default_threads})
    ids = token_ids(loaded, 1000)
    keys = [(name, th) for name in steps for th in thread_counts]
    times = {k: [] for k in keys}
    states = dict.fromkeys(keys)
    for r in range(rounds):
        for key in alternate(keys, r):
            torch.set_num_threads(key[1])
            fn, ctx = steps[key[0]]
            t, states[key] = time_block(fn, ctx, ids, states[key], r * block, block)
            times[key].extend(t[5:])  # the first steps after a switch warm caches
    torch.set_num_threads(repl_threads)
    equal = equality(loaded, steps, 100 if quick else 300)
    torch.set_num_threads(default_threads)
    rows = []
    for (name, th), values in times.items():
        s = spread(values)
        ours = name.startswith("rnnrepl fast")
        rows.append(
            row(
                "4 inference step",
                f"batch-1 step, {name}, {th} thread(s)",
                s["median"] / 1e3,
                "ms median",
                target=f"≤ {TARGET_MS} ms" if ours else "",
                met=s["median"] / 1e3 <= TARGET_MS if ours else None,
                note=f"p99 {s['p99'] / 1e3:.3f} ms; max |Δlogit| vs model "
                f"{equal[name]['max_abs_diff']:.2e}, argmax agree {equal[name]['argmax_agree']:.3f}",
            )
        )
    details = {"model": described, "threads": thread_counts, "repl_threads": repl_threads,
               "us": {f"{n} @{th}": spread(v) for (n, th), v in times.items()},
               "equality": equal}  # fmt: skip
    notes = [
        f"Inference step: {described}; one token in, logits out, state carried; variants and "
        "thread counts take turns in blocks. max |Δlogit|: each variant stepped token by token "
        "against the model's one-call forward over the same tokens.",
    ]
    return {"rows": rows, "details": details, "notes": notes}


def plain_generation(loaded, tokens: int) -> float:
    """A plain sampling loop over the plain nn.LSTM (temperature 0.8, multinomial)."""
    import torch

    step, gen = plain_lstm(loaded), torch.Generator().manual_seed(1)
    ids, state = token_ids(loaded, 200), None
    start = time.perf_counter()
    with torch.inference_mode():
        logits, state = step(ids, state)
        for _ in range(tokens):
            probs = torch.softmax(logits[0, -1] / 0.8, -1)
            nxt = torch.multinomial(probs, 1, generator=gen)
            logits, state = step(nxt.view(1, 1), state)
    return tokens / (time.perf_counter() - start)


def generation(quick: bool, **_) -> dict:
    import torch
    from bench_keystroke import generation_speed, load_model

    from rnnrepl.repl.state import inference_threads

    loaded, described = load_model(None)
    rounds, tokens = (2, 500) if quick else (5, 2000)
    default = torch.get_num_threads()
    repl = inference_threads(loaded.model.num_parameters()) or default
    exact = functools.partial(generation_speed, int8=False)
    sides = {
        f"Predictor.stream int8, {default} thread(s) (`rnnrepl generate`)": (
            generation_speed,
            default,
        ),
        f"Predictor.stream int8, {repl} thread(s) (REPL)": (generation_speed, repl),
        f"Predictor.stream fp32, {default} thread(s) (`generate --exact`)": (exact, default),
        f"plain nn.LSTM sampling loop, {default} thread(s)": (plain_generation, default),
    }
    rates = {name: [] for name in sides}
    for r in range(rounds):
        for name in alternate(list(sides), r):
            fn, threads = sides[name]
            torch.set_num_threads(threads)
            rates[name].append(fn(loaded, tokens))
    torch.set_num_threads(default)
    plain = statistics.median(rates[next(n for n in sides if n.startswith("plain"))])
    rows = []
    for name, values in rates.items():
        ours = name.startswith("Predictor")
        v = statistics.median(values)
        rows.append(
            row(
                "5 generation",
                f"generation tokens/s, {name}",
                v,
                "tokens/s",
                baseline=plain if ours else None,
                baseline_label="plain nn.LSTM loop" if ours else "",
                target=f"≥ {GEN_TARGET:,.0f}" if ours else "",
                met=v >= GEN_TARGET if ours else None,
                note=f"median of {len(values)} x {tokens} tokens, sampling included",
            )
        )
    return {"rows": rows, "details": {"model": described, "rates": rates}}
