"""Report files: atomic YAML writes, reading, finding, and mapping reports to rows."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import formatEvent, globalLogPublisher

from transcoder_admin.reports.escape import escape_text, unescape_text
from transcoder_admin.reports.files import (
    find_reports,
    read_report,
    row_from_report,
    write_report,
)
from transcoder_admin.reports.model import COLUMNS
from transcoder_admin.reports.spool import COMPACT_SLACK, RowSpool

HOSTILE_NAMES = [
    "clip one.mov",
    'it\'s "quoted".mov',
    "new\nline.mov",
    "dollar $HOME; rm -rf x.mov",
    "non-ascii éàü 日本語 🎬.mov",
    "-leading-dash.mov",
    "nel\x85and\u2028separators.mov",
]


def example_report(**changes: Any) -> dict[str, Any]:
    """A report of a done job, as the job runner writes it."""
    report: dict[str, Any] = {
        "job_id": "20261123T185500Z-1a2b3c4d",
        "attempt": 2,
        "customer": "Example",
        "profile": "web",
        "relpath": "news/clip one.mov",
        "source": "default:/example/files/incoming/web/news/clip one.mov",
        "report_path": "default:/example/reports/done/web/news/clip one.mov.20261123T185500Z"
        "-1a2b3c4d.yaml",
        "outcome": "done",
        "failure": None,
        "backend": "ffmpeg",
        "worker": "local-1",
        "machine": "host-a",
        "file": {
            "size": 123456789012,
            "checksum": "sha256:" + "ab" * 32,
            "ctime": "2026-11-23T18:50:00+01:00",
            "mtime": "2026-11-23T17:50:00Z",
        },
        "source_info": {
            "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
            "duration": 10,
            "mime_type": "video/mp4",
            "size": 123456789012,
            "bit_rate": 1,
            "video": {"codec": "h264", "width": 640, "height": 360},
            "audio": {"codec": "aac", "rate": 48000, "channels": 2},
        },
        "times": {
            "detected": "2026-11-23T18:55:00+00:00",
            "queued": "2026-11-23T18:55:01+00:00",
            "started": "2026-11-23T18:55:02.250000+00:00",
            "finished": "2026-11-23T18:55:09+00:00",
        },
        "cpu_time": 1.5,
        "real_time": 3.2,
        "targets": [
            {
                "name": "high",
                "type": "audio-video",
                "outcome": "done",
                "reason": None,
                "outputs": ["default:/example/files/outgoing/web/news/high/clip one.mp4"],
                "commands": [["ffmpeg", "-i", "clip one.mov", "out.mp4"]],
                "invalid_output": False,
            },
            {
                "name": "thumbs",
                "type": "thumbnails",
                "outcome": "done",
                "reason": None,
                "outputs": [],
                "commands": [],
                "invalid_output": False,
            },
        ],
        "comment": None,
    }
    report.update(changes)
    return report


def leftovers(folder: str) -> list[str]:
    """Every file in ``folder`` other than finished reports (temporary files, say)."""
    return [n for n in os.listdir(folder) if not n.endswith(".yaml")]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_write_read_round_trip_with_hostile_names(tmp_path: Any, name: str) -> None:
    """A report whose folder, file name and values are hostile names reads back unchanged."""
    folder = tmp_path / f"reports {name}" / "done"
    path = str(folder / f"{name}.20261123T185500Z-1a2b3c4d.yaml")
    report = example_report(relpath=f"news/{name}", comment=name)
    report["targets"][0]["commands"] = [["ffmpeg", "-i", name, f"{name}.mp4"]]

    write_report(path, report)

    assert os.listdir(folder) == [os.path.basename(path)]
    assert read_report(path) == report


def test_write_replaces_an_existing_report_and_leaves_no_temporary_file(tmp_path: Any) -> None:
    """Writing a report again replaces the old one whole, with no temporary file left over."""
    path = str(tmp_path / "clip.mov.job.yaml")
    write_report(path, example_report(comment="first"))
    write_report(path, example_report(comment="second"))

    assert read_report(path)["comment"] == "second"
    assert leftovers(str(tmp_path)) == []
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_failed_write_keeps_the_old_report(tmp_path: Any) -> None:
    """A report that cannot be written leaves the previous file intact and no litter."""
    path = str(tmp_path / "clip.mov.job.yaml")
    write_report(path, example_report(comment="good"))

    with pytest.raises(yaml.YAMLError):
        write_report(path, example_report(comment=object()))

    assert read_report(path)["comment"] == "good"
    assert leftovers(str(tmp_path)) == []


def test_write_that_cannot_rename_removes_its_temporary_file(tmp_path: Any) -> None:
    """When the final rename fails (a folder is in the way) the error shows and no litter stays."""
    in_the_way = tmp_path / "clip.mov.job.yaml"
    (in_the_way / "child").mkdir(parents=True)

    with pytest.raises(OSError):
        write_report(str(in_the_way), example_report())

    assert sorted(os.listdir(tmp_path)) == ["clip.mov.job.yaml"]
    assert os.listdir(in_the_way) == ["child"]


def test_a_report_path_that_is_a_link_is_refused_and_its_target_kept(tmp_path: Any) -> None:
    """A link where a report (or a kept folder's report) goes is an error; its target is kept."""
    target = tmp_path / "secret"
    target.write_text("keep me")
    link = tmp_path / "clip.mov.job.yaml"
    link.symlink_to(target)

    with pytest.raises(OSError, match="link"):
        write_report(str(link), example_report())

    assert target.read_text() == "keep me" and os.path.islink(link)
    assert sorted(os.listdir(tmp_path)) == ["clip.mov.job.yaml", "secret"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(exclude_categories=())))
def test_any_string_round_trips(tmp_path: Any, text: str) -> None:
    """Any string (control characters, line separators, lone surrogates) reads back unchanged."""
    path = str(tmp_path / "property.yaml")
    report = example_report(relpath=text, comment=text, extra={text: [text]})

    write_report(path, report)

    assert read_report(path) == report


def test_read_report_rejects_a_file_that_is_not_a_mapping(tmp_path: Any) -> None:
    """A YAML file holding a list is refused with an error naming the file."""
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")

    with pytest.raises(ValueError, match="list.yaml: a report must be a mapping"):
        read_report(str(path))


def test_find_reports_walks_the_tree_and_skips_hidden_and_temporary_files(tmp_path: Any) -> None:
    """Every visible ``*.yaml`` below the folder is found, in a stable order."""
    for relative in [
        "web/news/b clip.mov.j2.yaml",
        "web/news/a clip.mov.j1.yaml",
        "web/top.mov.j3.yaml",
        "web/.report-x1.tmp",
        "web/.hidden.yaml",
        ".trash/old.yaml",
        "web/notes.txt",
    ]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n", encoding="utf-8")

    found = [os.path.relpath(p, tmp_path) for p in find_reports(str(tmp_path))]

    assert found == [
        "web/top.mov.j3.yaml",
        "web/news/a clip.mov.j1.yaml",
        "web/news/b clip.mov.j2.yaml",
    ]
    assert list(find_reports(str(tmp_path / "missing"))) == []


def test_row_from_report_maps_every_column() -> None:
    """A done video job maps to a row with every column, times in UTC."""
    row = row_from_report(example_report())

    assert set(row) == set(COLUMNS)
    assert row == {
        "job_id": "20261123T185500Z-1a2b3c4d",
        "customer": "Example",
        "profile": "web",
        "relative_path": "news/clip one.mov",
        "report_path": "default:/example/reports/done/web/news/clip one.mov."
        "20261123T185500Z-1a2b3c4d.yaml",
        "checksum": "sha256:" + "ab" * 32,
        "file_size": 123456789012,
        "file_type": "video",
        "mime_type": "video/mp4",
        "audio_codec": "aac",
        "video_codec": "h264",
        "creation_time": datetime(2026, 11, 23, 17, 50, tzinfo=UTC),
        "modification_time": datetime(2026, 11, 23, 17, 50, tzinfo=UTC),
        "detection_time": datetime(2026, 11, 23, 18, 55, tzinfo=UTC),
        "queueing_time": datetime(2026, 11, 23, 18, 55, 1, tzinfo=UTC),
        "start_time": datetime(2026, 11, 23, 18, 55, 2, 250000, tzinfo=UTC),
        "finish_time": datetime(2026, 11, 23, 18, 55, 9, tzinfo=UTC),
        "cpu_time": 1.5,
        "real_time": 3.2,
        "attempt_count": 2,
        "machine_name": "host-a",
        "worker_name": "local-1",
        "outcome": "done",
        "failure_kind": None,
        "failure_reason": None,
        "invalid_output": False,
        "comment": None,
        "backend": "ffmpeg",
        "source_duration": 10.0,
        "qmaster_batch_id": None,
        "qmaster_cluster": None,
        "verdict": None,
    }


def test_row_from_report_of_a_qmaster_job_names_its_batch_and_cluster() -> None:
    """A Compressor job's row has the batch id and the cluster it ran on after fallback."""
    report = example_report(
        backend="qmaster",
        qmaster={"batch_id": "B-17", "cluster": "This Computer", "requested_cluster": "Farm"},
    )
    row = row_from_report(report)
    assert (row["backend"], row["qmaster_batch_id"], row["qmaster_cluster"]) == (
        "qmaster",
        "B-17",
        "This Computer",
    )


def test_row_from_report_of_a_failed_audio_job() -> None:
    """A failed audio-only job keeps its failure kind and reason and any invalid output."""
    report = example_report(
        outcome="failed",
        failure={"kind": "source", "reason": "decode error at 37%"},
        comment="dropped twice",
    )
    report["source_info"]["video"] = None
    report["targets"][1]["invalid_output"] = True

    row = row_from_report(report)

    assert row["file_type"] == "audio"
    assert row["video_codec"] is None
    assert row["audio_codec"] == "aac"
    assert row["outcome"] == "failed"
    assert row["failure_kind"] == "source"
    assert row["failure_reason"] == "decode error at 37%"
    assert row["invalid_output"] is True
    assert row["comment"] == "dropped twice"


def test_row_from_report_of_a_file_that_is_not_media() -> None:
    """A source without analysis (not media) maps to file type "unknown" and no codecs."""
    row = row_from_report(
        example_report(
            outcome="failed",
            failure={"kind": "source", "reason": "not a media file"},
            source_info=None,
            targets=[],
            times={"detected": "2026-11-23T18:55:00+00:00", "finished": None},
        )
    )

    assert row["file_type"] == "unknown"
    assert (row["mime_type"], row["audio_codec"], row["video_codec"]) == (None, None, None)
    assert row["source_duration"] is None
    assert row["finish_time"] is None
    assert row["invalid_output"] is False


def test_row_from_report_reads_times_yaml_already_parsed() -> None:
    """Unquoted timestamps, which YAML loads as datetimes, map like ISO strings."""
    report = yaml.safe_load(
        yaml.safe_dump(example_report()).replace(
            "'2026-11-23T18:55:00+00:00'", "2026-11-23T18:55:00+00:00"
        )
    )
    assert isinstance(report["times"]["detected"], datetime)

    assert row_from_report(report)["detection_time"] == datetime(2026, 11, 23, 18, 55, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"job_id": None}, "job_id: required"),
        ({"relpath": ""}, "relpath: required"),
        ({"outcome": "maybe"}, "outcome: 'maybe' is not one of done, failed"),
        ({"failure": {"kind": "gremlins"}}, "failure.kind: 'gremlins' is not one of"),
        ({"times": {"finished": "yesterday"}}, "times.finished: 'yesterday' is not an ISO"),
        ({"file": {"size": "big"}}, "file.size: expected int"),
        ({"attempt": 0}, "attempt: expected a positive integer"),
        ({"targets": "all"}, "targets: expected a list"),
    ],
)
def test_row_from_report_rejects_bad_reports(changes: dict[str, Any], message: str) -> None:
    """A report with a missing or impossible value is refused, naming the key."""
    report = copy.deepcopy(example_report(**changes))

    with pytest.raises(ValueError, match=message):
        row_from_report(report)


# -- the escape of texts in the database ---------------------------------------------


@given(st.binary(max_size=40))
def test_escape_of_any_file_name_is_valid_text_and_reversible(name: bytes) -> None:
    """Any file name's bytes give storable text (UTF-8, no NUL) that gives the bytes back."""
    text = os.fsdecode(name)
    stored = escape_text(text)
    stored.encode("utf-8")  # raises on a lone surrogate: what PostgreSQL refuses
    assert "\x00" not in stored
    assert os.fsencode(unescape_text(stored)) == name


@given(st.text(max_size=40))
def test_escape_is_unambiguous(text: str) -> None:
    """Two different texts never share a stored form; valid names without \\ stay as they are."""
    assert unescape_text(escape_text(text)) == text
    if "\\" not in text and "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text):
        assert escape_text(text) == text


def test_escape_examples() -> None:
    """The documented forms: \\xNN for an undecodable byte, \\\\ for a backslash."""
    assert escape_text(os.fsdecode(b"caf\xe9.mp4")) == "caf\\xe9.mp4"
    assert escape_text("a\\xe9.mp4") == "a\\\\xe9.mp4"
    assert unescape_text("a\\\\xe9.mp4") == "a\\xe9.mp4"


# -- the spool of rows waiting for the database --------------------------------------


def spool_row(job_id: str, **changes: Any) -> dict[str, Any]:
    """A row as the admin hands it to the database (times may be datetimes)."""
    row = row_from_report(example_report(job_id=job_id))
    row.update(changes)
    return row


def test_spool_gives_back_the_rows_not_yet_written(tmp_path: Any) -> None:
    """Rows added and not done come back at the next open, names and times intact."""
    spool = RowSpool(str(tmp_path / "state"))
    assert spool.open() == []
    name = os.fsdecode(b"news/caf\xe9.mp4")
    first = spool.add(spool_row("j-1", relative_path=name))
    second = spool.add(spool_row("j-2"))
    spool.done(second)
    assert spool.waiting == 1
    # killed: no close()

    again = RowSpool(str(tmp_path / "state"))
    [(ident, row)] = again.open()
    assert ident == first
    assert row["job_id"] == "j-1" and row["relative_path"] == name
    assert row["finish_time"] == spool_row("j-1")["finish_time"].isoformat()
    again.done(again.add(spool_row("j-3")))  # a new row never takes the waiting one's id
    assert [row["job_id"] for _, row in RowSpool(str(tmp_path / "state")).open()] == ["j-1"]


def test_spool_survives_a_line_cut_by_a_crash(tmp_path: Any) -> None:
    """A half-written last line is ignored; the complete ones are kept."""
    spool = RowSpool(str(tmp_path))
    spool.open()
    spool.add(spool_row("j-1"))
    spool.close()
    with open(spool.path, "a", encoding="utf-8") as f:
        f.write('{"op": "row", "id": 9, "row": {"job_id": "j-9", "cust')

    assert [row["job_id"] for _, row in RowSpool(str(tmp_path)).open()] == ["j-1"]


def test_spool_stays_small_while_the_database_keeps_up(tmp_path: Any) -> None:
    """Thousands of rows written one by one leave a file of about 1 MiB, not of all of them."""
    spool = RowSpool(str(tmp_path))
    spool.open()
    row = spool_row("j", comment="x" * 1000)
    for i in range(5000):
        spool.done(spool.add({**row, "job_id": f"j-{i}"}))

    assert os.path.getsize(spool.path) < COMPACT_SLACK + 10_000
    assert RowSpool(str(tmp_path)).open() == []


def test_spool_that_cannot_be_written_says_so_once_and_rows_go_on(tmp_path: Any) -> None:
    """A full disk under the spool is logged once; adding rows then records nothing."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        spool = RowSpool(str(tmp_path))
        spool.open()
        spool.close()
        spool._file = open("/dev/full", "a", buffering=1)  # every write: ENOSPC
        assert spool.add(spool_row("j-1")) is None
        assert spool.add(spool_row("j-2")) is None
        spool.done(None)
    finally:
        globalLogPublisher.removeObserver(events.append)
    errors = [formatEvent(e) for e in events if "spool" in formatEvent(e)]
    assert len(errors) == 1 and "replay-reports" in errors[0], errors


def test_spool_refuses_a_row_it_cannot_encode_without_raising(tmp_path: Any) -> None:
    """A value JSON cannot hold is logged and not spooled; the caller goes on."""
    spool = RowSpool(str(tmp_path))
    spool.open()

    assert spool.add(spool_row("j-odd", comment=object())) is None
    assert spool.waiting == 0
    spool.done(spool.add(spool_row("j-ok")))
    assert RowSpool(str(tmp_path)).open() == []
