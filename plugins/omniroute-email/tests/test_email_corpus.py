"""The corpus of awkward messages (tests/corpus, written by make_corpus.py) goes through
without a crash: each becomes an interaction, or is recorded as not answered with its
reason logged, as its name says. A few are checked for what the inbox shows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from emailkit import config, host
from omniroute_email.channel import EmailChannel
from omniroute_email.intake import Outcome

from omniroute.app import App
from omniroute.store import MemoryStore

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.eml"))


def test_the_corpus_is_large_enough() -> None:
    assert len(FILES) >= 50
    assert sum(f.name.startswith("ignored-") for f in FILES) >= 10


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[App, dict[str, Outcome], list[str]]:
    tmp = tmp_path_factory.mktemp("corpus")
    app = App.from_dict(config(tmp, 25), store=MemoryStore(encode=True), host=host())
    handler = _Collect()
    logger = logging.getLogger("omniroute.email")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with app.running():
            channel = app.channels["email"]
            assert isinstance(channel, EmailChannel)
            results = {f.name: await channel.intake.take(f.read_bytes()) for f in FILES}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return app, results, handler.lines


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("name", [f.name for f in FILES])
async def test_each_message_is_an_interaction_or_ignored_with_a_reason(
    outcomes: tuple[App, dict[str, Outcome], list[str]], name: str
) -> None:
    app, results, logged = outcomes
    outcome = results[name]
    if name.startswith("ignored-"):
        assert outcome.kind == "ignored" and outcome.reason
        assert any(outcome.reason in line and "not answered" in line for line in logged)
    else:
        assert outcome.kind == "queued", outcome
        assert outcome.interaction_id is not None
        ix = app.router.interaction(outcome.interaction_id)
        assert ix.channel == "email" and ix.customer is not None
        assert len(app.conversations.messages(ix.id)) == 1


def _message(outcomes: tuple[App, dict[str, Outcome], list[str]], name: str):  # type: ignore[no-untyped-def]
    app, results, _ = outcomes
    interaction_id = results[name].interaction_id
    assert interaction_id is not None
    (message,) = app.conversations.messages(interaction_id)
    return app.router.interaction(interaction_id), message


async def test_what_the_inbox_shows(outcomes: tuple[App, dict[str, Outcome], list[str]]) -> None:
    ix, m = _message(outcomes, "html-only.eml")
    assert "Hello team," in m.text and "- one" in m.text and "alert" not in m.text
    html = m.attributes["email"]["html"]
    assert "<script" not in html and "javascript:" not in html and "<img" not in html
    assert "<b>team</b>" in html
    ix, m = _message(outcomes, "html-only-gmail-quote.eml")
    assert m.text == "Still nothing." and "We shipped it" in m.attributes["email"]["quoted"]
    _, m = _message(outcomes, "latin1-declared.eml")
    assert m.text == "Réponse"
    _, m = _message(outcomes, "cp1252-declared-latin1.eml")
    assert "smart quotes" in m.text
    _, m = _message(outcomes, "unknown-charset.eml")
    assert m.text == "Grüße"
    _, m = _message(outcomes, "koi8r.eml")
    assert m.text == "Привет мир"
    _, m = _message(outcomes, "utf8-invalid-bytes.eml")
    assert m.text.startswith("ok ") and m.text.endswith(" end")
    ix, _ = _message(outcomes, "8bit-in-subject.eml")
    assert ix.subject == "Réclamation été"  # Latin-1 and UTF-8 bytes mixed in one header
    ix, _ = _message(outcomes, "8bit-in-from-name.eml")
    assert ix.customer is not None and ix.customer.identities[0].address == "juergen@example.de"
    _, m = _message(outcomes, "winmail-dat.eml")
    assert m.text == "Please see the attached." and m.attachments[0].endswith("/winmail.dat")
    _, m = _message(outcomes, "attachment-evil-name.eml")
    assert m.attachments[0].endswith("/_.._etc_passwd.html")  # no path, no NUL
    _, m = _message(outcomes, "rfc2231-filename.eml")
    assert m.attachments[0].endswith("/Rechnung%20M%C3%A4rz.pdf")
    _, m = _message(outcomes, "reply-quoted-outlook.eml")
    assert m.text == "Still waiting."
    _, m = _message(outcomes, "forwarded-rfc822.eml")
    assert m.text == "See below." and m.attachments[0].endswith(".eml")
    ix, _ = _message(outcomes, "from-group-syntax.eml")
    assert ix.customer is not None and ix.customer.identities[0].address == "real@example.org"
