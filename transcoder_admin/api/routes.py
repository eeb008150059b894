"""The route table: every path, method and query parameter of the API, in one place.

The resources dispatch on it and the OpenAPI document is generated from it, so
the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import schemas
from .errors import APIError
from .openapi import openapi_document
from .table import MAX_LIMIT, MAX_PRIORITY, OUTCOMES, VERDICTS, Admin, Param, Params, Route


def _listing(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap a complete list as ``{"items": [...], "total": n}``."""
    return {"items": list(items), "total": len(items)}


def _health(admin: Admin, params: Params) -> Any:
    """The admin's health, as is."""
    return admin.health()


def _status(admin: Admin, params: Params) -> Any:
    """The admin's status, as is."""
    return admin.status()


def _workers(admin: Admin, params: Params) -> Any:
    """The workers as a listing."""
    return _listing(admin.workers())


def _customers(admin: Admin, params: Params) -> Any:
    """The customers as a listing."""
    return _listing(admin.customers())


def _queue(admin: Admin, params: Params) -> Any:
    """One page of the queued files, in dispatch order."""
    return admin.queue(**_paging(params))


def _tasks(admin: Admin, params: Params) -> Any:
    """The running jobs as a listing."""
    return _listing(admin.tasks())


def _components(admin: Admin, params: Params) -> Any:
    """The components on the workers as a listing (of one kind, on one worker)."""
    kind, worker = params.get("kind"), params.get("worker")
    return _listing(
        admin.components(
            str(kind) if kind is not None else None, str(worker) if worker is not None else None
        )
    )


def _files(admin: Admin, params: Params) -> Any:
    """One page of the files in one state (or all)."""
    state = params.get("state")
    return admin.files(str(state) if state is not None else None, **_paging(params))


def _retry_file(admin: Admin, params: Params) -> Any:
    """Offer a stuck file again."""
    return admin.retry_file(str(params["customer"]), str(params["profile"]), str(params["relpath"]))


def _set_priority(admin: Admin, params: Params) -> Any:
    """Give a queued file a priority of its own."""
    return admin.set_priority(
        str(params["customer"]),
        str(params["profile"]),
        str(params["relpath"]),
        int(params["priority"]),
    )


def _notifications(admin: Admin, params: Params) -> Any:
    """One page of notifications in one state (or all)."""
    state = params.get("state")
    return admin.notifications(str(state) if state is not None else None, **_paging(params))


def _retry_notification(admin: Admin, params: Params) -> Any:
    """Queue a notification that gave up again."""
    return admin.retry_notification(str(params["id"]))


def _diagnosis(admin: Admin, params: Params) -> Any:
    """A failed job's diagnosis."""
    if not params.get("job_id"):
        raise APIError(400, "query parameter 'job_id' is required")
    return admin.diagnosis(str(params["job_id"]))


def _paging(params: Params) -> dict[str, int]:
    """The ``offset`` and ``limit`` a client gave (the admin's defaults otherwise)."""
    return {name: int(params[name]) for name in ("offset", "limit") if name in params}


def _reports(admin: Admin, params: Params) -> Any:
    """One page of reports, filtered by the query parameters."""
    return admin.reports(**params)


def _pause(admin: Admin, params: Params) -> Any:
    """Ask the admin to pause."""
    return admin.pause()


def _resume(admin: Admin, params: Params) -> Any:
    """Ask the admin to resume."""
    return admin.resume()


def _reload(admin: Admin, params: Params) -> Any:
    """Ask the admin to reload its configuration."""
    return admin.reload()


def _openapi(admin: Admin, params: Params) -> Any:
    """This API's OpenAPI document."""

    return openapi_document(ROUTES)


def _text(name: str, description: str, max_length: int = 256) -> Param:
    """A free-text query parameter."""
    return Param(name, description, max_length=max_length)


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
    _text("since", "Only reports of jobs finished at or after this ISO 8601 time.", 64),
    _text("until", "Only reports of jobs finished before this ISO 8601 time.", 64),
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
        _health,
        schemas.HEALTH,
        public=True,
    ),
    Route(
        "status",
        "GET",
        "getStatus",
        "The admin's state, counts and capacity.",
        _status,
        schemas.STATUS,
    ),
    Route(
        "workers",
        "GET",
        "getWorkers",
        "The workers.",
        _workers,
        schemas.listing(schemas.WORKER, "Every worker."),
    ),
    Route(
        "customers",
        "GET",
        "getCustomers",
        "The customers with their profiles, folders, targets and the settings in force.",
        _customers,
        schemas.listing(schemas.CUSTOMER, "Every customer, as configured now."),
    ),
    Route(
        "queue",
        "GET",
        "getQueue",
        "The queued files in dispatch order.",
        _queue,
        schemas.page(schemas.QUEUED_FILE, "Queued files, next to dispatch first."),
        params=_paging_params("Files"),
    ),
    Route(
        "tasks",
        "GET",
        "getTasks",
        "The running jobs with their progress.",
        _tasks,
        schemas.listing(schemas.TASK, "Running jobs."),
    ),
    Route(
        "components",
        "GET",
        "getComponents",
        "What runs on the workers: monitors, jobs, failed jobs kept for inspection.",
        _components,
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
        _files,
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
        _retry_file,
        schemas.RETRIED,
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
        _set_priority,
        schemas.PRIORITY_SET,
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
        "notifications",
        "GET",
        "getNotifications",
        "Notifications to customers and operators, newest first, optionally in one state.",
        _notifications,
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
        _retry_notification,
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
        _reports,
        schemas.REPORTS,
        params=_REPORT_PARAMS,
    ),
    Route(
        "diagnosis",
        "GET",
        "getDiagnosis",
        "A failed job's diagnosis: host, worker, the exact commands, the source's "
        "analysis and first bytes, the failure, the log's tail, how to reproduce it.",
        _diagnosis,
        schemas.DIAGNOSIS,
        params=(Param("job_id", "The failed job's id (required).", max_length=80),),
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
        _pause,
        schemas.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "resume",
        "POST",
        "resume",
        "Resume the admin after a pause.",
        _resume,
        schemas.ACTION,
        errors=_NOT_NOW,
    ),
    Route(
        "reload",
        "POST",
        "reload",
        "Reload the customers' configuration without a restart.",
        _reload,
        schemas.RELOAD,
        errors={
            **_NOT_NOW,
            422: "The new configuration is invalid; `problems` lists every problem.",
        },
    ),
)
