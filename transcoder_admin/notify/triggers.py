"""Which notifications a finished file sends, rendered with its variables.

The file's own trigger (done or failed) fires the entries of every level in order: the
admin's ``defaults``, the customer, the profile.  Then each target of the report fires
its own target's entries for its own outcome, with the target's variables.  A secret
file named relatively is found beside the file that names it: the admin's config for
``defaults``, the customers folder for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from ..config.notify import HttpNotification, MailNotification, Notification, Notifying
from ..context.customers import ProfileContext
from ..records import Report
from .render import Message, render
from .variables import Locate, file_variables, target_variables

#: A failed file's mail carries these (file name, text).
Attachments = tuple[tuple[str, str], ...]


def file_messages(
    report: Report,
    profile: ProfileContext,
    locate: Locate,
    *,
    admin_dir: str,
    customers_dir: str,
    attachments: Callable[[], Attachments] = lambda: (),
) -> list[Message]:
    """Every notification of one finished file, in the order they fire."""
    levels: Sequence[tuple[Notifying, str]] = [
        (profile.customer.store.config.admin.defaults, admin_dir),
        (profile.customer.config, customers_dir),
        (profile.config, customers_dir),
    ]
    targets = [
        (target, profile.config.targets[target.name])
        for target in report.targets
        if target.name in profile.config.targets
    ]
    if not any(_entries(level, report.done) for level, _ in levels) and not any(
        _entries(config, target.outcome == "done") for target, config in targets
    ):
        return []  # nobody to tell: no variables to compute
    file_ctx = profile.file(report.relpath)
    final = file_ctx.done() if report.done else file_ctx.failed()
    variables = file_variables(
        report,
        source_final=final,
        output_folder=profile.folder("outgoing"),
        locate=locate,
    )
    mails: list[Attachments] = []  # read once, only if a mail needs them

    def attached() -> Attachments:
        if report.done:
            return ()
        if not mails:
            mails.append(attachments())
        return mails[0]

    messages = []
    for level, base in levels:
        for entry in _entries(level, report.done):
            messages.append(_render(entry, variables, base, attached))
    for target, config in targets:
        values = target_variables(
            variables, target, output_folder=profile.folder("outgoing"), locate=locate
        )
        for entry in _entries(config, target.outcome == "done"):
            messages.append(_render(entry, values, customers_dir, attached))
    return messages


def mails_attachments(report: Report, profile: ProfileContext) -> bool:
    """Whether a mail of this file's would carry attachments (a failed file's do)."""
    if report.done:
        return False
    levels: list[Notifying] = [
        profile.customer.store.config.admin.defaults,
        profile.customer.config,
        profile.config,
        *(
            profile.config.targets[t.name]
            for t in report.targets
            if t.name in profile.config.targets
        ),
    ]
    return any(isinstance(e, MailNotification) for level in levels for e in level.notify_failed)


def _entries(level: Notifying, done: bool) -> list[Notification]:
    return list(level.notify_done if done else level.notify_failed)


def _render(
    entry: Notification,
    variables: dict[str, Any],
    base: str,
    attachments: Callable[[], Attachments],
) -> Message:
    secret = None
    if isinstance(entry, HttpNotification) and entry.secret_file:
        secret = os.path.normpath(os.path.join(base, os.path.expanduser(entry.secret_file)))
    files = attachments() if isinstance(entry, MailNotification) else ()
    return render(entry, variables, secret_path=secret, attachments=files)


__all__ = ["Attachments", "file_messages", "mails_attachments"]
