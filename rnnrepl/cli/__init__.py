"""The command line (click): options become configs, errors become exit codes; one module per command group.

May import everything; nothing imports it.
"""
