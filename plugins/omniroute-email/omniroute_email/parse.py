"""Raw mail -> what omniroute keeps of it, whatever the sender's software did.

The standard library's `email` package (policy.default) parses any MIME structure; this
module never trusts it to decode: declared charsets can be wrong, unknown or missing,
headers can carry raw 8-bit bytes, transfer encodings can be broken. Every such case
falls back to a readable approximation (bytes decoded as UTF-8, then Windows-1252),
never to an exception.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import getaddresses, parseaddr

import msgspec

from .automatic import automatic_reason
from .html import sanitise, to_text

__all__ = ["Attachment", "Mail", "Unusable", "parse"]


class _Policy(EmailPolicy):
    """policy.default with header values kept as the strings the parser read.

    policy.default builds a structured header object on every access (the Content-Type
    of each part is parsed again by each of get_content_type, get_param, get_filename):
    that was two thirds of the time spent per mail. Structure, MIME and transfer
    decoding stay policy.default's; header text is decoded once, here (`_header`).
    """

    def header_fetch_parse(self, name: str, value: str) -> str:  # type: ignore[override]
        return "".join(value.splitlines())


_parser = BytesParser(policy=_Policy())
_MSGID = re.compile(r"<[^<>\s]{1,500}>")
_READ = [
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "from",
    "reply-to",
    "sender",
    "to",
    "cc",
    "return-path",
    "auto-submitted",
    "precedence",
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "list-id",
    "x-auto-response-suppress",
]
MAX_HEADER = 8000  # characters kept of one header value


class Unusable(Exception):
    """A mail that cannot become a conversation (no sender to answer, say): the reason."""


class Attachment(msgspec.Struct, kw_only=True):
    name: str
    content_type: str
    data: bytes


class Mail(msgspec.Struct, kw_only=True):
    message_id: str  # with its angle brackets; made up from the content when missing
    in_reply_to: list[str]
    references: list[str]
    subject: str
    sender: str  # the address to answer, lower-case
    sender_name: str | None
    recipients: list[str]  # To and Cc addresses, lower-case
    text: str  # the whole plain text (derived from HTML when there is no text part)
    html: str | None  # sanitised
    attachments: list[Attachment]
    automatic: str | None  # why it must not be answered (bounce, auto-reply...), or None


def parse(raw: bytes, envelope_from: str | None = None) -> Mail:
    """Parse one message. Raises Unusable when no sender address can be found."""
    msg = _parser.parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    header = {name: _header(msg, name) for name in _READ}
    name, sender = _address(header["reply-to"]) or _address(header["from"]) or (None, "")
    if not sender:
        name, sender = _address(header["sender"]) or (None, "")
    if not sender and envelope_from and envelope_from != "<>":
        sender = envelope_from.strip("<>").lower()
    message_id = _msgids(header["message-id"])
    text, html, attachments = _body(msg)
    automatic = automatic_reason(msg, header, sender, envelope_from)
    if not sender and automatic is None:
        raise Unusable("no sender address (From, Reply-To, Sender and the envelope are empty)")
    return Mail(
        message_id=message_id[0] if message_id else _made_up_id(raw),
        in_reply_to=_msgids(header["in-reply-to"])[:5],
        references=_msgids(header["references"])[-50:],
        subject=" ".join(header["subject"].split())[:500],
        sender=sender,
        sender_name=name,
        recipients=[a.lower() for _, a in getaddresses([header["to"], header["cc"]]) if "@" in a],
        text=text,
        html=html,
        attachments=attachments,
        automatic=automatic,
    )


# ------------------------------------------------------------------ headers


def _header(msg: Message, name: str) -> str:
    """A header's value (the first of its name), decoded; "" when absent; never raises."""
    raw = msg.get(name)
    if raw is None:
        return ""
    text = _clean(str(raw))
    if "=?" in text:  # RFC 2047 encoded words; broken ones are shown as they are
        with contextlib.suppress(Exception):
            text = str(make_header(decode_header(text)))
    return text.replace("\x00", "").strip()[:MAX_HEADER]


def _clean(text: str) -> str:
    """Raw 8-bit bytes smuggled in as surrogates become UTF-8 (or Windows-1252) text."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        data = text.encode("utf-8", "surrogateescape")
        text = _decode(data, None)
    return text.replace("\x00", "")


def _address(value: str) -> tuple[str | None, str] | None:
    if not value:
        return None
    try:
        name, address = parseaddr(value)
    except Exception:
        return None
    address = address.strip().lower()
    if "@" not in address or " " in address:
        found = re.search(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+", value)
        if found is None:
            return None
        address = found.group(0).lower()
    return (name.strip() or None), address


def _msgids(value: str) -> list[str]:
    return _MSGID.findall(value)


def _made_up_id(raw: bytes) -> str:
    """A stable id for a mail without Message-ID, so that a resend is recognised."""
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@no-message-id.invalid>"


# ------------------------------------------------------------------ body


def _body(msg: EmailMessage) -> tuple[str, str | None, list[Attachment]]:
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    _walk(msg, plain, html, attachments)
    text = "\n\n".join(t for t in plain if t.strip())
    cleaned = sanitise("\n".join(html)) if html else None
    if not text.strip() and html:
        text = to_text("\n".join(html))
    return text.strip(), cleaned, attachments


def _walk(
    part: Message,
    plain: list[str],
    html: list[str],
    attachments: list[Attachment],
) -> None:
    ctype = part.get_content_type()
    filename = _filename(part)
    disposition = (part.get_content_disposition() or "").lower()
    if part.is_multipart() and ctype != "message/rfc822":
        children = part.get_payload()
        if not isinstance(children, list):
            return
        if ctype == "multipart/alternative":
            _alternative(children, plain, html, attachments)
            return
        for child in children:
            _walk(child, plain, html, attachments)
        return
    is_text_body = ctype in ("text/plain", "text/html") and disposition != "attachment"
    if is_text_body and not (filename and disposition == "attachment"):
        text = _text_of(part)
        (plain if ctype == "text/plain" else html).append(text)
        return
    data = _bytes_of(part)
    name = filename or _default_name(ctype, len(attachments) + 1)
    attachments.append(Attachment(name=name, content_type=ctype, data=data))


def _alternative(
    children: list[Message], plain: list[str], html: list[str], attachments: list[Attachment]
) -> None:
    """One body out of several renderings: the plain text and the HTML if present."""
    got_plain = got_html = False
    for child in children:
        ctype = child.get_content_type()
        if ctype == "text/plain" and not got_plain:
            plain.append(_text_of(child))
            got_plain = True
        elif ctype == "text/html" and not got_html:
            html.append(_text_of(child))
            got_html = True
        elif child.is_multipart():  # multipart/related holding the HTML and its images
            sub_plain: list[str] = []
            sub_html: list[str] = []
            _walk(child, sub_plain, sub_html, attachments)
            if sub_html and not got_html:
                html.extend(sub_html)
                got_html = True
            if sub_plain and not got_plain:
                plain.extend(sub_plain)
                got_plain = True


def _text_of(part: Message) -> str:
    """A body part's text with "\n" line ends: mail travels with CRLF, which would
    otherwise reach the inbox and the API as "\r\n"."""
    text = _decode(_bytes_of(part), part.get_content_charset())
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _bytes_of(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822" or part.is_multipart():
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            try:
                return inner.as_bytes(policy=policy.compat32)
            except Exception:
                return str(inner).encode("utf-8", "replace")
        return b""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _decode(data: bytes, charset: str | None) -> str:
    """Bytes in their declared charset; when it is missing, unknown or wrong, as UTF-8
    with every byte that is not UTF-8 read as Windows-1252 (mixed text survives)."""
    if charset:
        try:
            return data.decode(charset).replace("\x00", "")
        except (LookupError, UnicodeDecodeError, ValueError):
            pass
    return data.decode("utf-8", _FALLBACK).replace("\x00", "")


def _cp1252(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", "replace"), error.end


_FALLBACK = "omniroute-email-cp1252"
codecs.register_error(_FALLBACK, _cp1252)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not name:
        return None
    name = _clean(str(name))
    name = re.sub(r"[\x00-\x1f/\\:]+", "_", name).strip(" .") or None
    return name[:150] if name else None


def _default_name(ctype: str, n: int) -> str:
    extension = {
        "message/rfc822": ".eml",
        "application/ms-tnef": ".dat",
        "application/pdf": ".pdf",
        "image/png": ".png",
        "image/jpeg": ".jpg",
        "text/calendar": ".ics",
        "message/delivery-status": ".txt",
    }.get(ctype, ".bin")
    return f"attachment-{n}{extension}"
