"""Model files (modelfile), resume files (resume), the safetensors container with digests, the model home.

May import model, text, config, atomic (writes, the output lock), errors, package_data and units; never
train, infer, ui, repl or cli.
"""
