"""Call (and other) controls that channel plugins declare for the pages.

The core never imports a plugin, so the inbox and the wallboard cannot know that a voice
call can be held or listened to. A plugin says so with `omniroute_controls` (yielding
`ControlSpec`s); `check` refuses a malformed one when the web app is built, naming the
plugin; `for_role` is what `GET /api/controls` answers; the pages draw the buttons, and
ask a control's `status` path what it started that still goes on (the server, not the
page, knows that a consultation is under way after a reload).
"""

from __future__ import annotations

from collections.abc import Container, Iterable

import msgspec

from .specs import ControlSpec

__all__ = ["check", "for_role"]

_RANK = {"agent": 1, "supervisor": 2, "admin": 3}


def check(
    plugin: str, spec: ControlSpec, known: Iterable[str], adapters: Container[str]
) -> list[str]:
    """What is wrong with one control of `plugin` (`known`: every control name of the
    same channel; `adapters`: every channel adapter's name), as errors naming the plugin
    and the control."""
    where = f"plugin {plugin!r}, control {spec.channel}/{spec.name}"
    try:  # the Literal fields: a Struct's constructor does not check them
        msgspec.convert(msgspec.to_builtins(spec), ControlSpec)
    except msgspec.ValidationError as exc:
        return [f"{where}: {exc}"]
    errors: list[str] = []
    paths = {"path": spec.path, "status": spec.status} if spec.status else {"path": spec.path}
    for what, path in paths.items():
        if not path.startswith("/") or "{interaction_id}" not in path:
            errors.append(f"{where}: {what} {path!r} must start with / and hold {{interaction_id}}")
    if spec.adapter and spec.adapter not in adapters:
        errors.append(f"{where}: adapter names no channel adapter {spec.adapter!r}")
    names = set(known)
    if spec.after and spec.after not in names:
        errors.append(f"{where}: after names no control {spec.after!r} of {spec.channel!r}")
    for field in spec.fields:
        if field.kind == "choice" and not field.choices:
            errors.append(f"{where}: field {field.name!r} is a choice without choices")
        if field.kind == "answer" and field.source not in names:
            errors.append(f"{where}: field {field.name!r} takes the answer of no control")
    return errors


def for_role(
    controls: Iterable[ControlSpec], role: str, adapters: Container[str]
) -> list[ControlSpec]:
    """The controls someone of `role` may see (the routes check again when used), of
    the channel adapters that run (`adapters`: their names)."""
    rank = _RANK[role]
    return [
        c for c in controls if _RANK[c.role] <= rank and (not c.adapter or c.adapter in adapters)
    ]
