"""The REPL's modules form no import cycle, not even through TYPE_CHECKING imports: keys, layout
and slash commands act through ``rnnrepl.repl.actions`` instead of importing the application."""

from __future__ import annotations

import grimp


def test_no_module_of_the_repl_is_part_of_an_import_cycle():
    graph = grimp.build_graph("rnnrepl")
    cycles = [
        (module, imported)
        for module in sorted(graph.modules)
        if module.startswith("rnnrepl.repl")
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(imported, module)
    ]
    assert cycles == []
