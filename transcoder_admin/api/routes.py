"""The route table: every path, method and query parameter of the API, in one place.

The resources dispatch on it and the OpenAPI document is generated from it, so
the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from . import answers, handlers, schemas
from .openapi import openapi_document
from .table import MAX_LIMIT, MAX_PRIORITY, OUTCOMES, VERDICTS, Admin, Param, Params, Route


def _openapi(admin: Admin, params: Params) -> Any:
    """This API's OpenAPI document."""

    return openapi_document(ROUTES)


def _text(name: str, description: str, max_length: int = 256) -> Param:
    """A free-text query parameter."""
    return Param(name, description, max_length=max_length)


def _time(name: str, description: str) -> Param:
    """A query parameter that is a date (midnight UTC) or a date and time with its offset."""
    return Param(
        name,
        description + " A date (2025-03-01, midnight UTC) or a date and time with its "
        "offset (2025-03-01T12:00:00Z), as RFC 3339 writes them.",
        max_length=64,
        formats=("date", "date-time"),
    )


def _paging_params(what: str) -> tuple[Param, Param]:
    """``offset`` and ``limit`` of a paginated listing of ``what``."""
    return (
        Param("offset", f"{what} to skip.", kind="integer", minimum=0, maximum=10**9),
        Param("limit", f"{what} to return at most.", kind="integer", minimum=0, maximum=MAX_LIMIT),
    )


_REPORT_PARAMS = (
    _text("customer", "Only reports of this customer."),
    _text("profile", "Only reports of this profile."),
    Param("outcome", "Only reports with this outcome.", enum=OUTCOMES),
    Param(
        "verdict",
        "Only failed reports the prognostician judged so (none: failures it did not "
        "expect, the farm's rather than the upload's).",
        enum=VERDICTS,
    ),
    _time("since", "Only reports of jobs finished at or after this time."),
    _time("until", "Only reports of jobs finished before this time."),
    _text("search", "Only reports whose source path contains this text."),
    *_paging_params("Reports"),
)

#: The fields that name one file in an action's body.
_FILE_FIELDS = (
    _text("customer", "The file's customer."),
    _text("profile", "The file's profile."),
    _text("relpath", "The file's path under the profile's incoming folder.", 4096),
)

_NOT_NOW = {409: "The admin cannot do that in its current state."}

ROUTES: tuple[Route, ...] = (
    Route(
        "health",
        "GET",
        "getHealth",
        "Whether the admin is healthy (answered without a token).",
        handlers.health,
        schemas.HEALTH,
        public=True,
    ),
    Route(
        "status",
        "GET",
        "getStatus",
        "The admin's state, counts and capacity.",
        handlers.status,
        schemas.STATUS,
    ),
    Route(
        "workers",
        "GET",
        "getWorkers",
        "The workers.",
        handlers.workers,
        schemas.listing(schemas.WORKER, "Every worker."),
    ),
    Route(
        "customers",
        "GET",
        "getCustomers",
        "The customers with their profiles, folders, targets and the settings in force.",
        handlers.customers,
        schemas.listing(schemas.CUSTOMER, "Every customer, as configured now."),
    ),
    Route(
        "whoami",
        "GET",
        "getWhoami",
        "Who the caller is: its token's name and role (what the dashboard may offer).",
        handlers.whoami,
        schemas.WHOAMI,
        names_caller=True,
    ),
    Route(
        "throughput",
        "GET",
        "getThroughput",
        "Files ended in each of the last 60 minutes, done and failed (the minutes "
        "before the admin's start as the reports database counts them).",
        handlers.throughput,
        schemas.THROUGHPUT,
    ),
    Route(
        "queue",
        "GET",
        "getQueue",
        "The queued files in dispatch order.",
        handlers.queue,
        schemas.page(schemas.QUEUED_FILE, "Queued files, next to dispatch first."),
        params=_paging_params("Files"),
    ),
    Route(
        "tasks",
        "GET",
        "getTasks",
        "The running jobs with their progress.",
        handlers.tasks,
        schemas.listing(schemas.TASK, "Running jobs."),
    ),
    Route(
        "components",
        "GET",
        "getComponents",
        "What runs on the workers: monitors, jobs, failed jobs kept for inspection.",
        handlers.components,
        schemas.listing(schemas.COMPONENT, "Components, by worker, kind and name."),
        params=(
            Param("kind", "Only components of this kind.", enum=schemas.COMPONENT_KINDS),
            _text("worker", "Only components on this worker."),
        ),
    ),
    Route(
        "files",
        "GET",
        "getFiles",
        "The files the admin knows, optionally in one state only.",
        handlers.files,
        schemas.page(
            schemas.FILE, "Files: pending, queued, transcoding, recently finished, stuck."
        ),
        params=(
            Param("state", "Only files in this state.", enum=schemas.FILE_STATES),
            *_paging_params("Files"),
        ),
    ),
    Route(
        "files/retry",
        "POST",
        "retryFile",
        "Offer a stuck file again (taken at the next scan of its folder), or send a "
        "failed file's source back from failed to incoming (a new arrival).",
        handlers.retry_file,
        answers.RETRIED,
        body=_FILE_FIELDS,
        status=202,
        errors={
            404: "The file is neither stuck nor in the failed folder.",
            409: "The failed file cannot go back: incoming has that name, it is not a "
            "regular file, or its path leads out of its folder.",
        },
    ),
    Route(
        "queue/priority",
        "POST",
        "setPriority",
        "Give a queued file a priority of its own (higher goes first; a profile's is "
        "customer priority × 1000 + profile priority); it outlasts reloads.",
        handlers.set_priority,
        answers.PRIORITY_SET,
        body=(
            *_FILE_FIELDS,
            Param(
                "priority",
                "The new priority.",
                kind="integer",
                minimum=0,
                maximum=MAX_PRIORITY,
            ),
        ),
        errors={404: "The file is not queued (unknown, running or finished already)."},
    ),
    Route(
        "tasks/cancel",
        "POST",
        "cancelTask",
        "Cancel a file's running job: its processes are killed and its work files "
        'removed; then its source goes to failed with the reason "cancelled by NAME" '
        "(the token's name), or stays in incoming and is offered again as a new arrival. "
        "Answers once the source is there.",
        handlers.cancel_task,
        answers.CANCELLED,
        body=(
            *_FILE_FIELDS,
            Param(
                "then",
                "Where the source goes: fail (the default) or back to incoming.",
                enum=handlers.CANCEL_THEN,
                required=False,
            ),
        ),
        errors={
            404: "The file has no running job (unknown, queued or finished already).",
            409: "Too late or too early to cancel: its outcome is being committed, it is "
            "cancelled already, or its job has not started.",
        },
        names_caller=True,
    ),
    Route(
        "notifications",
        "GET",
        "getNotifications",
        "Notifications to customers and operators, newest first, optionally in one state.",
        handlers.notifications,
        schemas.page(schemas.NOTIFICATION, "Notifications: queued, delivered or failed."),
        params=(
            Param("state", "Only notifications in this state.", enum=schemas.NOTIFICATION_STATES),
            *_paging_params("Notifications"),
        ),
    ),
    Route(
        "notifications/retry",
        "POST",
        "retryNotification",
        "Queue a notification that gave up again (due at once, its attempts counted anew).",
        handlers.retry_notification,
        schemas.NOTIFICATION,
        body=(_text("id", "The notification's id (msg_…).", 64),),
        status=202,
        errors={404: "No notification has that id."},
    ),
    Route(
        "reports",
        "GET",
        "getReports",
        "One page of job reports, filtered.",
        handlers.reports,
        schemas.REPORTS,
        params=_REPORT_PARAMS,
    ),
    Route(
        "diagnosis",
        "GET",
        "getDiagnosis",
        "A failed job's diagnosis: host, worker, the exact commands, the source's "
        "analysis and first bytes, the failure, the log's tail, how to reproduce it.",
        handlers.diagnosis,
        schemas.DIAGNOSIS,
        params=(Param("job_id", "The failed job's id.", max_length=80, required=True),),
        errors={404: "No failed job has that id, or its diagnosis is not there."},
    ),
    Route(
        "openapi.json",
        "GET",
        "getOpenAPI",
        "This OpenAPI document.",
        _openapi,
        schemas.OPENAPI,
    ),
    Route(
        "pause",
        "POST",
        "pause",
        "Pause the admin.",
        handlers.pause,
        answers.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "resume",
        "POST",
        "resume",
        "Resume the admin after a pause.",
        handlers.resume,
        answers.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "reload",
        "POST",
        "reload",
        "Reload the customers' configuration without a restart.",
        handlers.reload,
        answers.RELOAD,
        errors={
            **_NOT_NOW,
            422: "The new configuration is invalid; `problems` lists every problem.",
        },
    ),
)
