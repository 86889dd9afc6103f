"""Bundled models, shipped inside the package as rnnrepl.bundled (see rnnrepl/package_data.py)."""
