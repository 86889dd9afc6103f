"""Learning as you type: small gradient steps on the text a user keeps, so that the model's
suggestions adapt to the person (as predictive keyboards adapt their n-gram models).

The recipe, after each finished turn (``Adapter.add``):

- the window: the last ``window`` tokens of the document up to the user's last token, read from
  a fresh state (truncated BPTT from the start of the window); the targets are the tokens the
  user typed (a token is the user's when it begins inside text the user typed), never the
  model's own continuations (learning from its own samples would only make it surer of what it
  already predicts) nor <unk>. The earlier turns inside the window are the replay.
- ``steps`` steps of Adam (``lr``), each over the whole window, with the gradient norm clipped
  to ``clip``; dropout stays off (the model stays in eval mode).
- a step whose loss or gradient is not finite is skipped (the weights stay as they were).

The work is cut into slices (``Adapter.work``): the forward and backward pass of one chunk of
``chunk`` tokens (gradients accumulate over the chunks, the state is carried detached), the
update (with the Predictor's rebuild, by the caller), and at the end a forward pass per chunk
for the loss after the round. Each slice is short, so the REPL's model thread can serve a
keystroke's panel between two of them. Nothing here prints.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from rnnrepl.errors import ResourceError, UsageError
from rnnrepl.model.lm import LanguageModel, State
from rnnrepl.store.home import MODEL_SUFFIX, is_plain_name, models_home
from rnnrepl.store.modelfile import LoadedModel, save_model
from rnnrepl.text.spans import token_spans

TAIL_CHARS = 64  # characters read per window token at most: a long document is cut first


@dataclass(frozen=True)
class LearnConfig:
    """How the model learns from a finished turn (see the module docstring)."""

    steps: int = 2  # gradient steps per finished turn
    lr: float = 3e-4  # Adam's learning rate
    window: int = 128  # tokens read per step: the latest turn and earlier text (replay)
    chunk: int = 8  # tokens per slice of work
    clip: float = 1.0  # the gradient's largest norm


@dataclass(frozen=True)
class Window:
    """Inputs and targets of one round: x[i] is read, y[i] is the token after it."""

    x: list[int]
    y: list[int]
    own: list[bool]  # y[i] is the user's (a target)
    new: int  # the user's tokens in the latest turn (counted once, not at each replay)


@dataclass
class LearnStats:
    """What learning did since it began (or since /forget)."""

    turns: int = 0  # rounds finished
    tokens: int = 0  # the user's tokens learned from, each counted once
    steps: int = 0  # gradient steps taken
    skipped: int = 0  # steps skipped: loss or gradient not finite
    before: float = math.nan  # mean loss on the latest window before its round
    after: float = math.nan  # ... and after it
    last: int = 0  # the user's tokens in the latest round


@dataclass
class Outcome:
    """What one slice of work did."""

    changed: bool = False  # the weights changed: everything derived from them is stale
    more: bool = False  # work remains
    skipped: str = ""  # a step was skipped, and why
    finished: LearnStats | None = None  # a round ended: the stats after it


def learning_window(
    tokenizer, start_id: int, text: str, user: list[tuple[int, int]], size: int
) -> Window | None:
    """The window to learn from after a turn: `text` is the document, `user` the character
    ranges the user typed (in order, the latest last). None when the user typed no token."""
    cut = _tail_start(text, size)
    tail = text[cut:]
    ids = tokenizer.encode(tail)
    starts = [cut + s for s, _ in token_spans(tokenizer, tail)]
    firsts = [a for a, _ in user]
    own = [t != 0 and _inside(firsts, user, s) for t, s in zip(ids, starts, strict=True)]
    if not any(own):
        return None
    end = max(i for i, o in enumerate(own) if o) + 1
    seq = ([start_id] if cut == 0 else []) + ids[:end]  # the text starts after start_id
    skip = end - (len(seq) - 1)  # the tokens that are read but not predicted: 0 or 1
    lo = max(0, len(seq) - 1 - size)
    own, starts = own[skip:end][lo:], starts[skip:end][lo:]
    new = sum(o and s >= firsts[-1] for o, s in zip(own, starts, strict=True))
    return Window(seq[lo:-1], seq[lo + 1 :], own, new)


def _tail_start(text: str, size: int) -> int:
    """Where to start reading a long text: at a whitespace, at most size * TAIL_CHARS back
    (tokens never span whitespace, so the tail encodes as the text's end does)."""
    cut = len(text) - size * TAIL_CHARS
    if cut <= 0:
        return 0
    space = next((i for i in range(cut, len(text)) if text[i].isspace()), cut)
    return space


def _inside(starts: list[int], ranges: list[tuple[int, int]], pos: int) -> bool:
    i = bisect.bisect_right(starts, pos) - 1
    return i >= 0 and pos < ranges[i][1]


@dataclass
class _Round:
    """One window's steps in progress."""

    x: Tensor  # (1, n)
    y: Tensor  # (1, n)
    own: Tensor  # (1, n) bool
    new: int
    step: int = 0
    at: int = 0  # the next chunk's first position
    state: State | None = None
    loss: float = 0.0  # this step's loss so far (sum over the chunks done)
    before: float = math.nan
    skip: str = ""  # why this step is being skipped, if it is
    losses: list[float] = field(default_factory=list)


class Adapter:
    """Learns in place on `model` (the Predictor's own: everything derived from its weights
    must be rebuilt after a slice that changed them). Keeps the weights from before learning
    began, for ``forget``. All calls on one thread (the REPL's model thread)."""

    def __init__(self, model: LanguageModel, cfg: LearnConfig | None = None) -> None:
        self.model = model
        self.cfg = cfg or LearnConfig()
        self.original = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.stats = LearnStats()
        self._rounds: deque[_Round] = deque()
        self._optimizer = Adam(self.params, self.cfg.lr)

    @property
    def busy(self) -> bool:
        return bool(self._rounds)

    @property
    def changed(self) -> bool:
        """Do the weights differ from those before learning began?"""
        return self.stats.steps > 0

    def add(self, window: Window) -> None:
        """Queue a round of steps on `window` (run by ``work``)."""
        device = self.model.embed.weight.device
        x, y, own = (torch.tensor([v], device=device) for v in (window.x, window.y, window.own))
        self._rounds.append(_Round(x, y, own, window.new))

    def work(self) -> Outcome:
        """One slice: a chunk's forward and backward pass, an update, or the final loss."""
        if not self._rounds:
            return Outcome()
        r = self._rounds[0]
        if r.at < r.x.shape[1]:
            self._chunk(r, learn=r.step < self.cfg.steps)
            return Outcome(more=True)
        if r.step < self.cfg.steps:
            return self._update(r)
        self._finish(r)
        return Outcome(more=self.busy, finished=dataclasses.replace(self.stats))

    def forget(self) -> None:
        """The weights from before learning began, bitwise; the optimizer and stats anew."""
        with torch.no_grad():
            for name, value in self.model.state_dict().items():
                value.copy_(self.original[name])
        self._rounds.clear()
        self._optimizer = Adam(self.params, self.cfg.lr)
        self.stats = LearnStats()

    def drop(self) -> None:
        """Abandon the queued work (an error): gradients cleared, weights as they are."""
        self._rounds.clear()
        self._optimizer.zero_grad()

    # ---- the slices ---------------------------------------------------------------------------
    def _chunk(self, r: _Round, learn: bool) -> None:
        """One chunk's forward pass, and its backward pass if `learn` (else the loss after
        the round's steps)."""
        lo, hi = r.at, min(r.at + self.cfg.chunk, r.x.shape[1])
        r.at = hi
        if r.skip:
            return
        count = int(r.own.sum())
        with torch.set_grad_enabled(learn), torch.backends.cudnn.flags(enabled=False):
            h, state = self.model.features(r.x[:, lo:hi], r.state)  # (1, c, feat)
            mask = r.own[0, lo:hi]
            if bool(mask.any()):
                logits = self.model.head(h[:, mask])  # (1, k, vocab)
                loss = torch.nn.functional.cross_entropy(
                    logits[0].float(), r.y[0, lo:hi][mask], reduction="sum"
                )
                if learn and not torch.isfinite(loss):
                    r.skip = "the loss is not finite"
                    return
                if learn:  # the model stays in eval mode: cuDNN's RNN backward is off
                    (loss / count).backward()
                r.loss += float(loss.detach())
        r.state = self.model.detach_state(state)

    def _update(self, r: _Round) -> Outcome:
        """Clip, check, step: the end of one gradient step (the weights change)."""
        mean = r.loss / max(1, int(r.own.sum()))
        if r.step == 0:
            r.before = mean
        skip = r.skip
        if not skip:
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip)
            skip = "" if torch.isfinite(norm) else "the gradient is not finite"
        if not skip:
            self._optimizer.step()
            self.stats.steps += 1
        else:
            self.stats.skipped += 1
        self._optimizer.zero_grad()
        r.step, r.at, r.state, r.loss, r.skip = r.step + 1, 0, None, 0.0, ""
        return Outcome(changed=not skip, more=True, skipped=skip)

    def _finish(self, r: _Round) -> None:
        """The round counted, with its loss before and after (its last pass)."""
        self._rounds.popleft()
        self.stats.turns += 1
        self.stats.tokens += r.new
        self.stats.last = r.new
        self.stats.before, self.stats.after = r.before, r.loss / max(1, int(r.own.sum()))


class Adam:
    """Adam (Kingma & Ba), written out: torch.optim's first optimizer imports torch._dynamo,
    which took 8-12 s on a busy two-core machine, and /learn on must answer at once."""

    def __init__(self, params: list[Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t  # bias corrections
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def trainable(model: LanguageModel) -> str:
    """Why `model` cannot learn in place ('' if it can): it needs float32 weights that take
    gradients (every model rnnrepl loads has them; --int8 quantises a copy)."""
    params = list(model.parameters())
    if not params or not all(p.requires_grad for p in params):
        return "its weights are frozen"
    odd = {str(p.dtype).removeprefix("torch.") for p in params if p.dtype != torch.float32}
    return f"its weights are {', '.join(sorted(odd))}, not float32" if odd else ""


# ---- the adapted model on disk ----------------------------------------------------------------
def adapted_target(spec: str) -> Path:
    """Where /save-model writes: a bare NAME in the model home, anything else as a path
    (NAME.safetensors when the suffix is missing)."""
    if is_plain_name(spec):
        return models_home() / (spec + MODEL_SUFFIX)
    p = Path(spec).expanduser()
    return p if p.name.endswith(MODEL_SUFFIX) else p.with_name(p.name + MODEL_SUFFIX)


def save_adapted(loaded: LoadedModel, stats: LearnStats, spec: str, force: bool) -> Path:
    """Write the adapted model (its training summary noting how it was adapted) through the
    store's atomic writer. Never over the file it was loaded from; over another existing file
    only if `force`."""
    target = adapted_target(spec)
    if target.exists() and loaded.path.exists() and target.samefile(loaded.path):
        raise UsageError(
            f"{target} is the model file that was loaded; it never changes unasked",
            hint="save under another name",
        )
    if target.is_dir() or (target.exists() and not force):
        raise UsageError(
            f"{target} exists", hint="add --force to replace it, or choose another name"
        )
    if target.parent == models_home():
        target.parent.mkdir(parents=True, exist_ok=True)
    elif not target.parent.is_dir():
        raise ResourceError(
            f"no directory {target.parent}", hint="create it or choose another path"
        )
    adapted = {"from": loaded.path.name, "tokens": stats.tokens, "steps": stats.steps}
    training = dict(loaded.training) | {"adapted": adapted | {"turns": stats.turns}}
    return save_model(target, loaded.model, loaded.tokenizer, training)
