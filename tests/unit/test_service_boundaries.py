"""Services hand out typed data: no `dict[str, Any]` in the signature of a function outside
the page machinery. Read from the source with `ast`, so nothing is imported.

A page's template context is a dict by nature, so controllers and `app/web/` are left out, as
are the settings loader, the command line and the process runner, which speak to TOML, click
and uvicorn. A second test shows that a service returning untyped rows is caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

from app.config import PROJECT_ROOT

UNTYPED = "dict[str, Any]"
PAGE_MACHINERY = ("controller.py", "config.py", "cli.py", "serving.py", "server.py")


def untyped_signatures(root: Path) -> list[str]:
    """Each function below root, outside the page machinery, with an untyped dict in its
    signature, as "path:line name"."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == "web" or relative.name in PAGE_MACHINERY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            annotations = [a.annotation for a in arguments if a.annotation is not None]
            if node.returns is not None:
                annotations.append(node.returns)
            if any(UNTYPED in ast.unparse(annotation) for annotation in annotations):
                found.append(f"{relative}:{node.lineno} {node.name}")
    return found


def test_services_hand_out_typed_data() -> None:
    assert untyped_signatures(PROJECT_ROOT / "app") == []


def test_a_service_returning_untyped_rows_is_caught(tmp_path: Path) -> None:
    (tmp_path / "partners").mkdir()
    (tmp_path / "partners" / "service.py").write_text(
        "from typing import Any\n\n\nasync def rows() -> list[dict[str, Any]]:\n    return []\n"
    )
    (tmp_path / "partners" / "controller.py").write_text(
        "from typing import Any\n\n\ndef context() -> dict[str, Any]:\n    return {}\n"
    )
    assert untyped_signatures(tmp_path) == ["partners/service.py:4 rows"]
