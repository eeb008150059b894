"""The configuration as an operator reads it: every customer with its profiles, folders,
targets and the settings in force after inheritance (``GET /api/v1/customers``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..config.values import FOLDER_KEYS
from .customers import CustomerContext, ProfileContext
from .targets import TargetContext


def describe_target(target: TargetContext) -> dict[str, Any]:
    """A target: type, where its outputs go, how they are made (inherited settings in)."""
    effective = target.effective
    config = target.config
    return {
        "name": target.name,
        "type": target.type,
        "subdir": target.subdir,
        "extension": target.extension,
        "muxer": target.muxer,
        "video": dict(effective.video),
        "audio": dict(effective.audio),
        "thumbnails": config.thumbnails.model_dump(exclude_none=True)
        if config.thumbnails
        else None,
        "post_process": list(config.post_process or []),
    }


def describe_profile(profile: ProfileContext) -> dict[str, Any]:
    """A profile: its folders, queue priority, settings in force and targets."""
    levels = profile.levels()
    effective = asdict(profile.effective())
    settings = {key: value for key, value in effective.items() if key not in ("video", "audio")}
    return {
        "name": profile.name,
        "subdir": profile.subdir,
        "priority": profile.priority,
        "backend": profile.config.backend,
        "folders": {key: profile.folder(key) for key in FOLDER_KEYS},
        "settings": settings,
        # How many fire, every level's (the destinations may hold credentials: not shown).
        "notify_done": sum(len(level.notify_done) for level in levels if level is not None),
        "notify_failed": sum(len(level.notify_failed) for level in levels if level is not None),
        "targets": [describe_target(target) for target in profile.targets()],
    }


def describe_customer(customer: CustomerContext) -> dict[str, Any]:
    """A customer with every profile."""
    return {
        "name": customer.name,
        "subdir": customer.subdir,
        "priority": customer.priority,
        "profiles": [describe_profile(profile) for profile in customer.profiles()],
    }
