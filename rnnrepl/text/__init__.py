"""Text in, token ids out: files, decoding, tokenizers, token arrays, the token cache, word vectors, the corpus catalog, fetch.
May import the base (config, units, atomic, package_data, errors); nothing above it.
"""
