"""Which queue a new email goes to: the first rule whose criteria all match, else the
default queue."""

from __future__ import annotations

from .parse import Mail
from .settings import EmailSettings, Rule

__all__ = ["choose_queue"]


def choose_queue(settings: EmailSettings, mail: Mail, envelope_to: list[str]) -> str:
    for rule in settings.rules:
        if _matches(rule, mail, envelope_to):
            return rule.queue
    return settings.default_queue


def _matches(rule: Rule, mail: Mail, envelope_to: list[str]) -> bool:
    if rule.to:
        wanted = {a.lower() for a in rule.to}
        if not wanted & ({a.lower() for a in envelope_to} | set(mail.recipients)):
            return False
    if rule.from_domain:
        domain = mail.sender.rpartition("@")[2]
        if not any(
            domain == d.lower() or domain.endswith("." + d.lower()) for d in rule.from_domain
        ):
            return False
    if rule.subject and not _any_in(rule.subject, mail.subject):
        return False
    return not (rule.body and not _any_in(rule.body, mail.text))


def _any_in(keywords: list[str], text: str) -> bool:
    folded = text.casefold()
    return any(k.casefold() in folded for k in keywords)
