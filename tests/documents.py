"""The documentation read as GitHub renders it: headings' anchors, links, sections, the README's commands.

Markdown is parsed with ``markdown-it-py`` (CommonMark, with GitHub's tables), and headings get their
anchors from ``mdit-py-plugins``' anchors plugin, whose slugs follow GitHub's rules (lower case, spaces to
``-``, punctuation dropped but ``-`` and ``_``, code spans by their text, a repeated heading ``-1``, ``-2``…).
Several test files check the documents against the code, so the parsing lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.anchors import anchors_plugin

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = (
    README,
    *sorted(DOCS.glob("*.md")),
    ROOT / "openapi" / "README.md",
    ROOT / "packaging" / "schemas" / "README.md",
)
"""Every Markdown file of the project a reader follows links through."""

FIRST_SCREEN = 50
"""Lines of the README a person sees before scrolling: the two commands must be among them."""

_MARKDOWN = MarkdownIt("commonmark").enable("table").use(anchors_plugin, min_level=1, max_level=6)


def tokens_of(text: str) -> list[Token]:
    return _MARKDOWN.parse(text)


@cache
def tokens(path: Path) -> list[Token]:
    return tokens_of(path.read_text(encoding="utf-8"))


def walk(found: list[Token]) -> Iterator[Token]:
    """Every token, the inline ones (links, code spans) included."""
    for token in found:
        yield token
        yield from walk(token.children or [])


def anchors_of(found: list[Token]) -> list[str]:
    return [str(token.attrGet("id")) for token in found if token.type == "heading_open"]


def anchors(path: Path) -> set[str]:
    return set(anchors_of(tokens(path)))


def link_targets(path: Path) -> list[str]:
    """Every link and image target, outside code."""
    return [
        str(token.attrGet("href") if token.type == "link_open" else token.attrGet("src"))
        for token in walk(tokens(path))
        if token.type in ("link_open", "image")
    ]


def section(path: Path, anchor: str) -> str:
    """The text under the heading whose anchor this is, up to the next heading of its level or above."""
    lines = path.read_text(encoding="utf-8").splitlines()
    headings = [token for token in tokens(path) if token.type == "heading_open"]
    for index, heading in enumerate(headings):
        if heading.attrGet("id") == anchor:
            assert heading.map is not None
            ends = [h.map[0] for h in headings[index + 1 :] if h.map and h.tag <= heading.tag]
            return "\n".join(lines[heading.map[0] : ends[0] if ends else len(lines)])
    raise AssertionError(f"{path.relative_to(ROOT)} has no heading #{anchor}")


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first table in ``text``, each cell's text (code spans by their content) by its header."""
    cells: list[list[str]] = []
    for token in tokens_of(text):
        if token.type == "table_close":
            break
        if token.type == "tr_open":
            cells.append([])
        elif token.type == "inline" and cells:
            cells[-1].append("".join(child.content for child in token.children or []))
    header, *rows = cells
    return [dict(zip(header, row, strict=True)) for row in rows]


def code_lines(path: Path, before_line: int | None = None) -> list[str]:
    """The lines of the fenced code blocks (those that end by ``before_line``, when given)."""
    return [
        line.strip()
        for token in tokens(path)
        if token.type == "fence" and token.map and (before_line is None or token.map[1] <= before_line)
        for line in token.content.splitlines()
        if line.strip()
    ]


def inline_code(path: Path) -> list[str]:
    return [token.content for token in walk(tokens(path)) if token.type == "code_inline"]


def _the_one(candidates: list[str], what: str) -> str:
    assert len(candidates) == 1, f"the README's first screen should show one {what} command, not {candidates}"
    return candidates[0]


def readme_run_command() -> str:
    """The command the README's first screen gives to run the server."""
    lines = code_lines(README, FIRST_SCREEN)
    return _the_one([line for line in lines if line.startswith("uvx ")], "run")


def readme_test_command() -> str:
    """The command the README's first screen gives to run the tests."""
    lines = code_lines(README, FIRST_SCREEN)
    return _the_one([line for line in lines if " -m pytest" in line], "test")
