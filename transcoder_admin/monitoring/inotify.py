"""inotify(7) through ctypes: the constants of linux/inotify.h and the three calls."""

from __future__ import annotations

import ctypes
import os
import struct
import sys

# inotify(7) constants (linux/inotify.h)
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

# A file renamed into place is complete, unless one of these follows (an attribute
# change, a chmod after the rename, does not count).
NOT_ARRIVED = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM

# Entries appearing, vanishing or finished (close after write, touch): IN_MODIFY is left
# out on purpose, an upload would send one per write() and the stability rule re-checks
# a growing file by itself.
WATCH_MASK = (
    IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
EVENT = struct.Struct("iIII")  # struct inotify_event without its name
READ_SIZE = 64 * 1024


class InotifyUnavailable(Exception):
    """inotify cannot be used here (not Linux, or the C library lacks it)."""


class Libc:
    """The three inotify calls of the C library, through ctypes."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            self.init1 = libc.inotify_init1
            self.add_watch = libc.inotify_add_watch
            self.rm_watch = libc.inotify_rm_watch
        except AttributeError as e:
            raise InotifyUnavailable(f"the C library has no inotify: {e}") from None
        self.init1.argtypes = [ctypes.c_int]
        self.add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


_LIBC: list[Libc] = []  # loaded once


def load_libc() -> Libc:
    """The C library's inotify calls; InotifyUnavailable when there are none."""
    if not sys.platform.startswith("linux"):
        raise InotifyUnavailable(f"inotify is Linux only (this is {sys.platform})")
    if not _LIBC:
        _LIBC.append(Libc())
    return _LIBC[0]
