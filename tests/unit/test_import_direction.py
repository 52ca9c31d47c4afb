"""Imports point down: the composition root on top, the domains below it, the web layer and
shared mechanisms below them. Read from the source with `ast`, so no import is run.

- Nothing in `app/` but `app.create_app` imports the composition root (`app.server`).
- The web layer (`app/web/`) imports no domain.
- The identity server imports no front-office domain and no page machinery.
- Mail imports no domain: it is handed the recipient and the language.

Shared words live below the domains (`app.vocabulary`, `app.problems`), shared mechanisms in
the web layer or beside it. KNOWN would list an import still to be moved (none is); an entry
that is no longer there fails the test too, so the list only shrinks. A second test shows
that a domain importing the composition root is caught.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from app.config import PROJECT_ROOT

FRONT_OFFICE = {
    "accounts",
    "applications",
    "helpdesk",
    "partners",
    "schoolaccess",
    "site",
    "staff",
}
DOMAINS = {*FRONT_OFFICE, "identity", "mail"}
PAGE_MACHINERY = {
    "app.web.render",
    "app.web.templating",
    "app.web.forms",
    "app.web.sessions",
    "app.web.csrf",
    "app.web.errors",
}
# Imports against the rules still to be moved, each as "module -> imported": none.
KNOWN: set[str] = set()


def imports(root: Path) -> Iterator[tuple[str, str]]:
    """(importing module, imported module) for every import of `app.…` below root."""
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                if node.module == "app":
                    yield from ((module, f"app.{alias.name}") for alias in node.names)
                else:
                    yield module, node.module
            elif isinstance(node, ast.Import):
                yield from ((module, a.name) for a in node.names if a.name.startswith("app."))


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def against_the_rules(importer: str, imported: str) -> bool:
    source, target = package(importer), package(imported)
    root = imported == "app.server" and importer != "app"
    web = source == "web" and target in DOMAINS
    identity = source == "identity" and (target in FRONT_OFFICE or imported in PAGE_MACHINERY)
    mail = source == "mail" and target in DOMAINS - {"mail"}
    return root or web or identity or mail


def broken_rules(found: Iterator[tuple[str, str]]) -> set[str]:
    return {
        f"{importer} -> {imported}"
        for importer, imported in found
        if against_the_rules(importer, imported)
    }


def test_imports_point_down() -> None:
    broken = broken_rules(imports(PROJECT_ROOT / "app"))
    assert broken - KNOWN == set(), "imports against the rules"
    assert KNOWN - broken == set(), "moved: take these off KNOWN"


def test_a_domain_importing_the_composition_root_is_caught(tmp_path: Path) -> None:
    (tmp_path / "app" / "partners").mkdir(parents=True)
    (tmp_path / "app" / "partners" / "careless.py").write_text("from app.server import build\n")
    (tmp_path / "app" / "web").mkdir()
    (tmp_path / "app" / "web" / "careless.py").write_text("from app.partners import service\n")
    assert broken_rules(imports(tmp_path / "app")) == {
        "app.partners.careless -> app.server",
        "app.web.careless -> app.partners",
    }


def module_imports(root: Path) -> dict[str, set[str]]:
    """Each module's imports of other app modules at module level (not inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        found = graph.setdefault(module, set())
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                # `from app.x import y`: the module app.x, or the module app.x.y if there is one.
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("app."))
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each once, as the modules along it."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported not in graph or imported == module:
                continue
            if imported in path:
                circle = path[path.index(imported) :]
                if sorted(circle) not in (sorted(c) for c in found):
                    found.append(circle)
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    return found


def test_no_import_circle() -> None:
    assert circles(module_imports(PROJECT_ROOT / "app")) == []


def test_an_import_circle_is_caught(tmp_path: Path) -> None:
    (tmp_path / "app" / "a").mkdir(parents=True)
    (tmp_path / "app" / "a" / "one.py").write_text("from app.a.two import x\n")
    (tmp_path / "app" / "a" / "two.py").write_text("from app.a.one import y\n")
    assert circles(module_imports(tmp_path / "app")) == [["app.a.one", "app.a.two"]]
