"""Engine benchmarks: access throughput, fault throughput, reference-model speed-up, host memory
per simulated frame, and compile time.

Every timed benchmark uses ``benchmark.pedantic`` with fixed rounds and runs its target once before
timing (compilation, or loading from Numba's cache, is never timed here; the "compile" group times
it on purpose, in subprocesses). Rates go into ``benchmark.extra_info``; ratios are measured side
by side in the same run (``conftest.Rates``). ``bench/run_bench.py`` prints them.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import mmcore
from mmcore import PR_SET_THP_DISABLE
from mmcore.kernels.consts import MM_PGD, PTE_PFN_MASK
from tests.reference.model import RefMachine

from . import bare_loop as B

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
BENCH_DIR = Path(__file__).resolve().parent
SEED = 20240601

ACCESS_REGION = 1 * GiB
ACCESS_N = 10_000_000
SEQ_STRIDE = 64                    # one cache line: 64 accesses per 4 KiB page, TLB-friendly
ACCESS_ROUNDS = 5


# ---- shared worlds --------------------------------------------------------------------------------

class World:
    """One machine with one task and one faulted region, plus the bare loop's TLB over its tables."""

    def __init__(self, thp: bool):
        self.machine = mmcore.Machine(mmcore.Config(memory="4GiB"), seed=SEED)
        self.task = self.machine.spawn("bench")
        if not thp:
            self.task.prctl(PR_SET_THP_DISABLE, 1)       # before mmap: no VMA is ever THP-eligible
        self.base = self.task.mmap(ACCESS_REGION)
        self.task.touch(self.base, ACCESS_REGION)
        sm = self.task.smaps(self.base)
        assert sm["Rss"] == ACCESS_REGION // KiB
        assert sm["AnonHugePages"] == (ACCESS_REGION // KiB if thp else 0)
        self.tlb = B.new_tlb()
        self.counters = B.new_counters()
        self.checked: set[str] = set()       # streams compared engine against bare loop

    def engine(self, addrs: np.ndarray) -> None:
        self.task.access(addrs)

    def bare(self, addrs: np.ndarray) -> None:
        # The arrays are fetched at each call: a pool growth in the engine replaces State.pt.
        s = self.machine.state
        pgd = int(s.mm[MM_PGD, self.task._mmi])
        B.bare_loop(addrs, s.pt, s.fr_idx, pgd, *self.tlb, self.counters)


@pytest.fixture(scope="module")
def world_4k() -> World:
    w = World(thp=False)
    cfg = w.machine.config.tlb
    # the bare loop's geometry is pinned; it must be the engine's for the miss counts to compare
    assert (cfg.l1_4k_entries, cfg.l1_4k_ways, cfg.stlb_entries, cfg.stlb_ways) == (
        B.L1_SETS * B.L1_WAYS, B.L1_WAYS, B.STLB_SETS * B.STLB_WAYS, B.STLB_WAYS)
    return w


@pytest.fixture(scope="module")
def world_thp() -> World:
    return World(thp=True)


def random_stream(base: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    return base + rng.integers(0, ACCESS_REGION, ACCESS_N, dtype=np.int64)


def sequential_stream(base: int) -> np.ndarray:
    return base + (np.arange(ACCESS_N, dtype=np.int64) * SEQ_STRIDE) % ACCESS_REGION


def expected_pfn_sum(task: mmcore.Task, addrs: np.ndarray) -> int:
    """Sum of the PFNs the engine's page tables give for ``addrs`` (4 KiB leaves only)."""
    leaves = task.page_table()
    vas = np.fromiter(leaves.keys(), np.int64, len(leaves))
    ents = np.fromiter(leaves.values(), np.int64, len(leaves))
    order = np.argsort(vas)
    vas, ents = vas[order], ents[order]
    i = np.searchsorted(vas, addrs & ~np.int64(4095))
    assert np.array_equal(vas[i], addrs & ~np.int64(4095))
    return int(((ents[i] & PTE_PFN_MASK) >> 12).sum())


def warm_and_compare(world: World, addrs: np.ndarray, name: str, side: str) -> None:
    """Warm ``side``'s TLB on ``addrs``; the first time, check the bare loop does the engine's
    translation work on this stream.

    After one pass over a stream that puts more distinct pages into every set than it has ways,
    an LRU set holds the last ``ways`` distinct pages that reached it, whatever it held before;
    so from then on the two TLBs agree and a second pass must give exactly equal L1 and STLB miss
    counts. The engine's L1 for 2 MiB pages and the 2 MiB keys of its unified STLB stay empty
    here (THP is off), its paging-structure caches only change walk costs, and a read stream over
    faulted memory never faults or re-walks for a dirty bit: equality, not a bound, must hold.
    The bare loop's translations are checked against the engine's page tables too.
    """
    if name in world.checked:
        (world.engine if side == "engine" else world.bare)(addrs)
        return
    world.checked.add(name)
    world.engine(addrs)
    world.bare(addrs)
    c0, b0 = world.task.counters(), world.counters.copy()
    world.engine(addrs)
    world.bare(addrs)
    c1, b1 = world.task.counters(), world.counters
    assert b1[B.BARE_NOT_PRESENT] == 0 and b1[B.BARE_NOT_4K] == 0
    assert c1["min_flt"] == c0["min_flt"]
    assert c1["accesses"] - c0["accesses"] == b1[B.BARE_ACCESSES] - b0[B.BARE_ACCESSES]
    assert c1["dtlb_misses"] - c0["dtlb_misses"] == b1[B.BARE_L1_MISSES] - b0[B.BARE_L1_MISSES]
    assert c1["stlb_misses"] - c0["stlb_misses"] == b1[B.BARE_STLB_MISSES] - b0[B.BARE_STLB_MISSES]
    assert b1[B.BARE_PFN_SUM] - b0[B.BARE_PFN_SUM] == expected_pfn_sum(world.task, addrs)


def miss_counts(world: World, bare: bool) -> tuple[int, int, int]:
    """(accesses, L1 misses, STLB misses) so far: the bare loop's, or the engine task's."""
    if bare:
        c = world.counters
        return int(c[B.BARE_ACCESSES]), int(c[B.BARE_L1_MISSES]), int(c[B.BARE_STLB_MISSES])
    c = world.task.counters()
    return c["accesses"], c["dtlb_misses"], c["stlb_misses"]


def record_misses(benchmark, before: tuple, after: tuple) -> None:
    """Misses per access over the timed rounds."""
    n, l1, stlb = (a - b for a, b in zip(after, before))
    benchmark.extra_info["accesses_per_round"] = ACCESS_N
    benchmark.extra_info["l1_misses_per_access"] = l1 / n
    benchmark.extra_info["stlb_misses_per_access"] = stlb / n


# ---- group "access" -------------------------------------------------------------------------------

STREAMS = {"random": random_stream, "sequential": sequential_stream}


@pytest.mark.benchmark(group="access")
@pytest.mark.parametrize("stream", list(STREAMS))
@pytest.mark.parametrize("side", ["engine", "bare"])
def test_access(benchmark, rates, world_4k, side, stream):
    """10^7 reads over a faulted 1 GiB region, THP off: ``Task.access`` against the bare loop."""
    addrs = STREAMS[stream](world_4k.base)
    warm_and_compare(world_4k, addrs, stream, side)
    bare = side == "bare"
    before = miss_counts(world_4k, bare)
    benchmark.pedantic(world_4k.bare if bare else world_4k.engine, args=(addrs,),
                       rounds=ACCESS_ROUNDS, iterations=1)
    record_misses(benchmark, before, miss_counts(world_4k, bare))
    rates.record(benchmark, f"{side}-{stream}", ACCESS_N, "accesses_per_s")
    rates.ratio("bare_over_engine", f"bare-{stream}", f"engine-{stream}")
    benchmark.extra_info["bare_loop"] = B.BARE_LOOP_VERSION


@pytest.mark.benchmark(group="access")
def test_access_thp(benchmark, rates, world_thp):
    """The same random stream over 1 GiB of THPs (512 PMD leaves: the STLB holds them all)."""
    addrs = random_stream(world_thp.base)
    world_thp.engine(addrs)                                   # warm-up
    before = miss_counts(world_thp, bare=False)
    benchmark.pedantic(world_thp.engine, args=(addrs,), rounds=ACCESS_ROUNDS, iterations=1)
    record_misses(benchmark, before, miss_counts(world_thp, bare=False))
    rates.record(benchmark, "engine-random-thp", ACCESS_N, "accesses_per_s")
    rates.ratio("thp_over_4k", "engine-random-thp", "engine-random")


# ---- group "fault" --------------------------------------------------------------------------------

FAULT_REGION = 1 * GiB
THP_MACHINE = "64GiB"
THP_REGION = 32 * GiB
FAULT_ROUNDS = 5
THP_FAULT_ROUNDS = 10


@pytest.mark.benchmark(group="fault")
def test_fault_4k(benchmark, rates):
    """First touch of a fresh 1 GiB region, THP off: 262,144 anonymous 4 KiB faults per round."""
    made: list[mmcore.Task] = []

    def setup():
        m = mmcore.Machine(mmcore.Config(memory="4GiB"), seed=SEED)
        t = m.spawn("bench")
        t.prctl(PR_SET_THP_DISABLE, 1)
        a = t.mmap(FAULT_REGION)
        made.append(t)
        return (a,), {}

    def touch(a):
        made[-1].touch(a, FAULT_REGION)

    a, _ = setup()                                           # warm-up, untimed
    touch(*a)
    benchmark.pedantic(touch, setup=setup, rounds=FAULT_ROUNDS, iterations=1)
    nfaults = FAULT_REGION >> 12
    for t in made:
        assert t.counters()["min_flt"] == nfaults
        assert t.smaps_rollup()["AnonHugePages"] == 0
    rates.record(benchmark, "fault-4k", nfaults, "faults_per_s")
    benchmark.extra_info["faults_per_round"] = nfaults


@pytest.mark.benchmark(group="fault")
def test_fault_thp(benchmark, rates):
    """THP faults: mmap 32 GiB (2 MiB-aligned), touch every 2 MiB, munmap; defrag=never.

    One machine for every round: munmap gives the THPs back to the buddy allocator, so each round
    allocates 16,384 order-9 blocks again from the same free lists.
    """
    m = mmcore.Machine(mmcore.Config(memory=THP_MACHINE, thp_enabled="always",
                                     thp_defrag="never"), seed=SEED)
    t = m.spawn("bench")

    def setup():
        a = t.mmap(THP_REGION)
        assert a % (2 * MiB) == 0
        return (a,), {}

    def touch(a):
        t.touch(a, THP_REGION, stride=2 * MiB)

    def teardown(a):
        t.munmap(a, THP_REGION)

    args, _ = setup()                                        # warm-up, untimed
    touch(*args)
    teardown(*args)
    v0 = m.vmstat()
    benchmark.pedantic(touch, setup=setup, teardown=teardown, rounds=THP_FAULT_ROUNDS,
                       iterations=1)
    v1 = m.vmstat()
    nfaults = THP_REGION // (2 * MiB)
    assert v1["thp_fault_alloc"] - v0["thp_fault_alloc"] == THP_FAULT_ROUNDS * nfaults
    assert v1["thp_fault_fallback"] == v0["thp_fault_fallback"]
    rates.record(benchmark, "fault-thp", nfaults, "faults_per_s")
    benchmark.extra_info["faults_per_round"] = nfaults


@pytest.mark.benchmark(group="fault")
def test_fault_thp_fresh_machine(benchmark, rates):
    """The same THP faults on a new machine each round: the first use of its arrays.

    A fresh machine's frame arrays are untouched host memory (NumPy zeros; deferred init) and its
    page-table pool grows by doubling, so this is the rate a short-lived sweep job sees; the
    difference from ``test_fault_thp`` is host page faults and pool growth, not simulated work.
    """
    made: list[tuple[mmcore.Machine, mmcore.Task]] = []

    def setup():
        m = mmcore.Machine(mmcore.Config(memory=THP_MACHINE, thp_enabled="always",
                                         thp_defrag="never"), seed=SEED)
        t = m.spawn("bench")
        made.append((m, t))
        return (t.mmap(THP_REGION),), {}

    def touch(a):
        made[-1][1].touch(a, THP_REGION, stride=2 * MiB)

    benchmark.pedantic(touch, setup=setup, rounds=FAULT_ROUNDS, warmup_rounds=1, iterations=1)
    nfaults = THP_REGION // (2 * MiB)
    for m, _ in made:
        assert m.vmstat()["thp_fault_alloc"] == nfaults
    made.clear()                                             # 5 x 64 GiB machines: free them
    rates.record(benchmark, "fault-thp-fresh", nfaults, "faults_per_s")
    rates.ratio("reused_over_fresh", "fault-thp", "fault-thp-fresh")
    benchmark.extra_info["faults_per_round"] = nfaults


# ---- group "reference" ----------------------------------------------------------------------------

REF_REGION = 16 * MiB
REF_N = 20_000


class RefWorld:
    """The same small stream in mmcore and in the plain-Python RefMachine, THP off, one CPU."""

    def __init__(self):
        self.m = mmcore.Machine(mmcore.Config(memory="64MiB", ncpus=1), seed=SEED)
        self.t = self.m.spawn("bench")
        self.t.prctl(PR_SET_THP_DISABLE, 1)
        self.a = self.t.mmap(REF_REGION)
        self.t.touch(self.a, REF_REGION)
        self.r = RefMachine(self.m.config.memory_bytes, ncpus=1, kernel=self.m.config.kernel,
                            thp_enabled=self.m.config.thp_enabled, thp_defrag=self.m.config.defrag)
        self.pid = self.r.spawn("bench")
        self.r.prctl(self.pid, PR_SET_THP_DISABLE, 1)
        ra = self.r.mmap(self.pid, REF_REGION, mmcore.PROT_READ | mmcore.PROT_WRITE,
                         mmcore.MAP_PRIVATE | mmcore.MAP_ANONYMOUS)
        assert ra == self.a
        self.r.touch(self.pid, ra, REF_REGION)
        rng = np.random.default_rng(SEED)
        self.addrs = self.a + rng.integers(0, REF_REGION, REF_N, dtype=np.int64)
        # One pass each, compared: the two models do the same work on this stream. Deltas, not
        # totals: during the faulting touch the two count differently (the engine counts a dTLB
        # miss again when it retries the access after the fault; the reference once per access).
        c0, rc0 = self.t.counters(), self.r.tlb_counters(self.pid)
        self.engine()
        self.reference()
        c1, rc1 = self.t.counters(), self.r.tlb_counters(self.pid)
        for k in ("accesses", "dtlb_misses", "stlb_misses", "walk_loads"):
            assert c1[k] - c0[k] == rc1[k] - rc0[k], (k, c1[k] - c0[k], rc1[k] - rc0[k])

    def engine(self):
        self.t.access(self.addrs)

    def reference(self):
        self.r.access(self.pid, self.addrs, False)


@pytest.fixture(scope="module")
def ref_world() -> RefWorld:
    return RefWorld()


@pytest.mark.benchmark(group="reference")
@pytest.mark.parametrize("side", ["mmcore", "reference"])
def test_reference(benchmark, rates, ref_world, side):
    """20,000 random reads over a faulted 16 MiB region: mmcore against RefMachine."""
    run = ref_world.engine if side == "mmcore" else ref_world.reference
    run()                               # warm-up (the fixture ran one pass of each already)
    benchmark.pedantic(run, rounds=20 if side == "mmcore" else 5, iterations=1)
    rates.record(benchmark, f"ref-{side}", REF_N, "accesses_per_s")
    rates.ratio("mmcore_speedup", "ref-mmcore", "ref-reference")


# ---- group "memory" -------------------------------------------------------------------------------

MEMORY_MACHINE = "256GiB"


@pytest.mark.benchmark(group="memory")
def test_memory_per_frame(benchmark):
    """Host bytes per simulated 4 KiB frame of a 256 GiB machine filled with THPs (subprocess)."""
    out: list[dict] = []

    def probe():
        p = subprocess.run([sys.executable, str(BENCH_DIR / "memory_probe.py"), MEMORY_MACHINE],
                           capture_output=True, text=True, check=True)
        out.append(json.loads(p.stdout))

    benchmark.pedantic(probe, rounds=1, iterations=1)
    r = out[-1]
    assert r["thp_fault_fallback"] == 0 and r["thp_fault_alloc"] == r["mapped_bytes"] // (2 * MiB)
    benchmark.extra_info.update(r)


# ---- group "compile" ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache_dir():
    d = tempfile.mkdtemp(prefix="mmcore-bench-numba-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _env(cache: str) -> dict[str, str]:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def _mmcore_cmd() -> list[str]:
    exe = shutil.which("mmcore")
    return [exe] if exe else [sys.executable, "-m", "mmcore"]


@pytest.mark.benchmark(group="compile")
def test_compile_cold(benchmark, rates, cache_dir):
    """``python -m mmcore warmup`` with an empty NUMBA_CACHE_DIR: every kernel compiled (1 round)."""
    def setup():
        shutil.rmtree(cache_dir, ignore_errors=True)
        os.makedirs(cache_dir)
        return (), {}

    def warmup():
        subprocess.run([sys.executable, "-m", "mmcore", "warmup"], env=_env(cache_dir),
                       check=True, capture_output=True)

    benchmark.pedantic(warmup, setup=setup, rounds=1, iterations=1)
    assert any(Path(cache_dir).rglob("*.nbi")), "warmup wrote no Numba cache"
    benchmark.extra_info["cold_compile_s"] = benchmark.stats.stats.median
    rates.record(benchmark, "compile-cold", 1, "runs_per_s")


@pytest.mark.benchmark(group="compile")
def test_start_warm(benchmark, rates, cache_dir):
    """``mmcore run --size 64MiB --accesses 100000`` with the cache the cold run filled."""
    if not any(Path(cache_dir).rglob("*.nbi")):
        subprocess.run([sys.executable, "-m", "mmcore", "warmup"], env=_env(cache_dir),
                       check=True, capture_output=True)
    cmd = _mmcore_cmd() + ["run", "--size", "64MiB", "--accesses", "100000"]

    def run():
        subprocess.run(cmd, env=_env(cache_dir), check=True, capture_output=True)

    run()                                                    # warm-up (page cache, pyc files)
    benchmark.pedantic(run, rounds=5, iterations=1)
    benchmark.extra_info["warm_start_s"] = benchmark.stats.stats.median
    rates.record(benchmark, "compile-warm", 1, "runs_per_s")
    # cold seconds / warm seconds; with the cold run's seconds, both figures are in both records
    if rates.ratio("cold_over_warm", "compile-warm", "compile-cold") is not None:
        rates.info("compile-cold")["warm_start_s"] = benchmark.extra_info["warm_start_s"]
        benchmark.extra_info["cold_compile_s"] = rates.info("compile-cold")["cold_compile_s"]


@pytest.mark.benchmark(group="tlb-geometries")
@pytest.mark.parametrize("mode", ["separate", "batched"])
def test_tlb_geometries(benchmark, rates, mode):
    """Eight TLB geometries over one uniform load stream (1M loads, 128 MiB of 4 KiB pages):
    ``separate`` builds, populates and runs one machine per geometry, as eight sweep points
    would; ``batched`` populates one machine and replays the stream against all eight in one
    ``mmcore.tlbsim`` pass. Extra info: the replay alone (``replay_s``), and for ``separate``
    the eight ``Task.access`` runs alone (``access_s``)."""
    import time

    from mmcore import Config, Machine, TLBConfig
    from mmcore.tlbsim import tlb_geometries
    geos = [TLBConfig(stlb_entries=e, stlb_ways=w) for e, w in
            ((512, 4), (1024, 8), (1536, 12), (2048, 16))] + \
        [TLBConfig(l1_4k_entries=e) for e in (16, 32, 128, 256)]
    region = 128 << 20
    off = np.random.default_rng(11).integers(0, region, 1_000_000)
    parts: dict[str, float] = {}

    def machine(g):
        m = Machine(Config(memory="512MiB", thp_enabled="never", tlb=g))
        t = m.spawn("app")
        a = t.mmap(region)
        t.touch(a, region)
        return t.clone_thread(), a

    def separate():
        acc = 0.0
        for g in geos:
            t, a = machine(g)
            t0 = time.perf_counter()
            t.access(a + off)
            acc += time.perf_counter() - t0
        parts["access_s"] = acc

    def batched():
        t, a = machine(TLBConfig())
        t0 = time.perf_counter()
        tlb_geometries(t, a + off, geos)
        parts["replay_s"] = time.perf_counter() - t0
    fn = separate if mode == "separate" else batched
    warm, wa = machine(TLBConfig())
    warm.access(wa + off[:1000])
    tlb_geometries(warm, wa + off[:1000], geos[:1])
    benchmark.pedantic(fn, rounds=3, iterations=1)
    benchmark.extra_info.update(parts)
    rates.record(benchmark, f"tlb-geometries-{mode}", len(geos), "geometries_per_s")
    rates.ratio("batched_over_separate", "tlb-geometries-batched", "tlb-geometries-separate")
