"""The OpenAPI 3.1 document of the API, generated from the route table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transcoder_admin import __version__

from . import schemas
from .table import MAX_BODY_BYTES, Param, Route

OPENAPI_VERSION = "3.1.0"
MEDIA_TYPE = "application/json"

_DESCRIPTION = (
    "Inspect and steer the Transcoder Admin. Every answer, errors included, is JSON; "
    'errors look like `{"error": {"code": 404, "message": "..."}}`. HEAD works on '
    "every GET path, a trailing slash is tolerated, request bodies are ignored (except "
    "where an operation documents one) but limited to "
    f"{MAX_BODY_BYTES // 1024} KiB, and unknown query parameters are refused. "
    "Without `api.tokens-file` the API listens on loopback only; with it, every "
    "operation but getHealth needs `Authorization: Bearer TOKEN` (a read token for the "
    "inspection operations, an admin token for the actions). Requests whose Host is not "
    "a loopback name or one of `api.allowed-hosts`, and actions from pages of another "
    "origin, are refused with 403."
)
_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def _json(schema: schemas.Schema) -> dict[str, Any]:
    """A response ``content`` entry holding JSON of the given schema."""
    return {MEDIA_TYPE: {"schema": schema}}


def _error(description: str) -> dict[str, Any]:
    """An error response with the common error schema."""
    return {"description": description, "content": _json(_ERROR_REF)}


def _parameter(param: Param) -> dict[str, Any]:
    """The OpenAPI description of one query parameter."""
    schema: dict[str, Any] = {"type": param.kind}
    if param.enum:
        schema["enum"] = list(param.enum)
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    if param.max_length is not None:
        schema["maxLength"] = param.max_length
    if param.formats:
        schema["anyOf"] = [{"format": name} for name in param.formats]
    required = param.needed(in_body=False)
    if required and param.kind == "string":
        schema["minLength"] = 1  # an empty value counts as not given
    described: dict[str, Any] = {
        "name": param.name,
        "in": "query",
        "required": required,
        "description": param.description,
        "schema": schema,
    }
    if not required:
        # The one way OpenAPI has to say that ``?limit=`` is accepted (as no limit).
        described["allowEmptyValue"] = True
        described["description"] += " An empty value counts as not given."
    return described


def _operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation object of one route."""
    responses: dict[str, Any] = {
        str(route.status): {"description": route.summary, "content": _json(route.response)},
        "400": _error(
            "A query parameter is unknown, repeated or has a bad value"
            + (", or the request body is not the object described." if route.body else ".")
        ),
    }
    if not route.public:
        responses["401"] = _error(
            "The API has tokens and none, an unknown or a revoked one was sent "
            "(`WWW-Authenticate: Bearer`)."
        )
    responses["403"] = _error(
        "The Host is not allowed"
        + (
            ", the page's Origin is another site's, or the token may only read."
            if route.method == "POST"
            else "."
        )
    )
    if route.method == "POST":
        responses["413"] = _error(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    for code, description in sorted(route.errors.items()):
        responses[str(code)] = _error(description)
    responses["default"] = _error("Any other error, e.g. 404, 405 or 500.")
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": ["actions" if route.method == "POST" else "inspection"],
        "responses": responses,
    }
    if route.public:
        operation["security"] = []
    if route.params:
        operation["parameters"] = [_parameter(param) for param in route.params]
    if route.body:
        operation["requestBody"] = {"required": True, "content": _json(_body_schema(route))}
    return operation


def _body_field(param: Param) -> dict[str, Any]:
    """The schema of one field of a request body."""
    if param.kind == "integer":
        bounds = {"minimum": param.minimum, "maximum": param.maximum}
        return {
            "type": "integer",
            "description": param.description,
            **{key: value for key, value in bounds.items() if value is not None},
        }
    if param.enum:
        return {"type": "string", "enum": list(param.enum), "description": param.description}
    return {
        "type": "string",
        "minLength": 1,
        "description": param.description,
        **({"maxLength": param.max_length} if param.max_length is not None else {}),
    }


def _body_schema(route: Route) -> dict[str, Any]:
    """The JSON object a route's request body must be."""
    return {
        "type": "object",
        "required": [param.name for param in route.body if param.needed(in_body=True)],
        "additionalProperties": False,
        "properties": {param.name: _body_field(param) for param in route.body},
    }


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """Build the OpenAPI document that describes exactly ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Transcoder Admin API",
            "version": __version__,
            "description": _DESCRIPTION,
        },
        "tags": [
            {"name": "inspection", "description": "Read the admin's state."},
            {"name": "actions", "description": "Steer the admin."},
        ],
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "schemas": {"Error": schemas.ERROR},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of `transcoder-admin token add` (when the API "
                    "has tokens; without them no token is asked for).",
                }
            },
        },
    }
