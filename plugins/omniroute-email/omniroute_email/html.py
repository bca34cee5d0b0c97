"""HTML mail: sanitised for display, and a plain-text alternative for the inbox.

Sanitising is nh3's (bindings to the Rust crate ammonia, an allow-list sanitiser kept up
by its authors and used widely): scripts, styles, event handlers and dangerous URLs go.
Images are dropped too, so that showing a mail never loads a sender's tracking pixel.
The text alternative walks the sanitised HTML with the standard library's parser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

__all__ = ["sanitise", "to_text"]

_TAGS = set(nh3.ALLOWED_TAGS) - {"img"}
_BLOCKS = frozenset(
    [
        "p",
        "div",
        "br",
        "tr",
        "li",
        "ul",
        "ol",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "hr",
        "dl",
        "dt",
        "dd",
        "section",
        "article",
    ]
)
_SKIP = frozenset({"script", "style", "head", "title"})


def sanitise(html: str) -> str:
    return nh3.clean(html, tags=_TAGS)


def to_text(html: str) -> str:
    """Readable text of an HTML body; quoted blocks (<blockquote>) become "> " lines, so
    that quoted history is recognised and trimmed as in plain mail."""
    parser = _Text()
    parser.feed(sanitise(html))
    parser.close()
    lines = [re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in parser.lines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[tuple[int, str]] = []  # (quote depth, text)
        self._depth = 0
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "blockquote":
            self._depth += 1
            self._parts.append((self._depth, "\n"))
        elif tag in _BLOCKS:
            self._parts.append((self._depth, "\n- " if tag == "li" else "\n"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._parts.append((self._depth, "\n"))
            self._depth = max(0, self._depth - 1)
        elif tag in _BLOCKS and tag != "li":  # the next item starts its own line
            self._parts.append((self._depth, "\n"))

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._parts.append((self._depth, data.replace("\n", " ")))

    def lines(self) -> list[str]:
        out: list[str] = []
        line, depth = "", 0
        for part_depth, text in self._parts:
            for i, piece in enumerate(text.split("\n")):
                if i:
                    out.append("> " * depth + line if line.strip() else "")
                    line = ""
                if piece:
                    if not line:
                        depth = part_depth
                    line += piece
        out.append("> " * depth + line if line.strip() else "")
        return out
