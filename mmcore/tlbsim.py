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
``tlb_replay(addresses, geometries)`` runs the same model over a bare address stream, with no
machine, as a trace-driven cache simulator would.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .config import Config, ConfigError, TLBConfig
from .kernels import tlbmulti as TM

__all__ = ["tlb_geometries", "tlb_replay"]


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


def tlb_replay(addresses, geometries: Sequence, *, huge=None) -> list[dict]:
    """The TLB model alone over a raw stream of load addresses, no machine needed (as a cache
    simulator takes a trace): per geometry, ``{"accesses", "dtlb_misses", "stlb_misses"}`` from
    empty TLBs. ``huge`` (optional, one flag per address) marks the addresses a 2 MiB page maps;
    by default every page is 4 KiB. The counts are those ``tlb_geometries`` gives for a task
    whose mappings have those page sizes."""
    vas = np.ascontiguousarray(addresses, dtype=np.int64)
    if vas.ndim != 1:
        raise ValueError(f"addresses: expected a 1-D array, got shape {vas.shape}")
    if vas.shape[0] and (int(vas.min()) < 0 or int(vas.max()) >= 1 << 48):
        i = int(np.argmin(vas)) if int(vas.min()) < 0 else int(np.argmax(vas))
        raise ValueError(f"addresses[{i}]: expected a 48-bit virtual address (0 to 2**48 - 1), "
                         f"got {int(vas[i])}")
    if huge is None:
        hv = np.zeros(vas.shape[0], np.int8)
    else:
        hv = np.ascontiguousarray(huge, dtype=np.int8)
        if hv.shape != vas.shape:
            raise ValueError(f"huge: expected one flag per address ({vas.shape[0]}), got shape "
                             f"{hv.shape}")
    return _replay(vas, hv, 1, geometries)


def _replay(vas: np.ndarray, huge: np.ndarray, asid: int, geometries: Sequence) -> list[dict]:
    if not isinstance(geometries, (list, tuple)) or not geometries:
        raise ValueError("geometries: expected a non-empty list of TLBConfig (or dicts)")
    geo = np.array([_geometry(g, i) for i, g in enumerate(geometries)], np.int64)
    size = int((geo[:, TM.G_S1] * geo[:, TM.G_W1] + geo[:, TM.G_S2] * geo[:, TM.G_W2]).max())
    tags = np.full((geo.shape[0], size), -1, np.int64)
    ages = np.zeros((geo.shape[0], size), np.int64)
    out = np.zeros((geo.shape[0], 2), np.int64)
    TM.tlb_multi(vas, huge, asid, geo, tags, ages, out)
    return [{"accesses": int(vas.shape[0]), "dtlb_misses": int(out[g, 0]),
             "stlb_misses": int(out[g, 1])} for g in range(geo.shape[0])]


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
    for i, g in enumerate(geometries):
        _geometry(g, i)                               # bad geometries before any work
    s = task.machine.state
    huge = np.zeros(vas.shape[0], np.int8)
    bad = int(TM.leaf_sizes(s.cfg, s.pt, s.fr_idx, s.mm, task._mmi, vas, huge))
    if bad >= 0:
        raise ValueError(f"addresses[{bad}]: {int(vas[bad]):#x} is not mapped by task "
                         f"{task.pid} (touch the memory first: the stream is loads of mapped pages)")
    return _replay(vas, huge, task._mmi + 1, geometries)


def pycachesim_hierarchy(geometry=None):
    """The pycachesim (``cachesim``) hierarchy that counts as ``tlb_replay`` does for 4 KiB
    pages: the 4 KiB L1 dTLB loading from the STLB, which loads from memory, each a
    set-associative LRU cache of 4096-byte lines with ``geometry``'s sets and ways (default:
    ``TLBConfig()``). A stream's L1 misses are its ``dtlb_misses`` and the STLB's misses its
    ``stlb_misses``. Returns (simulator, l1, stlb)."""
    from cachesim import Cache, CacheSimulator, MainMemory
    g = TLBConfig() if geometry is None else geometry
    s1, w1, _, _, s3, w3 = _geometry(g, 0)
    mem = MainMemory()
    stlb = Cache("STLB", s3, w3, 4096, "LRU")
    mem.load_to(stlb)
    mem.store_from(stlb)
    l1 = Cache("L1D", s1, w1, 4096, "LRU", store_to=stlb, load_from=stlb)
    return CacheSimulator(l1, mem), l1, stlb
