"""The prognostician: which failed sources were to be expected of the upload."""

from __future__ import annotations

import pytest

from transcoder_admin.prognosis import Rules, prognose
from transcoder_admin.records import BadRecord, JobSpec, Report
from transcoder_admin.transcoding.specs import job_rules

DEFAULT = Rules()


def judge(rules: Rules = DEFAULT, **facts):
    """The verdict on a failed source with these facts (a 1 MiB file by default)."""
    values = {
        "mime_type": None,
        "file_types": (),
        "has_video": False,
        "has_audio": False,
        "size": 1 << 20,
    }
    values.update(facts)
    return prognose(rules, **values)


@pytest.mark.parametrize(
    ("facts", "verdict"),
    [
        ({"mime_type": "text/plain"}, "wrong_mime_type"),
        ({"mime_type": "image/png"}, "wrong_mime_type"),
        ({"mime_type": "IMAGE/JPEG"}, "wrong_mime_type"),
        ({"mime_type": "video/mp4", "has_video": True, "size": 500}, "video_too_small"),
        ({"mime_type": "audio/mp4", "has_audio": True, "size": 99}, "audio_too_small"),
        ({"mime_type": "audio/mp4", "has_audio": True, "size": 100}, None),
        (
            {"mime_type": "video/mp4", "has_video": True, "has_audio": True, "size": 50},
            "video_too_small",
        ),
        ({"mime_type": "video/mp4", "has_video": True}, None),
        ({"mime_type": "application/x-text-ish"}, None),  # a whole match, not a search
        ({}, None),
    ],
)
def test_the_seeds_default_rules(facts, verdict):
    """text/.* and image/.* are junk; video under 1024 bytes, audio under 100."""
    assert judge(**facts) == verdict


def test_file_types_match_an_extension_or_a_container_format():
    """A file-types rule names extensions or formats, matched whole, case aside."""
    rules = Rules(file_types=("docx?", "pdf"))
    assert judge(rules, file_types=("DOC",)) == "wrong_file_type"
    assert judge(rules, file_types=("mov", "mp4", "pdf")) == "wrong_file_type"
    assert judge(rules, file_types=("pdfx",)) is None


def test_a_job_carries_the_rules_only_when_they_differ_from_the_defaults():
    """The default rules are not sent (every job's spec stays small); others round-trip."""
    from transcoder_admin.config.notify import DiagnosisSection

    assert job_rules(DiagnosisSection()) is None
    custom = job_rules(DiagnosisSection.model_validate({"file-types": ["pdf"]}))
    assert custom is not None and Rules.from_wire(custom).file_types == ("pdf",)
    spec = JobSpec(
        job_id="J",
        attempt=1,
        customer="c",
        profile="p",
        relpath="x",
        source="d:/x",
        prognosis=custom,
    )
    assert JobSpec.from_wire(spec.to_wire()) == spec


def test_a_report_with_an_unknown_verdict_is_refused():
    """A worker cannot write any text into the verdict column."""
    base = {
        "job_id": "J",
        "attempt": 1,
        "outcome": "failed",
        "customer": "c",
        "profile": "p",
        "relpath": "x",
        "failure": {"kind": "source", "reason": "x"},
    }
    assert Report.from_wire({**base, "verdict": "wrong_mime_type"}).verdict == "wrong_mime_type"
    with pytest.raises(BadRecord, match="verdict"):
        Report.from_wire({**base, "verdict": "'; DROP TABLE"})
