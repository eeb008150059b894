"""The API's read views: the farm's listings as pages of JSON rows.

They are built from what the admin's public queries return (plain rows and counts),
never from its parts, so the API cannot reach past those queries.  A listing is made
of *sources* taken one after the other; only the sources a page reaches are asked for
their rows, so a page of a long queue costs what the page holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..times import iso
from .schemas import FILE_STATES

FINISHED = ("done", "failed")
#: Rows per page of /queue and /files unless the client asks for another limit.
PAGE_LIMIT = 100

#: A part of a listing: how many rows it has, and a function giving its first n rows.
Source = tuple[int, Callable[[int], list[dict[str, Any]]]]
Rows = Callable[[], list[dict[str, Any]]]


def listed(rows: list[dict[str, Any]]) -> Source:
    """A part of a listing that is already a list."""
    return len(rows), lambda first: rows[:first]


def page(sources: Iterable[Source], offset: int, limit: int) -> dict[str, Any]:
    """``limit`` rows from ``offset`` of the sources one after the other, and the total."""
    sources = list(sources)
    total = sum(count for count, _rows in sources)
    items: list[dict[str, Any]] = []
    skip, want = offset, limit
    for count, rows in sources:
        if want <= 0:
            break
        if skip >= count:
            skip -= count
            continue
        part = rows(skip + want)[skip:]
        items += part
        want -= len(part)
        skip = 0
    return {"total": total, "offset": offset, "limit": limit, "items": items}


def queued_rows(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Queue items as /queue lists them."""
    return [
        {
            "customer": item.customer,
            "profile": item.profile,
            "relpath": item.relpath,
            "priority": item.priority,
            "detected": iso(item.detected_at),
            "queued": iso(item.queued_at),
        }
        for item in items
    ]


def files_page(
    state: str | None,
    offset: int,
    limit: int,
    *,
    pending: Rows,
    ignored: Rows,
    queued: Source,
    running: Rows,
    finished: Rows,
    stuck: Rows,
) -> dict[str, Any]:
    """One page of the files the admin knows of, optionally of one state.

    In the order pending, ignored (links in incoming), queued (dispatch order),
    transcoding, recently finished, stuck (oldest first, with ``reason`` and ``since``).
    Only the states asked for are computed.
    """
    if state is not None and state not in FILE_STATES:
        raise ValueError(f"unknown state {state!r}; allowed: {', '.join(FILE_STATES)}")
    sources: list[Source] = []
    if state in (None, "pending"):
        sources.append(listed([{**r, "detected": iso(r["detected"])} for r in pending()]))
    if state in (None, "ignored"):
        sources.append(listed([{**r, "detected": iso(r["detected"])} for r in ignored()]))
    if state in (None, "queued"):
        count, rows = queued
        sources.append((count, lambda n: [{**q, "state": "queued"} for q in rows(n)]))
    if state in (None, "transcoding"):
        keys = ("customer", "profile", "relpath", "job_id", "worker")
        sources.append(
            listed([{**{k: t[k] for k in keys}, "state": "transcoding"} for t in running()])
        )
    if state in (None, *FINISHED):
        sources.append(listed([r for r in finished() if state in (None, r["state"])]))
    if state in (None, "stuck"):
        sources.append(listed(stuck()))
    return page(sources, offset, limit)


def file_counts(
    pending: int, queued: int, running: int, finished: Iterable[Mapping[str, Any]], stuck: int
) -> dict[str, int]:
    """How many files are in each state, for /status."""
    ended = list(finished)
    return {
        "pending": pending,
        "queued": queued,
        "transcoding": running,
        **{state: sum(1 for r in ended if r["state"] == state) for state in FINISHED},
        "stuck": stuck,
    }
