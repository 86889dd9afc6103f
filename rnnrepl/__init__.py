"""rnnrepl: train recurrent language models on your own text and watch them predict as you type."""

__version__ = "0.1.0"
