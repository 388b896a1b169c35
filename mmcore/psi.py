"""Memory pressure stall information (kernel/sched/psi.c), for ``/proc/pressure/memory`` and a
cgroup's ``memory.pressure`` (4.20+).

The kernels count a task's memory stalls as Linux's ``psi_memstall_enter`` sections do: direct
reclaim (global and memcg, memory.high included), direct compaction, and the read of a page that
was in the workingset when it was evicted (thrashing: swap-ins, and page-cache refaults that
``workingset_refault`` calls restores). kswapd's own work is a stall too (``balance_pgdat``): it
counts in the root group as an interval of a task of its own, stalled for all of it. Each task
operation run through the ``Task`` API is an interval of the task's simulated clock
``[start, end)`` with ``stall`` ps of it stalled; the tracker keeps them per group (the task's
memcg, its ancestors, and the root, which is the whole system) and derives the two PSI states:

- ``some``: at least one task of the group stalled;
- ``full``: the group's non-idle tasks all stalled at once (a task is non-idle while it runs an
  operation; between operations it is idle).

Where an operation's stall falls inside it is not recorded, so a stall is spread evenly over its
operation: at each instant a task running an operation is stalled with probability
``stall / (end - start)``, independently of the others, and ``some`` and ``full`` are the
expected times (one task: exactly its stall time; several: ``1 - prod(1 - d)`` and ``prod(d)``).
Averages are Linux's: every 2 s period (PSI_FREQ, taken as exactly 2 s) each state's share of it,
as a fixed-point percentage, enters ``avg10``, ``avg60`` and ``avg300`` through ``calc_load`` with
EXP_10s, EXP_60s and EXP_300s; ``total`` is the stall time in microseconds. A period is final
once every live task's clock has passed its end (later operations cannot reach back into it), or
once it ended 60 s of simulated time before the latest: an idle task's clock may lag, and what an
operation that starts that far back does in finished periods is left out.
"""
from __future__ import annotations

import errno as _errno
import functools
import os
from dataclasses import dataclass, field

import numpy as np

from .kernels import consts as K

__all__ = ["PSI_PERIOD_NS", "PsiTracker", "calc_load", "format_pressure", "parse_pressure",
           "samples"]

PSI_PERIOD_NS = 2_000_000_000          # PSI_FREQ: the averaging period
FSHIFT = 11
FIXED_1 = 1 << FSHIFT
EXP_10S, EXP_60S, EXP_300S = 1677, 1981, 2034
_EXPS = (EXP_10S, EXP_60S, EXP_300S)
_PERIOD_PS = PSI_PERIOD_NS * 1000


def calc_load(load: int, exp: int, active: int) -> int:
    """include/linux/sched/loadavg.h ``calc_load``: one step of the fixed-point average."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


def _avg_text(x: int) -> str:
    """LOAD_INT.LOAD_FRAC with two decimals, as psi_show prints an average."""
    return f"{x >> FSHIFT}.{((x & (FIXED_1 - 1)) * 100) >> FSHIFT:02d}"


def format_pressure(avgs: dict[str, list[int]], totals_ns: dict[str, int]) -> str:
    """The text of a pressure file: a ``some`` and a ``full`` line."""
    return "".join(
        f"{k} avg10={_avg_text(avgs[k][0])} avg60={_avg_text(avgs[k][1])} "
        f"avg300={_avg_text(avgs[k][2])} total={totals_ns[k] // 1000}\n" for k in ("some", "full"))


def parse_pressure(text: str) -> dict[str, dict[str, float]]:
    """A pressure file's text (ours, or a Linux host's /proc/pressure/memory) as numbers:
    ``{"some": {"avg10": ..., "avg60": ..., "avg300": ..., "total": ...}, "full": {...}}``."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        kind, *fields = line.split()
        try:
            out[kind] = {k: float(v) for k, v in (f.split("=", 1) for f in fields)}
        except ValueError:
            raise ValueError(f"pressure line {n}: expected 'some|full key=value ...', got "
                             f"{line!r}") from None
    return out


def samples(ops: list[tuple[int, int, int, int]], lo: int, hi: int) -> tuple[float, float]:
    """Expected ``some`` and ``full`` time (ps) in [lo, hi) from operations (start, end, stall,
    task) whose stalls are spread evenly over them."""
    edges = {lo, hi}
    live = []
    for s, e, st, tk in ops:
        if e <= lo or s >= hi or e <= s:
            continue
        live.append((max(s, lo), min(e, hi), min(1.0, st / (e - s)), tk))
        edges.add(max(s, lo))
        edges.add(min(e, hi))
    if not live:
        return 0.0, 0.0
    cuts = sorted(edges)
    some = full = 0.0
    for a, b in zip(cuts, cuts[1:]):
        ds = [d for s, e, d, _ in live if s <= a and b <= e]
        if not ds:
            continue
        none = 1.0
        allst = 1.0
        for d in ds:
            none *= 1.0 - d
            allst *= d
        some += (b - a) * (1.0 - none)
        full += (b - a) * allst
    return some, full


@dataclass
class _Group:
    ops: list = field(default_factory=list)            # (start, end, stall, task) in ps
    final: int = 0                                      # periods finalised
    avgs: dict = field(default_factory=lambda: {"some": [0, 0, 0], "full": [0, 0, 0]})
    total_ps: dict = field(default_factory=lambda: {"some": 0.0, "full": 0.0})


def _step(avgs: dict[str, list[int]], some_ps: float, full_ps: float) -> None:
    """psi.c ``calc_avgs`` for one period: pct = time * 100 / period, as a fixed-point number."""
    for k, t in (("some", some_ps), ("full", full_ps)):
        pct = (int(round(t)) // 1000 * 100 // PSI_PERIOD_NS) * FIXED_1
        avgs[k] = [calc_load(a, e, pct) for a, e in zip(avgs[k], _EXPS)]


class PsiTracker:
    """Operation intervals per PSI group, and the pressure they give (module docstring)."""

    COMPACT_EVERY = 4096                  # operations recorded between two compactions

    def __init__(self) -> None:
        self._groups: dict[int, _Group] = {}
        self.pending = 0

    def record(self, groups, task: int, start_ps: int, end_ps: int, stall_ps: int) -> None:
        if end_ps <= start_ps:
            return
        for g in groups:
            grp = self._groups.setdefault(int(g), _Group())
            lo = grp.final * _PERIOD_PS
            if end_ps <= lo:
                continue                      # wholly inside finished periods: too late
            s, st = int(start_ps), int(stall_ps)
            if s < lo:                        # the part in finished periods is not counted
                st = st * (end_ps - lo) // (end_ps - s)
                s = lo
            grp.ops.append((s, int(end_ps), st, int(task)))
        self.pending += 1

    def compact(self, settled_ps: int) -> None:
        """Finalise every group's periods up to ``settled_ps`` and drop the operations they no
        longer need, so a long run keeps only the recent ones."""
        for g in list(self._groups):
            self.pressure(g, settled_ps, settled_ps)
        self.pending = 0

    def pressure(self, group: int, now_ps: int, settled_ps: int) -> tuple[dict, dict]:
        """(avgs, totals in ns) of ``group`` as read at ``now_ps``; periods ending at or before
        ``settled_ps`` (every live task's clock) are final."""
        g = self._groups.setdefault(int(group), _Group())
        while (g.final + 1) * _PERIOD_PS <= min(settled_ps, now_ps):
            lo, hi = g.final * _PERIOD_PS, (g.final + 1) * _PERIOD_PS
            some, full = samples(g.ops, lo, hi)
            _step(g.avgs, some, full)
            g.total_ps["some"] += some
            g.total_ps["full"] += full
            g.final += 1
            g.ops = [op for op in g.ops if op[1] > hi]
        avgs = {k: list(v) for k, v in g.avgs.items()}
        total = dict(g.total_ps)
        k = g.final
        while (k + 1) * _PERIOD_PS <= now_ps:                 # complete, not yet final
            some, full = samples(g.ops, k * _PERIOD_PS, (k + 1) * _PERIOD_PS)
            _step(avgs, some, full)
            total["some"] += some
            total["full"] += full
            k += 1
        some, full = samples(g.ops, k * _PERIOD_PS, max(now_ps, k * _PERIOD_PS))
        total["some"] += some
        total["full"] += full
        return avgs, {key: int(v) // 1000 for key, v in total.items()}


def timed(fn):
    """Wrap a ``Task`` method: the operation's interval and its memory stall go to the
    machine's PSI tracker."""
    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        m = self.machine
        ti = self._ti
        task = m.state.task
        c0 = int(task[K.T_CLOCK, ti])
        s0 = int(task[K.T_STALL_PS, ti])
        cg = int(task[K.T_MEMCG, ti])
        try:
            return fn(self, *args, **kwargs)
        finally:
            task = m.state.task
            c1 = int(task[K.T_CLOCK, ti])
            if m._psi_on:
                tracker = m._psi
                if c1 > c0:
                    tracker.record(m._psi_groups(cg), self.pid, c0, c1,
                                   int(task[K.T_STALL_PS, ti]) - s0)
                record_kswapd(m)
                if tracker.pending >= tracker.COMPACT_EVERY:
                    tracker.compact(_settled(m))
    return wrapper


KSWAPD = -1                            # the task id kswapd's intervals carry


def record_kswapd(m) -> None:
    """kswapd's work since the last call, as one interval of a task that is stalled all of it
    (balance_pgdat runs inside psi_memstall_enter), in the root group only (kswapd is a kernel
    thread of the root cgroup). The interval ends where kswapd's clock stands, or stood when it
    went to sleep; several runs since the last call merge into one interval of their total."""
    fgs = m.state.fgs
    busy = int(fgs[K.FG_KSWAPD_BUSY_PS])
    delta = busy - m._kswapd_busy_seen
    if delta <= 0:
        return
    m._kswapd_busy_seen = busy
    clock = int(fgs[K.FG_KSWAPD_CLOCK])
    end = clock if clock >= 0 else int(fgs[K.FG_KSWAPD_LAST_END])
    m._psi.record([0], KSWAPD, end - delta, end, delta)


SETTLE_HORIZON_PS = 60 * 10**12        # how far behind the latest time a period stays open


def _settled(m) -> int:
    """The time before which periods are final: the least live task clock (no later operation
    starts before it), but at most SETTLE_HORIZON_PS behind the machine's latest time, so an idle
    task's clock does not hold every period open; an operation that does start further back has
    its part in finished periods left out."""
    now = int(m.state.gs[K.G_NOW])
    live = [t._ti for t in m._tasks.values()]
    if not live:
        return now
    return max(int(np.min(m.state.task[K.T_CLOCK, live])), now - SETTLE_HORIZON_PS)


def pressure_text(m, group: int, path: str) -> str:
    """The text of ``path`` (``/proc/pressure/memory`` or a cgroup's ``memory.pressure``) for
    PSI group ``group`` of machine ``m``: ENOENT before 4.20, which had no PSI."""
    if m.config.profile.version < 420:
        raise OSError(_errno.ENOENT, f"{path}: {os.strerror(_errno.ENOENT)} (PSI is 4.20+; "
                      f"this machine runs {m.config.kernel})")
    now = int(m.state.gs[K.G_NOW])
    avgs, totals = m._psi.pressure(group, now, _settled(m))
    return format_pressure(avgs, totals)
