"""Page-cache request replay against libCacheSim, side by side in one run.

The trace: 10^7 requests, Zipf(1.2) over 10^6 page ids (seeded; ids scattered over 40 bits), one
libCacheSim oracleGeneral file. Capacity 50,000 pages. Both sides start from the file inside the
timed region: libCacheSim opens a ``TraceReader`` and runs ``LRU.process_trace``; mmcore maps the
file, takes the id column and replays it (``mmcore.pagecache.replay_file``). The miss counts must be
identical; ``mmcore_over_libcachesim`` is the throughput ratio.
"""
from __future__ import annotations

import numpy as np
import pytest

import mmcore.pagecache as pc

lcs = pytest.importorskip("libcachesim")

N_REQ = 10_000_000
N_IDS = 1_000_000
ZIPF_A = 1.2
CAPACITY = 50_000
SEED = 20240601
ROUNDS = 3


def zipf_ids(n: int, m: int, a: float, seed: int) -> np.ndarray:
    """n draws of Zipf(a) ranks over m ids (inverse CDF), mapped to scattered 40-bit page ids."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(1.0 / np.arange(1, m + 1) ** a)
    ranks = np.searchsorted(cdf / cdf[-1], rng.random(n))
    ids = rng.permutation(m).astype(np.int64) * 1_000_003 % (1 << 40)
    return ids[ranks]


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    rec = np.zeros(N_REQ, pc.ORACLE_GENERAL)
    rec["clock_time"] = np.arange(N_REQ) // 1000
    rec["obj_id"] = zipf_ids(N_REQ, N_IDS, ZIPF_A, SEED)
    rec["obj_size"] = 4096
    rec["next_access_vtime"] = -1
    path = tmp_path_factory.mktemp("pc") / "zipf1.2.oracleGeneral"
    rec.tofile(path)
    return str(path)


def _libcachesim(path):
    reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = lcs.LRU(CAPACITY * 4096).process_trace(reader)
    return round(miss_ratio * N_REQ)


def _mmcore(path):
    return pc.replay_file(path, CAPACITY, "lru").misses


@pytest.mark.benchmark(group="pagecache")
@pytest.mark.parametrize("side", ["mmcore", "libcachesim"])
def test_replay_lru(benchmark, rates, trace_file, side):
    fn = _mmcore if side == "mmcore" else _libcachesim
    misses = fn(trace_file)                               # warm: kernels loaded, file cached
    got = benchmark.pedantic(fn, args=(trace_file,), rounds=ROUNDS, iterations=1)
    assert got == misses
    benchmark.extra_info["misses"] = got
    rates.record(benchmark, f"replay-{side}", N_REQ, "requests_per_s")
    rates.info(f"replay-{side}")["misses"] = got
    if side == "libcachesim":
        ours = rates.info("replay-mmcore")["misses"]
        assert ours == got, f"miss counts differ: mmcore {ours}, libcachesim {got}"
        rates.ratio("mmcore_over_libcachesim", "replay-mmcore", "replay-libcachesim")


@pytest.mark.benchmark(group="pagecache")
@pytest.mark.parametrize("policy", ["linux", "clock", "fifo"])
def test_replay_policies(benchmark, rates, trace_file, policy):
    ids = np.ascontiguousarray(pc.oracle_general_ids(trace_file))
    pc.replay(ids[:1000], 100, policy)
    r = benchmark.pedantic(pc.replay, args=(ids, CAPACITY, policy), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["misses"] = r.misses
    rates.record(benchmark, f"replay-{policy}", N_REQ, "requests_per_s")
