"""Channel actions: what a plugin lets any node ask of its channel, run where it runs.

A leader-only channel (`ChannelSpec.leader_only`) holds its one connection (an ARI
socket, a mailbox) on the routing leader, and so does the state behind it (the live
calls). A web route served by a follower cannot act on it there. So a channel declares
actions (`ChannelSpec.actions`): plugin functions `async def action(channel, **payload)`
that `App.channel_call(channel, action, payload)` runs where the channel runs: at once
on the leader (or on any node, for a channel that runs everywhere), else on the leader
through the cluster's commands table, with its answer or its error sent back.

Payload and answer cross nodes as JSON: the payload is decoded to the keyword arguments
the action declares, the answer to its return annotation, on every node alike (one node
alone too), so what works on one node works in a cluster.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, get_type_hints

import msgspec

from .router.core import RouterError
from .store.base import StoreError

__all__ = ["Action", "ActionError", "UnknownAction", "decode_outcome", "encode_outcome"]

logger = logging.getLogger("omniroute.actions")

#: Commands-table names of relayed actions start with this ("channel:asterisk.hold").
PREFIX = "channel:"


class ActionError(Exception):
    """An action refused, and why: `status` is what a web route answers (404 no such
    thing, 409 not in a state for it, 403 not yours, 422 bad payload, 502 the system
    behind the channel failed). It reaches the caller as itself from any node."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


class UnknownAction(ActionError):
    """No such channel, or the channel declares no such action (404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 404)


class Action:
    """One declared action of a channel, its payload and answer types read from its
    signature once, when the channel is built (a mistake stops the start, named)."""

    def __init__(self, channel: str, name: str, function: Callable[..., Awaitable[Any]]) -> None:
        self.channel = channel
        self.name = name
        self.function = function
        where = f"channel {channel!r}, action {name!r}"
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"{where}: {function!r} is not an `async def` function")
        try:
            hints = get_type_hints(function)
        except Exception as exc:
            raise TypeError(
                f"{where}: cannot read the annotations of {function!r}: {exc}"
            ) from None
        params = list(inspect.signature(function).parameters.values())
        if not params or params[0].kind not in (
            params[0].POSITIONAL_ONLY,
            params[0].POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(f"{where}: the first parameter must take the channel adapter")
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        for param in params[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"{where}: name every payload field (no *args, **kwargs)")
            if param.name not in hints:
                raise TypeError(f"{where}: annotate payload field {param.name!r}")
            if param.default is param.empty:
                fields.append((param.name, hints[param.name]))
            else:
                fields.append((param.name, hints[param.name], param.default))
        self.payload: type[msgspec.Struct] = msgspec.defstruct(
            f"{channel}.{name}", fields, kw_only=True, forbid_unknown_fields=True
        )
        self.answer: Any = hints.get("return", Any)

    @property
    def command(self) -> str:
        """Its name in the commands table."""
        return f"{PREFIX}{self.channel}.{self.name}"

    def encode(self, payload: Mapping[str, Any] | None) -> bytes:
        """The payload checked against the declared fields, as JSON; ActionError (422)
        naming the field when it does not fit."""
        try:
            return msgspec.json.encode(msgspec.convert(dict(payload or {}), self.payload))
        except (msgspec.ValidationError, TypeError) as exc:
            raise ActionError(f"{self.channel}.{self.name}: payload: {exc}", 422) from None

    async def run(self, adapter: Any, payload: bytes) -> bytes:
        """Run the action on `adapter` with an encoded payload; its outcome encoded
        (the answer, or the error it raised)."""
        try:
            fields = msgspec.json.decode(payload, type=self.payload)
            answer = await self.function(adapter, **msgspec.structs.asdict(fields))
            return encode_outcome(f"{self.channel}.{self.name}", answer)
        except Exception as exc:
            return encode_outcome(f"{self.channel}.{self.name}", exc)

    def decode(self, outcome: bytes | str) -> Any:
        """The answer of an encoded outcome, as the declared type; raises its error."""
        return msgspec.convert(decode_outcome(outcome, self.command), self.answer)


#: Errors that reach the caller as themselves (ActionError keeps its status).
_ERRORS: dict[str, Callable[[str], Exception]] = {
    "RouterError": RouterError,
    "ValueError": ValueError,
    "StoreError": StoreError,
}


def encode_outcome(where: str, outcome: Any) -> bytes:
    """`{"ok": answer}`, or the error: an unexpected one is logged here, where its
    traceback is, and reaches the caller as a RuntimeError naming `where`."""
    if not isinstance(outcome, BaseException):
        try:
            return msgspec.json.encode({"ok": outcome})
        except (TypeError, msgspec.EncodeError) as exc:
            outcome = TypeError(f"its answer cannot be sent as JSON: {exc}")
    if isinstance(outcome, ActionError):
        error = {"error": "ActionError", "message": str(outcome), "status": outcome.status}
    elif isinstance(outcome, RouterError | StoreError):
        kind = "StoreError" if isinstance(outcome, StoreError) else "RouterError"
        error = {"error": kind, "message": str(outcome)}
    elif isinstance(outcome, ValueError):
        error = {"error": "ValueError", "message": str(outcome)}
    else:
        logger.error("action %s failed", where, exc_info=outcome)
        error = {"error": type(outcome).__name__, "message": f"{where}: {outcome}"}
    return msgspec.json.encode(error)


def decode_outcome(outcome: bytes | str, command: str = "") -> Any:
    """The answer of an encoded outcome, as plain JSON values; raises its error."""
    data = msgspec.json.decode(outcome)
    if "error" not in data:
        return data["ok"]
    kind, message = data["error"], data["message"]
    if kind == "ActionError":
        raise ActionError(message, data.get("status", 409))
    known = _ERRORS.get(kind)
    if known is not None:
        raise known(message)
    raise RuntimeError(f"{command or 'a channel action'} failed: {kind}: {message}")
