"""The command line (click): options become configs, errors become exit codes; a module per command group.
May import every other subpackage; nothing imports it.
"""
