"""A worker sends its documents' wire forms picked straight from them (no record built on
the worker): what it picks is exactly what the record reads, and nothing else travels."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from twisted.internet.task import Clock

from transcoder_admin.job.report import build_report, target_result
from transcoder_admin.media.probe import AudioInfo, MediaInfo, VideoInfo
from transcoder_admin.prognosis import WRONG_MIME_TYPE, JobFailure
from transcoder_admin.records import (
    BadRecord,
    JobSpec,
    Outcome,
    Report,
    outcome_wire,
    report_wire,
)

SPEC = JobSpec.from_wire(
    {
        "job_id": "J7",
        "attempt": 2,
        "customer": "acme",
        "profile": "web",
        "relpath": "news/clip.mov",
        "source": "default:/in/news/clip.mov",
        "report_done": "default:/reports/done/clip.mov.J7.yaml",
        "report_failed": "default:/reports/failed/clip.mov.J7.yaml",
        "detected": "2026-12-03T09:00:00+00:00",
        "queued": "2026-12-03T09:00:01+00:00",
    }
)

MEDIA = MediaInfo(
    format_name="mov,mp4,m4a,3gp,3g2,mj2",
    duration=12.5,
    size=123456,
    bit_rate=800000,
    video=VideoInfo(
        codec="h264",
        width=640,
        height=360,
        sar=Fraction(1, 1),
        rotation=0,
        fps=25.0,
    ),
    audio=AudioInfo(codec="aac", rate=48000, channels=2),
    mime_type="video/mp4",
)


def done_document() -> dict[str, Any]:
    """A done job's report document with every field the record reads set, and the
    worker's own extras beside them (commands, the source's first bytes, Qmaster ids)."""
    report = build_report(SPEC, "w1", Clock(), None)
    target = target_result({"name": "h264", "type": "video"}, outcome="done")
    target["outputs"] = ["default:/outgoing/news/clip.mp4"]
    target["commands"] = [["ffmpeg", "-i", "clip.mov", "clip.mp4"]]
    report.update(
        committed=True,
        comment="fine",
        cpu_time=1.5,
        real_time=2.25,
        file={
            "size": 123456,
            "checksum": "ab" * 32,
            "ctime": "2026-12-03T08:59:00+00:00",
            "mtime": "2026-12-03T08:59:00+00:00",
            "mime_guess": "video/quicktime",
            "head": "00" * 128,
        },
        source_info=MEDIA.to_dict(),
        targets=[target],
        qmaster={
            "batch_id": "B1",
            "cluster": "This Computer",
            "requested_cluster": "farm",
            "job_ids": ["1", "2"],
        },
        verdict=WRONG_MIME_TYPE,
        diagnosis="clip.mov.J7.yaml.diagnosis.yaml",
    )
    report["times"]["started"] = "2026-12-03T09:00:02+00:00"
    return report


def failed_document() -> dict[str, Any]:
    """A job that failed before analysis: most facts unknown."""
    return build_report(SPEC, "w1", Clock(), JobFailure("source", "not a media file"))


@pytest.mark.parametrize("document", [done_document(), failed_document()])
def test_a_picked_report_reads_into_the_same_record_as_its_document(document):
    """The admin gets the record it would get from the whole document."""
    assert Report.from_wire(report_wire(document)) == Report.from_document(document)
    assert Outcome.from_wire(outcome_wire(document)) == Outcome.from_wire(document)


def test_the_picked_wire_form_is_the_records_own_field_for_field():
    """With every field set, the pick is exactly ``to_wire`` of the record: no field the
    record reads is left behind, none of the worker's extras travels."""
    document = done_document()
    picked = report_wire(document)
    assert picked == Report.from_document(document).to_wire()
    assert "commands" not in picked["targets"][0]
    assert "head" not in picked["file"]
    assert "sar" not in picked["source_info"]["video"]
    assert "requested_cluster" not in picked["qmaster"]
    outcome = outcome_wire(document)
    assert outcome == Outcome.from_wire(document).to_wire()


def test_the_pick_leaves_the_document_as_it_was():
    """The worker keeps its document (a repeated acknowledgement sends it again)."""
    document = done_document()
    before = repr(document)
    report_wire(document)
    outcome_wire(document)
    assert repr(document) == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"file": "big"}, "file"),
        ({"targets": {"name": "x"}}, "targets"),
        ({"targets": ["x"]}, "targets[0]"),
        ({"source_info": {"video": 3}}, "source_info.video"),
        ({"attempt": "2"}, "attempt"),
    ],
)
def test_a_bad_document_is_picked_as_it_is_and_the_reader_names_the_field(changes, field):
    """The pick checks nothing and hides nothing: the admin's reader names the bad field."""
    document = {**done_document(), **changes}
    with pytest.raises(BadRecord) as raised:
        Report.from_wire(report_wire(document))
    assert raised.value.field == field


def test_a_spec_sends_its_mappings_as_copies_and_only_what_is_not_a_default():
    """The source's identity and the prognosis rules travel once, as plain dicts; a field
    left at its default does not travel; the record reads back the same."""
    from transcoder_admin.records import JobSpec

    identity = {"size": 3, "ino": 7}
    spec = JobSpec(
        job_id="J",
        attempt=2,
        customer="c",
        profile="p",
        relpath="x.mov",
        source="default:/in/x.mov",
        source_identity=identity,
        prognosis={"file_types": ["pdf"]},
    )
    wire = spec.to_wire()
    assert sorted(wire) == [
        "attempt",
        "customer",
        "job_id",
        "profile",
        "prognosis",
        "relpath",
        "source",
        "source_identity",
    ]
    assert type(wire["source_identity"]) is dict and wire["source_identity"] is not identity
    assert JobSpec.from_wire(wire) == spec
