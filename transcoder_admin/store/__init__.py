"""The store: customers → profiles → targets, reloadable at run time.

A reload parses the files off the reactor, diffs customers and profiles by name into
added, removed and changed, leaves equal ones alone, and emits one event per change.
One reload runs at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, threads
from twisted.logger import Logger

from ..config.loader import Configuration
from ..context.checks import load_configuration
from ..context.customers import CustomerContext, ProfileContext, StoreContext
from ..events import Event
from ..reactors import IFarmReactor


@dataclass
class ReloadResult:
    """What a reload changed."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        """Basic types for the API."""
        return {"added": self.added, "removed": self.removed, "changed": self.changed}


class Store:
    """The current configuration and its events."""

    log = Logger()

    def __init__(self, config: Configuration, reactor: IFarmReactor) -> None:
        self.config = config
        self.reactor = reactor
        self.context = StoreContext(config)
        self.customer_added: Event[CustomerContext] = Event("customer-added")
        self.customer_removed: Event[str] = Event("customer-removed")
        self.profile_added: Event[ProfileContext] = Event("profile-added")
        self.profile_removed: Event[tuple[str, str]] = Event("profile-removed")
        self.profile_changed: Event[ProfileContext] = Event("profile-changed")
        self.target_added: Event[tuple[str, str, str]] = Event("target-added")
        self.target_removed: Event[tuple[str, str, str]] = Event("target-removed")
        self._lock = defer.DeferredLock()

    def customers(self) -> list[CustomerContext]:
        """Every customer's context."""
        return self.context.customers()

    def profile(self, customer: str, profile: str) -> ProfileContext | None:
        """A profile's context, or None if it does not exist (any more)."""
        cust = self.config.customers.get(customer)
        if cust is None or profile not in cust.profiles:
            return None
        return self.context.customer(customer).profile(profile)

    def reload(self) -> defer.Deferred[ReloadResult]:
        """Re-read the customer files (one reload at a time); errbacks with ConfigError."""
        return self._lock.run(self._reload)

    def _reload(self) -> defer.Deferred[ReloadResult]:
        d = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), load_configuration, self.config.path
        )
        return d.addCallback(self.apply)

    def apply(self, new: Configuration) -> ReloadResult:
        """Switch to ``new`` (customers only: admin settings need a restart)."""
        old = self.config
        new = Configuration(old.path, old.admin, new.customers, new.customer_files)
        result = ReloadResult()
        self.config = new
        self.context = StoreContext(new)
        for name in sorted(set(old.customers) - set(new.customers)):
            for profile_name in old.customers[name].profiles:
                self.profile_removed.fire((name, profile_name))
            self.customer_removed.fire(name)
            result.removed.append(name)
        for name in sorted(new.customers):
            ctx = self.context.customer(name)
            if name not in old.customers:
                self.customer_added.fire(ctx)
                for profile in ctx.profiles():
                    self.profile_added.fire(profile)
                result.added.append(name)
                continue
            before, after = old.customers[name], new.customers[name]
            if before == after:
                continue
            result.changed.append(name)
            self._diff_profiles(name, before.profiles, after.profiles, before == after)
            self.customer_added.fire(ctx)  # subscribers treat it as "customer updated"
        self.log.info(
            "configuration reloaded: {added} added, {removed} removed, {changed} changed",
            added=result.added or "none",
            removed=result.removed or "none",
            changed=result.changed or "none",
        )
        return result

    def _diff_profiles(
        self, customer: str, before: dict[str, Any], after: dict[str, Any], _same: bool
    ) -> None:
        for name in sorted(set(before) - set(after)):
            self.profile_removed.fire((customer, name))
        ctx = self.context.customer(customer)
        for name in sorted(after):
            if name not in before:
                self.profile_added.fire(ctx.profile(name))
            elif before[name] != after[name]:
                old_targets, new_targets = before[name].targets, after[name].targets
                for t in sorted(set(old_targets) - set(new_targets)):
                    self.target_removed.fire((customer, name, t))
                for t in sorted(set(new_targets) - set(old_targets)):
                    self.target_added.fire((customer, name, t))
                self.profile_changed.fire(ctx.profile(name))
