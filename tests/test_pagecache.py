"""Page-cache replay: its index, its replacement policies, and agreement with libCacheSim and with
the plain-Python reference."""
import libcachesim as lcs
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmcore.pagecache as pc
from mmcore.kernels import consts as K
from mmcore.kernels.filemap import filemap_delete, filemap_get_folio, filemap_insert

from .reference.pagecache_model import RefPageCache

PEERS = {
    "lru": lambda cap: lcs.LRU(cap),
    "fifo": lambda cap: lcs.FIFO(cap),
    "clock": lambda cap: lcs.Clock(cap, n_bit_counter=1, init_freq=0),
}


def _peer_misses(policy, ids, cap):
    cache = PEERS[policy](cap)
    req = lcs.Request()
    req.obj_size = 1
    misses = 0
    for x in ids.tolist():
        req.obj_id = x
        misses += not cache.get(req)
    return misses


def _traces():
    rng = np.random.default_rng(7)
    yield "uniform", rng.integers(0, 700, 20_000)
    yield "zipf", (rng.zipf(1.2, 20_000) * 2654435761) % (1 << 40)
    loop = np.tile(np.arange(300), 40)
    yield "loop", loop                                      # LRU's worst case at capacity < 300
    yield "scan+hot", np.where(rng.random(20_000) < 0.5, rng.integers(0, 50, 20_000),
                               np.arange(20_000) + 10**6)


@pytest.mark.parametrize("policy", sorted(PEERS))
@pytest.mark.parametrize("cap", [1, 37, 256, 1000])
def test_misses_equal_libcachesim(policy, cap):
    for name, ids in _traces():
        ours = pc.replay(ids, cap, policy)
        assert ours.misses == _peer_misses(policy, ids, cap), (name, policy, cap)
        assert ours.hits + ours.misses == len(ids)


@pytest.mark.parametrize("policy", ["lru", "fifo", "clock", "linux"])
def test_replay_matches_reference(policy):
    rng = np.random.default_rng(3)
    ids = np.concatenate([rng.zipf(1.1, 6000) % 900, np.arange(600), rng.integers(0, 400, 6000)])
    for cap in (5, 64, 333):
        ref = RefPageCache(cap, policy)
        want = np.array([ref.access(int(x)) for x in ids], np.int8)
        got = pc.replay(ids, cap, policy, per_request=True)
        assert np.array_equal(got.hit, want), (policy, cap, int(np.argmax(got.hit != want)))
        assert (got.hits, got.misses) == (ref.hits, ref.misses)
        assert (got.activations, got.deactivations) == (ref.activations, ref.deactivations)


def test_linux_policy_protects_a_twice_used_set_from_a_scan():
    """The point of two lists: pages used twice survive a one-pass scan that flushes LRU."""
    hot = np.repeat(np.arange(100), 2)
    scan = np.arange(10_000, 10_400)
    ids = np.concatenate([hot, scan, np.arange(100)])
    lru = pc.replay(ids, 300, "lru", per_request=True)
    linux = pc.replay(ids, 300, "linux", per_request=True)
    assert lru.hit[-100:].sum() == 0
    assert linux.hit[-100:].sum() == 100
    assert linux.activations == 100


def test_any_int64_ids_and_uint64():
    ids = np.array([-(1 << 63), (1 << 63) - 1, 0, -1, -(1 << 63), 0, -1], np.int64)
    assert pc.replay(ids, 8).misses == 4
    big = np.array([(1 << 64) - 1, (1 << 63), (1 << 64) - 1], np.uint64)
    assert pc.replay(big, 8).misses == 2
    assert pc.replay(np.zeros(0, np.int64), 8).misses == 0


def test_oracle_general_file(tmp_path):
    ids = np.random.default_rng(1).zipf(1.3, 5000) % 800
    rec = np.zeros(len(ids), pc.ORACLE_GENERAL)
    rec["obj_id"] = ids
    rec["obj_size"] = 4096
    rec["next_access_vtime"] = -1
    path = tmp_path / "t.oracleGeneral"
    rec.tofile(path)
    ours = pc.replay_file(path, 100, "lru")
    assert ours.misses == pc.replay(ids, 100, "lru").misses
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = lcs.LRU(100 * 4096).process_trace(reader)
    assert ours.misses == round(miss_ratio * len(ids))
    (tmp_path / "bad").write_bytes(b"x" * 25)
    with pytest.raises(ValueError, match="not a whole number of oracleGeneral records"):
        pc.replay_file(tmp_path / "bad", 10)


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "lfu"}, "policy: 'lfu' is not a replacement policy"),
    ({"capacity_pages": 0}, "capacity_pages: 0 is out of range"),
    ({"pages": np.zeros((2, 2), np.int64)}, r"pages: expected a 1-D array"),
    ({"pages": np.array([1.5])}, "pages: expected integer page numbers"),
])
def test_bad_input(kwargs, match):
    args = {"pages": np.arange(4), "capacity_pages": 2, "policy": "lru"} | kwargs
    with pytest.raises(ValueError, match=match):
        pc.replay(**args)
    with pytest.raises(TypeError, match="capacity_pages: expected an int"):
        pc.replay(np.arange(4), 2.0)


@numba.njit
def _apply(ops, keys, pc_, fr32, fr_idx, out):
    """ops: 0 lookup, 1 insert (if absent), 2 delete (if present); keys index frames 1..n."""
    for i in range(ops.shape[0]):
        k = keys[i]
        p = filemap_get_folio(pc_, fr32, fr_idx, 0, fr_idx[k])
        out[i] = p
        if ops[i] == 1 and p < 0:
            filemap_insert(pc_, fr32, fr_idx, k)
        elif ops[i] == 2 and p >= 0:
            filemap_delete(pc_, fr32, fr_idx, p)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 24)), min_size=1, max_size=300),
       st.sampled_from([0, 1, 7, 1 << 40]))
def test_index_agrees_with_a_set(steps, stride):
    """Insert/delete/lookup in a 32-slot table (long probe runs, wrap-around) against a set."""
    n = 24
    fr32 = np.zeros((K.NR_FR_I32, n + 1), np.int32)
    fr_idx = np.arange(n + 1, dtype=np.int64) * (stride or 1) + (stride == 0) * (1 << 62)
    table = np.full(32, -1, np.int32)
    ops = np.array([s[0] for s in steps], np.int64)
    keys = np.array([s[1] for s in steps], np.int64)
    out = np.empty(len(steps), np.int64)
    _apply(ops, keys, table, fr32, fr_idx, out)
    present = set()
    for i, (op, k) in enumerate(steps):
        assert out[i] == (k if k in present else -1), i
        if op == 1:
            present.add(k)
        elif op == 2:
            present.discard(k)
    assert sorted(int(x) for x in table if x >= 0) == sorted(present)


@numba.njit
def _insert_all(pc_, fr32, fr_idx):
    for k in range(1, fr_idx.shape[0]):
        filemap_insert(pc_, fr32, fr_idx, k)


def test_a_files_neighbouring_pages_share_lines_of_the_index():
    """The 16 pages of an aligned block sit in one 64-byte line of slots, so a walk along a file
    meets a new line every 16 pages: 256 pages of one file fill 16 lines (a little more where
    two blocks' homes collide), where a hash of each page would scatter them over ~225 lines."""
    n = 256
    fr32 = np.zeros((K.NR_FR_I32, n + 1), np.int32)
    fr_idx = np.arange(-1, n, dtype=np.int64) + 1000 * 16        # pages 16000..16255 at frames 1..
    table = np.full(1 << 12, -1, np.int32)
    _insert_all(table, fr32, fr_idx)
    slots = np.flatnonzero(table >= 0)
    assert len(slots) == n
    lines = set((slots // 16).tolist())
    assert 16 <= len(lines) <= 24, len(lines)
    out = np.empty(n, np.int64)          # and every page is found: lookups only (op 0)
    _apply(np.zeros(n, np.int64), np.arange(1, n + 1), table, fr32, fr_idx, out)
    assert out.tolist() == list(range(1, n + 1))
