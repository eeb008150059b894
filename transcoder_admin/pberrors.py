"""Perspective Broker's errors, in the project's own terms (PB stays at the edge).

A remote call that fails says one of three things: the link went down (the call may not
have reached the other side: wait for the link and try again when that is safe), the
other side refused the call (its message is kept), or the job named is not there.  Only
this module and the PB endpoints themselves (``manager``, ``pblink``, the worker daemon,
the admin's mind) know PB's exception classes and the dotted names of the remote ones.
"""

from __future__ import annotations

from typing import Any

from twisted.spread import pb

from .worker.interfaces import UnknownJob

#: PB's errors of a call that may not have reached the other side.
PB_LINK_ERRORS = (pb.PBConnectionLost, pb.DeadReferenceError)
#: A manager's answer for a worker that is not attached (a remote error, by name).
_NOT_ATTACHED = "transcoder_admin.manager.WorkerNotAttached"
#: A worker's answer for a job it does not have (a remote error, by name).
_UNKNOWN_JOB = "transcoder_admin.worker.daemon.RemoteUnknownJob"


class LinkDown(Exception):
    """No link to the other side now (it may come back)."""


class RemoteError(Exception):
    """A worker refused a call; the message is the worker's."""


def is_link_error(failure: Any) -> bool:
    """Whether a failed call may not have reached the other side (the link went down)."""
    return bool(failure.check(LinkDown, *PB_LINK_ERRORS, _NOT_ATTACHED))


def is_unknown_job(failure: Any) -> bool:
    """Whether a worker answered that it does not have the job."""
    return bool(failure.check(_UNKNOWN_JOB))


def local_error(failure: Any) -> Exception:
    """A local exception for a failed remote call (PB sends copies of failures)."""
    if is_unknown_job(failure):
        return UnknownJob(failure.getErrorMessage())
    if isinstance(failure.value, Exception) and not isinstance(failure.value, pb.RemoteError):
        return failure.value
    return RemoteError(failure.getErrorMessage())
