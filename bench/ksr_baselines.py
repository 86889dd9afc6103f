"""Keystroke savings of the two baselines of issue #15, typed by rnnrepl's own simulator.

    python bench/ksr_baselines.py --corpus shakespeare [--baseline kneser-ney] [--json]
    python bench/ksr_baselines.py --train FILE --text FILE [--limit-words N] [--suggestions 3]

Each baseline (bench/baselines.py) is built from the training text, then
``rnnrepl.infer.ksr.simulate`` types the held-out text with its suggestions, exactly as
``rnnrepl eval MODEL FILE --ksr`` types it with a model's. Corpora (bench/common.py's DATA):
shakespeare = tiny Shakespeare, first 90% by character trains, the last 10% is typed (the split
``rnnrepl train`` makes); wikitext2 = WikiText-2 train.txt trains, the first 20,000 words of
valid.txt are typed. Prints KSR, the share of words accepted before their first letter,
keystrokes per word and the seconds taken; progress every 2,000 words on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from baselines import FrequencyCompleter, KneserNeyCompleter
from common import WIKI, char_split

from rnnrepl.infer.ksr import limit_words, simulate

BASELINES = {"frequency": FrequencyCompleter, "kneser-ney": KneserNeyCompleter}
WIKI_WORDS = 20_000
INSTALL = "pip install -r bench/requirements-baselines.txt"


def corpus_texts(args: argparse.Namespace) -> tuple[str, str]:
    """(training text, text to type), before --limit-words."""
    if args.corpus == "shakespeare":
        return char_split()
    if args.corpus == "wikitext2":
        valid = (WIKI / "valid.txt").read_text(encoding="utf-8")
        return (WIKI / "train.txt").read_text(encoding="utf-8"), limit_words(valid, WIKI_WORDS)
    return Path(args.train).read_text(encoding="utf-8"), Path(args.text).read_text(encoding="utf-8")


def progress(start: float):
    def report(done: int, total: int) -> None:
        if done % 2000 == 0 or done == total:
            rate = done / max(time.perf_counter() - start, 1e-9)
            print(f"  {done:,}/{total:,} words, {rate:,.0f} words/s", file=sys.stderr, flush=True)

    return report


def run(name: str, train: str, text: str, n: int) -> dict:
    """Build one baseline on `train`, type `text` with it: the simulator's figures and seconds."""
    start = time.perf_counter()
    suggest = BASELINES[name](train)
    built = time.perf_counter()
    print(f"{name}: built in {built - start:.1f} s; typing", file=sys.stderr, flush=True)
    result = simulate(suggest, text, n, progress(built))
    done = time.perf_counter()
    return {
        "baseline": name,
        "suggestions": n,
        **result.to_dict(),
        "build_seconds": round(built - start, 2),
        "typing_seconds": round(done - built, 2),
    }


def line(row: dict) -> str:
    return (
        f"{row['baseline']}: KSR {row['ksr']:.2%}, first letter {row['accepted_before_first_letter']:.2%}"
        f", {row['keystrokes_per_word']:.3f} keys/word; {row['words']:,} words, "
        f"{row['characters']:,} chars, {row['keystrokes']:,} keys; "
        f"built {row['build_seconds']:.1f} s, typed {row['typing_seconds']:.1f} s"
    )


def has_nltk() -> bool:
    try:
        import nltk.lm  # noqa: F401
    except ImportError:
        return False
    return True


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", choices=["shakespeare", "wikitext2"])
    src.add_argument("--train", help="training text (with --text)")
    p.add_argument("--text", help="the text to type (with --train)")
    p.add_argument("--baseline", choices=[*BASELINES, "both"], default="both")
    p.add_argument("--limit-words", type=int, default=None, help="type only the first N words")
    p.add_argument("--suggestions", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.train and not args.text:
        p.error("--train needs --text")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    train, text = corpus_texts(args)
    text = limit_words(text, args.limit_words)
    names = list(BASELINES) if args.baseline == "both" else [args.baseline]
    if "kneser-ney" in names and not has_nltk():
        print(f"ksr_baselines.py: error: nltk is not installed — {INSTALL}", file=sys.stderr)
        return 2
    rows = [
        {"corpus": args.corpus or args.text, **run(name, train, text, args.suggestions)}
        for name in names
    ]
    for row in rows:
        print(json.dumps(row) if args.json else line(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
