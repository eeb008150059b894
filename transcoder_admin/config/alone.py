"""One part of the admin file, read alone: a standalone manager's settings (its file may
be a manager-only file), the API's settings for ``status`` (which must work while a
customer file is broken).  Other sections are neither needed nor checked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .endpoints import resolve_endpoint
from .loader import absolute_manager_endpoints, read_mapping, resolve_path, validate
from .model import AdminSection, APISection, ManagerSection


@dataclass(frozen=True)
class ManagerConfiguration:
    """What a standalone manager reads: the ``manager`` (and ``admin``) sections.

    Its file may be a manager-only file or the admin's own config: other sections are
    neither needed nor checked here.
    """

    path: str
    admin: AdminSection
    manager: ManagerSection

    def manager_credentials(self) -> str | None:
        """The credentials file, absolute."""
        path = self.manager.credentials
        return resolve_path(os.path.dirname(self.path), path) if path else None


class _APIFile(BaseModel):
    api: APISection = APISection()


def load_api_settings(path: str) -> APISection:
    """The admin file's ``api`` section alone (``status`` asks the API even when a
    customer file is broken); raise ConfigError naming every problem."""
    path = os.path.abspath(path)
    data = read_mapping(path, "admin")
    api: APISection = validate(path, _APIFile, {"api": data.get("api") or {}}).api
    return api.model_copy(update={"listen": resolve_endpoint(api.listen, os.path.dirname(path))})


class _ManagerFile(BaseModel):
    admin: AdminSection = AdminSection()
    manager: ManagerSection = ManagerSection()


def load_manager_configuration(path: str) -> ManagerConfiguration:
    """Load a standalone manager's settings; raise ConfigError naming every problem."""
    path = os.path.abspath(path)
    data = read_mapping(path, "admin")
    picked: dict[str, Any] = {k: data[k] for k in ("admin", "manager") if k in data}
    loaded = validate(path, _ManagerFile, picked)
    manager = absolute_manager_endpoints(loaded.manager, os.path.dirname(path))
    return ManagerConfiguration(path, loaded.admin, manager)


__all__ = ["ManagerConfiguration", "load_api_settings", "load_manager_configuration"]
