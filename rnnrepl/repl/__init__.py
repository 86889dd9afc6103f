"""The interactive REPL: state without UI, the model thread, actions, keys, layout, commands, line mode.
May import ui, infer and every layer below them; never cli or click.
"""
