"""Ids in, logits out: the language models, the batch-1 step, sampling and device choice.

May import rnnrepl.config and rnnrepl.errors; never text, train, store or anything above.
"""
