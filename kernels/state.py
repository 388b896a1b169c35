"""The machine's state: one NamedTuple of 1-D/2-D C-contiguous NumPy arrays (struct of arrays).

Entry kernels take a ``State`` and unpack it once; everything they call takes arrays.
Row layouts are the constants in ``consts`` (``MM_*``, ``T_*``, ``V_*``, ``FR_*``, ``G_*``).
"""
from typing import NamedTuple

import numpy as np


class State(NamedTuple):
    cfg: np.ndarray       # int64[NR_CFG]           frozen configuration and costs (ps)
    gs: np.ndarray        # int64[NR_GS]            global scalars and the buddy free-list heads
    vmstat: np.ndarray    # int64[NR_VMSTAT]        /proc/vmstat event counters
    fr32: np.ndarray      # int32[4, N+1]           per frame: list next/prev, owner, mapcount
    fr_idx: np.ndarray    # int64[N+1]              per frame: virtual page number / table slot
    fr_flags: np.ndarray  # int32[N+1]              per frame: PG_* flags
    fr_order: np.ndarray  # int8[N+1]               per frame: buddy or folio order
    fr_memcg: np.ndarray  # int16[N+1]              per frame: memory cgroup id
    pb_mt: np.ndarray     # int8[N/512]             per pageblock: migratetype
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

