"""The OOM killer's arithmetic: ``oom_badness`` and ``/proc/PID/oom_score`` exactly as the kernel
computes them, per kernel version, for one task or NumPy arrays of them (mm/oom_kill.c,
fs/proc/base.c; spec section 4).

>>> oom_badness(rss_pages=25_000, swap_pages=0, pgtables_bytes=200_704, oom_score_adj=0,
...             totalpages=4_194_304)
25049
>>> proc_oom_score(25_000, 0, 200_704, 0, 4_194_304)
670
"""
from __future__ import annotations

import re

import numpy as np

from .kernels import oom as _k

__all__ = ["oom_badness", "proc_oom_score", "select_victim", "rule_for", "LONG_MIN"]

LONG_MIN = _k.LONG_MIN


def rule_for(kernel: str) -> int:
    """The rule set of a kernel version ``"X.Y"`` (any version, not only the profiles)."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?\s*", str(kernel))
    if not m:
        raise ValueError(f"kernel: expected a version such as '6.18', got {kernel!r}")
    v = (int(m.group(1)), int(m.group(2)))
    if v < (3, 0):
        raise ValueError(f"kernel: versions before 3.0 are not modelled, got {kernel!r}")
    if v < (3, 14):
        return _k.RULE_310
    if v < (4, 17):
        return _k.RULE_314
    if v < (5, 9):
        return _k.RULE_417
    return _k.RULE_509


_NAMES = ("rss_pages", "swap_pages", "pgtables_bytes", "oom_score_adj", "totalpages",
          "cap_sys_admin", "eligible")
_LIMITS = {"rss_pages": ">= 0", "swap_pages": ">= 0", "pgtables_bytes": ">= 0",
           "oom_score_adj": "in -1000..1000", "totalpages": ">= 1"}


def _compute(rss, swap, pgt, adj, totalpages, kernel, cap, eligible, want_score):
    rule = rule_for(kernel)
    arrs = []
    for name, v in zip(_NAMES, (rss, swap, pgt, adj, totalpages, cap, eligible)):
        a = np.asarray(v)
        if a.dtype == bool:
            a = a.astype(np.int64)
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name}: expected integers, got dtype {a.dtype}")
        arrs.append(a)
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    n = int(np.prod(shape, dtype=np.int64))
    flat = []
    for a in arrs:
        # one value for all tasks stays one value (no n-long copy); a full array is used as is
        if a.size == 1:
            flat.append(np.ascontiguousarray(a.reshape(1), dtype=np.int64))
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a, dtype=np.int64).reshape(-1))
        else:
            flat.append(np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.int64).reshape(-1))
    out = np.empty(n, np.int64)
    score = np.empty(n if want_score else 0, np.int64)
    bad = _k.badness_array(*flat[:4], flat[5], flat[6], flat[4], rule, out, score)
    if bad >= 0:
        name = _NAMES[bad >> 32]
        i = bad & 0xFFFFFFFF
        a = flat[_NAMES.index(name)]
        v = int(a[i if a.shape[0] > 1 else 0])
        raise ValueError(f"{name}: expected values {_LIMITS[name]}, got {v}")
    res = score if want_score else out
    if shape == ():
        return int(res[0])
    return res.reshape(shape)


def oom_badness(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, *,
                kernel: str = "6.18", cap_sys_admin=False, eligible=True):
    """``oom_badness`` of a task (or of arrays of tasks, broadcast together).

    ``rss_pages`` is anon + file + shmem RSS in pages, ``pgtables_bytes`` the mm's page-table
    bytes (``VmPTE`` in bytes; before 4.15 the kernel counted PTE and PMD table pages, give
    ``nr_ptes * 4096`` to reproduce it), ``totalpages`` RAM plus swap in pages (for a memcg OOM:
    the limit plus swap). ``eligible`` false marks what the kernel excludes before scoring (init,
    kernel threads, MMF_OOM_SKIP, vfork). Returns the kernel's value: 0 (before 5.9) or
    ``LONG_MIN`` (5.9+) for ineligible tasks and ``oom_score_adj == -1000``.
    """
    return _compute(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, kernel,
                    cap_sys_admin, eligible, False)


def proc_oom_score(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, *,
                   kernel: str = "6.18", cap_sys_admin=False, eligible=True):
    """What ``/proc/PID/oom_score`` shows for the same inputs (0..1000 before 5.9, 0..2000 since);
    ``totalpages`` is always RAM plus swap here."""
    return _compute(rss_pages, swap_pages, pgtables_bytes, oom_score_adj, totalpages, kernel,
                    cap_sys_admin, eligible, True)


def select_victim(badness, *, kernel: str = "6.18") -> int:
    """The index the kernel's victim selection picks among thread-group leaders given in scan
    order (highest badness; ties to the last from 5.9, to the first before), or -1."""
    b = np.ascontiguousarray(badness, dtype=np.int64)
    if b.ndim != 1:
        raise ValueError(f"badness: expected a 1-D array, got shape {b.shape}")
    return int(_k.select_victim(b, rule_for(kernel)))
