"""Reading the training text for `rnnrepl train`: files -> tokenizer -> train/validation ids,
with one line of what was read and skipped, and the notes a user should see."""

from __future__ import annotations

import hashlib
import sys

from rich.console import Console

from rnnrepl.errors import UsageError
from rnnrepl.ui.textsafe import safe_text


def prepare_data(opts: dict, err: Console):
    """Read inputs, build the tokenizer, encode, split. Returns (tokenizer, train_ids, val_ids, summary)."""
    from rnnrepl.text.files import MAX_STDIN, CappedInput, load_corpus
    from rnnrepl.text.tokenizers import build_tokenizer
    from rnnrepl.text.tokens import count_symbols, encode_corpus, encode_files, split_per_file

    if opts.get("vocab_size") and opts["level"] != "bpe":
        raise UsageError("--vocab-size needs --level bpe", hint="or cap words with --max-vocab")
    if opts["level"] != "word" and (opts["min_freq"] != 1 or opts["max_vocab"]):
        hint = "size a BPE vocabulary with --vocab-size" if opts["level"] == "bpe" else "drop them"
        raise UsageError("--min-freq and --max-vocab need --level word", hint=hint)
    text, report = load_corpus(
        list(opts["inputs"]),
        encoding=opts["encoding"],
        stdin=CappedInput(sys.stdin.buffer, opts.get("max_stdin") or MAX_STDIN),
        skip_bad=opts.get("skip_bad", False),
    )
    _print_reading(report, err, opts.get("verbose", False))
    if report.crlf_normalised:
        err.print(f"note: normalised {report.crlf_normalised} CRLF/CR line endings to LF")
    if opts["level"] == "bpe":
        tok = _train_bpe(text, opts)
    else:
        counts = count_symbols(text, opts["level"], opts["lowercase"])
        tok = build_tokenizer(
            opts["level"], counts, opts["lowercase"], opts["min_freq"], opts["max_vocab"]
        )
    ids, token_ends = encode_files(text, report.ends, tok)
    _warn_if_small(len(ids), tok.level, err)
    if opts["val_file"]:
        val_text, _ = load_corpus([opts["val_file"]], encoding=opts["encoding"])
        train_ids, val_ids = ids, encode_corpus(val_text, tok)
        split = f"the file {opts['val_file']}"
    else:
        train_ids, val_ids, split = split_per_file(ids, token_ends, opts["val_fraction"])
    del ids  # several files: the splits are copies, and the whole need not stay in memory
    unk = float((train_ids == 0).mean()) if len(train_ids) else 0.0
    summary = {
        "corpus_files": [str(f) for f in report.files][:20],
        "corpus_chars": report.chars,
        "corpus_sha256": _sha(text),
        "train_tokens": int(len(train_ids)),
        "val_tokens": int(len(val_ids)),
        "validation": split,
        "unknown_rate": round(unk, 6),
    }
    del text
    return tok, train_ids, val_ids, summary


def _train_bpe(text: str, opts: dict):
    """A byte-level BPE learnt from the training text (see text/bpe.py for the size rule)."""
    from rnnrepl.text.bpe import BpeVocab, default_vocab_size, safe_chunks

    size = opts.get("vocab_size") or default_vocab_size(len(text))
    return BpeVocab.train(safe_chunks(text, 1 << 20), size, lowercase=opts["lowercase"])


# Below this many tokens a model can do little but memorise its text.
SMALL_CORPUS_TOKENS = 10_000


def _warn_if_small(n_tokens: int, level: str, err: Console) -> None:
    if n_tokens < SMALL_CORPUS_TOKENS:
        unit = "characters" if level == "char" else "tokens"
        err.print(
            f"warning: tiny corpus: {n_tokens:,} {unit}; from under {SMALL_CORPUS_TOKENS:,} a "
            "model learns little beyond repeating it — pass more text"
        )


def _print_reading(report, err: Console, verbose: bool) -> None:
    """One line of what was read and skipped; each bad file skipped; with verbose, every file."""
    if verbose:
        for path, size in zip(report.files, report.sizes, strict=True):
            where = "<stdin>" if path == "-" else path
            err.print(f"  read {safe_text(where)} ({_size(size)})", markup=False, soft_wrap=True)
    for s in report.skipped:
        if verbose or s.reason != "extension":
            why = f"by extension {s.detail}" if s.reason == "extension" else s.detail
            prefix = "  " if s.reason == "extension" else "warning: "
            line = f"{prefix}skipped {safe_text(s.path)}: {safe_text(why)}"
            err.print(line, markup=False, soft_wrap=True)
    n = len(report.files)
    line = f"read {n:,} file{'' if n == 1 else 's'} ({_size(report.bytes)})"
    if report.skipped:
        counts: dict[str, int] = {}
        for s in report.skipped:
            counts[s.reason] = counts.get(s.reason, 0) + 1
        parts = [f"{c} by extension" if r == "extension" else f"{c} {r}" for r, c in counts.items()]
        line += f"; skipped {len(report.skipped)}: {', '.join(parts)}"
    err.print(line, markup=False, soft_wrap=True)


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} bytes"
    unit, scale = next(
        (u, s) for u, s in (("kB", 1e3), ("MB", 1e6), ("GB", 1e9)) if n < s * 1e3 or u == "GB"
    )
    return f"{n / scale:.1f} {unit}"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
