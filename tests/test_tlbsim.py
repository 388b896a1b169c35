"""The batched TLB pass: many geometries over one load stream, equal to separate engine runs."""
from __future__ import annotations

import numpy as np
import pytest

from mmcore import Config, Machine, TLBConfig
from mmcore.tlbsim import tlb_geometries

GEOMETRIES = [TLBConfig(stlb_entries=512, stlb_ways=4), TLBConfig(),
              TLBConfig(stlb_entries=2048, stlb_ways=16), TLBConfig(l1_4k_entries=16),
              TLBConfig(l1_4k_entries=256, l1_4k_ways=8), TLBConfig(l1_2m_entries=8, l1_2m_ways=8)]


def _engine(thp, g, region, addrs_off):
    """dTLB misses and walks of the loads on a machine built with geometry ``g``, measured by a
    second thread of the task (its CPU's TLB is empty: the touch ran on the other CPU)."""
    m = Machine(Config(memory="256MiB", thp_enabled=thp, tlb=g))
    x = m.spawn("app")
    b = x.mmap(region)
    x.touch(b, region)
    y = x.clone_thread()
    c0 = y.counters()
    y.access(b + addrs_off)
    c1 = y.counters()
    return (c1["dtlb_misses"] - c0["dtlb_misses"], c1["stlb_misses"] - c0["stlb_misses"]), y, b


@pytest.mark.parametrize("thp", ["never", "always"])
@pytest.mark.parametrize("pattern", ["uniform", "sequential"])
def test_one_pass_equals_a_machine_per_geometry(thp, pattern):
    region = 32 << 20
    rng = np.random.default_rng(3)
    off = (rng.integers(0, region, 50_000) if pattern == "uniform"
           else (np.arange(50_000, dtype=np.int64) * 1000) % region)
    want = []
    for g in GEOMETRIES:
        counts, y, b = _engine(thp, g, region, off)
        want.append(counts)
    rows = tlb_geometries(y, b + off, GEOMETRIES)
    assert [(r["dtlb_misses"], r["stlb_misses"]) for r in rows] == want
    assert all(r["accesses"] == off.shape[0] for r in rows)
    if thp == "always":
        assert max(w for _, w in want) <= 16          # 16 huge pages: cold misses only
    elif pattern == "uniform":
        assert want[0][1] > want[2][1]                 # a bigger STLB walks less


def test_the_machine_is_left_as_it_was():
    m = Machine(Config(memory="64MiB"))
    t = m.spawn("a")
    a = t.mmap(4 << 20)
    t.touch(a, 4 << 20)
    before = (t.counters(), m.state.tlb.copy(), t.time_ns)
    tlb_geometries(t, a + np.arange(0, 4 << 20, 4096), [TLBConfig(), {"stlb_entries": 64, "stlb_ways": 4}])
    assert t.counters() == before[0] and np.array_equal(m.state.tlb, before[1])
    assert t.time_ns == before[2]


def test_bad_input_names_the_problem():
    m = Machine(Config(memory="64MiB"))
    t = m.spawn("a")
    a = t.mmap(1 << 20)
    t.touch(a, 64 << 10)
    with pytest.raises(ValueError, match=r"addresses\[16\]: .* is not mapped by task 1"):
        tlb_geometries(t, a + np.arange(0, 1 << 20, 4096), [TLBConfig()])
    with pytest.raises(ValueError, match="geometries: expected a non-empty list"):
        tlb_geometries(t, [a], [])
    with pytest.raises(ValueError, match=r"geometries\[1\]"):
        tlb_geometries(t, [a], [TLBConfig(), TLBConfig(stlb_entries=100, stlb_ways=12)])
    with pytest.raises(ValueError, match=r"geometries\[0\]"):
        tlb_geometries(t, [a], [{"stlb_entires": 5}])
    with pytest.raises(TypeError, match="task"):
        tlb_geometries(m, [a], [TLBConfig()])


# ---- the model alone, and pycachesim as a peer ------------------------------------------------------

def _streams(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"uniform": rng.integers(0, 128 << 20, 100_000),
            "sequential": np.arange(0, 32 << 20, 64),
            "zipf": np.minimum(rng.zipf(1.1, 100_000), 1 << 20) * 4096 + rng.integers(0, 4096, 100_000)}


@pytest.mark.parametrize("stream", ["uniform", "sequential", "zipf"])
def test_replay_counts_equal_pycachesim(stream):
    """The same L1 dTLB and STLB as a pycachesim hierarchy of 4096-byte lines: identical misses."""
    pytest.importorskip("cachesim")
    from mmcore.tlbsim import pycachesim_hierarchy, tlb_replay
    a = _streams(3)[stream]
    for g in GEOMETRIES[:5]:
        sim, l1, stlb = pycachesim_hierarchy(g)
        sim.load(a.tolist())
        r = tlb_replay(a, [g])[0]
        assert (r["dtlb_misses"], r["stlb_misses"]) == (l1.backend.MISS_count, stlb.backend.MISS_count)
        assert r["accesses"] == l1.backend.LOAD_count


def test_replay_equals_the_machine_path():
    m = Machine(Config(memory="256MiB", thp_enabled="always"))
    t = m.spawn("app")
    a = t.mmap(64 << 20)
    t.touch(a, 64 << 20)
    addrs = a + np.random.default_rng(5).integers(0, 64 << 20, 50_000)
    from mmcore.tlbsim import tlb_replay
    assert t.smaps(a)["AnonHugePages"] == 64 << 10           # every address in a 2 MiB page
    huge = np.ones(addrs.shape[0], np.int8)
    assert tlb_replay(addrs + 0, GEOMETRIES, huge=huge) == tlb_geometries(t, addrs, GEOMETRIES)


def test_replay_bad_input():
    from mmcore.tlbsim import tlb_replay
    with pytest.raises(ValueError, match=r"addresses\[1\]: expected a 48-bit virtual address"):
        tlb_replay([0, -4096], [TLBConfig()])
    with pytest.raises(ValueError, match=r"huge: expected one flag per address \(2\)"):
        tlb_replay([0, 4096], [TLBConfig()], huge=[1])
    with pytest.raises(ValueError, match="geometries: expected a non-empty list"):
        tlb_replay([0], [])
