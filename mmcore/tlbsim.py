"""TLB geometries compared over one access stream, in one pass.

``tlb_geometries(task, addresses, geometries)`` answers "how many dTLB misses and page walks
would these loads take under each of these TLBs?" for a task whose memory is already mapped:
the page size of every address is read off its page tables once, then one kernel pass
(``kernels/tlbmulti.py``) replays the stream against every geometry, each with its own entries,
starting empty; geometries that differ only in STLB ways share one pass (an LRU stack per STLB
set gives all of them). The counts are those ``Task.access`` would give on a machine built with that
geometry, from an empty TLB (tests check it), without building and running one machine per
geometry::

    from mmcore import Config, Machine, TLBConfig
    from mmcore.tlbsim import tlb_geometries

    m = Machine(Config(memory="1GiB", thp_enabled="never"))
    t = m.spawn("app")
    a = t.mmap(256 << 20)
    t.touch(a, 256 << 20)
    addrs = a + np.random.default_rng(0).integers(0, 256 << 20, 1_000_000)
    rows = tlb_geometries(t, addrs, [TLBConfig(stlb_entries=e) for e in (512, 1536, 4096)])

The stream is loads only; nothing on the machine changes (its TLBs, clocks and counters).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .config import Config, ConfigError, TLBConfig
from .kernels import tlbmulti as TM

__all__ = ["tlb_geometries"]


def _geometry(g, i: int) -> tuple[int, ...]:
    if isinstance(g, dict):
        try:
            g = TLBConfig(**g)
        except TypeError as e:
            raise ValueError(f"geometries[{i}]: {e}") from None
    if not isinstance(g, TLBConfig):
        raise TypeError(f"geometries[{i}]: expected a TLBConfig or a dict of its fields, got "
                        f"{type(g).__name__}")
    try:
        Config(tlb=g).validate()
    except ConfigError as e:
        raise ValueError(f"geometries[{i}]: {e}") from None
    return (g.l1_4k_entries // g.l1_4k_ways, g.l1_4k_ways, g.l1_2m_entries // g.l1_2m_ways,
            g.l1_2m_ways, g.stlb_entries // g.stlb_ways, g.stlb_ways)


def tlb_geometries(task, addresses, geometries: Sequence) -> list[dict]:
    """Per geometry (a ``TLBConfig`` or a dict of its fields): ``{"dtlb_misses", "stlb_misses",
    "accesses"}`` of the loads at ``addresses`` by ``task``, from empty TLBs."""
    from .machine import Task
    if not isinstance(task, Task):
        raise TypeError(f"task: expected a Task, got {type(task).__name__}")
    task._alive()
    vas = np.ascontiguousarray(addresses, dtype=np.int64)
    if vas.ndim != 1:
        raise ValueError(f"addresses: expected a 1-D array, got shape {vas.shape}")
    if not isinstance(geometries, (list, tuple)) or not geometries:
        raise ValueError("geometries: expected a non-empty list of TLBConfig (or dicts)")
    geo = np.array([_geometry(g, i) for i, g in enumerate(geometries)], np.int64)
    s = task.machine.state
    huge = np.zeros(vas.shape[0], np.int8)
    bad = int(TM.leaf_sizes(s.cfg, s.pt, s.fr_idx, s.mm, task._mmi, vas, huge))
    if bad >= 0:
        raise ValueError(f"addresses[{bad}]: {int(vas[bad]):#x} is not mapped by task "
                         f"{task.pid} (touch the memory first: the stream is loads of mapped pages)")
    size = int((geo[:, TM.G_S1] * geo[:, TM.G_W1] + geo[:, TM.G_S2] * geo[:, TM.G_W2]).max())
    tags = np.full((geo.shape[0], size), -1, np.int64)
    ages = np.zeros((geo.shape[0], size), np.int64)
    out = np.zeros((geo.shape[0], 2), np.int64)
    TM.tlb_multi(vas, huge, task._mmi + 1, geo, tags, ages, out)
    return [{"accesses": int(vas.shape[0]), "dtlb_misses": int(out[g, 0]),
             "stlb_misses": int(out[g, 1])} for g in range(geo.shape[0])]
