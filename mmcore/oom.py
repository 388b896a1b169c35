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


def _as_arrays(rss, swap, pgt, adj, totalpages, cap, eligible):
    names = ("rss_pages", "swap_pages", "pgtables_bytes", "oom_score_adj", "totalpages",
             "cap_sys_admin", "eligible")
    arrs = []
    for name, v in zip(names, (rss, swap, pgt, adj, totalpages, cap, eligible)):
        a = np.asarray(v)
        if a.dtype == bool:
            a = a.astype(np.int64)
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name}: expected integers, got dtype {a.dtype}")
        arrs.append(a)
    shape = np.broadcast_shapes(*(a.shape for a in arrs))
    out = [np.ascontiguousarray(np.broadcast_to(a, shape).ravel(), dtype=np.int64) for a in arrs]
    rss, swap, pgt, adj, total = out[:5]
    for name, a, lo in (("rss_pages", rss, 0), ("swap_pages", swap, 0), ("pgtables_bytes", pgt, 0),
                        ("totalpages", total, 1)):
        if a.size and a.min() < lo:
            raise ValueError(f"{name}: expected values >= {lo}, got {int(a.min())}")
    if adj.size and (adj.min() < -1000 or adj.max() > 1000):
        bad = int(adj[(adj < -1000) | (adj > 1000)][0])
        raise ValueError(f"oom_score_adj: expected -1000..1000, got {bad}")
    return shape, out


def _compute(rss, swap, pgt, adj, totalpages, kernel, cap, eligible, want_score):
    rule = rule_for(kernel)
    shape, (r, s, p, a, t, c, e) = _as_arrays(rss, swap, pgt, adj, totalpages, cap, eligible)
    out = np.empty(r.shape[0], np.int64)
    score = np.empty(r.shape[0] if want_score else 0, np.int64)
    _k.badness_array(r, s, p, a, c, e, t, rule, out, score)
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
