"""Keystroke savings of the default models, as a user gets them (issue #15, part 3).

    python bench/bench_ksr.py [--corpus shakespeare|wikitext2 ...] [--level char|word|bpe ...]
                              [--time 5m ...] [--cache on|off] [--limit-words N] [--out DIR]

For each corpus, level and budget: `rnnrepl train TRAIN --level L --time T -o MODEL` with every
other option at its default, then `rnnrepl eval MODEL TYPED --json` (bits per character of the
typed text) and `rnnrepl eval MODEL TYPED --ksr --json` (the keystroke simulator, 3 suggestions; `--cache off`
adds `--no-cache`: the model's words alone, without the word cache).
Everything goes through the CLI, as a user runs it.

- tiny Shakespeare: trained on its first 90% (rnnrepl holds out the last tenth of that for its
  own validation), typed: the last 10%, never seen in training or model selection.
- WikiText-2: trained on train.txt (the same held-out tenth), typed: the first 20,000 words of
  valid.txt (words as the simulator counts them).

A model already in --out is reused (delete it to retrain); each result is appended as one JSON
line to DIR/results.jsonl and the table is printed from all lines at the end. Run it alone on
the machine: `--time` budgets are wall-clock, so anything else running costs the model steps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import REPO, WIKI, char_split, rnnrepl_argv, run_timed

from rnnrepl.infer.ksr import limit_words

WIKI_WORDS = 20_000


def corpus_files(corpus: str, out: Path, limit: int | None) -> tuple[Path, Path]:
    """(training file, typed file) for a corpus, written once under `out`; the typed text cut
    to its first `limit` words when given."""
    train = out / f"{corpus}.train.txt"
    typed = out / f"{corpus}.typed{'' if limit is None else f'-{limit}'}.txt"
    if corpus == "shakespeare":
        head, tail = char_split()
    else:
        head = (WIKI / "train.txt").read_text(encoding="utf-8")
        tail = limit_words((WIKI / "valid.txt").read_text(encoding="utf-8"), WIKI_WORDS)
    for path, text in ((train, head), (typed, limit_words(tail, limit))):
        if not path.exists():
            path.write_text(text, encoding="utf-8")
    return train, typed


def cli_json(*args: str) -> dict:
    proc = run_timed([*rnnrepl_argv(), *args]).check()
    return {"json": json.loads(proc.stdout), "seconds": proc.seconds}


def train_once(corpus: str, level: str, budget: str, out: Path) -> float | None:
    """Train the model of one row unless it is already in `out`: its wall seconds (or None)."""
    model = out / f"{corpus}-{level}-{budget}.safetensors"
    if model.exists():
        return None
    train, _ = corpus_files(corpus, out, None)
    argv = ["train", str(train), "--level", level, "--time", budget, "-o", str(model)]
    print("  $ rnnrepl", " ".join(argv), flush=True)
    return run_timed([*rnnrepl_argv(), *argv]).check().seconds


def one_run(
    corpus: str, level: str, budget: str, out: Path, limit: int | None, cache: bool
) -> dict:
    _, typed = corpus_files(corpus, out, limit)
    model = out / f"{corpus}-{level}-{budget}.safetensors"
    trained = train_once(corpus, level, budget, out)
    bpc = cli_json("eval", str(model), str(typed), "--json")["json"]["total"]
    config = cli_json("info", str(model), "--json")["json"]["config"]
    flag = "--cache" if cache else "--no-cache"
    ksr = cli_json("eval", str(model), str(typed), "--ksr", "--json", flag)
    return {
        "corpus": corpus,
        "level": level,
        "time": budget,
        "model": f"{config['arch']} {config['layers']}x{config['hidden']}",
        "train_wall_seconds": trained,
        "bits_per_character": bpc["bits_per_character_of_text"],
        "unknown_tokens": bpc.get("unknown_tokens", 0),
        "cache": cache,
        "ksr_seconds": ksr["seconds"],
        **{k: ksr["json"]["total"][k] for k in ("ksr", "accepted_before_first_letter")},
        "keystrokes_per_word": ksr["json"]["total"]["keystrokes_per_word"],
        "words": ksr["json"]["total"]["words"],
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| corpus | level | --time | model | bits/char | cache | KSR | before 1st letter | keys/word | words |",
        "| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        unk = " (optimistic: <unk>)" if r["unknown_tokens"] else ""
        lines.append(
            f"| {r['corpus']} | {r['level']} | {r['time']} | {r.get('model', '?')}"
            f" | {r['bits_per_character']:.3f}{unk} | {'on' if r.get('cache') else 'off'}"
            f" | {r['ksr']:.1%} | {r['accepted_before_first_letter']:.1%}"
            f" | {r['keystrokes_per_word']:.2f} | {r['words']} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", nargs="+", default=["shakespeare", "wikitext2"])
    ap.add_argument("--level", nargs="+", default=["char", "word", "bpe"])
    ap.add_argument("--time", nargs="+", default=["5m", "16m"])
    ap.add_argument(
        "--train-only", action="store_true", help="train every model first (alone), type later"
    )
    ap.add_argument("--cache", choices=["on", "off"], default="on", help="the word cache")
    ap.add_argument("--limit-words", type=int, help="type only this many words (a quick look)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "ksr")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "results.jsonl"
    for budget in args.time:
        for corpus in args.corpus:
            for level in args.level:
                print(f"{corpus} {level} --time {budget}", flush=True)
                if args.train_only:
                    train_once(corpus, level, budget, args.out)
                    continue
                row = one_run(corpus, level, budget, args.out, args.limit_words, args.cache == "on")
                with log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"  bpc {row['bits_per_character']:.3f}  KSR {row['ksr']:.1%}", flush=True)
    if log.exists():
        rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        print(table(rows))


if __name__ == "__main__":
    main()
