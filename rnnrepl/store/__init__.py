"""Model and resume files: the safetensors container with digests, atomic writes, the lock, the model home.

May import model, text, config, errors and package_data; never train, infer, ui, repl or cli.
"""
