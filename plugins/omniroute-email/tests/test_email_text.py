"""What the inbox shows of a mail's text: quoted history trimmed (and kept), HTML
sanitised with a text alternative."""

from __future__ import annotations

import pytest
from omniroute_email.html import sanitise, to_text
from omniroute_email.parse import parse
from omniroute_email.quoting import split_quoted


@pytest.mark.parametrize(
    ("text", "new"),
    [
        (
            "Yes please.\n\nOn Tue, 24 Nov 2026 at 09:12, Ana <a@x.example> wrote:\n> Shall I?\n",
            "Yes please.",
        ),
        (
            "Yes.\n\nOn Tue, 24 Nov 2026 at 09:12, Ana Example\n<a@x.example> wrote:\n> Shall I?\n",
            "Yes.",
        ),
        ("Oui.\n\nLe mar. 24 nov. 2026, Ana a écrit :\n> Alors ?\n", "Oui."),
        ("Ja.\n\nAm 24.11.2026 um 09:12 schrieb Ana <a@x.example>:\n> Und?\n", "Ja."),
        ("Done.\n\n-----Original Message-----\nFrom: Shop\nSent: Monday\n\nold\n", "Done."),
        (
            "Done.\n\nFrom: Shop <s@x.example>\nSent: Monday, 23 November 2026\nTo: Carla\n\nold",
            "Done.",
        ),
        ("Thanks!\n> old line\n> another\n", "Thanks!"),
    ],
)
def test_quoted_history_is_trimmed_and_kept(text: str, new: str) -> None:
    shown, quoted = split_quoted(text)
    assert shown == new and quoted and quoted in text


@pytest.mark.parametrize(
    "text",
    [
        "> your question\nmy answer\n> your second question\nmy second answer",  # inline
        "> only a quote, nothing new",
        "Plain text with no quote at all.\nOn its second line too.",
    ],
)
def test_text_without_a_trailing_quote_is_kept_whole(text: str) -> None:
    assert split_quoted(text) == (text.strip(), "")


def test_html_is_sanitised_and_turned_into_text() -> None:
    html = (
        '<p onclick="x()">Hello <b>Ana</b></p><script>alert(1)</script>'
        '<a href="javascript:alert(1)">link</a><img src="https://t.example/p.gif">'
        "<ul><li>one</li><li>two</li></ul><blockquote>old &amp; quoted</blockquote>"
    )
    clean = sanitise(html)
    assert "onclick" not in clean and "<script" not in clean and "javascript:" not in clean
    assert "<img" not in clean and "<b>Ana</b>" in clean
    assert to_text(html) == "Hello Ana\nlink\n\n- one\n- two\n\n> old & quoted"


def test_line_ends_are_newlines_as_mail_arrives_over_smtp() -> None:
    raw = (
        b"From: Carla <carla@example.com>\r\nSubject: hi\r\nMessage-ID: <c1@example.com>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n\r\nit drops.\r\n"
    )
    assert parse(raw, None).text == "Hello,\n\nit drops."
