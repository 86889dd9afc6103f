"""Text in, token ids out: reading files, tokenizers, token arrays, pretrained vectors, the corpus catalog and fetch.

May import rnnrepl.config, rnnrepl.errors and rnnrepl.package_data; never model, train, store or anything above.
"""
