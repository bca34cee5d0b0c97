"""The OpenAPI 3.1 document of the JSON API, derived from the endpoint table and the
msgspec types it names, so a business can generate its own client or front end."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from .. import __version__
from .api import Endpoint
from .views import ErrorBody

__all__ = ["openapi_document"]

_PARAM = re.compile(r"{([a-z_]+)}")
_REF = "#/components/schemas/{name}"


def openapi_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    types: list[Any] = [ErrorBody]
    for e in endpoints:
        types.extend(t for t in (e.body, e.returns) if t is not None)
    schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
    schema_of = dict(zip(map(id, types), schemas, strict=True))
    error = schema_of[id(ErrorBody)]
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation: dict[str, Any] = {
            "operationId": e.handler.__name__,
            "summary": e.summary,
            "description": e.description,
            "tags": ["public" if e.role is None else e.role.value],
            "responses": _responses(e, schema_of, error),
        }
        params = _PARAM.findall(e.path)
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if e.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[id(e.body)]}},
            }
        if e.role is not None:
            operation["security"] = [{"bearer": []}, {"cookie": []}]
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "omniroute",
            "version": __version__,
            "description": "Agents' inbox, supervisors' wallboard and admin API. Live events: "
            "WebSocket /api/events (JSON events, filtered by role).",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "omniroute_session"},
            },
        },
    }


def _responses(e: Endpoint, schema_of: dict[int, Any], error: Any) -> dict[str, Any]:
    refusal = {"content": {"application/json": {"schema": error}}}
    out: dict[str, Any] = {}
    if e.returns is None:
        out["204"] = {"description": "done"}
    else:
        out[str(e.status)] = {
            "description": "ok",
            "content": {"application/json": {"schema": schema_of[id(e.returns)]}},
        }
    if e.body is not None:
        out["422"] = {"description": "the body is invalid; `where` names the field", **refusal}
    if e.role is not None:
        out["401"] = {"description": "not logged in", **refusal}
        out["403"] = {"description": f"needs the {e.role.value} role", **refusal}
    return out
