"""MkDocs hook: show the docstrings' reStructuredText bits as Markdown on the site.

The docstrings cross-reference with Sphinx roles (``:func:`find```) and cite with rST
footnotes (``[1]_``, ``.. [1] …``), which Markdown would print verbatim. Before a page or
the API reference is rendered, each role becomes a code span (``:func:`~a.b.c``` gives
`` `c` ``), ``:doi:`…``` a link, citations plain ``[1]``, and a ``.. math::`` block the
indented (code) block of LaTeX that follows it.
"""

from __future__ import annotations

import re
from typing import Any

from markdown import Extension, Markdown
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority

ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
DOI = re.compile(r":doi:`([^`]+)`")
CITATION = re.compile(r"^[ \t]*\.\. \[(\w+)\]", re.MULTILINE)
CITED = re.compile(r"\[(\w+)\]_")
MATH = re.compile(r"^[ \t]*\.\. math::[ \t]*$", re.MULTILINE)


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    target = "".join(target.split())  # a role broken over two docstring lines
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def rst_to_markdown(text: str) -> str:
    """The Markdown the site shows for docstring text ``text``."""
    text = ROLE.sub(_code, text)
    text = DOI.sub(r"[doi:\1](https://doi.org/\1)", text)
    text = CITATION.sub(r"\n[\1]", text)  # a paragraph per reference
    text = CITED.sub(r"[\1]", text)
    return MATH.sub("", text)


class _Rst(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        return rst_to_markdown("\n".join(lines)).split("\n")


class RstBits(Extension):
    """Markdown extension: the rST of the docstrings as Markdown."""

    def extendMarkdown(self, md: Markdown) -> None:
        md.preprocessors.register(_Rst(md), "atomlens_rst", 35)


@event_priority(100)  # before mkdocstrings copies the extensions for the API pages
def on_config(config: Any) -> Any:
    config.markdown_extensions.append(RstBits())
    return config
