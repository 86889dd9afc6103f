"""Ids in, logits out: the language models, the batch-1 step, sampling, device and precision choice.
May import the base (config, units, atomic, package_data, errors); nothing above it.
"""
