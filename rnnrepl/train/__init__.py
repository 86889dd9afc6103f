"""The training loop: truncated BPTT, schedule, held-out loss, default sizes; it reports by callbacks and never prints.

May import model, text, store, config and errors; never infer, ui, repl or cli.
"""
