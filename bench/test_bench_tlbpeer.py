"""The TLB model beside pycachesim on the same stream: 10^6 uniform loads over 128 MiB of 4 KiB
pages, the default geometry (64-entry 4-way L1 dTLB, 1536-entry 12-way STLB), from empty.

``mmcore``: ``mmcore.tlbsim.tlb_replay`` on the NumPy array. ``pycachesim``: the equivalent
hierarchy (``mmcore.tlbsim.pycachesim_hierarchy``: L1 loading from the STLB, 4096-byte lines,
LRU) through its bulk interface, ``CacheSimulator.load`` of a list (built outside the timed
part), on a new hierarchy each round. The L1 and STLB miss counts must be identical;
``mmcore_over_pycachesim`` is the throughput ratio.
"""
from __future__ import annotations

import numpy as np
import pytest

from mmcore import TLBConfig
from mmcore.tlbsim import pycachesim_hierarchy, tlb_replay

pytest.importorskip("cachesim")

N = 1_000_000
STREAM = np.random.default_rng(17).integers(0, 128 << 20, N)
_counts: dict[str, tuple[int, int]] = {}


@pytest.mark.benchmark(group="tlb-peer")
@pytest.mark.parametrize("side", ["mmcore", "pycachesim"])
def test_tlb_peer(benchmark, rates, side):
    g = TLBConfig()
    if side == "mmcore":
        tlb_replay(STREAM[:1000], [g])                     # warm, untimed
        out = []
        benchmark.pedantic(lambda: out.append(tlb_replay(STREAM, [g])[0]), rounds=5, iterations=1)
        counts = (out[-1]["dtlb_misses"], out[-1]["stlb_misses"])
    else:
        addrs = STREAM.tolist()
        made = []

        def fresh():
            made.append(pycachesim_hierarchy(g))
            return (addrs,), {}

        benchmark.pedantic(lambda a: made[-1][0].load(a), setup=fresh, rounds=5, iterations=1)
        _, l1, stlb = made[-1]
        counts = (l1.backend.MISS_count, stlb.backend.MISS_count)
    _counts[side] = counts
    if len(_counts) == 2:
        assert _counts["mmcore"] == _counts["pycachesim"]
    benchmark.extra_info["dtlb_misses"], benchmark.extra_info["stlb_misses"] = counts
    rates.record(benchmark, f"tlbpeer-{side}", N, "accesses_per_s")
    rates.ratio("mmcore_over_pycachesim", "tlbpeer-mmcore", "tlbpeer-pycachesim")
