"""File intake on the admin's side: offers, held files, stuck files, each file's end."""

from ..errors import NotStuck
from .stuck import LIMIT, FileKey, Intake, RemovalCheck, StuckFile, gone_paths

__all__ = ["LIMIT", "FileKey", "Intake", "NotStuck", "RemovalCheck", "StuckFile", "gone_paths"]
