"""Answers held to the OpenAPI document: what a client generated from it expects.

``check_answer`` validates one JSON answer against the schema the document gives for
its path, method and status.  The API's unit tests use it on every call, and the farm
helper on every answer of a real admin, so each state the tests drive a farm through
(running, paused, cancelled, Qmaster, several workers…) is checked against it too.
"""

from __future__ import annotations

import functools
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing import Resource as SchemaResource
from referencing.jsonschema import DRAFT202012

from transcoder_admin.api import ROUTES, openapi_document

DOCUMENT = openapi_document(ROUTES)
PREFIX = "/api/v1"
_REGISTRY = Registry().with_resource(
    "urn:openapi", SchemaResource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def _anchored(schema: Any) -> Any:
    """The schema with its document-local references pointed at the registered document."""
    if isinstance(schema, dict):
        return {
            key: ("urn:openapi" + value if key == "$ref" else _anchored(value))
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_anchored(value) for value in schema]
    return schema


def documented_schema(path: str, method: str, code: int) -> Any:
    """The schema the OpenAPI document gives for one answer."""
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    entry = responses.get(str(code), responses["default"])
    return _anchored(entry["content"]["application/json"]["schema"])


@functools.cache
def _validator(path: str, method: str, code: int) -> Draft202012Validator:
    return Draft202012Validator(
        documented_schema(path, method, code),
        registry=_REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def check_answer(method: str, path: str, code: int, value: Any) -> None:
    """Validate an answer of ``METHOD path`` (query and trailing slash allowed) against
    its documented schema; paths and methods the document does not have are left alone."""
    documented = path.split("?")[0].rstrip("/")
    operations = DOCUMENT["paths"].get(documented)
    if operations is None or method.lower() not in operations:
        return
    _validator(documented, method, code).validate(value)
