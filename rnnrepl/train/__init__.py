"""The training loop: TBPTT steps, schedule, recovery, held-out loss, default sizes; reports by callbacks.
May import store, model, text and the base; never infer, ui, repl or cli.
"""
