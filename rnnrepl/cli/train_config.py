"""Options -> configs for `rnnrepl train`: the size rules' suggestions, overridden by what was given."""

from __future__ import annotations

from collections.abc import Callable

from rnnrepl.config import ModelConfig, TrainConfig
from rnnrepl.errors import InputDataError, UsageError
from rnnrepl.train import sizing

MODEL_KEYS = ("arch", "layers", "hidden", "embed", "window", "dropout", "tie")
TRAIN_KEYS = ("seq_len", "batch_size", "optimizer", "lr", "weight_decay", "warmup", "min_lr_ratio")
# A measurement of the tokens a second this machine trains a model at
Probe = Callable[[ModelConfig, TrainConfig], float]
Configs = tuple[ModelConfig, TrainConfig]


# Given any of these, the user chose the model's geometry: its speed is not measured to choose it
GEOMETRY = ("layers", "hidden", "embed", "seq_len", "batch_size")


def make_configs(
    opts: dict,
    tok,
    n_train: int,
    n_val: int,
    probe: Probe | None = None,
    interrupted: dict | None = None,
) -> Configs:
    """The run's configs. `probe(model_cfg, train_cfg)`, where given, returns the tokens a second
    this machine trains a model at: asked only when the size rule would take the larger char GRU
    (sizing.speed_matters), whose tokens in the budget then decide between it and the short one,
    and its dropout. On --resume, `interrupted` (resumed_settings) holds what the speed decided in
    the interrupted run, taken where the probe would have been asked."""
    configs = _configs(opts, tok, n_train, n_val, tokens=None)
    level, arch, budget = opts["level"], opts["arch"], opts["time_limit"]
    geometry_given = any(opts.get(k) is not None for k in GEOMETRY)
    if geometry_given or not sizing.speed_matters(level, arch, n_train, budget):
        return configs
    if interrupted is not None:
        return _configs(opts | interrupted, tok, n_train, n_val, tokens=None)
    if probe is None:
        return configs
    return _configs(opts, tok, n_train, n_val, tokens=probe(*configs) * configs[1].time_limit)


def _configs(opts: dict, tok, n_train: int, n_val: int, tokens: float | None) -> Configs:
    given = {k: opts[k] for k in (*MODEL_KEYS, *TRAIN_KEYS) if opts.get(k) is not None}
    settings = sizing.suggest(opts["level"], opts["arch"], n_train, opts["time_limit"], tokens)
    if "seq_len" not in given and "batch_size" not in given:
        settings = sizing.fit_to_corpus(settings, n_train, n_val)
    if given.get("optimizer", settings["optimizer"]) != settings["optimizer"]:
        settings["weight_decay"] = None  # the size rule's decay was for its own optimiser
    settings.update(given)
    if settings["weight_decay"] is None:
        settings["weight_decay"] = 0.01 if settings["optimizer"] == "adamw" else 0.0
    if opts["embeddings"] and opts.get("embed") is None:
        from rnnrepl.text.vectors import vector_dim

        settings["embed"] = vector_dim(opts["embeddings"])
    settings["cutoffs"] = sizing.cutoffs(tok.size, opts.get("softmax", "auto"))
    one_hot = bool(opts.get("one_hot")) or opts.get("embed") == 0
    if one_hot:
        settings |= _one_hot_settings(opts, tok.size)
    stop_given = any(opts[k] for k in ("steps", "epochs", "time_limit"))
    try:
        model_cfg = ModelConfig(
            vocab_size=tok.size,
            cutoffs=settings["cutoffs"],
            one_hot=one_hot,
            **{k: settings[k] for k in MODEL_KEYS},
        )
        train_cfg = TrainConfig(
            seq_len=settings["seq_len"],
            batch_size=settings["batch_size"],
            optimizer=settings["optimizer"],
            lr=settings["lr"],
            weight_decay=settings["weight_decay"],
            warmup=settings["warmup"],
            min_lr_ratio=settings["min_lr_ratio"],
            clip=opts["clip"],
            steps=opts["steps"],
            epochs=opts["epochs"],
            time_limit=opts["time_limit"] if stop_given else sizing.DEFAULT_TIME,
            val_fraction=opts["val_fraction"],
            eval_every=eval_every(opts, settings),
            eval_seconds=opts.get("eval_seconds") or 0.0,
            eval_tokens=eval_tokens(opts, settings),
            patience=opts["patience"],
            seed=opts["seed"],
            precision=opts.get("precision_resolved", "fp32"),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return model_cfg, train_cfg


def _one_hot_settings(opts: dict, vocab: int) -> dict:
    """One-hot inputs: the embedding is the vocabulary-wide identity, so nothing can be tied to
    it, no pretrained vectors go into it, and the output is one full softmax."""
    from rnnrepl.config import ONE_HOT_MAX

    if vocab > ONE_HOT_MAX:
        raise UsageError(
            f"one-hot inputs need a vocabulary of at most {ONE_HOT_MAX:,} tokens; "
            f"this one has {vocab:,}",
            hint="learn an embedding instead (--embed N), or train at --level char",
        )
    if opts.get("embed") or opts.get("tie") or opts.get("embeddings"):
        raise UsageError(
            "one-hot inputs have no embedding to size, tie or initialise",
            hint="drop --embed N, --tie and --embeddings, or drop --one-hot",
        )
    if opts.get("softmax") == "adaptive":
        raise UsageError("one-hot models use a full softmax", hint="drop --softmax adaptive")
    return {"embed": vocab, "tie": False, "cutoffs": ()}


def eval_tokens(opts: dict, settings: dict) -> int:
    """Validation tokens per in-training pass. A pass over the whole split every few hundred
    steps grows with the corpus, and on 10 MB it cost as much as the training between passes.
    Capped at a thirty-second of the tokens trained in between, a pass (one stream at batch 1,
    3.5-4.5x slower per token than training's batches on the default char GRU) costs about what
    the batched eighth it replaced did."""
    if opts.get("eval_tokens") is not None:
        return opts["eval_tokens"]
    between = eval_every(opts, settings) * settings["batch_size"] * settings["seq_len"]
    return max(EVAL_TOKENS_MIN, between // 32)


def eval_every(opts: dict, settings: dict) -> int:
    """Steps between validations: --eval-every, else the default sizes' (800 for the char GRU
    under a quarter of an hour, whose short spans make steps of a quarter or half the usual
    tokens), else 200."""
    return opts["eval_every"] or settings.get("eval_every", 200)


EVAL_TOKENS_MIN = 16_384


def check_sizes(train_cfg: TrainConfig, n_train: int, n_val: int) -> None:
    need = train_cfg.batch_size * (train_cfg.seq_len + 1)
    if n_train < need:
        raise InputDataError(
            f"training text too short: {n_train} tokens, need at least {need} "
            f"(batch {train_cfg.batch_size} x span {train_cfg.seq_len} + 1)",
            hint="use a smaller --batch-size/--seq-len or more text",
        )
    if n_val < 2:
        raise InputDataError(
            f"validation text too short: {n_val} tokens, need at least 2",
            hint="raise --val-fraction or pass --val FILE",
        )


def measures_speed(opts: dict, device: str, many: bool) -> bool:
    """Whether the speed may decide the sizes: not on other devices than the CPU (the rules were
    measured on CPUs), with several processes (each would measure its own, and they must agree)
    or with --steps or --epochs but no --time (then the steps, not the seconds, decide the
    tokens)."""
    steps_bound = (opts["steps"] or opts["epochs"]) and not opts["time_limit"]
    return device == "cpu" and not many and not steps_bound


def speed_probe(opts: dict, device: str, many: bool, notes, n_train: int) -> Probe | None:
    """What make_configs asks for the speed of the larger char GRU, or None where nothing is
    measured (measures_speed). A resumed run measures nothing either: it keeps what the speed
    decided in the interrupted run (resumed_settings)."""
    if opts["resume"] or not measures_speed(opts, device, many):
        return None

    def dropout_clause(rule: ModelConfig, tokens: float) -> str:
        """Where the readings the budget buys change the budget's dropout, what to."""
        level, arch, budget = opts["level"], opts["arch"], opts["time_limit"]
        chosen = sizing.suggest(level, arch, n_train, budget, tokens)["dropout"]
        if chosen == rule.dropout:
            return ""
        return (
            f"; {'from' if chosen else 'under'} {sizing.MANY_EPOCHS:g} readings, dropout {chosen:g}"
        )

    def probe(model_cfg: ModelConfig, train_cfg: TrainConfig) -> float:
        from rnnrepl.train.probe import tokens_per_second

        rate = tokens_per_second(model_cfg, train_cfg, device)
        tokens, few = rate * train_cfg.time_limit, sizing.FEW_TOKENS
        notes.print(
            f"note: here the {model_cfg.describe()} trains at {rate:,.0f} tokens/s, "
            f"{tokens / 1e6:.1f} M in the budget ({tokens / n_train:.1f} readings of the text)"
            + (f"; under {few / 1e6:g} M, {_short_geometry()} learns more" if tokens < few else "")
            + ("" if opts.get("dropout") is not None else dropout_clause(model_cfg, tokens))
        )
        return rate

    return probe


def _short_geometry() -> str:
    g = sizing.SHORT_GEOMETRY
    return (
        f"{g['layers']}x{g['hidden']}, batch {g['batch_size']} x {g['seq_len']}, at lr {g['lr']:g}"
    )


def resumed_settings(opts: dict, device: str, many: bool, model_path) -> dict | None:
    """On --resume, where the speed may decide the sizes (measures_speed), the settings it decided
    in the interrupted run: the larger GRU or the short one, with or without dropout (only values
    in sizing.MEASURED). An unreadable state gives none, and is left for the resume to report."""
    from rnnrepl.errors import CheckpointError
    from rnnrepl.store import resume

    if not opts["resume"] or not measures_speed(opts, device, many):
        return None
    try:
        meta = resume.load_state_meta(model_path)
    except (CheckpointError, OSError):
        return {}
    saved = [meta.get(part) for part in ("model_config", "train_config")]
    pairs = [kv for part in saved if isinstance(part, dict) for kv in part.items()]
    return {
        k: v for k, v in pairs if isinstance(v, (int, float)) and v in sizing.MEASURED.get(k, ())
    }
