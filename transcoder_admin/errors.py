"""Exceptions the admin's public methods raise, shared by the core and its front ends."""


class InvalidStateError(Exception):
    """The admin cannot do that in its current state."""


class NotStuck(LookupError):
    """The file named is not stuck (unknown, or taken again already)."""


class NotQueued(LookupError):
    """The file named is not in the queue (unknown, running or finished already)."""


class NoSuchNotification(LookupError):
    """No notification has that id."""


class NoDiagnosis(LookupError):
    """The job has no diagnosis (unknown, done, or its report or diagnosis is missing)."""


class NotRunning(LookupError):
    """The file named has no running job (unknown, queued or finished already)."""
