"""Pure rich renderers and console streams: data in, renderable out; nothing here reads or predicts.
May import rich, train, store, model, text and the base; never infer, repl, cli, prompt_toolkit, click.
"""
