"""The prefix cache of each branch of a REPL session (/fork, /switch), bounded.

A switch puts the cache of the branch being left aside and brings back the one of the branch
being entered, so the panel of a branch seen before costs no model step at all. Without a
saved cache (never entered since a fork, evicted, or the model changed) the shared
``PrefixCache`` re-feeds from its nearest state before the divergence: one grid state
(``prefix_cache.SPACING`` tokens apart) before the fork point at worst.

Snapshots share their tensors with the live cache and with each other, so a branch costs at
most the states it does not share: at most ``DENSE + MAX_SPARSE`` of them (an LSTM 2x512
state is 16 KB: under 5 MB per branch, ``MAX_BRANCHES`` branches kept).
"""

from __future__ import annotations

from collections import OrderedDict

from rnnrepl.infer.prefix_cache import PrefixCache, Snapshot

MAX_BRANCHES = 8  # snapshots kept; the least recently left is dropped first


class BranchStates:
    """Named snapshots of one PrefixCache, least recently used dropped beyond MAX_BRANCHES."""

    def __init__(self, cache: PrefixCache) -> None:
        self.cache = cache
        self.saved: OrderedDict[str, Snapshot] = OrderedDict()

    def keep(self, name: str, text: str) -> None:
        """Remember the cache, once it has read `text` (branch `name`'s document), as that
        branch's. Reading it costs only what a panel interrupted by the switch had left."""
        self.cache.read(text)
        self.saved[name] = self.cache.snapshot()
        self.saved.move_to_end(name)
        while len(self.saved) > MAX_BRANCHES:
            self.saved.popitem(last=False)

    def switch(self, leaving: str, text: str, going: str) -> bool:
        """Keep the cache as `leaving`'s (whose document is `text`), bring back `going`'s;
        True if it had one (a stale one, from before a reset, counts as none)."""
        snap = self.saved.pop(going, None)
        self.keep(leaving, text)
        return snap is not None and self.cache.restore(snap)
