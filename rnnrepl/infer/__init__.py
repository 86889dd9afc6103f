"""Inference on a loaded model: loading, prefix cache, distributions, completions, generation, scoring.
May import train, store, model, text and the base; never ui, repl, cli, click, rich or prompt_toolkit.
"""
