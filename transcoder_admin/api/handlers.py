"""The API's handlers: each turns a request's checked parameters into one admin call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .table import Admin, Params

#: Where a cancelled job's source goes (the transcoding part's choices, checked there too).
CANCEL_THEN = ("fail", "incoming")


def listing(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Wrap a complete list as ``{"items": [...], "total": n}``."""
    return {"items": list(items), "total": len(items)}


def health(admin: Admin, params: Params) -> Any:
    """The admin's health, as is."""
    return admin.health()


def status(admin: Admin, params: Params) -> Any:
    """The admin's status, as is."""
    return admin.status()


def workers(admin: Admin, params: Params) -> Any:
    """The workers as a listing."""
    return listing(admin.workers())


def customers(admin: Admin, params: Params) -> Any:
    """The customers as a listing."""
    return listing(admin.customers())


def queue(admin: Admin, params: Params) -> Any:
    """One page of the queued files, in dispatch order."""
    return admin.queue(**paging(params))


def tasks(admin: Admin, params: Params) -> Any:
    """The running jobs as a listing."""
    return listing(admin.tasks())


def components(admin: Admin, params: Params) -> Any:
    """The components on the workers as a listing (of one kind, on one worker)."""
    kind, worker = params.get("kind"), params.get("worker")
    return listing(
        admin.components(
            str(kind) if kind is not None else None, str(worker) if worker is not None else None
        )
    )


def files(admin: Admin, params: Params) -> Any:
    """One page of the files in one state (or all)."""
    state = params.get("state")
    return admin.files(str(state) if state is not None else None, **paging(params))


def retry_file(admin: Admin, params: Params) -> Any:
    """Offer a stuck file again."""
    return admin.retry_file(str(params["customer"]), str(params["profile"]), str(params["relpath"]))


def set_priority(admin: Admin, params: Params) -> Any:
    """Give a queued file a priority of its own."""
    return admin.set_priority(
        str(params["customer"]),
        str(params["profile"]),
        str(params["relpath"]),
        int(params["priority"]),
    )


def cancel_task(admin: Admin, params: Params) -> Any:
    """Cancel a file's running job."""
    return admin.cancel_task(
        str(params["customer"]),
        str(params["profile"]),
        str(params["relpath"]),
        by=str(params["caller"]) or "an operator",
        then=str(params.get("then", CANCEL_THEN[0])),
    )


def notifications(admin: Admin, params: Params) -> Any:
    """One page of notifications in one state (or all)."""
    state = params.get("state")
    return admin.notifications(str(state) if state is not None else None, **paging(params))


def retry_notification(admin: Admin, params: Params) -> Any:
    """Queue a notification that gave up again."""
    return admin.retry_notification(str(params["id"]))


def diagnosis(admin: Admin, params: Params) -> Any:
    """A failed job's diagnosis."""
    return admin.diagnosis(str(params["job_id"]))


def paging(params: Params) -> dict[str, int]:
    """The ``offset`` and ``limit`` a client gave (the admin's defaults otherwise)."""
    return {name: int(params[name]) for name in ("offset", "limit") if name in params}


def reports(admin: Admin, params: Params) -> Any:
    """One page of reports, filtered by the query parameters."""
    return admin.reports(**params)


def pause(admin: Admin, params: Params) -> Any:
    """Ask the admin to pause."""
    return admin.pause()


def resume(admin: Admin, params: Params) -> Any:
    """Ask the admin to resume."""
    return admin.resume()


def reload(admin: Admin, params: Params) -> Any:
    """Ask the admin to reload its configuration."""
    return admin.reload()


def throughput(admin: Admin, params: Params) -> Any:
    """Files ended per minute over the last hour."""
    return admin.throughput()


def whoami(admin: Admin, params: Params) -> Any:
    """The caller: its token's name (null without tokens) and role."""
    return {"name": str(params["caller"]) or None, "role": params["role"]}
