"""Model and resume files: the safetensors container with digests, atomic writes, the lock, the model home.

May import model, text, config, errors, package_data and units; never train, infer, ui, repl or cli.
"""
