"""Pure rich renderers and console streams: data in, renderable out; nothing here reads, trains or predicts.

May import rich and the layers below infer's level; never repl or cli, never prompt_toolkit or click.
"""
