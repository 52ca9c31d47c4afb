"""The htmx convention (app/web/render.py): a fragment is a `{% block %}` whose wrapper element
has the block's name as its id, and every `hx-target` on a page names a block of that page's
template, so an htmx request gets exactly the region it swaps. Read from the template sources
and Jinja's own parse; nothing is rendered. Two more tests show that a careless template is
caught.
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, FileSystemLoader

from app.config import PROJECT_ROOT, load_settings
from app.web.templating import make_environment

# Blocks that lay out a page rather than a region htmx swaps.
LAYOUT_BLOCKS = {"title", "main", "content", "card", "header_nav", "brand_sub", "brand_href"}
BLOCK = re.compile(r"{%-?\s*block\s+(\w+)\s*-?%}")
# After a block opens: Jinja statements, comments and white space, then the wrapper element.
LEAD = re.compile(r"(?:\s|{%.*?%}|{#.*?#})*<(\w+)([^>]*)>", re.S)
TARGET = re.compile(r'hx-target="#([\w-]+)"')


def problems(root: Path, env: Environment) -> list[str]:
    found = []
    for path in sorted((root / "templates").rglob("*.html")):
        name = path.relative_to(root / "templates").as_posix()
        if name.startswith("emails/"):
            continue
        source = path.read_text()
        for block in BLOCK.finditer(source):
            if block.group(1) in LAYOUT_BLOCKS:
                continue
            wrapper = LEAD.match(source, block.end())
            ids = re.findall(r'\bid="([^"]+)"', wrapper.group(2)) if wrapper else []
            if ids != [block.group(1)]:
                found.append(
                    f"{name}: block {block.group(1)} is not wrapped in id={block.group(1)}"
                )
        blocks = env.get_template(name).blocks
        for target in TARGET.findall(source):
            if target not in blocks:
                found.append(f"{name}: hx-target #{target} is no block of the page")
    return found


def test_fragments_keep_the_convention() -> None:
    env = make_environment(load_settings(env={}))
    assert problems(PROJECT_ROOT, env) == []


def test_a_careless_template_is_caught(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "components").mkdir()
    (tmp_path / "templates" / "page.html").write_text(
        '{% block main %}<form hx-post="/x" hx-target="#results">'
        '{% block form %}<div id="the-form"></div>{% endblock %}'
        '{% block list %}\n  {% set rows = [] %}\n  <ul id="list"></ul>{% endblock %}'
        "</form>{% endblock %}"
    )
    loader = FileSystemLoader([tmp_path / "templates", tmp_path / "components"])
    assert problems(tmp_path, Environment(loader=loader, autoescape=True)) == [
        "page.html: block form is not wrapped in id=form",
        "page.html: hx-target #results is no block of the page",
    ]
