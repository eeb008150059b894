"""The farm's metrics: what a scrape shows after jobs end, and the shipped Grafana
dashboard asks only for metrics the farm exports."""

from __future__ import annotations

import json
import os
import re

from prometheus_client.parser import text_string_to_metric_families

from transcoder_admin.metrics import FarmMetrics
from transcoder_admin.prognosis import JobFailure
from transcoder_admin.records import Report
from transcoder_admin.scheduler import Finished, QueueItem

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VALUES = {
    "queued": {("ACME", "web"): 3, ("Zeta", "audio"): 1},
    "running": 2,
    "workers": {"attached": 2, "lost": 1},
    "capacity": 4,
    "free_slots": 2,
    "rows_waiting": 5,
    "notifications": {"queued": 1, "delivered": 7, "failed": 2},
}


def samples(metrics: FarmMetrics) -> dict[tuple[str, tuple], float]:
    """The scrape as {(name, sorted labels): value}."""
    found = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def ended(outcome: str, kind: str | None = None, real: float = 12.0) -> Finished:
    """A job that ran 12 s after 3 s in the queue."""
    item = QueueItem(("ACME", "web", "a.mov"), 100, 0.0, queued_at=10.0)
    item.started_at = 13.0
    failure = JobFailure(kind, "why") if kind else None
    report = Report(
        job_id="j1",
        attempt=1,
        outcome=outcome,
        failure=failure,
        customer="ACME",
        profile="web",
        relpath="a.mov",
        cpu_time=20.5,
        real_time=real,
    )
    return Finished(item, report)


def test_a_scrape_shows_the_gauges_and_the_ended_jobs():
    """Gauges as read at the scrape; counters and histograms as jobs ended."""
    metrics = FarmMetrics(lambda: VALUES)
    metrics.job_ended(ended("done"))
    metrics.job_ended(ended("failed", "source", real=2000))
    found = samples(metrics)
    assert found[("transcoder_queue_files", (("customer", "ACME"), ("profile", "web")))] == 3
    assert found[("transcoder_workers", (("state", "lost"),))] == 1
    assert found[("transcoder_notifications", (("state", "failed"),))] == 2
    assert found[("transcoder_free_slots", ())] == 2
    assert found[("transcoder_report_rows_waiting", ())] == 5
    done = ("transcoder_jobs_finished_total", (("failure_kind", "none"), ("outcome", "done")))
    failed = ("transcoder_jobs_finished_total", (("failure_kind", "source"), ("outcome", "failed")))
    assert (found[done], found[failed]) == (1, 1)
    assert found[("transcoder_job_duration_seconds_bucket", (("le", "30.0"),))] == 1
    assert found[("transcoder_job_duration_seconds_count", ())] == 2
    assert found[("transcoder_time_in_queue_seconds_sum", ())] == 6.0
    assert found[("transcoder_ffmpeg_cpu_seconds_total", ())] == 41.0


def test_the_grafana_dashboard_names_only_exported_metrics():
    """Every transcoder_* name in etc/grafana's expressions is in a scrape."""
    with open(os.path.join(ROOT, "etc", "grafana", "transcoder-admin.json")) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = set(re.findall(r"transcoder_[a-z_]+", " ".join(exprs)))
    metrics = FarmMetrics(lambda: VALUES)
    metrics.job_ended(ended("done"))
    exported = {name for name, _labels in samples(metrics)}
    assert named and named <= exported, named - exported
    assert len(dashboard["panels"]) >= 9


def test_every_notification_state_is_exported_even_without_notifications():
    """No notifications configured (no counts): each state still reads 0, not nothing."""
    metrics = FarmMetrics(lambda: {**VALUES, "notifications": {}})
    found = samples(metrics)
    for state in ("queued", "delivered", "failed"):
        assert found[("transcoder_notifications", (("state", state),))] == 0
