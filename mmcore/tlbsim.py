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

__all__ = ["GeometryReplay", "TLBShadow", "tlb_geometries", "tlb_replay"]


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
        hv = np.ascontiguousarray(np.asarray(huge) != 0, dtype=np.int8)
        if hv.shape != vas.shape:
            raise ValueError(f"huge: expected one flag per address ({vas.shape[0]}), got shape "
                             f"{hv.shape}")
    return _replay(vas, hv, 1, geometries)


class GeometryReplay:
    """Running L1 dTLB misses and page walks of several TLB geometries over one stream of loads
    fed in pieces (``feed``), each geometry from an empty TLB, all in one kernel pass per piece
    (``kernels/tlbmulti.py``). ``counts()`` gives, per geometry, ``{"accesses", "dtlb_misses",
    "stlb_misses"}`` so far."""

    def __init__(self, geometries: Sequence):
        if not isinstance(geometries, (list, tuple)) or not geometries:
            raise ValueError("geometries: expected a non-empty list of TLBConfig (or dicts)")
        k = len(geometries)
        geo = np.zeros((k, TM.NR_G), np.int64)
        geo[:, :6] = [_geometry(g, i) for i, g in enumerate(geometries)]
        for g in range(k):              # a pass per distinct L1s and STLB sets; its first member leads
            same = np.all(geo[:, :5] == geo[g, :5], axis=1)
            lead = int(np.argmax(same))
            geo[g, TM.G_LEAD] = lead
            geo[lead, TM.G_DEPTH] = max(geo[lead, TM.G_DEPTH], geo[g, TM.G_W3])
        geo[:, TM.G_DEPTH] = geo[geo[:, TM.G_LEAD], TM.G_DEPTH]
        l1 = geo[:, TM.G_S1] * geo[:, TM.G_W1] + geo[:, TM.G_S2] * geo[:, TM.G_W2]
        self.geo = geo
        self.tags = np.full((k, int(l1.max())), -1, np.int64)
        self.ages = np.zeros((k, int(l1.max())), np.int64)
        self.stk = np.full((k, int((geo[:, TM.G_S3] * geo[:, TM.G_DEPTH]).max())), -1, np.int64)
        self.hist = np.zeros((k, int(geo[:, TM.G_DEPTH].max()) + 1), np.int64)
        self.st = np.zeros((k, TM.NR_ST), np.int64)
        self.st[:, TM.ST_LAST] = -1
        self.accesses = 0

    def feed(self, vas: np.ndarray, huge: np.ndarray, asid: int = 1) -> None:
        """Loads at ``vas`` (int64) by address space ``asid``; ``huge`` (int8) 1 where a 2 MiB
        leaf maps the address, 0 a 4 KiB one, -1 where nothing does (skipped)."""
        TM.tlb_multi(vas, huge, asid, self.geo, self.tags, self.ages, self.stk, self.hist, self.st)
        self.accesses += int(vas.shape[0] - np.count_nonzero(huge < 0))

    def counts(self) -> list[dict]:
        out = []
        for g in range(self.geo.shape[0]):
            lead = int(self.geo[g, TM.G_LEAD])
            out.append({"accesses": self.accesses, "dtlb_misses": int(self.st[lead, TM.ST_DTLB]),
                        "stlb_misses": int(self.hist[lead, int(self.geo[g, TM.G_W3]):].sum())})
        return out


def _replay(vas: np.ndarray, huge: np.ndarray, asid: int, geometries: Sequence) -> list[dict]:
    r = GeometryReplay(geometries)
    r.feed(vas, huge, asid)
    return r.counts()


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


class TLBShadow:
    """TLB geometries that watch a machine's runs: every load and store its tasks make through
    ``Task.touch`` and ``Task.access`` (and so every access of a scenario), replayed against each
    geometry as ``tlb_geometries`` replays a stream: from empty TLBs, one TLB per CPU as the
    machine's, each address with the size of the page mapping it right after its call (a fault
    maps it; an address left unmapped, a SIGSEGV, counts nothing). A geometry's counts are those
    the machine's own TLB would take with it, except what a replay of loads leaves out: a store
    through a clean entry (a walk to set the dirty bit), a fault's walks, and flushes. Nothing on
    the machine changes. Made by ``Machine.shadow_tlbs``."""

    CHUNK = 1 << 20

    def __init__(self, machine, geometries: Sequence):
        self.geometries = list(geometries)
        GeometryReplay(self.geometries)                  # bad geometries before any work
        self.machine = machine
        self.cpus: dict[int, GeometryReplay] = {}

    def record(self, task, vas: np.ndarray) -> None:
        """Loads at ``vas`` by ``task``, after the machine ran them."""
        from .kernels import consts as K
        s = self.machine.state
        cpu = int(s.task[K.T_CPU, task._ti])
        r = self.cpus.get(cpu)
        if r is None:
            r = self.cpus[cpu] = GeometryReplay(self.geometries)
        huge = np.empty(vas.shape[0], np.int8)
        TM.leaf_sizes(s.cfg, s.pt, s.fr_idx, s.mm, task._mmi, vas, huge)
        r.feed(vas, huge, task._mmi + 1)

    def record_range(self, task, start: int, n: int, stride: int) -> None:
        """The ``n`` loads at ``start``, ``start + stride``, ... (a touch)."""
        for lo in range(0, n, self.CHUNK):
            self.record(task, start + stride * np.arange(lo, min(n, lo + self.CHUNK), dtype=np.int64))

    def counts(self) -> list[dict]:
        """Per geometry: ``{"accesses", "dtlb_misses", "stlb_misses"}``, summed over CPUs."""
        out = [{"accesses": 0, "dtlb_misses": 0, "stlb_misses": 0} for _ in self.geometries]
        for cpu in sorted(self.cpus):
            for o, c in zip(out, self.cpus[cpu].counts()):
                for k in o:
                    o[k] += c[k]
        return out


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
