"""Page-cache request replay: the machine's page-cache kernels driven by a bare request trace.

>>> import numpy as np, mmcore.pagecache as pc
>>> r = pc.replay(np.array([1, 2, 1, 3, 1, 2]), capacity_pages=2, policy="lru")
>>> (r.hits, r.misses)
(2, 4)

Each request names a page (any int64 value). A hit is an access to the cached page; a miss brings
the page in, reclaiming one first when the cache is full. The lookup, the LRU lists and the
replacement policies are the ones the simulated machine's page cache uses
(``mmcore.kernels.filemap`` and ``mmcore.kernels.lru``).

Policies: ``"linux"`` (the kernel's active/inactive lists), ``"lru"``, ``"clock"`` (one reference
bit, new pages unreferenced) and ``"fifo"``. On the same trace and capacity, ``"lru"``, ``"fifo"``
and ``"clock"`` give exactly the misses of libCacheSim's ``LRU``, ``FIFO`` and
``Clock(n_bit_counter=1, init_freq=0)``.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .kernels import consts as K
from .kernels.filemap import replay_requests
from .kernels.state import new_frames

POLICIES = {name: i for i, name in enumerate(K.POLICY_NAMES)}


class ReplayResult(NamedTuple):
    requests: int
    hits: int
    misses: int
    evictions: int
    activations: int          # pgactivate: promotions to the active list ("linux" policy)
    deactivations: int        # pgdeactivate
    hit: np.ndarray | None    # per-request 1/0, when asked for

    @property
    def miss_ratio(self) -> float:
        return self.misses / self.requests if self.requests else 0.0


def policy_code(policy: str) -> int:
    try:
        return POLICIES[policy]
    except (KeyError, TypeError):
        raise ValueError(f"policy: {policy!r} is not a replacement policy; expected one of "
                         f"{', '.join(map(repr, POLICIES))}") from None


def replay(pages, capacity_pages: int, policy: str = "lru", *, per_request: bool = False,
           _copy: bool = True) -> ReplayResult:
    """Replay ``pages`` (a 1-D array of page numbers, any int64 values) through a page cache of
    ``capacity_pages`` pages under ``policy``; ``per_request=True`` also returns a 1/0 hit array."""
    code = policy_code(policy)
    if isinstance(capacity_pages, bool) or not isinstance(capacity_pages, (int, np.integer)):
        raise TypeError(f"capacity_pages: expected an int, got {type(capacity_pages).__name__}")
    if not 1 <= capacity_pages <= (1 << 30):
        raise ValueError(f"capacity_pages: {capacity_pages} is out of range; expected 1..2**30")
    arr = np.asarray(pages)
    if arr.ndim != 1:
        raise ValueError(f"pages: expected a 1-D array of page numbers, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"pages: expected integer page numbers, got dtype {arr.dtype}")
    if arr.dtype == np.uint64:
        arr = arr.view(np.int64)           # page ids are 64-bit keys: keep every bit
    if _copy or arr.dtype != np.int64:
        arr = np.ascontiguousarray(arr, dtype=np.int64)
    cap = int(capacity_pages)
    slots = 1 << max(4, (2 * cap - 1).bit_length())
    pc = np.full(slots, -1, np.int32)
    fr32, fr_order, _, _ = new_frames(cap)          # fr_order: a view of fr32, as in a Machine
    fr_idx = np.zeros(cap + 1, np.int64)
    fr_flags = np.zeros(cap + 1, np.int32)
    lru = np.zeros((K.NR_LV_FIELDS, 1), np.int64)
    lru[K.LV_HEAD:K.LV_PAGES] = -1
    vmstat = np.zeros(K.NR_VMSTAT, np.int64)
    hit = np.zeros(arr.shape[0] if per_request else 0, np.int8)
    hits = int(replay_requests(arr, code, pc, fr32, fr_idx, fr_flags, fr_order, lru, vmstat, hit))
    misses = arr.shape[0] - hits
    return ReplayResult(requests=int(arr.shape[0]), hits=hits, misses=misses,
                        evictions=max(0, misses - cap),
                        activations=int(vmstat[K.VS_PGACTIVATE]),
                        deactivations=int(vmstat[K.VS_PGDEACTIVATE]),
                        hit=hit if per_request else None)


ORACLE_GENERAL = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                           ("next_access_vtime", "<i8")])


def oracle_general_ids(path) -> np.ndarray:
    """The object ids of a libCacheSim oracleGeneral trace (packed 24-byte records: uint32 time,
    uint64 id, uint32 size, int64 next access), as an int64 view of the memory-mapped file: no
    copy, so a replay streams the file once."""
    import os
    size = os.path.getsize(path)
    if size % ORACLE_GENERAL.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of oracleGeneral records "
                         f"({ORACLE_GENERAL.itemsize} bytes each)")
    if size == 0:
        return np.zeros(0, np.int64)
    return np.memmap(path, ORACLE_GENERAL, mode="r")["obj_id"].view(np.int64)


def replay_file(path, capacity_pages: int, policy: str = "lru") -> ReplayResult:
    """``replay`` over the requests of a libCacheSim oracleGeneral trace file."""
    return replay(oracle_general_ids(path), capacity_pages, policy, _copy=False)
