"""Plain-Python reference for page-cache replacement (the rules in ``mmcore.kernels.lru``).

Lists are Python lists with the head (young end) at index 0; a dict maps page -> folio state.
Written from the rules, not from the kernels: for ``linux`` the second access activates,
``inactive_is_low`` with ratio int_sqrt(10 * GiB) triggers deactivation of SWAP_CLUSTER_MAX pages
from the active tail, and eviction takes the inactive tail.
"""
from __future__ import annotations

import math

SWAP_CLUSTER_MAX = 32


class RefPageCache:
    def __init__(self, capacity: int, policy: str):
        self.capacity = capacity
        self.policy = policy
        self.inactive: list[int] = []
        self.active: list[int] = []
        self.referenced: set[int] = set()
        self.where: dict[int, str] = {}
        self.hits = 0
        self.misses = 0
        self.activations = 0
        self.deactivations = 0

    def _inactive_is_low(self) -> bool:
        ni, na = len(self.inactive), len(self.active)
        gb = (ni + na) >> 18
        ratio = math.isqrt(10 * gb) if gb else 1
        return ni * ratio < na

    def _deactivate(self, n: int) -> None:
        moved = 0
        while moved < n and self.active:
            p = self.active.pop()
            self.inactive.insert(0, p)
            self.where[p] = "inactive"
            moved += 1
        self.deactivations += moved

    def _evict(self) -> int:
        if self.policy == "linux":
            if self._inactive_is_low():
                self._deactivate(SWAP_CLUSTER_MAX)
            while not self.inactive:
                self._deactivate(SWAP_CLUSTER_MAX)
        if self.policy == "clock":
            while self.inactive[-1] in self.referenced:
                p = self.inactive.pop()
                self.referenced.discard(p)
                self.inactive.insert(0, p)
        p = self.inactive.pop()
        self.referenced.discard(p)
        del self.where[p]
        return p

    def access(self, page: int) -> bool:
        w = self.where.get(page)
        if w is not None:
            self.hits += 1
            if self.policy == "lru":
                self.inactive.remove(page)
                self.inactive.insert(0, page)
            elif self.policy == "clock":
                self.referenced.add(page)
            elif self.policy == "linux":
                if page not in self.referenced:
                    self.referenced.add(page)
                elif w == "inactive":
                    self.inactive.remove(page)
                    self.referenced.discard(page)
                    self.active.insert(0, page)
                    self.where[page] = "active"
                    self.activations += 1
            return True
        self.misses += 1
        if len(self.where) >= self.capacity:
            self._evict()
        self.inactive.insert(0, page)
        self.where[page] = "inactive"
        if self.policy == "linux":
            self.referenced.add(page)        # the read that brought it in marks it accessed
        return False
