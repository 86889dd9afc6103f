"""Time from a paste to its panel: 1 kB and 1 MB pasted into an empty REPL document.

Times what the REPL's worker thread does for the first panel after a paste (compute_view:
tokenize the document, feed the prefix cache, top-k), then the next keystroke, for the bundled
char and word models, and a 50,000-character run without spaces at word level (the tokenizer
used to take minutes on it). A context longer than the prefix cache's FEED_LIMIT tokens is read
from its last FEED_LIMIT tokens, so the 1 MB figure is close to the 1 kB one plus tokenizing.

    python bench/bench_paste.py [--out bench/results/paste.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
WORDS = (
    "the of and to in a is that it was for on as with his he be at by I this had not are but "
    "from or have an they which one you were her all she there would their we him been has "
    "when who will more no if out so said what up its about into than them can only other "
    "new some could time these two may then do first any my now such like our over man me "
    "even most made after also did many before must through back years where much your way "
    "well down should because each just those people Mr how too little state good very make "
    "world still own see men work long get here between both life being under never day same "
    "another know while last might us great old year off come since against go came right"
).split()


def text_of(size: int, seed: int = 0) -> str:
    """`size` characters of word-salad prose: words, commas, full stops, line breaks."""
    rng = random.Random(seed)
    out: list[str] = []
    n = 0
    while n < size:
        word = rng.choice(WORDS)
        word += rng.choice(("", "", "", "", "", ",", ".", ".\n"))
        out.append(word)
        n += len(word) + 1
    return " ".join(out)[:size]


def time_paste(loaded, text: str) -> dict:
    """Seconds to the panel of `text` on a fresh predictor, then to the next keystroke's."""
    from rnnrepl.infer.predictor import Predictor
    from rnnrepl.repl.state import compute_view

    p = Predictor(loaded)
    never = lambda: False  # noqa: E731
    start = time.perf_counter()
    compute_view(p, text, 10, never)
    panel = time.perf_counter() - start
    start = time.perf_counter()
    compute_view(p, text + "s", 10, never)
    key = time.perf_counter() - start
    return {"chars": len(text), "panel_s": round(panel, 3), "next_key_s": round(key, 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    from rnnrepl.store.modelfile import load_model

    torch.set_num_threads(1)  # the REPL's inference threads for small models on shared CPUs
    results = {}
    for name in ("shakespeare-char", "wikitext-word"):
        loaded = load_model(ROOT / "checkpoints" / f"{name}.safetensors")
        rows = {
            "1kB": time_paste(loaded, text_of(1_000)),
            "1MB": time_paste(loaded, text_of(1 << 20)),
        }
        if loaded.tokenizer.level == "word":
            rows["50k_no_spaces"] = time_paste(loaded, "abc.def-" * 6_250)
        rows["ratio_1MB_to_1kB"] = round(rows["1MB"]["panel_s"] / rows["1kB"]["panel_s"], 1)
        results[name] = rows
        for label, row in rows.items():
            print(f"{name:17} {label:14} {row}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
