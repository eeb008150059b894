"""JSON Schemas of the answers to the API's actions (what the admin did)."""

from __future__ import annotations

from .schemas import QUEUED_FILE, Schema

_TEXT: Schema = {"type": "string"}
_OBJECT: Schema = {"type": "object", "additionalProperties": True}

PRIORITY_SET: Schema = {
    **QUEUED_FILE,
    "description": "The file with its new priority and where it now stands.",
    "required": [*QUEUED_FILE["required"], "state", "position"],
    "properties": {
        **QUEUED_FILE["properties"],
        "state": {
            "enum": ["queued", "transcoding"],
            "description": "transcoding: the new priority sent it to a free slot at once.",
        },
        "position": {
            "type": ["integer", "null"],
            "minimum": 0,
            "description": "Files dispatched before it (0: next); null once transcoding.",
        },
    },
}

RETRIED: Schema = {
    **_OBJECT,
    "description": "The file: offered again (it was stuck) or returned to incoming "
    "(it had failed).",
    "required": ["customer", "profile", "relpath", "state"],
    "properties": {
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": _TEXT,
        "state": {"enum": ["offered", "returned"]},
    },
}

ACTION: Schema = {
    **_OBJECT,
    "description": "What the admin did, e.g. its new state.",
    "properties": {"state": _TEXT},
}

_NAMES: Schema = {"type": "array", "items": _TEXT}

RELOAD: Schema = {
    **_OBJECT,
    "required": ["added", "removed", "changed"],
    "properties": {"added": _NAMES, "removed": _NAMES, "changed": _NAMES},
}

CANCELLED: Schema = {
    **_OBJECT,
    "description": "The cancelled job's file and where its source went.",
    "required": ["customer", "profile", "relpath", "job_id", "cancelled_by", "state", "reason"],
    "properties": {
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": _TEXT,
        "job_id": _TEXT,
        "cancelled_by": _TEXT,
        "state": {
            "enum": ["failed", "returned", "stuck"],
            "description": "failed: the source is in failed with its report; returned: it "
            "stays in incoming and is offered again as a new arrival; stuck: it could not "
            "be failed and is held in incoming (see reason).",
        },
        "reason": {"type": ["string", "null"]},
        "report": {"type": ["string", "null"], "description": "The failure report's path."},
    },
}
