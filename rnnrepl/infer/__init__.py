"""Inference over a loaded model: the prefix state cache, distributions, word completions, streaming, scoring.

May import train, store, model, text, config, units and errors; never ui, repl or cli, nor click, rich or prompt_toolkit.
"""
