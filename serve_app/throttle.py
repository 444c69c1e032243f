"""Rate limits on authentication: token exchanges, and failed attempts, per client address
and per API key id, so guessing keys or tokens is slow and one caller's burst of bad keys
costs the others nothing (a throttled request is refused before any database work).

Counted per ingress replica, in memory (the `limits` library's moving windows): with N
replicas an address gets up to N times the budget, which still bounds guessing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from serve_app.problems import Problem


@dataclass(frozen=True)
class ThrottleLimits:
    exchanges_per_address: int = 60
    """Token exchanges per minute from one client address (successful or not)."""
    failures_per_address: int = 20
    """Failed authentications (bad keys, bad tokens) per minute from one client address."""
    failures_per_key: int = 10
    """Failed exchanges per minute naming one API key id, from anywhere."""


class AuthThrottle:
    """Which callers must wait, and how long (a 429 with `Retry-After`)."""

    def __init__(self, limits: ThrottleLimits | None = None) -> None:
        chosen = limits or ThrottleLimits()
        self.window = MovingWindowRateLimiter(MemoryStorage())
        self.exchanges = RateLimitItemPerMinute(chosen.exchanges_per_address)
        self.address_failures = RateLimitItemPerMinute(chosen.failures_per_address)
        self.key_failures = RateLimitItemPerMinute(chosen.failures_per_key)

    def check_exchange(self, address: str) -> None:
        """Count a token request from `address`; 429 when it has had its share, or has
        failed too often."""
        self.check_address(address)
        if not self.window.hit(self.exchanges, "exchange", address):
            raise self._too_many(self.exchanges, "exchange", address,
                                 "too many token requests from this address")

    def check_key(self, key_id: str) -> None:
        """Refuse an exchange naming a key id that has failed too often lately."""
        if key_id:
            self._refuse_if_spent(self.key_failures, "key", key_id)

    def check_address(self, address: str) -> None:
        """Refuse a caller whose authentications have failed too often lately."""
        self._refuse_if_spent(self.address_failures, "failed", address)

    def failed(self, address: str, key_id: str = "") -> None:
        self.window.hit(self.address_failures, "failed", address)
        if key_id:
            self.window.hit(self.key_failures, "key", key_id)

    def _refuse_if_spent(self, item: RateLimitItem, kind: str, who: str) -> None:
        if not self.window.test(item, kind, who):
            raise self._too_many(item, kind, who, "too many failed authentications"
                                 + (" for this API key" if kind == "key" else
                                    " from this address"))

    def _too_many(self, item: RateLimitItem, kind: str, who: str, what: str) -> Problem:
        reset = self.window.get_window_stats(item, kind, who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return Problem(429, f"{what}; try again in {wait} s",
                       headers={"Retry-After": str(wait)})
