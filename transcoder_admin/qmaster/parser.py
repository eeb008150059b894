"""Tolerant readers of what Compressor and Batch Monitor print.

Compressor prints ``<jobID … />`` (one per job) and ``<batchID … />``, usually on
standard error; they are accepted on either stream, in either order, with any spacing.
Batch Monitor prints a ``<batchStatus … status="…" …>`` element with ``<jobStatus …/>``
lines; malformed closing tags, trailing spaces in values, unknown attributes and
several job lines are all read. Nothing here runs a program.
"""

from __future__ import annotations

import re

from .errors import (
    QmasterClusterNotFound,
    QmasterNoOutputError,
    QmasterStatusError,
    QmasterStatusTimeoutError,
    QmasterSubmissionError,
)
from .model import (
    CANCELLED,
    FAILED,
    HOLD,
    POST_PROCESSING,
    PROCESSING,
    SUCCESSFUL,
    WAITING,
    BatchStatus,
    CommandResult,
    JobStatus,
)

_ID = r"<\s*{tag}(?:\s*[=:]\s*|\s+)(?:id\s*=\s*)?[\"']?([^\s\"'/<>]+)[\"']?\s*/?\s*>?"
_JOB_ID = re.compile(_ID.format(tag="jobID"), re.IGNORECASE)
_BATCH_ID = re.compile(_ID.format(tag="batchID"), re.IGNORECASE)
_SUBMISSION_ERROR = re.compile(r"submission\s+error\s*:[ \t]*(.*)", re.IGNORECASE)
_CLUSTER_NOT_FOUND = re.compile(
    r"could\s+not\s+find\s+cluster\s*(?:\"([^\"\n]*)\"?|'([^'\n]*)'?|(\S[^\n]*))?",
    re.IGNORECASE,
)
_TAG = re.compile(r"<\s*(/)?\s*(batchStatus|jobStatus)\b([^<>]*)", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"([A-Za-z_][\w:.-]*)\s*=\s*(?:\"([^\"]*)\"?|'([^']*)'?|([^\s\"'<>/]+))")
_PERCENT_KEYS = ("percentcomplete", "percent", "progress")
_STATE_WORDS = {
    "processing": PROCESSING,
    "waiting": WAITING,
    "postprocessing": POST_PROCESSING,
    "post-processing": POST_PROCESSING,
    "post processing": POST_PROCESSING,
    "hold": HOLD,
    "on hold": HOLD,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
    "successful": SUCCESSFUL,
    "failed": FAILED,
}


def find_ids(text: str) -> tuple[list[str], list[str]]:
    """The job ids and batch ids in ``text``, in the order printed."""
    return _JOB_ID.findall(text), _BATCH_ID.findall(text)


def cluster_not_found(text: str) -> str | None:
    """The cluster named in a ``Could not find cluster "N"`` line ('' when unnamed)."""
    match = _CLUSTER_NOT_FOUND.search(text)
    if match is None:
        return None
    name = next((g for g in match.groups() if g is not None), "")
    return name.strip().rstrip(".")


def submission_error(text: str) -> str | None:
    """The text after ``Submission Error:`` (or the next non-empty line when it is empty)."""
    match = _SUBMISSION_ERROR.search(text)
    if match is None:
        return None
    message = match.group(1).strip()
    if not message:
        rest = text[match.end() :].strip().splitlines()
        message = rest[0].strip() if rest else ""
    return message or "(no details)"


def parse_submission(result: CommandResult, cluster: str) -> tuple[str, tuple[str, ...]]:
    """The batch id and job ids of a finished submission, or the typed error it means.

    A timed-out result is the caller's to report: it never reaches here.
    """
    text = result.text
    missing = cluster_not_found(text)
    if missing is not None:
        raise QmasterClusterNotFound(missing or cluster, text.strip()[-600:], result.exit_code)
    job_ids, batch_ids = find_ids(text)
    batch_id = batch_ids[-1] if batch_ids else None
    error = submission_error(text)
    if error is not None:
        raise QmasterSubmissionError(
            f"Compressor: Submission Error: {error}",
            text=error,
            exit_code=result.exit_code,
            batch_id=batch_id,
        )
    if result.exit_code != 0:
        tail = result.tail()
        raise QmasterSubmissionError(
            f"Compressor failed ({result.how_it_ended()})" + (f": {tail}" if tail else ""),
            text=tail,
            exit_code=result.exit_code,
            batch_id=batch_id,
        )
    if not text.strip():
        raise QmasterNoOutputError("Compressor printed nothing: no batch id", exit_code=0)
    if batch_id is None:
        raise QmasterSubmissionError(
            f"no batch id in Compressor's output: {result.tail()}", text=result.tail(), exit_code=0
        )
    if len(set(batch_ids)) > 1:
        raise QmasterSubmissionError(
            f"Compressor printed several batch ids: {', '.join(batch_ids)}",
            text=result.tail(),
            exit_code=0,
            batch_id=batch_id,
        )
    return batch_id, tuple(job_ids)


def canonical_state(word: str) -> str | None:
    """The canonical status name of ``word`` (any case, spacing), or None if unknown."""
    return _STATE_WORDS.get(" ".join(word.split()).lower())


def _attributes(body: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(body):
        value = next((g for g in match.groups()[1:] if g is not None), "")
        values.setdefault(match.group(1).lower(), value.strip())
    return values


def _percent(attributes: dict[str, str]) -> float | None:
    for key in _PERCENT_KEYS:
        if key in attributes:
            try:
                value = float(attributes[key].rstrip("%").strip())
            except ValueError:
                continue
            return min(100.0, max(0.0, value))
    return None


def parse_status(text: str) -> BatchStatus:
    """The batch status in Batch Monitor's output; QmasterStatusError when there is none.

    The ``batchStatus`` element's status wins; without one the job lines decide (any
    Failed → Failed, any Cancelled → Cancelled, all Successful → Successful, else the
    first running state). The percent is the batch's, else the mean of the jobs'.
    """
    if not text.strip():
        raise QmasterStatusError("Batch Monitor printed nothing", text=text)
    batch: dict[str, str] | None = None
    jobs: list[JobStatus] = []
    for closing, tag, body in _TAG.findall(text):
        if closing:
            continue
        attributes = _attributes(body)
        if tag.lower() == "batchstatus":
            if batch is None:
                batch = attributes
        elif "status" in attributes:
            word = attributes["status"]
            jobs.append(JobStatus(word, canonical_state(word), _percent(attributes), attributes))
    if batch is not None and batch.get("status"):
        word = batch["status"]
        state = canonical_state(word)
    elif jobs:
        word, state = _from_jobs(jobs)
    else:
        raise QmasterStatusError(
            f"no batch status in Batch Monitor's output: {text.strip()[-300:]}", text=text
        )
    percent = _percent(batch) if batch else None
    if percent is None:
        known = [j.percent for j in jobs if j.percent is not None]
        percent = sum(known) / len(known) if known else None
    if state == SUCCESSFUL:
        percent = 100.0
    return BatchStatus(state, word, percent, tuple(jobs), batch or {}, text)


def _from_jobs(jobs: list[JobStatus]) -> tuple[str, str | None]:
    states = [j.state for j in jobs]
    for final in (FAILED, CANCELLED):
        if final in states:
            return final, final
    if all(s == SUCCESSFUL for s in states):
        return SUCCESSFUL, SUCCESSFUL
    for job in jobs:
        if job.state not in (SUCCESSFUL, None):
            return job.status, job.state
    unknown = next(j for j in jobs if j.state is None)
    return unknown.status, None


def parse_status_result(result: CommandResult) -> BatchStatus:
    """The status in a finished Batch Monitor run, or the QmasterStatusError it means."""
    if result.timed_out:
        raise QmasterStatusTimeoutError(
            f"Batch Monitor did not answer in {result.elapsed:.0f} s", text=result.text
        )
    text = result.text
    missing = cluster_not_found(text)
    if missing is not None:
        raise QmasterStatusError(
            f"Batch Monitor: cluster {missing!r} not found", text=text, exit_code=result.exit_code
        )
    if not text.strip():
        raise QmasterStatusError(
            f"Batch Monitor printed nothing ({result.how_it_ended()})",
            text=text,
            exit_code=result.exit_code,
        )
    try:
        return parse_status(text)
    except QmasterStatusError as e:
        if result.exit_code != 0:
            raise QmasterStatusError(
                f"Batch Monitor failed ({result.how_it_ended()}): {result.tail()}",
                text=text,
                exit_code=result.exit_code,
            ) from e
        raise


__all__ = [
    "canonical_state",
    "cluster_not_found",
    "find_ids",
    "parse_status",
    "parse_status_result",
    "parse_submission",
    "submission_error",
]
