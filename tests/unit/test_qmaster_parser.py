"""What Compressor and Batch Monitor print, read tolerantly: every output shape of issue 4."""

from __future__ import annotations

import pytest

from transcoder_admin.qmaster import (
    BatchStatus,
    CommandResult,
    QmasterClusterNotFound,
    QmasterNoOutputError,
    QmasterStatusError,
    QmasterSubmissionError,
    parse_status,
    parse_submission,
)
from transcoder_admin.qmaster.errors import QmasterStatusTimeoutError
from transcoder_admin.qmaster.parser import canonical_state, parse_status_result

JOB = "2DB1A5FB-1D71-4B0F-9A0E-4B8C7B3B5F56"
JOB2 = "7C9C1A2B-0000-4B0F-9A0E-4B8C7B3B5F57"
BATCH = "B58B0883-3912-4109-8C8E-EB50C3F52C78"


def result(stdout: str = "", stderr: str = "", code: int | None = 0, **kw) -> CommandResult:
    """A finished command that printed ``stdout`` and ``stderr``."""
    return CommandResult(("Compressor",), stdout, stderr, code, **kw)


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [
        ("", f"<jobID {JOB} />\n<batchID {BATCH} />\n"),
        (f"<jobID {JOB} />\n<batchID {BATCH} />\n", ""),
        ("", f"<batchID {BATCH} />\n<jobID {JOB} />\n"),
        (f"<jobID {JOB} />\n", f"<batchID {BATCH} />\n"),
        (f"<batchID {BATCH} />\n", f"<jobID {JOB} />\n"),
        ("", f"<  jobID\t{JOB}   />\n<batchID  {BATCH}/>"),
        ("", f"<jobID {JOB}/><batchID {BATCH}/>"),
        ("", f"<JOBID {JOB} />\n<BatchId {BATCH} />"),
        ("", f'<jobID id="{JOB}" />\n<batchID id="{BATCH}" />'),
        ("Compressor 4.1 starting\n", f"noise <jobID {JOB} /> more\n<batchID {BATCH} />\r\n"),
    ],
    ids=[
        "stderr",
        "stdout",
        "batch-first",
        "split-job-on-stdout",
        "split-batch-on-stdout",
        "loose-spacing",
        "one-line-no-spaces",
        "case",
        "id-attribute",
        "noise-and-crlf",
    ],
)
def test_ids_on_either_stream_in_either_order_with_any_spacing(stdout, stderr):
    """The batch id and job id are found wherever and however Compressor prints them."""
    assert parse_submission(result(stdout, stderr), "FCS") == (BATCH, (JOB,))


def test_several_jobs_one_batch():
    """A batch with two targets has two job ids and one batch id."""
    text = f"<jobID {JOB} />\n<jobID {JOB2} />\n<batchID {BATCH} />\n"
    assert parse_submission(result(stderr=text), "FCS") == (BATCH, (JOB, JOB2))


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_submission_error_carries_its_text(stream):
    """'Submission Error: …' is a QmasterSubmissionError with that text, on either stream."""
    line = "Submission Error: Unable to read the source file '/a b/c.mov'\n"
    with pytest.raises(QmasterSubmissionError) as caught:
        parse_submission(result(**{stream: line}), "FCS")
    assert caught.value.text == "Unable to read the source file '/a b/c.mov'"
    assert "Unable to read the source file" in str(caught.value)


def test_submission_error_on_the_next_line():
    """A bare 'Submission Error:' takes its text from the next line."""
    with pytest.raises(QmasterSubmissionError) as caught:
        parse_submission(result(stderr="Submission Error:\n  setting is invalid\n"), "FCS")
    assert caught.value.text == "setting is invalid"


def test_submission_error_wins_over_a_batch_id():
    """An error line beside a batch id is still an error, and names the batch id."""
    text = f"<batchID {BATCH} />\nSubmission Error: job 2 refused\n"
    with pytest.raises(QmasterSubmissionError) as caught:
        parse_submission(result(stderr=text), "FCS")
    assert caught.value.batch_id == BATCH


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('Could not find cluster "FCS Cluster"\n', "FCS Cluster"),
        ("could not find cluster 'FCS Cluster'.\n", "FCS Cluster"),
        ("Could not find cluster FCS Cluster\n", "FCS Cluster"),
        ("Error: Could not find cluster\n", "asked"),
    ],
)
def test_cluster_not_found(text, name):
    """'Could not find cluster "N"' is QmasterClusterNotFound naming the cluster."""
    with pytest.raises(QmasterClusterNotFound) as caught:
        parse_submission(result(stderr=text, code=1), "asked")
    assert caught.value.cluster == name


def test_nonzero_exit_names_the_code_and_the_stderr_tail():
    """A non-zero exit is a QmasterSubmissionError with the exit code and stderr's tail."""
    stderr = "x" * 2000 + "\nfatal: qmasterd is not running\n"
    with pytest.raises(QmasterSubmissionError) as caught:
        parse_submission(result(stderr=stderr, code=3), "FCS")
    assert caught.value.exit_code == 3
    assert "exit 3" in str(caught.value)
    assert caught.value.text.endswith("fatal: qmasterd is not running")
    assert len(caught.value.text) <= 600


def test_nonzero_exit_even_with_ids():
    """Ids plus a non-zero exit still fail, keeping the batch id for a cancel."""
    with pytest.raises(QmasterSubmissionError) as caught:
        parse_submission(result(stderr=f"<batchID {BATCH} />", code=1), "FCS")
    assert caught.value.batch_id == BATCH


def test_killed_by_a_signal():
    """A submission killed by a signal says so."""
    with pytest.raises(QmasterSubmissionError, match="signal 9"):
        parse_submission(result(code=None, signal=9), "FCS")


def test_no_output_at_all_is_a_typed_error():
    """Exit 0 with nothing printed is QmasterNoOutputError, never an empty batch id."""
    with pytest.raises(QmasterNoOutputError):
        parse_submission(result("", "  \n"), "FCS")


def test_output_without_a_batch_id():
    """Output without any batch id is a QmasterSubmissionError quoting the output."""
    with pytest.raises(QmasterSubmissionError, match="no batch id") as caught:
        parse_submission(result(stderr=f"<jobID {JOB} />\nsomething odd\n"), "FCS")
    assert "something odd" in caught.value.text


def test_two_different_batch_ids_are_refused():
    """Two different batch ids cannot both be this batch."""
    text = f"<batchID {BATCH} />\n<batchID {JOB} />\n"
    with pytest.raises(QmasterSubmissionError, match="several batch ids"):
        parse_submission(result(stderr=text), "FCS")


WELL_FORMED = """<batchStatus name="clip" submissionTime="11/20/2026 12:00:00" status="Processing"
 timeElapsed="12" percentComplete="42.5">
  <jobStatus name="clip.mov" status="Processing" percentComplete="42.5" />
</batchStatus>
"""


def test_well_formed_status():
    """The batch's status word, percent and job lines are read."""
    status = parse_status(WELL_FORMED)
    assert (status.state, status.text, status.percent) == ("Processing", "Processing", 42.5)
    assert status.running and not status.successful
    assert [j.state for j in status.jobs] == ["Processing"]
    assert status.attributes["timeelapsed"] == "12"


def test_malformed_closing_tag_and_trailing_spaces():
    """'/batchStatus>' and 'Waiting ' do not get in the way."""
    text = '<batchStatus name="a" status="Waiting " percentComplete="0">\n/batchStatus>\n'
    status = parse_status(text)
    assert (status.state, status.text) == ("Waiting", "Waiting")


def test_unknown_attributes_and_odd_quoting():
    """Unknown attributes, single quotes, spaces around '=' and bare values are read."""
    text = "<batchStatus frobnicate='yes' queue = 2 status = 'PostProcessing' percentComplete=99%>"
    status = parse_status(text)
    assert status.state == "PostProcessing"
    assert status.percent == 99.0
    assert status.attributes["frobnicate"] == "yes"


def test_several_job_lines():
    """Several jobStatus lines are all kept; the batch's own status decides."""
    text = (
        '<batchStatus name="b" status="Processing">\n'
        '<jobStatus name="1" status="Successful" percentComplete="100"/>\n'
        '<jobStatus name="2" status="Processing" percentComplete="20"/>\n'
        "</batchStatus>"
    )
    status = parse_status(text)
    assert status.state == "Processing"
    assert [j.state for j in status.jobs] == ["Successful", "Processing"]
    assert status.percent == 60.0


@pytest.mark.parametrize(
    ("jobs", "state"),
    [
        (["Successful", "Failed"], "Failed"),
        (["Processing", "Cancelled"], "Cancelled"),
        (["Successful", "Successful"], "Successful"),
        (["Successful", "Waiting"], "Waiting"),
    ],
)
def test_job_lines_alone_decide(jobs, state):
    """Without a batchStatus status, the job lines give the batch's state."""
    text = "\n".join(f'<jobStatus name="{i}" status="{s}" />' for i, s in enumerate(jobs))
    assert parse_status(text).state == state


@pytest.mark.parametrize(
    ("word", "state", "running"),
    [
        ("Processing", "Processing", True),
        ("Waiting", "Waiting", True),
        ("PostProcessing", "PostProcessing", True),
        ("Hold", "Hold", True),
        ("Cancelled", "Cancelled", False),
        ("Canceled", "Cancelled", False),
        ("Successful", "Successful", False),
        ("Failed", "Failed", False),
        (" failed ", "Failed", False),
    ],
)
def test_every_status_word(word, state, running):
    """The seven status words (any case, with spaces) map to their meaning."""
    status = parse_status(f'<batchStatus status="{word}"/>')
    assert status.state == state
    assert status.running is running
    assert status.known


def test_unknown_status_word_is_kept_but_not_known():
    """A word that is none of the seven is kept as text, with no state."""
    status = parse_status('<batchStatus status="Exploding"/>')
    assert (status.state, status.text, status.known) == (None, "Exploding", False)
    assert canonical_state("Exploding") is None


def test_successful_means_100_percent():
    """A Successful batch is at 100 % even when Batch Monitor leaves the percent out."""
    assert parse_status('<batchStatus status="Successful"/>').percent == 100.0


@pytest.mark.parametrize("text", ["", "   \n", "Batch Monitor: internal error 0x2a", "<html>"])
def test_unreadable_status_is_an_error(text):
    """Empty or unparseable output is QmasterStatusError, never an empty status."""
    with pytest.raises(QmasterStatusError):
        parse_status(text)


def test_status_result_on_stderr():
    """Batch Monitor's answer is read from stderr as well as stdout."""
    status = parse_status_result(result(stderr=WELL_FORMED))
    assert isinstance(status, BatchStatus) and status.state == "Processing"


def test_status_result_errors():
    """Timeouts, empty answers, unknown clusters and failures are typed status errors."""
    with pytest.raises(QmasterStatusTimeoutError):
        parse_status_result(result(code=None, signal=9, timed_out=True, elapsed=3))
    with pytest.raises(QmasterStatusError, match="printed nothing"):
        parse_status_result(result(code=0))
    with pytest.raises(QmasterStatusError, match="not found"):
        parse_status_result(result(stderr='Could not find cluster "X"', code=1))
    with pytest.raises(QmasterStatusError, match="exit 2") as caught:
        parse_status_result(result(stderr="usage: ...", code=2))
    assert caught.value.exit_code == 2
