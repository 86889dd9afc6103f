"""Model files (modelfile), resume files (resume), the safetensors container with digests, the model home.

May import model, text, config, atomic (writes, the output lock), errors and package_data; never train, infer, ui, repl or cli.
"""
