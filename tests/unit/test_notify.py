"""Notifications without servers: configuration, variables, rendering, back-off, which
entries a finished file fires and the admin mails' rate limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError
from twisted.internet.task import Clock

from transcoder_admin.config.customers import ProfileConfig, TargetConfig
from transcoder_admin.config.notify import (
    FILE_VARIABLES,
    TARGET_VARIABLES,
    HttpNotification,
    MailNotification,
    NotificationsSection,
    SqlNotification,
)
from transcoder_admin.notify.delivery import http_status_retryable, retry_delay
from transcoder_admin.notify.render import render
from transcoder_admin.notify.service import AdminMails
from transcoder_admin.notify.variables import file_variables, target_variables
from transcoder_admin.records import FileFacts, Report, SourceFacts, TargetOutcome

TARGETS = {"a": {"type": "audio"}}


def profile(**notify: Any) -> ProfileConfig:
    """A profile with one audio target and the notifications given."""
    return ProfileConfig.model_validate({**notify, "targets": TARGETS})


def errors(**notify: Any) -> list[str]:
    """The messages of a profile's validation errors."""
    with pytest.raises(ValidationError) as caught:
        profile(**notify)
    return [e["msg"] for e in caught.value.errors()]


# -- configuration


def test_the_three_kinds_and_a_plain_url_are_accepted():
    """A string is a GET; url, mail and sql mappings are their kinds."""
    p = profile(
        **{
            "notify-done": [
                "http://127.0.0.1:8080/done?file=%(inputRelPath)s&ok=%(success)d",
                {"url": "https://hooks.example.com/t", "method": "POST", "secret-file": "s"},
                {"mail": ["ops@example.com", "Jane Doe <jane@example.com>"], "subject": "x"},
                {"sql": "INSERT INTO d (p) VALUES (:inputRelPath)", "database": "sqlite:///d"},
            ]
        }
    )
    kinds = [type(e).__name__ for e in p.notify_done]
    assert kinds == ["HttpNotification", "HttpNotification", "MailNotification", "SqlNotification"]
    assert p.notify_done[0].method == "GET" and p.notify_done[1].secret_file == "s"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("http://x/?f=%(inputRelPat)s", "unknown variables: inputRelPat"),
        ("ftp://x/", "expected an http:// or https:// URL"),
        ("http://x/50%", "write %%"),
        ({"mail": ["nobody"]}, "not a mail address: 'nobody'"),
        ({"mail": ["a@x.org"], "subject": "%(nope)s"}, "unknown variables: nope"),
        ({"sql": "INSERT INTO d VALUES (:nope)", "database": "sqlite://"}, "binds unknown"),
        ({"sql": "SELECT 1", "database": "not a url"}, "not a database URL"),
        ({"url": "http://x/", "method": "PUT"}, "'GET' or 'POST'"),
        ({"telegram": "x"}, "expected a URL, or a mapping with url, mail or sql"),
        ("http://x/%(targetName)s", "only a target's notifications have target variables"),
    ],
)
def test_a_wrong_entry_is_a_configuration_error_that_says_why(entry, message):
    """Each mistake is found when the configuration is read, not when a file ends."""
    found = errors(**{"notify-failed": [entry]})
    assert any(message in m for m in found), found


def test_a_targets_entries_may_name_the_target_variables():
    """targetName, outputFile, outputRelPath… are a target's own."""
    t = TargetConfig.model_validate(
        {"type": "audio", "notify-done": ["http://x/%(targetName)s/%(outputRelPath)s"]}
    )
    assert t.notify_done[0].url.endswith("%(outputRelPath)s")


def test_the_admin_sections_have_the_documented_defaults():
    """notifications and diagnosis: retry 10 × from 10 s to an hour; the seed's rules."""
    from transcoder_admin.config.model import AdminConfig

    config = AdminConfig.model_validate({"roots": {"default": "/m", "temp": "/t"}})
    n = config.notifications
    assert (n.retry.attempts, n.retry.first_delay, n.retry.max_delay) == (10, 10.0, 3600.0)
    assert (n.smtp.port, n.smtp.starttls, n.http_timeout) == (25, "optional", 30.0)
    d = config.diagnosis
    assert (d.mime_types, d.min_video_size, d.min_audio_size) == (
        ["text/.*", "image/.*"],
        1024,
        100,
    )
    with pytest.raises(ValidationError, match="not a regular expression"):
        AdminConfig.model_validate(
            {"roots": {"default": "/m", "temp": "/t"}, "diagnosis": {"mime-types": ["(["]}}
        )


# -- variables and rendering


def report(**changes: Any) -> Report:
    """A done report of a 1 h 2 min 3.5 s video."""
    values: dict[str, Any] = {
        "job_id": "J1",
        "attempt": 1,
        "outcome": "done",
        "customer": "acme",
        "profile": "web",
        "relpath": "news/a b.mov",
        "report_path": "default:/reports/done/news/a b.mov.J1.yaml",
        "file": FileFacts(size=2048),
        "source_info": SourceFacts(
            mime_type="video/quicktime",
            format_name="mov,mp4,m4a,3gp,3g2,mj2",
            duration=3723.5,
            bit_rate=800000,
            has_video=True,
            video_codec="h264",
            width=640,
            height=360,
            fps=25.0,
            has_audio=True,
            audio_codec="aac",
            audio_rate=48000,
            audio_channels=2,
        ),
        "targets": (
            TargetOutcome("hd", "audio-video", "done", outputs=("default:/out/news/hd/a b.mp4",)),
        ),
    }
    values.update(changes)
    return Report(**values)


def locate(virtual: str) -> str:
    """Virtual paths under /srv/media."""
    return "/srv/media/" + virtual.split(":/", 1)[1]


def test_every_variable_has_a_value_from_the_report():
    """All names, in order, none None; lengths split into hours, minutes, seconds."""
    values = file_variables(
        report(),
        source_final="default:/done/news/a b.mov",
        output_folder="default:/out/news",
        locate=locate,
    )
    assert tuple(values) == FILE_VARIABLES
    assert None not in values.values()
    assert (values["success"], values["trigger"], values["sourceVideoWidth"]) == (
        1,
        "file-done",
        640,
    )
    assert (values["sourceHours"], values["sourceMinutes"], values["sourceSeconds"]) == (1, 2, 3)
    assert values["sourceLength"] == "1:02:03"
    assert values["inputFile"] == "/srv/media/done/news/a b.mov"
    assert values["reportPath"] == "/srv/media/reports/done/news/a b.mov.J1.yaml"
    assert (values["mediaAudioChannels"], values["sourceBitrate"]) == (2, 800000)
    target = target_variables(
        values, report().targets[0], output_folder="default:/out/news/hd", locate=locate
    )
    assert tuple(target)[len(FILE_VARIABLES) :] == TARGET_VARIABLES
    assert (target["outputFile"], target["outputRelPath"]) == (
        "/srv/media/out/news/hd/a b.mp4",
        "a b.mp4",
    )
    assert target["trigger"] == "target-done"


def test_a_failed_report_gives_its_kind_and_reason():
    """errorMessage and failureKind come from the failure; success is 0."""
    from transcoder_admin.prognosis import JobFailure

    failed = report(outcome="failed", failure=JobFailure("source", "not a media file"))
    values = file_variables(failed, source_final=None, output_folder=None, locate=locate)
    assert (values["success"], values["failureKind"], values["errorMessage"]) == (
        0,
        "source",
        "not a media file",
    )
    assert values["trigger"] == "file-failed" and values["inputFile"] == ""


def test_url_values_are_quoted_and_a_post_carries_every_variable():
    """A name with & and / cannot break the URL; the POST body is the whole event."""
    values = file_variables(report(), source_final=None, output_folder=None, locate=locate)
    values["inputRelPath"] = "a&b=c/d e.mov"
    get = render(HttpNotification(url="http://x/?f=%(inputRelPath)s&ok=%(success)d"), values)
    assert get.payload["url"] == "http://x/?f=a%26b%3Dc%2Fd%20e.mov&ok=1"
    assert get.destination == "http://x/"  # the query (file names) stays out of listings
    post = render(HttpNotification(url="https://x/h", method="POST"), values)
    event = json.loads(post.payload["body"])
    assert event["type"] == "file-done" and event["id"] == post.id
    assert event["data"]["inputRelPath"] == "a&b=c/d e.mov"
    assert post.id != get.id and post.id.startswith("msg_")


def test_a_mail_gets_a_default_subject_and_an_sql_notification_only_its_parameters():
    """Without subject or body: the trigger and the file; SQL: the bound names only."""
    values = file_variables(report(), source_final=None, output_folder=None, locate=locate)
    mail = render(MailNotification(mail=["a@x.org"]), values)
    assert mail.payload["subject"] == "Done: acme/web/news/a b.mov"
    assert "sourceDuration" in mail.payload["body"]
    sql = render(
        SqlNotification(
            sql="INSERT INTO t VALUES (:jobId, :sourceDuration)", database="postgresql://u:pw@db/x"
        ),
        values,
    )
    assert sql.payload["params"] == {"jobId": "J1", "sourceDuration": 3723.5}
    assert "pw" not in sql.destination


# -- trying again


def test_the_delay_doubles_up_to_the_most_and_is_jittered_down_by_up_to_half():
    """10, 20, 40 … 3600 s before jitter; the jitter takes off at most half."""
    assert [retry_delay(n, 10, 3600, jitter=1.0) for n in (1, 2, 3)] == [10, 20, 40]
    assert retry_delay(20, 10, 3600, jitter=1.0) == 3600
    assert 5 <= retry_delay(1, 10, 3600) <= 10


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (200, None),
        (204, None),
        (301, False),
        (400, False),
        (404, False),
        (408, True),
        (429, True),
        (500, True),
        (503, True),
    ],
)
def test_which_http_answers_are_tried_again(code, retryable):
    """2xx done; 408, 429 and 5xx again; every other answer gives up."""
    assert http_status_retryable(code) is retryable


# -- admin mails


class QueueOnly:
    """A notifier that only records what it is asked to queue."""

    def __init__(self) -> None:
        self.queued: list[Any] = []

    def add_soon(self, messages: list[Any]) -> None:
        self.queued.extend(messages)


def test_admin_mails_are_rate_limited_and_say_how_many_were_held_back():
    """Five per hour: the sixth to the ninth are held back; the next after the hour says so."""
    clock = Clock()
    settings = NotificationsSection.model_validate({"emergency": ["ops@example.com"]})
    notifier = QueueOnly()
    mails = AdminMails(notifier, settings, clock)  # type: ignore[arg-type]
    for n in range(9):
        mails.emergency(f"worker w{n} lost", "body")
    assert len(notifier.queued) == 5
    clock.advance(3601)
    mails.emergency("worker w9 lost", "body")
    last = notifier.queued[-1]
    assert "4 more emergency mails were not sent" in last.payload["body"]
    assert last.payload["to"] == ["ops@example.com"] and last.trigger == "admin-emergency"
    mails.debug("nobody listens", "no debug recipients: nothing is queued")
    assert len(notifier.queued) == 6


class Source:
    """An event source with ``fire`` (the core's Event), for the alarms' subscriptions."""

    def __init__(self) -> None:
        from transcoder_admin.events import Event

        self.fail_to_run: Any = Event("fail-to-run")
        self.worker_lost: Any = Event("worker-lost")
        self.worker_message: Any = Event("worker-message")
        self.unreachable_since: float | None = None


def test_alarms_mail_a_lost_worker_a_folder_that_cannot_be_scanned_and_a_silent_database():
    """Each once per period (a folder failing every scan is one mail); the database
    only after database-alarm-after, and again after it came back and left again."""
    from transcoder_admin.monitoring import ScanProblem
    from transcoder_admin.notify.service import Alarms

    clock = Clock()
    settings = NotificationsSection.model_validate(
        {"emergency": ["ops@example.com"], "database-alarm-after": 120, "admin-mails": 100}
    )
    notifier = QueueOnly()
    source = Source()
    mails = AdminMails(notifier, settings, clock)  # type: ignore[arg-type]
    alarms = Alarms(mails, settings, clock, monitoring=source, workers=source, db=source)
    alarms.start()
    problem = ScanProblem("acme", "web", "/srv/in/acme/web", "permission denied")
    for _ in range(3):
        source.fail_to_run.fire(problem)
        clock.advance(10)
    source.worker_lost.fire(("w2", "silent for 61 s"))
    subjects = [m.payload["subject"] for m in notifier.queued]
    assert subjects == [
        "[transcoder-admin emergency] monitoring cannot scan acme/web",
        "[transcoder-admin emergency] worker w2 lost",
    ]
    assert "permission denied" in notifier.queued[0].payload["body"]
    source.unreachable_since = clock.seconds()
    clock.advance(90)
    assert len(notifier.queued) == 2  # not yet 120 s
    clock.advance(60)
    assert notifier.queued[-1].payload["subject"].endswith("the reports database is unreachable")
    clock.advance(300)
    assert len(notifier.queued) == 3  # told once while it stays down
    source.unreachable_since = None
    clock.advance(30)
    source.unreachable_since = clock.seconds()
    clock.advance(200)
    assert len(notifier.queued) == 4
    alarms.stop()


class Recorder(QueueOnly):
    """A notifier that records what it is asked to add, now or soon."""

    async def add(self, messages: list[Any]) -> None:
        self.queued.extend(messages)


class OneStore:
    """The admin's store, as far as notifications read it (one customer's profiles)."""

    def __init__(self, context: Any) -> None:
        self.context = context

    def profile(self, customer: str, profile: str) -> Any:
        return self.context.customer(customer).profile(profile)


def test_a_system_failure_sends_the_operators_a_debug_mail_an_upload_failure_does_not():
    """The farm's failure (timeouts, crashes) is mailed to the debug list with the file;
    a source failure (the upload's) is not."""
    from twisted.internet import defer

    from tests.unit.test_paths import ACME, make_store
    from transcoder_admin.context.paths import Roots
    from transcoder_admin.notify.service import Notifications
    from transcoder_admin.prognosis import JobFailure
    from transcoder_admin.scheduler import Finished, QueueItem

    settings = NotificationsSection.model_validate({"debug": ["dev@example.com"]})
    recorder = Recorder()
    mails = AdminMails(recorder, settings, Clock())  # type: ignore[arg-type]
    notifications = Notifications(
        recorder,  # type: ignore[arg-type]
        mails,
        OneStore(make_store(ACME)),  # type: ignore[arg-type]
        Roots({"default": "/srv/media", "temp": "/var/tmp/t"}),
        None,  # type: ignore[arg-type]
        admin_dir="/etc/transcoder-admin",
        customers_dir="/etc/transcoder-admin/customers",
    )

    def end(kind: str, reason: str) -> None:
        failed = report(
            outcome="failed",
            failure=JobFailure(kind, reason),
            worker="w1",
            attempt=2,
            customer="ACME",
            profile="Web",
            report_path=None,
        )
        item = QueueItem(("ACME", "Web", failed.relpath), 1, 0.0)
        d = defer.ensureDeferred(notifications.file_finished(Finished(item, failed)))
        assert d.called

    end("source", "not a media file")
    assert recorder.queued == []
    end("system", "timed out after 5 s")
    [mail] = recorder.queued
    assert mail.trigger == "admin-debug" and mail.payload["to"] == ["dev@example.com"]
    assert "timed out after 5 s" in mail.payload["subject"]
    assert "after 2 attempts" in mail.payload["body"]


def test_worker_messages_keep_the_farms_warnings_and_errors_only_and_at_most_twenty():
    """Info and other libraries' events are not kept; the oldest go past twenty."""
    from twisted.logger import Logger, LogPublisher

    from transcoder_admin.worker.messages import KEPT, WorkerMessages

    publisher = LogPublisher()
    messages = WorkerMessages(publisher)
    messages.start()
    farm = Logger(namespace="transcoder_admin.worker", observer=publisher)
    farm.info("fine")
    Logger(namespace="twisted.web", observer=publisher).error("not ours")
    for n in range(KEPT + 5):
        farm.warn("warning {n}", n=n)
    farm.error("cannot write\nthe report")
    kept = messages.drain()
    assert len(kept) == KEPT and kept[-1] == {**kept[-1], "level": "error"}
    assert kept[-1]["text"] == "cannot write the report"  # one line
    assert kept[0]["text"] == "warning 6"
    assert messages.drain() == []
    messages.stop()


def test_a_workers_warning_becomes_a_debug_mail():
    """What a worker logged reaches the debug recipients, on one line, rate-limited."""
    from transcoder_admin.notify.service import Alarms

    clock = Clock()
    settings = NotificationsSection.model_validate({"debug": ["dev@example.com"]})
    notifier = QueueOnly()
    source = Source()
    mails = AdminMails(notifier, settings, clock)  # type: ignore[arg-type]
    alarms = Alarms(mails, settings, clock, workers=source)
    alarms.start()
    source.worker_message.fire(("w2", {"level": "error", "text": "cannot write\nthe report"}))
    [mail] = notifier.queued
    assert mail.trigger == "admin-debug"
    assert (
        mail.payload["subject"]
        == "[transcoder-admin debug] worker w2: error: cannot write\\nthe report"
    )
    alarms.stop()


def test_a_connection_lost_after_a_mail_attempt_ended_is_quiet():
    """Twisted's sender factory drops its Deferred once fired; a late connection loss
    must not errback the missing Deferred (an unhandled AttributeError before)."""
    import io

    from twisted.internet import defer, error
    from twisted.python.failure import Failure

    from transcoder_admin.notify.mail import _SenderFactory

    sent: defer.Deferred = defer.Deferred()
    factory = _SenderFactory(
        None, None, "farm@example.com", ["jane@example.com"], io.BytesIO(b"x"), sent, retries=0
    )
    sent.addErrback(lambda _: None)
    sent.cancel()  # the attempt timed out: we hung up
    lost = Failure(error.ConnectionDone())
    factory.clientConnectionLost(None, lost)  # raised AttributeError with Twisted's own
    factory.clientConnectionFailed(None, lost)
