"""What import-linter cannot state: PB stays at the edge; every module stays readable."""

from __future__ import annotations

from pathlib import Path

import grimp

import transcoder_admin

#: The PB endpoints, and the one module that turns PB's errors into the project's own.
PB_EDGE = {
    "transcoder_admin.manager",  # the broker (the whole package): logins, avatars, relay
    "transcoder_admin.pblink",  # a login that comes back (workers, a remote admin)
    "transcoder_admin.pberrors",  # PB's errors in the project's terms
    "transcoder_admin.proxy.managers",  # the admin's mind on a standalone manager
    "transcoder_admin.worker.daemon",  # the worker's side of PB
}


def test_only_the_pb_edge_imports_twisted_spread():
    """Domain modules talk to workers through interfaces, never through PB itself."""
    graph = grimp.build_graph("transcoder_admin", include_external_packages=True)
    importers = {
        module
        for module in graph.find_modules_that_directly_import("twisted")
        if any(
            "twisted.spread" in (detail["line_contents"] or "")
            for detail in graph.get_import_details(importer=module, imported="twisted")
        )
    }
    assert importers, "the check must see PB's importers (grimp finds none: broken test)"
    outside = {m for m in importers if not any(m == e or m.startswith(e + ".") for e in PB_EDGE)}
    assert not outside, f"twisted.spread imported outside the edge: {outside}"


#: The longest a module of the package may grow (docs/architecture.md).
MAX_LINES = 400


def test_no_module_is_over_400_lines():
    """A newcomer can read any module at one sitting: split a room that grows past it."""
    package = Path(transcoder_admin.__file__).parent
    sizes = {
        str(path.relative_to(package)): len(path.read_text(encoding="utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert len(sizes) > 50, "the check must see the package's modules"
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
