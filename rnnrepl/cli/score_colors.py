"""`score --color`: the text printed in its tokens' surprisal colours (README "Surprisal
colours"); the per-token table stays in oneshot.py."""

from __future__ import annotations

import click


def print_colored(console, tokenizer, text: str, rows, kind: str) -> None:
    """The text, each token in its bucket's colour, then the legend with the counts. Where
    the console shows no colour (NO_COLOR, a pipe) a note on stderr says so."""
    from rnnrepl.infer.buckets import scheme_for
    from rnnrepl.infer.surprisal import marks
    from rnnrepl.text.spans import token_spans
    from rnnrepl.ui.surprisal import bucket_counts, colored_text, legend

    scheme = scheme_for(kind, tokenizer.level)
    spans = token_spans(tokenizer, text)
    found = marks(spans, [r.rank for r in rows], [r.prob for r in rows], scheme)
    console.print(colored_text(text.rstrip("\n"), found), soft_wrap=True)
    console.print(legend(kind, scheme.labels, bucket_counts(found)), soft_wrap=True)
    if console.no_color or console.color_system is None:
        why = "NO_COLOR is set" if console.no_color else "standard output is not a terminal"
        click.echo(
            f"rnnrepl: note: no colours ({why}) — FORCE_COLOR=1 forces them; "
            "--json gives each token's rank",
            err=True,
        )
