"""Mail sent by machines (bounces, out-of-office replies, lists) is never answered: two
systems answering each other would loop forever. RFC 3834 and the headers that the
common auto-responders actually set decide it."""

from __future__ import annotations

from email.message import EmailMessage

__all__ = ["automatic_reason"]

_BOUNCERS = ("mailer-daemon", "postmaster")
_BULK = frozenset({"bulk", "junk", "list", "auto_reply"})


def automatic_reason(
    msg: EmailMessage, header: dict[str, str], sender: str, envelope_from: str | None
) -> str | None:
    """Why this mail must not become a conversation (None: a person wrote it).

    `header` holds the decoded values of the headers read here, lower-cased names.
    """
    if envelope_from is not None and envelope_from.strip() in ("", "<>"):
        return "null sender (a bounce): MAIL FROM:<>"
    return_path = header.get("return-path", "").strip()
    if return_path in ("<>", "<<>>"):
        return "null sender (a bounce): Return-Path: <>"
    if msg.get_content_type() == "multipart/report":
        kind = msg.get_param("report-type", "") or ""
        return f"delivery or read report (multipart/report; report-type={kind})"
    auto = header.get("auto-submitted", "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto}"
    precedence = header.get("precedence", "").strip().lower()
    if precedence in _BULK:
        return f"Precedence: {precedence}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder"):
        value = header.get(name, "").strip().lower()
        if value and value not in ("no", "false", "0"):
            return f"{name}: {value}"
    if header.get("x-auto-response-suppress", "").lower() in ("all", "oof") and (
        "auto" in header.get("subject", "").lower()
        or "out of office" in header.get("subject", "").lower()
    ):
        return "out-of-office reply (X-Auto-Response-Suppress and subject)"
    if header.get("list-id"):
        return f"mailing list post (List-Id: {header['list-id'][:80]})"
    local = sender.partition("@")[0].lower()
    if local in _BOUNCERS:
        return f"sent by {local} (a bounce)"
    return None
