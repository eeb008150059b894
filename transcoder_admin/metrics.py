"""The farm's Prometheus metrics (``GET /metrics``), with prometheus-client.

Counters and histograms grow as jobs end (the scheduler's events); gauges are read from
the parts when Prometheus scrapes, so they cost nothing between scrapes.  Each admin has
its own registry: nothing is global, tests can build several.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .scheduler import Finished
from .times import iso

#: Seconds: from a 2 s clip's job to a feature film's.
DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
#: The states a notification goes through (notify.store), each exported even when zero.
NOTIFICATION_STATES = ("queued", "delivered", "failed")
QUEUE_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)


class Snapshot(Collector):
    """The gauges, read from the farm at each scrape (``read`` returns its values)."""

    def __init__(self, read: Callable[[], Mapping[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        """One family per gauge."""
        values = self.read()
        queued = GaugeMetricFamily(
            "transcoder_queue_files",
            "Files waiting in the queue, by customer and profile.",
            labels=["customer", "profile"],
        )
        for (customer, profile), count in sorted(values["queued"].items()):
            queued.add_metric([customer, profile], count)
        yield queued
        yield GaugeMetricFamily(
            "transcoder_running_jobs", "Jobs running now.", value=values["running"]
        )
        workers = GaugeMetricFamily("transcoder_workers", "Workers by state.", labels=["state"])
        for state, count in sorted(values["workers"].items()):
            workers.add_metric([state], count)
        yield workers
        yield GaugeMetricFamily(
            "transcoder_slots", "Job slots of the attached workers.", value=values["capacity"]
        )
        yield GaugeMetricFamily(
            "transcoder_free_slots", "Job slots free now.", value=values["free_slots"]
        )
        yield GaugeMetricFamily(
            "transcoder_report_rows_waiting",
            "Report rows waiting to be written to the database.",
            value=values["rows_waiting"],
        )
        notifications = GaugeMetricFamily(
            "transcoder_notifications", "Notifications by state.", labels=["state"]
        )
        counts = values["notifications"]
        # Every state is there from the start (zero without notifications configured).
        for state in sorted({*NOTIFICATION_STATES, *counts}):
            notifications.add_metric([state], counts.get(state, 0))
        yield notifications


class PerMinute:
    """Files ended in each of the last ``minutes`` minutes, done and failed (the
    dashboard's chart): counted as they end, and at start-up read from the reports
    database for the minutes before (:meth:`seed`)."""

    def __init__(self, clock: Callable[[], float], minutes: int = 60) -> None:
        self.clock = clock
        self.minutes = minutes
        #: [minute number, done, failed], oldest first; minutes with nothing are absent.
        self._counts: deque[list[int]] = deque()

    def count(self, outcome: str) -> None:
        """One file ended now with ``outcome`` (done or failed)."""
        minute = int(self.clock() // 60)
        if not self._counts or self._counts[-1][0] != minute:
            self._counts.append([minute, 0, 0])
        self._counts[-1][1 if outcome == "done" else 2] += 1
        self._forget_old(minute)

    def _forget_old(self, minute: int) -> None:
        while self._counts and self._counts[0][0] <= minute - self.minutes:
            self._counts.popleft()

    async def seed(self, query: Callable[..., Awaitable[Mapping[str, Any]]], before: float) -> None:
        """Add the files that ended in the chart's minutes before ``before`` (the admin's
        start), as the reports database counts them: rows an earlier run saved.

        ``query`` is the database's (``ReportsDB.query``); one count per minute and
        outcome, so an hour of tiny files costs 120 small queries, not their rows.
        """
        last = int(before // 60)
        found: dict[int, list[int]] = {}
        for minute in range(last - self.minutes + 1, last + 1):
            start, end = minute * 60.0, min(minute * 60.0 + 60.0, before)
            for index, outcome in ((1, "done"), (2, "failed")):
                page = await query(outcome=outcome, since=iso(start), until=iso(end), limit=0)
                if page["total"]:
                    found.setdefault(minute, [minute, 0, 0])[index] += int(page["total"])
        for minute, done, failed in self._counts:  # counted since the start, meanwhile
            entry = found.setdefault(minute, [minute, 0, 0])
            entry[1] += done
            entry[2] += failed
        self._counts = deque(found[m] for m in sorted(found))
        self._forget_old(int(self.clock() // 60))

    def last(self) -> list[dict[str, Any]]:
        """Every one of the last minutes, oldest first, the current one last."""
        now = int(self.clock() // 60)
        self._forget_old(now)
        counted = {minute: (done, failed) for minute, done, failed in self._counts}
        rows = []
        for minute in range(now - self.minutes + 1, now + 1):
            done, failed = counted.get(minute, (0, 0))
            rows.append({"minute": iso(minute * 60.0), "done": done, "failed": failed})
        return rows


class FarmMetrics:
    """The admin's registry: counters fed by ended jobs, gauges read at scrape time."""

    def __init__(
        self, read: Callable[[], Mapping[str, Any]], clock: Callable[[], float] | None = None
    ) -> None:
        self.per_minute = PerMinute(clock or time.time)
        self.registry = CollectorRegistry(auto_describe=True)
        self.finished = Counter(
            "transcoder_jobs_finished",
            "Jobs ended, by outcome and failure kind (none for done jobs).",
            ["outcome", "failure_kind"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "transcoder_job_duration_seconds",
            "Wall time of a job on its worker.",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "transcoder_time_in_queue_seconds",
            "From queued to started, per job.",
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.cpu = Counter(
            "transcoder_ffmpeg_cpu_seconds",
            "CPU seconds the jobs' commands (ffmpeg, post-process) used.",
            registry=self.registry,
        )
        self.registry.register(Snapshot(read))
        # Every label pair exists from the start: a rate() over a new series is empty.
        self.finished.labels("done", "none")

    def job_ended(self, finished: Finished) -> None:
        """Count one ended job (the scheduler's done and failed events)."""
        report, item = finished.report, finished.item
        kind = report.failure.kind if report.failure is not None else "none"
        self.finished.labels(report.outcome, kind).inc()
        self.per_minute.count(report.outcome)
        if report.real_time is not None:
            self.duration.observe(max(0.0, report.real_time))
        if item.started_at is not None and item.queued_at:
            self.queue_time.observe(max(0.0, item.started_at - item.queued_at))
        if report.cpu_time:
            self.cpu.inc(max(0.0, report.cpu_time))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


def queued_by_profile(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], int]:
    """How many queued files each (customer, profile) has."""
    return dict(Tally(key[:2] for key in keys))
