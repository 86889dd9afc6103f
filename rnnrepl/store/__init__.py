"""Model and resume files: the safetensors container with digests, the model home and its listing.
May import model, text and the base; never train, infer, ui, repl or cli.
"""
