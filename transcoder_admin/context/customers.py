"""The store, customer and profile contexts: the configuration as the farm reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.model import CustomerConfig, Inheritable, ProfileConfig, safe_name
from .effective import Effective, layer
from .files import FileContext
from .paths import DEFAULT_FOLDERS, PathEscapeError, Roots, expand, split_virtual
from .targets import TargetContext, subdir_of

if TYPE_CHECKING:
    from ..config.loader import Configuration

__all__ = [
    "StoreContext",
    "CustomerContext",
    "ProfileContext",
    "TargetContext",
    "FileContext",
    "Effective",
    "Roots",
    "PathEscapeError",
    "safe_name",
]


class StoreContext:
    """Entry point: contexts of every customer of one configuration."""

    def __init__(self, config: Configuration) -> None:
        self.config = config

    def customer(self, name: str) -> CustomerContext:
        """The context of the customer called ``name``."""
        return CustomerContext(self, name, self.config.customers[name])

    def customers(self) -> list[CustomerContext]:
        """Every customer's context, by name."""
        return [self.customer(name) for name in sorted(self.config.customers)]


class CustomerContext:
    """A customer with its computed subdir."""

    def __init__(self, store: StoreContext, name: str, config: CustomerConfig) -> None:
        self.store = store
        self.name = name
        self.config = config

    @property
    def subdir(self) -> str:
        """The customer's folder name: as set (checked path-safe), or its name made so."""
        return subdir_of(self.config.subdir, self.name)

    @property
    def priority(self) -> int:
        """The customer's queue priority (0–999)."""
        return self.config.priority

    def profile(self, name: str) -> ProfileContext:
        """The context of one of the customer's profiles."""
        return ProfileContext(self, name, self.config.profiles[name])

    def profiles(self) -> list[ProfileContext]:
        """Every profile's context, by name."""
        return [self.profile(n) for n in sorted(self.config.profiles)]


class ProfileContext:
    """A profile: folders, priority and targets with inherited settings."""

    def __init__(self, customer: CustomerContext, name: str, config: ProfileConfig) -> None:
        self.customer = customer
        self.name = name
        self.config = config

    @property
    def key(self) -> tuple[str, str]:
        """(customer name, profile name): how the scheduler and API name this profile."""
        return (self.customer.name, self.name)

    @property
    def subdir(self) -> str:
        """The profile's folder name: as set (checked path-safe), or its name made so."""
        return subdir_of(self.config.subdir, self.name)

    @property
    def priority(self) -> int:
        """Queue order: customer priority × 1000 + profile priority."""
        return self.customer.priority * 1000 + self.config.priority

    def variables(self) -> dict[str, object]:
        """The variables folder templates may use."""
        return {
            "customer": self.customer.subdir,
            "profile": self.subdir,
            "customer_name": safe_name(self.customer.name),
            "profile_name": safe_name(self.name),
        }

    def folder(self, key: str) -> str:
        """The virtual folder for ``key`` (incoming, outgoing, done, …)."""
        attr = key.replace("-", "_")
        template = (
            getattr(self.config, attr)
            or getattr(self.customer.config, attr)
            or DEFAULT_FOLDERS[key]
        )
        virtual = expand(template, self.variables())
        root, rel = split_virtual(virtual)
        return f"{root}:/{rel}" if rel else f"{root}:/"

    def effective(self) -> Effective:
        """The profile-level settings (no target)."""
        return layer(self.levels())

    def levels(self) -> list[Inheritable | None]:
        return [self.customer.store.config.admin.defaults, self.customer.config, self.config]

    def target(self, name: str) -> TargetContext:
        """The context of one target."""
        return TargetContext(self, name, self.config.targets[name])

    def targets(self) -> list[TargetContext]:
        """Every target in the order the profile lists them."""
        return [self.target(n) for n in self.config.targets]

    def file(self, relpath: str) -> FileContext:
        """The context of a file at ``relpath`` under this profile's incoming folder."""
        return FileContext(self, relpath)
