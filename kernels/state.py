"""The machine's state: one NamedTuple of 1-D/2-D NumPy arrays (struct of arrays).

Entry kernels take a ``State`` and unpack it once; everything they call takes arrays.
Row layouts are the constants in ``consts`` (``MM_*``, ``T_*``, ``V_*``, ``FR_*``, ``G_*``).

Per-frame metadata is 32 bytes: ``fr32`` (five int32 rows), ``fr_idx`` (int64) and ``fr_flags``
(int32). The last ``fr32`` row packs three narrow fields into each frame's word, each reached
through a strided NumPy view of it (``frame_views``): the memory cgroup id in the low 16 bits
(``fr_memcg``, uint16: ids stop at MEM_CGROUP_ID_MAX, 65535), the buddy or folio order in bits
16-23 (``fr_order``, int8) and, in bits 24-31 of a pageblock's first frame, the pageblock's
migratetype (``pb_mt``, int8). Kernels holding only ``fr32`` read the memcg id as
``fr32[FR_MEMCG, pfn] & FR_MEMCG_MASK``; nothing writes that row as a whole word.
"""
import sys
from typing import NamedTuple

import numpy as np

from .consts import FR_MEMCG, NR_FR_I32, PAGEBLOCK_ORDER


class State(NamedTuple):
    cfg: np.ndarray       # int64[NR_CFG]           frozen configuration and costs (ps)
    gs: np.ndarray        # int64[NR_GS]            global scalars and the buddy free-list heads
    vmstat: np.ndarray    # int64[NR_VMSTAT]        /proc/vmstat event counters
    fr32: np.ndarray      # int32[5, N+1]           per frame: list next/prev, owner, mapcount,
    #                                                 and the packed word the next three view
    fr_idx: np.ndarray    # int64[N+1]              per frame: virtual page number / table slot
    fr_flags: np.ndarray  # int32[N+1]              per frame: PG_* flags
    fr_order: np.ndarray  # int8[N+1] (view)        per frame: buddy or folio order
    fr_memcg: np.ndarray  # uint16[N+1] (view)      per frame: memory cgroup id
    pb_mt: np.ndarray     # int8[N/512] (view)      per pageblock: migratetype
    pt: np.ndarray        # int64[cap*512]          page-table pool (hardware entry layout)
    pt_aux: np.ndarray    # int32[2, cap]           slot -> pfn, free-slot stack
    mm: np.ndarray        # int64[NR_MM_FIELDS, M]  address spaces
    vma: np.ndarray       # int64[NR_V_FIELDS, V]   VMA pool (per-mm sorted segments)
    task: np.ndarray      # int64[NR_T_FIELDS, T]   tasks (threads)
    tlb: np.ndarray       # int64[ncpus, 3, E]      TLB tags, LRU stamps and frames
    pwc: np.ndarray       # int64[ncpus, P]         paging-structure caches
    cpus: np.ndarray      # int64[ncpus, NR_CPU_FIELDS]
    ev: np.ndarray        # int64[NR_EV_FIELDS, cap]  event records (flushed by Python)
    smp: np.ndarray       # int64[NR_SMP_FIELDS, cap] vmstat samples (flushed by Python)
    # filesystems, files and the page cache
    fs: np.ndarray        # int64[NR_FS_FIELDS, F]  mounted filesystems and their disks
    ino: np.ndarray       # int64[NR_I_FIELDS, I]   inodes
    blk: np.ndarray       # int8[cap]               per-file block states (BLK_*), I_BLK offsets
    pc: np.ndarray        # int32[H]                page-cache index: pfn per slot, -1 empty
    lru: np.ndarray       # int64[NR_LV_FIELDS, L]  LRU lists per lruvec (memcg)
    fgs: np.ndarray       # int64[NR_FG]            file-side global scalars
    wbq: np.ndarray       # int64[2, Q]             writeback completions: pfn, done time (ring)
    swp: np.ndarray       # int32[NR_SWP, slots]    swap slots: map count, memcg (SWP_* rows)
    shadow: np.ndarray    # int64[2, E]             shadow entries of evicted file pages (SH_* rows)



# byte offsets of the packed fields inside a frame's FR_MEMCG word, host byte order
_LITTLE = sys.byteorder == "little"
_MEMCG_HALF = 0 if _LITTLE else 1          # uint16 index within the word: bits 0-15
_ORDER_BYTE = 2 if _LITTLE else 1          # bits 16-23
_MT_BYTE = 3 if _LITTLE else 0             # bits 24-31


def frame_views(fr32: np.ndarray, nframes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fr_order, fr_memcg, pb_mt)``: the views of ``fr32``'s packed row for a machine of
    ``nframes`` frames (``fr32`` has ``nframes + 1`` columns: the last is the zero page)."""
    row = fr32[FR_MEMCG]
    assert row.flags.c_contiguous and row.shape[0] == nframes + 1
    fr_order = row.view(np.int8)[_ORDER_BYTE::4]
    fr_memcg = row.view(np.uint16)[_MEMCG_HALF::2]
    pb_mt = row.view(np.int8)[_MT_BYTE::4 << PAGEBLOCK_ORDER][: nframes >> PAGEBLOCK_ORDER]
    return fr_order, fr_memcg, pb_mt


def new_frames(nframes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A zeroed ``fr32`` for ``nframes`` frames (plus the zero page) and its views
    ``(fr32, fr_order, fr_memcg, pb_mt)``."""
    fr32 = np.zeros((NR_FR_I32, nframes + 1), np.int32)
    return (fr32, *frame_views(fr32, nframes))


def with_frame_views(s: State) -> State:
    """``s`` with its views pointing into its own ``fr32`` again (after a copy or a load, which
    turn views into arrays of their own)."""
    n = s.fr32.shape[1] - 1
    fr_order, fr_memcg, pb_mt = frame_views(s.fr32, n)
    return s._replace(fr_order=fr_order, fr_memcg=fr_memcg, pb_mt=pb_mt)
