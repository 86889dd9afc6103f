"""Quality per CPU-minute (issue 19): rnnrepl's defaults against the tuned plain LSTM, one corpus
and one budget, in rounds with the sides alternating; lever trials are extra rnnrepl variants.

Each round trains every side once, in a rotated order, each in its own process for the same
wall-clock seconds: rnnrepl through its CLI (`rnnrepl train FILE -o X --time T [flags]`), the
reference as bench/reference.py char --tuned. Every final model is scored by bench/evaluate.py
over the validation split (the last 10% by position, the split both sides hold out): what
`rnnrepl eval` computes. Prints each run as it ends, then the median per side; writes
bench/results/budget-CORPUS-T-DATE.json.

    python bench/bench_budget.py --time 71 [--corpus code] [--rounds 3] \\
        [--variant "lr5e-3=--lr 5e-3"] [--no-default] [--no-reference] [--val-tokens N]

`--corpus wikitext` is the word level: rnnrepl `train train.txt --level word --val valid.txt`,
the reference bench/reference.py word --tied (--tuned: its TUNED entry); both scored over the
whole valid.txt, rnnrepl's total nats divided by the example's token count (the two tokenize
slightly differently), printed as perplexity too.

A variant's flags may start with @DIR: that variant runs `python -m rnnrepl` from the source
tree DIR (a git worktree holding a change to a default), the others from the installed one.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import statistics
import tempfile
import time
from pathlib import Path

from bench_quality import reference, rnnrepl_train, score_rnnrepl
from common import BENCH, WIKI, alternate, char_split
from reference import corpus_path

REFERENCE = "reference (tuned)"
WORD = "wikitext"


def run_side(side: str, flags: list[str], args, corpus: Path, val_text: str, out: Path) -> dict:
    word = args.corpus == WORD
    if side == REFERENCE:
        extra = ["--tuned", "--corpus", args.corpus, "--val-tokens", str(args.val_tokens)]
        extra += ["--tied"] if word else []
        return reference("word" if word else "char", args.time, out.with_suffix(".json"), extra)
    extra = ["--time", f"{args.time:g}s", *[f for f in flags if not f.startswith("@")]]
    extra += ["--level", "word", "--val", str(WIKI / "valid.txt")] if word else []
    tree = next((f[1:] for f in flags if f.startswith("@")), None)
    res = rnnrepl_train([str(corpus)], extra, out, tree)
    res |= score_rnnrepl(out.with_suffix(".safetensors"), val_text, args.val_tokens)
    if word and not args.val_tokens:  # per token of the example's tokenization
        res["val_loss"] *= res["val_total_tokens"] / word_val_tokens()
    return res


@functools.cache
def word_val_tokens() -> int:
    """valid.txt's tokens as word_language_model counts them (words, '<eos>' per line)."""
    lines = (WIKI / "valid.txt").read_text(encoding="utf-8").splitlines()
    return sum(len(line.split()) + 1 for line in lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", type=float, required=True, help="training seconds")
    ap.add_argument("--corpus", default="shakespeare", help="shakespeare, code or a path")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variant", action="append", default=[], help='NAME="rnnrepl flags"')
    ap.add_argument("--no-default", action="store_true", help="leave out plain defaults")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--val-tokens", type=int, default=0, help="score only the first N (0 = all)")
    args = ap.parse_args()
    if args.corpus == WORD:
        corpus, val_text = WIKI / "train.txt", (WIKI / "valid.txt").read_text(encoding="utf-8")
    else:
        corpus = corpus_path(args.corpus)
        _, val_text = char_split(corpus)
    sides = {} if args.no_default else {"rnnrepl defaults": []}
    for v in args.variant:
        name, _, flags = v.partition("=")
        sides[name] = shlex.split(flags)
    if not args.no_reference:
        sides[REFERENCE] = []
    runs: list[dict] = []
    stamp = time.strftime("%Y-%m-%d-%H%M")
    name = Path(args.corpus).stem  # a path names its file
    log = BENCH / "results" / f"budget-{name}-{args.time:g}-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="rnnrepl-budget-") as tmp:
        for r in range(args.rounds):
            for side in alternate(list(sides), r):
                out = Path(tmp) / f"{len(runs)}"
                res = run_side(side, sides[side], args, corpus, val_text, out)
                runs.append(res | {"side": side, "round": r, "flags": sides[side]})
                seen = res.get("tokens_seen")
                print(f"[round {r + 1}] {side:24s} {res['val_loss']:.4f} nats/token"
                      f" (ppl {math.exp(res['val_loss']):.1f})"
                      f"  ({seen or 0:,} tokens; {res.get('model', res.get('config'))})",
                      flush=True)  # fmt: skip
                log.write_text(json.dumps({"args": vars(args), "runs": runs}, default=str))
    print(f"\n{args.corpus}, {args.time:g} s, {args.rounds} round(s):")
    for side in sides:
        losses = [r["val_loss"] for r in runs if r["side"] == side]
        print(f"  {side:24s} median {statistics.median(losses):.4f} "
              f"(ppl {math.exp(statistics.median(losses)):.1f})  "
              + " ".join(f"{x:.4f}" for x in losses))  # fmt: skip
    print(f"runs: {log}")


if __name__ == "__main__":
    main()
