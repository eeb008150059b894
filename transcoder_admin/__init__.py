"""Transcoder Admin: a Twisted daemon that runs a transcoding farm for many customers."""

__version__ = "0.1.0"
