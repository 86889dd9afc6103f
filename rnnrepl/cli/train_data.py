"""Reading the training text for `rnnrepl train`: files -> tokenizer -> train/validation ids,
with one line of what was read and skipped, and the notes a user should see."""

from __future__ import annotations

import hashlib
import os
import sys

from rich.console import Console

from rnnrepl.errors import UsageError
from rnnrepl.ui.textsafe import safe_text


def prepare_data(opts: dict, err: Console):
    """Read inputs, build the tokenizer, encode, split. Returns (tokenizer, train_ids, val_ids, summary).
    Files go through the token cache (encoded once, then mapped from disk); stdin is read whole."""
    if opts.get("vocab_size") and opts["level"] != "bpe":
        raise UsageError("--vocab-size needs --level bpe", hint="or cap words with --max-vocab")
    if opts["level"] != "word" and (opts["min_freq"] != 1 or opts["max_vocab"]):
        hint = "size a BPE vocabulary with --vocab-size" if opts["level"] == "bpe" else "drop them"
        raise UsageError("--min-freq and --max-vocab need --level word", hint=hint)
    if opts.get("reverse") and opts["level"] != "char":
        raise UsageError(
            "--reverse trains a backward character model: it needs --level char",
            hint="drop --level, or drop --reverse",
        )
    in_memory = "-" in opts["inputs"] or opts["val_file"] == "-"
    prepare = _prepare_in_memory if in_memory else _prepare_cached
    tok, train_ids, val_ids, summary = prepare(opts, err)
    summary["direction"] = "backward" if opts.get("reverse") else "forward"
    return tok, train_ids, val_ids, summary


def _corpus_options(opts: dict):
    from rnnrepl.text.corpus_ids import CorpusOptions

    return CorpusOptions(
        inputs=tuple(opts["inputs"]),
        level=opts["level"],
        lowercase=opts["lowercase"],
        min_freq=opts["min_freq"],
        max_vocab=opts["max_vocab"],
        vocab_size=opts.get("vocab_size"),
        val_fraction=opts["val_fraction"],
        val_file=opts["val_file"],
        encoding=opts["encoding"],
        skip_bad=opts.get("skip_bad", False),
        reverse=bool(opts.get("reverse")),
    )


def _prepare_cached(opts: dict, err: Console):
    from rnnrepl.store.home import tokens_home
    from rnnrepl.text.corpus_ids import cached_corpus_ids

    got = cached_corpus_ids(_corpus_options(opts), tokens_home(), _encode_processes())
    report, meta = got.report, got.meta
    _print_reading(report, err, opts.get("verbose", False))
    if report.crlf_normalised:
        err.print(f"note: normalised {report.crlf_normalised} CRLF/CR line endings to LF")
    for entry in got.entries:
        _print_cache_note(entry, err)
    _print_sample_note(meta.get("bpe_sample"), err)
    _warn_if_small(meta["count"], got.tokenizer.level, err)
    split = f"the file {opts['val_file']}" if opts["val_file"] else meta["validation"]
    summary = _summary(report, meta["corpus_sha256"], got.train, got.val, split)
    unk = meta["unknown"] / meta["n_train"] if meta["n_train"] else 0.0
    summary["unknown_rate"] = round(unk, 6)
    if "bpe_sample" in meta:  # how much text the vocabulary was learnt from
        summary["bpe_sample"] = meta["bpe_sample"]
    return got.tokenizer, got.train, got.val, summary


def _print_sample_note(sample: dict | None, err: Console) -> None:
    """One line when a BPE vocabulary was learnt from a sample of the corpus, not all of it."""
    if sample and sample.get("windows"):
        share = 100 * sample["chars"] / max(sample["of"], 1)
        err.print(
            f"note: the BPE vocabulary was learnt from a sample of {sample['chars']:,} of the "
            f"corpus's {sample['of']:,} characters ({share:.1f}%, {sample['windows']:,} windows "
            "spread over every file), in bounded memory"
        )


def _encode_processes() -> int | None:
    """RNNREPL_ENCODE_PROCESSES: how many worker processes encode (0: none); unset: by size."""
    value = os.environ.get("RNNREPL_ENCODE_PROCESSES", "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > 64:
        raise UsageError(
            f"RNNREPL_ENCODE_PROCESSES must be a number of processes from 0 to 64, not {value!r}",
            hint="unset it to use every core for a large corpus",
        )
    return int(value)


def _print_cache_note(entry, err: Console) -> None:
    """One line: the ids were reused from the cache, or encoded into it (after a damaged entry)."""
    where = safe_text(str(entry.folder), one_line=True)
    if entry.reused:
        line = f"note: token ids reused from the cache {where}"
    else:
        seconds = entry.meta.get("encode_seconds", 0.0)
        processes = entry.meta.get("encode_processes", 0)
        on = f" on {processes} processes" if processes else ""
        line = f"note: encoded {entry.meta['count']:,} tokens in {seconds:.1f}s{on} into the token cache {where}"
        if entry.damage:
            line += f" (the entry there was damaged: {safe_text(entry.damage, one_line=True)})"
    err.print(line, markup=False, soft_wrap=True)


def _summary(report, corpus_sha256: str, train_ids, val_ids, split: str) -> dict:
    return {
        "corpus_files": [str(f) for f in report.files][:20],
        "corpus_chars": report.chars,
        "corpus_sha256": corpus_sha256,
        "train_tokens": int(len(train_ids)),
        "val_tokens": int(len(val_ids)),
        "validation": split,
    }


def _prepare_in_memory(opts: dict, err: Console):
    from rnnrepl.text.corpus_ids import make_tokenizer
    from rnnrepl.text.files import MAX_STDIN, CappedInput, load_corpus
    from rnnrepl.text.reverse import reverse_text
    from rnnrepl.text.tokens import encode_corpus, encode_files, split_per_file

    text, report = load_corpus(
        list(opts["inputs"]),
        encoding=opts["encoding"],
        stdin=CappedInput(sys.stdin.buffer, opts.get("max_stdin") or MAX_STDIN),
        skip_bad=opts.get("skip_bad", False),
    )
    _print_reading(report, err, opts.get("verbose", False))
    if report.crlf_normalised:
        err.print(f"note: normalised {report.crlf_normalised} CRLF/CR line endings to LF")
    sha = _sha(text)  # of the text as read, a backward model's too (as the cached path)
    if opts.get("reverse"):  # each file's text as a whole (load_corpus's ends say where)
        bounds = zip([0, *report.ends[:-1]], report.ends, strict=True)
        text = "".join(reverse_text(text[a:b]) for a, b in bounds)
    tok = make_tokenizer(text, _corpus_options(opts))
    ids, token_ends = encode_files(text, report.ends, tok)
    _warn_if_small(len(ids), tok.level, err)
    if opts["val_file"]:
        val_text, _ = load_corpus([opts["val_file"]], encoding=opts["encoding"])
        val_text = reverse_text(val_text) if opts.get("reverse") else val_text
        train_ids, val_ids = ids, encode_corpus(val_text, tok)
        split = f"the file {opts['val_file']}"
    else:
        train_ids, val_ids, split = split_per_file(ids, token_ends, opts["val_fraction"])
        split += " as read backwards: the start as written" if opts.get("reverse") else ""
    del ids  # several files: the splits are copies, and the whole need not stay in memory
    summary = _summary(report, sha, train_ids, val_ids, split)
    summary["unknown_rate"] = round(float((train_ids == 0).mean()) if len(train_ids) else 0.0, 6)
    del text
    return tok, train_ids, val_ids, summary


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
