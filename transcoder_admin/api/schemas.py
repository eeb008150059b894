"""JSON Schemas (OpenAPI 3.1 dialect) of the API's response bodies."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

FILE_STATES = ("pending", "ignored", "queued", "transcoding", "done", "failed", "stuck")

_TEXT: Schema = {"type": "string"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_TIME: Schema = {
    "type": ["string", "null"],
    "format": "date-time",
    "description": "ISO 8601 date and time.",
}
_OBJECT: Schema = {"type": "object", "additionalProperties": True}


def listing(item: Schema, description: str) -> Schema:
    """The schema of a complete list answer: ``{"items": [...], "total": n}``."""
    return {
        "type": "object",
        "description": description,
        "required": ["items", "total"],
        "properties": {
            "items": {"type": "array", "items": item},
            "total": {**_COUNT, "description": "Number of items."},
        },
    }


def page(item: Schema, description: str) -> Schema:
    """The schema of one page of a longer list: its items and the total of all pages."""
    return {
        "type": "object",
        "description": description,
        "required": ["total", "offset", "limit", "items"],
        "properties": {
            "total": {**_COUNT, "description": "Items on all pages."},
            "offset": {**_COUNT, "description": "Items skipped before this page."},
            "limit": {**_COUNT, "description": "Items on a page at most."},
            "items": {"type": "array", "items": item},
        },
    }


ERROR: Schema = {
    "type": "object",
    "description": "Every error answer, whatever its status.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status code."},
                "message": {"type": "string", "description": "What went wrong."},
                "problems": {
                    "type": "array",
                    "items": _TEXT,
                    "description": "Every configuration problem found (reload only).",
                },
            },
        }
    },
}

HEALTH: Schema = {
    "type": "object",
    "required": ["status", "state", "checks"],
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "state": {**_TEXT, "description": "The admin's state, e.g. started or paused."},
        "checks": {**_OBJECT, "description": "One entry per health check."},
    },
}

STATUS: Schema = {
    **_OBJECT,
    "required": ["state"],
    "description": (
        "The admin's state, version, uptime, counts of files per state, capacity, "
        "running and queued jobs and database rows waiting to be written."
    ),
    "properties": {
        "state": _TEXT,
        "version": _TEXT,
    },
}

WORKER: Schema = {
    **_OBJECT,
    "description": "One worker, as the admin sees it (a worker process over PB, one in "
    "the admin's process, or the Qmaster backend).",
    "required": ["name", "max_jobs", "running", "state", "kind", "load", "components"],
    "properties": {
        "name": _TEXT,
        "host": {"type": ["string", "null"], "description": "Its host name."},
        "roots": {
            "type": "object",
            "description": "Root name → local folder on its host.",
            "additionalProperties": _TEXT,
        },
        "max_jobs": {**_COUNT, "description": "Its slots."},
        "running": {**_COUNT, "description": "Jobs it reported running."},
        "load": {**_COUNT, "description": "Jobs the admin has given it."},
        "state": {
            "enum": ["attached", "detached", "lost", "connected", "disconnected"],
            "description": "attached/detached/lost: a process over PB (lost: silent past "
            "workers.lost-timeout); connected/disconnected: in the admin's process.",
        },
        "kind": {"enum": ["process", "in-process"]},
        "backend": {"type": "string", "description": "ffmpeg or qmaster (in-process only)."},
        "last_heartbeat": _TIME,
        "silent_for": {
            "type": ["number", "null"],
            "description": "Seconds since its last heartbeat.",
        },
        "pid": {"type": ["integer", "null"]},
        "components": {
            "type": "object",
            "required": ["monitors", "jobs", "failed_kept"],
            "properties": {
                "monitors": _COUNT,
                "jobs": _COUNT,
                "failed_kept": {**_COUNT, "description": "Failed jobs kept for inspection."},
            },
        },
    },
}

_NAMED_SUBDIR = {
    "name": {**_TEXT, "description": "As configured."},
    "subdir": {**_TEXT, "description": "Its folder name (set, or made from the name)."},
}
_SETTINGS: Schema = {
    "type": "object",
    "description": "Video or audio settings in force (ffmpeg's names; bitrates in kbit/s).",
    "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null"]},
}
TARGET: Schema = {
    "type": "object",
    "required": ["name", "type", "subdir", "extension", "muxer", "video", "audio"],
    "properties": {
        **_NAMED_SUBDIR,
        "type": {"enum": ["audio-video", "video", "audio", "thumbnails", "identity", "qmaster"]},
        "extension": {**_TEXT, "description": "Of its outputs; empty: the source's."},
        "muxer": {"type": ["string", "null"], "description": "ffmpeg's muxer name."},
        "video": _SETTINGS,
        "audio": _SETTINGS,
        "thumbnails": {"type": ["object", "null"], "additionalProperties": True},
        "post_process": {"type": "array", "items": _TEXT, "description": "argv template."},
    },
}
PROFILE: Schema = {
    "type": "object",
    "required": ["name", "subdir", "priority", "backend", "folders", "settings", "targets"],
    "properties": {
        **_NAMED_SUBDIR,
        "priority": {**_COUNT, "description": "Queue order: customer × 1000 + profile."},
        "backend": {"enum": ["ffmpeg", "qmaster"]},
        "folders": {
            "type": "object",
            "description": "Virtual folder (root:/path) by kind: incoming, outgoing, done, …",
            "additionalProperties": _TEXT,
        },
        "settings": {
            "type": "object",
            "description": "Settings in force after inheritance (process priority, "
            "timeouts in seconds, max attempts, …).",
            "additionalProperties": {"type": ["number", "integer", "boolean"]},
        },
        "notify_done": {**_COUNT, "description": "Notifications a done file fires."},
        "notify_failed": {**_COUNT, "description": "Notifications a failed file fires."},
        "targets": {"type": "array", "items": TARGET},
    },
}
CUSTOMER: Schema = {
    "type": "object",
    "required": ["name", "subdir", "priority", "profiles"],
    "properties": {
        **_NAMED_SUBDIR,
        "priority": _COUNT,
        "profiles": {"type": "array", "items": PROFILE},
    },
}

COMPONENT_KINDS = ("monitor", "transcoder")

COMPONENT: Schema = {
    **_OBJECT,
    "description": (
        "One component on a worker: a monitor (one customer's incoming folders) or a "
        "transcoder (one job attempt; state failed: its files kept for inspection)."
    ),
    "required": ["id", "kind", "worker", "name", "state", "since"],
    "properties": {
        "id": {**_TEXT, "description": "worker/kind/name"},
        "kind": {"type": "string", "enum": list(COMPONENT_KINDS)},
        "worker": _TEXT,
        "name": {**_TEXT, "description": "The customer of a monitor, the job id of a job."},
        "state": {"type": "string", "enum": ["watching", "running", "finished", "failed"]},
        "since": _TIME,
        "attempt": {"type": ["integer", "null"]},
        "customer": {"type": ["string", "null"], "description": "A job's customer."},
        "profile": {"type": ["string", "null"], "description": "A job's profile."},
        "relpath": {
            "type": ["string", "null"],
            "description": "A job's source, under its incoming folder.",
        },
        "path": {
            "type": ["string", "null"],
            "description": "Where a failed job's files are kept (a virtual path).",
        },
        "reason": {"type": ["string", "null"], "description": "Why a kept job failed."},
    },
}

QUEUED_FILE: Schema = {
    **_OBJECT,
    "required": ["customer", "profile", "relpath", "priority", "detected", "queued"],
    "properties": {
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": {**_TEXT, "description": "Path of the source under incoming."},
        "priority": {"type": "integer"},
        "detected": _TIME,
        "queued": _TIME,
    },
}

TASK: Schema = {
    **_OBJECT,
    "required": [
        "job_id",
        "customer",
        "profile",
        "relpath",
        "worker",
        "attempt",
        "started",
        "progress",
    ],
    "properties": {
        "job_id": _TEXT,
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": _TEXT,
        "worker": {"type": ["string", "null"]},
        "attempt": {"type": "integer", "minimum": 1},
        "started": _TIME,
        "cancelled_by": {
            "type": ["string", "null"],
            "description": "Who cancelled the job, while its cancel is under way.",
        },
        "progress": {
            **_OBJECT,
            "required": ["percent", "speed", "eta", "target"],
            "properties": {
                "percent": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                "speed": {
                    "type": ["number", "null"],
                    "description": "Media seconds transcoded per wall-clock second.",
                },
                "eta": {"type": ["number", "null"], "description": "Seconds left."},
                "target": {"type": ["string", "null"], "description": "Target now running."},
            },
        },
    },
}

FILE: Schema = {
    **_OBJECT,
    "description": "One file the admin knows, with its state.",
    "properties": {
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": _TEXT,
        "state": {"enum": list(FILE_STATES)},
        "reason": {
            "type": ["string", "null"],
            "description": "Why a file failed or is stuck, why an ignored file is not taken, "
            "or why a pending one waits.",
        },
        "since": {
            **_TIME,
            "description": "When a stuck file was held (it stays in incoming until it "
            "changes or is retried).",
        },
    },
}

REPORTS: Schema = page(
    {**_OBJECT, "description": "One report row."}, "Reports matching the filters, newest first."
)

DIAGNOSIS: Schema = {
    **_OBJECT,
    "description": "A failed job's diagnosis (the file beside its report).",
    "required": ["job_id", "failure", "commands"],
    "properties": {
        "job_id": _TEXT,
        "host": _TEXT,
        "worker": _TEXT,
        "failure": _OBJECT,
        "verdict": {"type": ["string", "null"]},
        "source": _OBJECT,
        "commands": {"type": "array", "items": _OBJECT},
        "log_tail": {"type": "array", "items": _TEXT},
        "reproduce": _TEXT,
    },
}

NOTIFICATION_STATES = ("queued", "delivered", "failed")
NOTIFICATION: Schema = {
    **_OBJECT,
    "description": "A notification: where it goes, for which file, and how it went.",
    "required": ["id", "kind", "trigger", "destination", "state", "attempts", "created"],
    "properties": {
        "id": {**_TEXT, "description": "The delivery id (webhook-id, Message-ID)."},
        "kind": {"enum": ["http", "mail", "sql"]},
        "trigger": {
            "enum": [
                "file-done",
                "file-failed",
                "target-done",
                "target-failed",
                "admin-emergency",
                "admin-debug",
            ]
        },
        "destination": {
            **_TEXT,
            "description": "URL without its query, recipients, or database without its password.",
        },
        "job_id": _TEXT,
        "customer": _TEXT,
        "profile": _TEXT,
        "relpath": _TEXT,
        "target": {"type": ["string", "null"]},
        "state": {"enum": list(NOTIFICATION_STATES)},
        "attempts": _COUNT,
        "created": _TIME,
        "next_attempt": {**_TIME, "description": "When a queued one is tried next."},
        "finished": _TIME,
        "last_error": {"type": ["string", "null"]},
    },
}

OPENAPI: Schema = {
    **_OBJECT,
    "required": ["openapi", "info", "paths"],
    "description": "This document.",
}

WHOAMI: Schema = {
    **_OBJECT,
    "required": ["name", "role"],
    "properties": {
        "name": {"type": ["string", "null"], "description": "The token's name (null: none)."},
        "role": {"enum": ["read", "admin"]},
    },
}

THROUGHPUT: Schema = {
    **_OBJECT,
    "required": ["minutes", "done", "failed"],
    "properties": {
        "minutes": {
            "type": "array",
            "description": "One entry per minute, oldest first, the current minute last.",
            "items": {
                **_OBJECT,
                "required": ["minute", "done", "failed"],
                "properties": {"minute": _TIME, "done": _COUNT, "failed": _COUNT},
            },
        },
        "done": {**_COUNT, "description": "Files done in those minutes."},
        "failed": {**_COUNT, "description": "Files failed in those minutes."},
    },
}
