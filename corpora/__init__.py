"""The corpus catalog, shipped inside the package as rnnrepl.corpora_data (see rnnrepl/package_data.py)."""
