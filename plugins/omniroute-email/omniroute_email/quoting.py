"""Trim the quoted history from a reply, so that the inbox shows what is new.

Mail clients quote in a handful of ways: "> " lines, an attribution line ("On Mon, Ana
wrote:", in several languages) before them, Outlook's "-----Original Message-----" or its
"From: / Sent: / To: / Subject:" block. Everything from the first of those that follows
some new text is the quoted part; it is kept beside the message, never thrown away.
"""

from __future__ import annotations

import re

__all__ = ["split_quoted"]

_ATTRIBUTION = re.compile(
    r"^(On\b.{0,300}\bwrote:"
    r"|Le\b.{0,300}\ba écrit\s?:"
    r"|Am\b.{0,300}\bschrieb\b.{0,200}:"
    r"|El\b.{0,300}\bescribió:"
    r"|Il\b.{0,300}\bha scritto:"
    r"|Op\b.{0,300}\bschreef\b.{0,200}:"
    r"|Em\b.{0,300}\bescreveu:)\s*$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)")
_HEADER_BLOCK = re.compile(r"^\s*\*?(From|De|Von|Van)\s*:\*?\s+\S")
_HEADER_NEXT = re.compile(r"^\s*\*?(Sent|Date|Envoyé|Gesendet|To|Subject|Objet|Betreff)\s*:")


def split_quoted(text: str) -> tuple[str, str]:
    """(new text, quoted history); the history is "" when nothing was quoted, and the
    whole text is kept as new when trimming would leave nothing."""
    lines = text.splitlines()
    cut = _first_quote(lines)
    if cut is None:
        return text.strip(), ""
    new = "\n".join(lines[:cut]).strip()
    if not new:
        return text.strip(), ""
    return new, "\n".join(lines[cut:]).strip()


def _first_quote(lines: list[str]) -> int | None:
    seen_text = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if seen_text:
            if _SEPARATOR.match(line):
                return i
            two = f"{stripped} {lines[i + 1].strip()}" if i + 1 < len(lines) else stripped
            if _ATTRIBUTION.match(stripped) or (
                stripped
                and not stripped.startswith(">")
                and _ATTRIBUTION.match(two)
                and _quoted_after(lines, i + 2)
            ):
                return i
            if _HEADER_BLOCK.match(line) and any(
                _HEADER_NEXT.match(n) for n in lines[i + 1 : i + 4]
            ):
                return i
            if stripped.startswith(">") and _quoted_after(lines, i):
                return i
        if stripped and not stripped.startswith(">"):
            seen_text = True
    return None


def _quoted_after(lines: list[str], start: int) -> bool:
    """Whether every non-blank line from `start` on is quoted (a trailing quote block)."""
    rest = [line.strip() for line in lines[start:] if line.strip()]
    return bool(rest) and all(line.startswith(">") for line in rest)
