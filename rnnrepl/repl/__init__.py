"""The interactive REPL: session state without UI, the model thread, keys, layout, slash commands, line mode.

May import ui, infer and everything below; never cli or click.
"""
