"""Option types shared by the commands: durations, byte sizes, finite floats, seeds."""

from __future__ import annotations

import math
import re

import click


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1h30m', '1.5h' -> seconds."""
    m = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or m is None or not any(m.groups()):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 5m or 1h30m")
    h, mnt, s = (float(g) if g else 0.0 for g in m.groups())
    seconds = h * 3600 + mnt * 60 + s
    if not 0 < seconds < math.inf:
        raise click.BadParameter("the duration must be positive and finite")
    return seconds


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value, param, ctx):
        return value if isinstance(value, float) else parse_duration(str(value))


class ByteSize(click.ParamType):
    """'1000', '64K', '1MiB' or '1M' (2^20), '1MB' (10^6, as coreutils reads it), '2G' -> bytes."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*", str(value), re.IGNORECASE)
        if m is None or float(m[1]) <= 0 or (m[3].lower().startswith("i") and not m[2]):
            self.fail(f"{value!r} is not a size like 500K, 64MB or 2GiB", param, ctx)
        power = " kmgt".index(m[2].lower() or " ")
        base = 1000 if m[3].lower() == "b" and m[2] else 1024
        return int(float(m[1]) * base**power)


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (nan passes every comparison)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


SEED = click.IntRange(-(2**63), 2**64 - 1)  # what torch's generators accept
DEVICES = click.Choice(["auto", "cpu", "cuda", "mps"])
cache_option = click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Mix the words the text already holds into the word suggestions (a cache LM; README "
    '"Keystrokes saved").',
)
