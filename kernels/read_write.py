"""File system calls (fs/read_write.c, mm/filemap.c, fs/sync.c, fs/open.c, fs/drop_caches.c).

Entry kernels take the machine's ``State`` and return ``(status, value)``:
status 0, a negative errno, or NEED_GROW (the page-cache index or the writeback ring needs room:
checked before anything changes, so Python grows them and calls again).

Each call starts by bringing background work up to the caller's clock (``background``): writeback
completions, the flusher's wakeups and kswapd. Then:

- ``sys_pread``: ``filemap_read``: cached pages are copied (``folio_mark_accessed`` each); a miss
  reads a readahead window and waits for it (``readahead.ra_sync``); reaching a window's
  PG_readahead mark starts the next one without waiting (``readahead.ra_async``), and a page
  still being read is waited for; pages over holes, unwritten or reserved blocks are zero-filled
  without I/O.
- ``sys_pwrite``: ``generic_perform_write``: a partly overwritten page of written data is read
  first; the filesystem's ``write_begin`` work (``fs.fs_write_begin``); the copy; the page dirtied;
  then ``balance_dirty_pages``.
- ``sys_fsync``/``sys_sync``: write back and wait; fsync returns a pending writeback error once.
- ``sys_fallocate``, ``sys_ftruncate``, ``file_release`` (the last close of an unlinked file).
- ``drop_caches``: bit 1 invalidates every clean, unmapped page of a filesystem that can read it
  back (``invalidate_mapping_pages``); bit 2 frees the dentries and inodes of files that are
  neither open nor cached.
"""
from .consts import (
    HPAGE_PMD_ORDER,
    G_CUR_MEMCG,
    T_MEMCG,
    V_FLAGS,
    HPAGE_PMD_SIZE,
    PG_tail,
    PG_anon,
    _PAGE_SPECIAL,
    _PAGE_PSE,
    _PAGE_PRESENT,
    VM_SHARED,
    VM_LOCKED,
    RA_PREV,
    RA_FLAGS,
    RA_RANDOM,
    RA_PAGES,
    POSIX_FADV_NORMAL,
    POSIX_FADV_RANDOM,
    POSIX_FADV_SEQUENTIAL,
    POSIX_FADV_WILLNEED,
    POSIX_FADV_DONTNEED,
    FG_PC_USED,
    G_OOM_MEMCG,
    MM_PGD,
    C_HPC_MODEL,
    HPAGE_PMD_NR,
    HPC_MAINLINE,
    PG_file_thp,
    G_DEFERRED_N,
    FS_BLOCKS,
    BLK_HOLE,
    V_END,
    V_START,
    V_PGOFF,
    BLK_UNWRITTEN,
    BLK_WRITTEN,
    C_COST_CLEAR_PAGE,
    C_COST_LOOKUP_HIT,
    C_COST_LOOKUP_MISS,
    C_COST_MKWRITE,
    C_KERNEL,
    C_COST_PC_ALLOC,
    C_COST_PC_COPY,
    C_COST_RECLAIM_PAGE,
    C_COST_SYSCALL,
    C_DIRTY_WB_PS,
    C_LRU_POLICY,
    C_READ_AHEAD,
    ENOMEM,
    ENOSPC,
    EOPNOTSUPP,
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_WRITE_ZEROES,
    FALLOC_FL_ZERO_RANGE,
    FG_NEXT_FLUSH,
    FG_NR_INODES,
    FG_SLAB,
    FG_WB_HEAD,
    FG_WB_TAIL,
    FR_MAPCOUNT,
    FR_NEXT,
    FS_BYTES_WRITTEN,
    FS_DISK_FREE_AT,
    FS_FREE,
    FS_TYPE,
    FS_WR_LAT,
    FS_WR_PAGE,
    FST_RAMFS,
    FST_TMPFS,
    FST_XFS,
    XFS_EXTENTADD_SPACE_RES,
    XFS_MAX_BMBT_EXTLEN,
    G_NOW,
    I_ALIVE,
    I_BLK,
    I_BLKCAP,
    I_DCACHE,
    I_FS,
    I_NRDIRTY,
    I_NRPAGES,
    I_SHADOW_GEN,
    I_PAGES_END,
    I_REFS,
    I_SIZE,
    I_WB_DONE,
    I_WB_ERR,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_FILE,
    LV_HEAD,
    NEED_GROW,
    OK,
    PG_dirty,
    PG_falloc_new,
    PG_mappedtodisk,
    PG_swapbacked,
    PG_writeback,
    T_CLOCK,
    VS_DROP_PAGECACHE,
    VS_DROP_SLAB,
    VS_NR_DIRTY,
    VS_PGPGIN,
)
from .filemap import (
    account_page_dirtied,
    file_folio_head,
    file_folio_mapped,
    file_folio_nr,
    filemap_add_large,
    filemap_add_page,
    large_folios,
    filemap_get_folio,
    filemap_remove_large,
    filemap_remove_page,
    split_file_folio,
    unmap_file_pte,
    zap_file_pmd,
)
from .shmem import (
    HUGE_FOR_READ,
    HUGE_FOR_WRITE,
    huge_cache_capable,
    shmem_alloc_huge,
    shmem_huge_wanted,
)
from .fs import delalloc_fs, fs_punch_blocks, fs_reads_zeros, fs_write_begin, has_blocks
from .file_fault import file_room, munlock_mapped
from .mlock import MLOCK_ZAP, mlock_vma_pages_range
import numpy as np

from .rmap import deferred_split_scan
from .jit import kernel
from .memory import zap_page_range
from .tlb import flush_tlb_range
from .pagetable import entry_pfn, pmd_lookup, pte_lookup
from .lru import folio_mark_accessed
from .page_writeback import (
    write_range_pages,
    inode_vmas,
    ALL,
    NEVER,
    balance_dirty_pages,
    flusher_run,
    wb_complete,
    write_inode_pages,
)
from .syscalls import op_begin, op_end
from .readahead import (
    disk_read,
    force_limit,
    force_page_cache_ra,
    ra_busy,
    ra_hit,
    ra_pages,
    ra_sync,
    read_pages,
    wait_read,
)
from .memcontrol import pagecache_alloc, pagecache_alloc_order
from .workingset import shadow_take
from .vmscan import kswapd_catch_up

PAGE = 4096
DIRTY_RATELIMIT = 32         # pages a writer dirties between checks of the dirty limits


@kernel
def background(S, now):
    """Writeback completions, flusher wakeups and kswapd's work, up to ``now``."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
    flusher_run(S, now)
    kswapd_catch_up(S, now)


@kernel(inline="always")
def arm_flusher(cfg, fgs, vmstat, now):
    if vmstat[VS_NR_DIRTY] > 0 and fgs[FG_NEXT_FLUSH] == NEVER:
        fgs[FG_NEXT_FLUSH] = now + cfg[C_DIRTY_WB_PS]


@kernel
def sys_pread(S, ti, ii, pos, count, ra):
    """pread(2) of [pos, pos + count) through the open file whose readahead state is ``ra``
    (``file_ra_state``, the ``RA_*`` fields): returns (status, bytes read)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    size = ino[I_SIZE, ii]
    end = min(pos + count, size)
    first = pos >> 12
    last = (end + PAGE - 1) >> 12
    mx = ra_pages(cfg, ra)
    # the read's pages, and readahead past it: a synchronous window and an asynchronous one
    if not file_room(fgs, pc, wbq, vmstat,
                     max(0, last - first) + 2 * mx + huge_room(S, ii, first, last), 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    gs[G_CUR_MEMCG] = task[T_MEMCG, ti]
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    if end <= pos:
        task[T_CLOCK, ti] = now
        op_end(gs, task, cpus, ti)
        return OK, 0
    policy = cfg[C_LRU_POLICY]
    eof = (size + PAGE - 1) >> 12
    t = fs[FS_TYPE, ino[I_FS, ii]]
    # filemap_read marks the first folio unless the previous read on this file ended in it
    # (6.x: pos_same_folio(pos, prev_pos - 1); before 5.x: it started where that one stopped)
    prev = ra[RA_PREV]
    if cfg[C_KERNEL] >= 500:
        skip = ((prev - 1) >> 12) == first
    else:
        skip = prev >= 0 and (prev >> 12) == first and (prev & 4095) == (pos & 4095)
    index = first
    while index < last:
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if t == FST_TMPFS:
            # shmem_file_read_iter: a hole (or a fallocated, never written page) reads as zeros
            # without a page; a page is marked accessed when the read covers its first byte
            if pfn >= 0:
                pfn = file_folio_head(fr_flags, pfn)
            if pfn >= 0 and not fr_flags[pfn] & PG_falloc_new and (index > first or pos & 4095 == 0):
                folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, fr_memcg[pfn], pfn,
                                    file_folio_nr(fr_flags, pfn))
            now += cfg[C_COST_PC_COPY]
            index += 1
            continue
        if pfn >= 0 and t != FST_RAMFS and ra_busy(fr_flags, ino, ii, pfn, now):
            now, started = ra_hit(S, fr_flags, ino, ii, ra, index, pfn, last - index, mx,
                                  now, True)
            if started:
                # Linux holds the folio meanwhile; here the async window's allocations may have
                # reclaimed it, and then it is read again
                pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            if t == FST_RAMFS:
                # ramfs has no readahead (ra_pages 0): the one page (the 2013 series: a huge
                # page over a hole)
                window = 1
                if shmem_huge_wanted(cfg, fs, ino, ii, index, 0, 0, 0, HUGE_FOR_READ):
                    p, c = shmem_alloc_huge(S, ii, index, 0, HUGE_FOR_READ, now)
                    now += c
                    if p >= 0:
                        window = 0
                st, now = read_pages(S, ii, index, min(index + window, eof), now)
            else:
                if mx == 0 or ra[RA_FLAGS] & RA_RANDOM:
                    # readahead off, or POSIX_FADV_RANDOM: just what the read asks (forced)
                    st, cpu, done, thrash = force_page_cache_ra(S, ii, index,
                                                                last - index if mx else 1, mx, now)
                else:
                    st, cpu, done, thrash = ra_sync(S, ii, ra, index, last - index, mx, now)
                now = wait_read(S, cpu, done, thrash)
                if st == OK and filemap_get_folio(pc, fr32, fr_idx, ii, index) < 0:
                    # the window moved past this page (a ramp-up at the expected index), or its
                    # own later allocations reclaimed it
                    st, now = read_pages(S, ii, index, index + 1, now)
            if st < 0 and filemap_get_folio(pc, fr32, fr_idx, ii, index) < 0:
                task[T_CLOCK, ti] = now
                op_end(gs, task, cpus, ti)
                done = max(0, index * PAGE - pos)
                return (OK, done) if done > 0 else (st, 0)
            pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if not (index == first and skip):
            pfn = file_folio_head(fr_flags, pfn)
            folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, fr_memcg[pfn], pfn,
                                file_folio_nr(fr_flags, pfn))
        now += cfg[C_COST_PC_COPY]
        index += 1
    ra[RA_PREV] = end if cfg[C_KERNEL] >= 500 or end & 4095 else end - PAGE
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, end - pos


@kernel
def sys_pwrite(S, ti, ii, pos, count):
    """pwrite(2) of [pos, pos + count) (contents are not simulated): returns (status, bytes)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    end = pos + count
    first = pos >> 12
    last = (end + PAGE - 1) >> 12
    n = last - first
    if not file_room(fgs, pc, wbq, vmstat, n + huge_room(S, ii, first, last), n, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    gs[G_CUR_MEMCG] = task[T_MEMCG, ti]
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    policy = cfg[C_LRU_POLICY]
    f = ino[I_FS, ii]
    t = fs[FS_TYPE, f]
    size = ino[I_SIZE, ii]
    written = 0
    err = 0
    for index in range(first, last):
        lo = max(pos, index * PAGE)
        hi = min(end, (index + 1) * PAGE)
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            if (t == FST_TMPFS or t == FST_RAMFS) and fs[FS_FREE, f] <= 0:
                err = -ENOSPC
                break
            partial = hi - lo < PAGE and index * PAGE < size
            if partial and not fs_reads_zeros(ino, blk, fs, ii, index):
                st, now = read_pages(S, ii, index, index + 1, now)
                if st < 0:
                    err = st
                    break
                pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
            else:
                if shmem_huge_wanted(cfg, fs, ino, ii, index, end, 0, 0, HUGE_FOR_WRITE):
                    pfn, c = shmem_alloc_huge(S, ii, index, 0, HUGE_FOR_WRITE, now)
                    now += c
                elif large_folios(cfg, t):
                    order = write_order(index, lo, end)
                    if order > 0:
                        pfn, c = pagecache_alloc_large(S, ii, index, order, now)
                        now += c
                if pfn < 0:
                    pfn, c = pagecache_alloc(S, ii, now)
                    now += c + cfg[C_COST_PC_ALLOC]
                    if pfn < 0:
                        err = -ENOMEM
                        break
                    filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs,
                                     ino, ii, index, pfn, gs, shadow, False)
                    if hi - lo < PAGE:
                        now += cfg[C_COST_CLEAR_PAGE]
        pfn = file_folio_head(fr_flags, pfn)     # the folio's state lives in its head
        if fr_flags[pfn] & PG_writeback:
            # folio_wait_stable: wait for the page's I/O before changing it
            if ino[I_WB_DONE, ii] > now:
                now = ino[I_WB_DONE, ii]
            wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
        if fr_flags[pfn] & PG_mappedtodisk:
            c = cfg[C_COST_MKWRITE]              # its buffers are mapped already
        else:
            # write_begin maps the blocks of the pages written (a large folio's others wait)
            c = fs_write_begin(cfg, fs, ino, blk, ii, index, True)
            if c < 0:
                err = c
                if index * PAGE >= size and not fr_flags[pfn] & PG_dirty:
                    drop_page(S, pfn)            # ext4_truncate_failed_write (XFS:
                                                 # iomap_write_failed): nothing past EOF
                break
            if (fr_flags[pfn] & (PG_file_thp | PG_swapbacked)) != PG_file_thp:
                fr_flags[pfn] |= PG_mappedtodisk  # not for a large folio on a disk
        now += c + cfg[C_COST_PC_COPY]
        account_page_dirtied(vmstat, fr_flags, fs, ino, ii, pfn, now)
        fr_flags[pfn] &= ~PG_falloc_new                   # written: no longer a fallocated page
        if t == FST_TMPFS or cfg[C_KERNEL] < 407:
            # shmem's write path marks the page accessed; generic writes stopped doing so in 4.7
            folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, fr_memcg[pfn], pfn,
                                file_folio_nr(fr_flags, pfn))
        written += hi - lo
        if hi > size:
            size = hi
            ino[I_SIZE, ii] = size
        if (index - first) % DIRTY_RATELIMIT == DIRTY_RATELIMIT - 1:
            # balance_dirty_pages_ratelimited: the writer checks the limits as it goes
            arm_flusher(cfg, fgs, vmstat, now)
            now = balance_dirty_pages(S, now)
    arm_flusher(cfg, fgs, vmstat, now)
    now = balance_dirty_pages(S, now)
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    if written == 0 and err < 0:
        return err, 0
    return OK, written


@kernel
def sys_fsync(S, ti, ii):
    """fsync(2): write back the file's dirty pages and wait for all its writeback."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if not file_room(fgs, pc, wbq, vmstat, 0, 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    write_inode_pages(S, ii, now, ALL)
    if ino[I_WB_DONE, ii] > now:
        now = ino[I_WB_DONE, ii]
    wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    err = ino[I_WB_ERR, ii]
    ino[I_WB_ERR, ii] = 0
    return err, 0


@kernel
def sys_sync(S, ti):
    """sync(2): write back every dirty file and wait for all writeback (``ti`` -1: the machine's
    own sync, at the machine's clock)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if not file_room(fgs, pc, wbq, vmstat, 0, 0, 0, gs):
        return NEED_GROW, 0
    if ti >= 0:
        op_begin(task, cpus, ti)
        now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    else:
        now = gs[G_NOW]                      # the machine's own sync (no calling task)
    background(S, now)
    for i in range(fgs[FG_NR_INODES]):
        if ino[I_ALIVE, i] and ino[I_NRDIRTY, i] > 0:
            write_inode_pages(S, i, now, ALL)
    cap = wbq.shape[1]
    for k in range(fgs[FG_WB_HEAD], fgs[FG_WB_TAIL]):
        if wbq[1, k % cap] > now:
            now = wbq[1, k % cap]
    wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
    if ti >= 0:
        task[T_CLOCK, ti] = now
        op_end(gs, task, cpus, ti)
    elif now > gs[G_NOW]:
        gs[G_NOW] = now
    return OK, 0


@kernel(inline="always")
def write_order(index, lo, end):
    """The folio order generic_perform_write asks __filemap_get_folio for at page ``index`` of a
    write going on at byte ``lo`` up to ``end``: the bytes left in the write's 2 MiB chunk
    (mapping_max_folio_size) give fgf_set_order's ilog2, capped at PMD order and by the
    alignment of ``index`` (``__ffs``)."""
    n = min(HPAGE_PMD_SIZE - (lo & (HPAGE_PMD_SIZE - 1)), end - lo)
    order = 0
    while (PAGE << (order + 1)) <= n and order < HPAGE_PMD_ORDER:
        order += 1
    while order > 0 and index & ((1 << order) - 1):
        order -= 1
    return order


@kernel
def pagecache_alloc_large(S, ii, index, order, now):
    """__filemap_get_folio(FGP_CREAT) above order 0 for page ``index`` of inode ``ii``: from
    ``order`` down to 1, the first order whose aligned range at ``index`` holds no cached page
    (filemap_add_folio's -EEXIST), whose block the buddy allocator hands out without going below
    the low watermark (__GFP_NORETRY: no reclaim or compaction for it here) and that the memcg
    takes after at most one reclaim pass (__GFP_NORETRY: no OOM). Returns (the frame of page
    ``index``, or -1 for the order-0 fallback, cost in ps)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    cost = 0
    while order > 0:
        nr = 1 << order
        free = True
        holes = 0
        for i in range(nr):
            free = filemap_get_folio(pc, fr32, fr_idx, ii, index + i) < 0
            if not free:
                break
            holes += index + i >= ino[I_BLKCAP, ii] or blk[ino[I_BLK, ii] + index + i] == BLK_HOLE
        # the write maps every block of the folio before copying (ext4_block_write_begin; XFS's
        # iomap_begin reserves the write's range, which the folio lies in): a folio it cannot
        # reserve in full is not taken
        if free and holes <= fs[FS_FREE, ino[I_FS, ii]]:
            head, c = pagecache_alloc_order(S, ii, order, now + cost)
            cost += c
            if head >= 0:
                for i in range(nr):
                    shadow_take(shadow, ino, ii, index + i)   # a write: no refault
                filemap_add_large(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs,
                                  ino, ii, index, head, order)
                return head, cost + cfg[C_COST_PC_ALLOC]
        order -= 1
    return -1, cost


@kernel
def huge_room(S, ii, first, last):
    """Extra page-cache entries a call over pages [first, last) of inode ``ii`` may add when its
    misses come in as huge folios: a whole folio for each 2 MiB range touched."""
    if not huge_cache_capable(S.cfg, S.fs, S.ino, ii) or last <= first:
        return 0
    return (((last + HPAGE_PMD_NR - 1) >> 9) - (first >> 9)) * HPAGE_PMD_NR


@kernel
def drop_page(S, pfn):
    """Remove and free the page-cache folio holding frame ``pfn`` (unmapped, not under I/O)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if fr_flags[pfn] & PG_file_thp:
        filemap_remove_large(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pc,
                             lru, fgs, fs, ino, file_folio_head(fr_flags, pfn))
        return
    filemap_remove_page(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg,
                        pb_mt, pc, lru, fgs, fs, ino, pfn)


@kernel
def sys_fadvise(S, ti, ii, offset, length, advice, ra):
    """posix_fadvise(2) (``generic_fadvise``) on the open file whose readahead state is ``ra``;
    the caller checked the advice and the length. A memory filesystem takes the advice and does
    nothing (no backing device). NORMAL, RANDOM and SEQUENTIAL set the file's readahead mode
    (SEQUENTIAL doubles its window); WILLNEED reads the range ahead without waiting
    (``force_page_cache_readahead``: at most one window's worth); DONTNEED starts writeback of
    the range's dirty pages, then drops its whole pages that are clean, unmapped and not under
    writeback (``invalidate_mapping_pages``: no shadow entries); NOREUSE changes nothing here.
    Returns (status, pages read or dropped)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mx = ra_pages(cfg, ra)
    endbyte = offset + length - 1 if length > 0 else (1 << 62)
    eof_pages = (ino[I_SIZE, ii] + PAGE - 1) >> 12
    want = 0
    if advice == POSIX_FADV_WILLNEED:
        want = force_limit(cfg, max(0, min(endbyte >> 12, eof_pages - 1) - (offset >> 12) + 1), mx)
    if not file_room(fgs, pc, wbq, vmstat, want + 1024, 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    gs[G_CUR_MEMCG] = task[T_MEMCG, ti]
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    t = fs[FS_TYPE, ino[I_FS, ii]]
    n = 0
    if t == FST_TMPFS or t == FST_RAMFS:
        pass                                       # noop_backing_dev_info: nothing to do
    elif advice == POSIX_FADV_NORMAL:
        ra[RA_PAGES] = -1
        ra[RA_FLAGS] &= ~RA_RANDOM
    elif advice == POSIX_FADV_RANDOM:
        ra[RA_FLAGS] |= RA_RANDOM
    elif advice == POSIX_FADV_SEQUENTIAL:
        ra[RA_PAGES] = 2 * cfg[C_READ_AHEAD]
        ra[RA_FLAGS] &= ~RA_RANDOM
    elif advice == POSIX_FADV_WILLNEED:
        first = offset >> 12
        nr = (endbyte >> 12) - first + 1
        pages0 = fgs[FG_PC_USED]
        oom = gs[G_OOM_MEMCG]
        st, cpu, done, thrash = force_page_cache_ra(S, ii, first, nr, mx, now)
        gs[G_OOM_MEMCG] = oom                      # readahead's allocations fail quietly
        n = fgs[FG_PC_USED] - pages0
        now = cpu
    elif advice == POSIX_FADV_DONTNEED:
        last = endbyte >> 12
        write_range_pages(S, ii, now, offset >> 12, last + 1)
        first = (offset + PAGE - 1) >> 12          # whole pages only
        if (endbyte & (PAGE - 1)) != PAGE - 1:
            last -= 1
        eof = max(ino[I_PAGES_END, ii], 0)
        index = first
        while index <= min(last, eof - 1):
            pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
            if pfn >= 0:
                h = file_folio_head(fr_flags, pfn)
                f = fr_flags[h]
                nr = file_folio_nr(fr_flags, h)
                whole = (fr_idx[h] >= first and fr_idx[h] + nr - 1 <= last) if nr > 1 else True
                if whole and (f & (PG_dirty | PG_writeback)) == 0 and \
                        not file_folio_mapped(fr32, fr_flags, h):
                    drop_page(S, h)
                    n += nr
                    now += nr * cfg[C_COST_RECLAIM_PAGE]
                    index = fr_idx[h] + nr
                    continue
            index += 1
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, n


@kernel
def unmap_mapping_pages(S, ii, first, last, even_cows):
    """Zap every PTE that maps pages [first, last) of inode ``ii``, in every address space
    (``unmap_mapping_pages``): with ``even_cows`` (truncation) the private copies too; without
    (punching a hole, zeroing a range) a private mapping keeps its copies and loses only its
    page-cache pages."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    where = inode_vmas(gs, mm, vma, ii, False)
    for k in range(where.shape[1]):
        mmi, p = where[0, k], where[1, k]
        s0 = vma[V_START, p]
        pg = vma[V_PGOFF, p]
        lo = max(s0, s0 + ((first - pg) << 12))
        hi = min(vma[V_END, p], s0 + ((last - pg) << 12))
        if lo >= hi:
            continue
        locked = (vma[V_FLAGS, p] & VM_LOCKED) != 0
        if even_cows or vma[V_FLAGS, p] & VM_SHARED:
            if locked:
                mlock_vma_pages_range(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order,
                                      mm, vma, mmi, lo, hi, MLOCK_ZAP)
            n = zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                               pt_aux, mm, tlb, pwc, mmi, lo, hi, swp)
        else:
            n = zap_file_ptes(S, mmi, lo, hi, locked)
        if n > 0:
            flush_tlb_range(cfg, tlb, pwc, mmi + 1, lo, hi)


@kernel
def zap_file_ptes(S, mmi, lo, hi, locked):
    """zap_pte_range without even_cows over [lo, hi) of a private file mapping: only the leaves
    that map page-cache pages go (a page-cache THP's PMD whole); anonymous copies stay, mlocked
    as they were. Returns the leaves zapped."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pgd = mm[MM_PGD, mmi]
    n = 0
    va = lo
    while va < hi:
        pos = pmd_lookup(cfg, pt, fr_idx, pgd, va)
        nxt = min(hi, (va | (HPAGE_PMD_SIZE - 1)) + 1)
        if pos < 0 or (pt[pos] & _PAGE_PRESENT) == 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            if fr_flags[entry_pfn(e)] & PG_file_thp:
                zap_file_pmd(vmstat, fr32, fr_flags, pt, mm, mmi, pos,
                             (va & (HPAGE_PMD_SIZE - 1)) == 0 and nxt - va == HPAGE_PMD_SIZE)
                n += 1
            va = nxt
            continue
        tb = pte_lookup(pt, fr_idx, e, va)
        for i in range((nxt - va) >> 12):
            pe = pt[tb + i]
            if (pe & _PAGE_PRESENT) == 0 or (pe & _PAGE_SPECIAL) != 0:
                continue
            pfn = entry_pfn(pe)
            if (fr_flags[pfn] & (PG_anon | PG_tail)) != 0:
                continue                           # a private copy: kept
            pt[tb + i] = 0
            if locked:
                munlock_mapped(vmstat, lru, fr32, fr_flags, pfn)
            unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, pfn)
            n += 1
        va = nxt
    return n


@kernel
def truncate_range(S, ii, first, last, now, even_cows):
    """``truncate_inode_pages_range`` over page indexes [first, last): unmaps them everywhere,
    waits for writeback of the pages it removes, and removes them. Returns the time it
    finished."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    unmap_mapping_pages(S, ii, first, last, even_cows)
    ino[I_SHADOW_GEN, ii] += 1                   # the file's shadow entries go (workingset.py)
    if ino[I_NRPAGES, ii] == 0:
        return now
    index = first - 1
    while index + 1 < last:
        index += 1
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            continue
        if fr_flags[pfn] & PG_file_thp:
            head = file_folio_head(fr_flags, pfn)
            base = fr_idx[head]
            nr = file_folio_nr(fr_flags, head)
            if fr_flags[head] & PG_writeback:
                # truncate_inode_pages_range waits for the folio's writeback either way
                if ino[I_WB_DONE, ii] > now:
                    now = ino[I_WB_DONE, ii]
                wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
            if base >= first and base + nr <= last:
                drop_page(S, head)                 # wholly inside: the folio goes
                index = base + nr - 1
                if ino[I_NRPAGES, ii] == 0:
                    break
                continue
            # truncate_inode_partial_folio: split it (5.17+) and drop the pages in range; the
            # 2013 series, older kernels or a folio that cannot split: zero that part, keep it
            if cfg[C_HPC_MODEL] != HPC_MAINLINE or cfg[C_KERNEL] < 517 or \
                    not split_file_folio(vmstat, fr32, fr_flags, fr_order, fr_memcg, lru, head):
                stop = min(last, base + nr)
                now += (stop - index) * cfg[C_COST_CLEAR_PAGE]
                index = stop - 1
                continue
        if fr_flags[pfn] & PG_writeback:
            if ino[I_WB_DONE, ii] > now:
                now = ino[I_WB_DONE, ii]
            wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
        drop_page(S, pfn)
        if ino[I_NRPAGES, ii] == 0:
            break
    return now


@kernel
def sys_ftruncate(S, ti, ii, length, charge):
    """ftruncate(2) (``charge`` 0: O_TRUNC inside open, no syscall of its own): when the size does
    not grow, every page and block wholly beyond it goes, preallocated ones (fallocate KEEP_SIZE)
    included, as ``ext4_setattr``/``shmem_setattr`` truncate; a longer size adds a hole."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + (cfg[C_COST_SYSCALL] if charge else 0)
    first = (length + PAGE - 1) >> 12
    last = max((ino[I_SIZE, ii] + PAGE - 1) >> 12, ino[I_BLKCAP, ii], ino[I_PAGES_END, ii])
    if length <= ino[I_SIZE, ii] and last > first:      # a size that grows keeps what lies beyond
        now = truncate_range(S, ii, first, last, now, True)
        if has_blocks(fs, ino, ii):
            fs_punch_blocks(fs, ino, blk, ii, first, last)
    ino[I_SIZE, ii] = length
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, 0


@kernel
def ext4_alloc_unwritten(fs, ino, blk, ii, first, last, grow_to):
    """``ext4_alloc_file_blocks``: holes in [first, last) become unwritten blocks in order (a
    delalloc block's reservation becomes its allocation); on ENOSPC what was allocated stays. The
    size (unless ``grow_to`` is -1) follows the blocks mapped so far. Returns 0 or -ENOSPC."""
    f = ino[I_FS, ii]
    base = ino[I_BLK, ii]
    reached = last
    st = OK
    for i in range(first, last):
        if blk[base + i] == BLK_HOLE:
            if fs[FS_FREE, f] <= 0:
                st = -ENOSPC
                reached = i if i > first else -1
                break
            fs[FS_FREE, f] -= 1
            blk[base + i] = BLK_UNWRITTEN
    if grow_to >= 0 and reached >= 0:
        ino[I_SIZE, ii] = max(ino[I_SIZE, ii], min(grow_to, reached * PAGE))
    return st


@kernel
def xfs_alloc_file_space(fs, ino, blk, ii, first, last):
    """``xfs_alloc_file_space``: [first, last) is mapped one extent at a time (``xfs_bmapi_write``
    with one map, XFS_BMAPI_PREALLOC), each step in a transaction that first reserves as many
    blocks as the rest of the range holds, mapped or not (at most XFS_MAX_BMBT_EXTLEN), plus the
    bmap btree's XFS_EXTENTADD_SPACE_RES; a run of holes becomes one unwritten extent, a run of
    mapped blocks (delalloc ones included) is stepped over. A step that cannot reserve ends it with
    -ENOSPC; what earlier steps allocated stays. The caller grows the size only on success
    (``xfs_falloc_setsize``). Extents are as long as the free space allows (no allocation
    groups). Returns 0 or -ENOSPC."""
    f = ino[I_FS, ii]
    base = ino[I_BLK, ii]
    i = first
    while i < last:
        want = min(last - i, XFS_MAX_BMBT_EXTLEN)
        if want + XFS_EXTENTADD_SPACE_RES > fs[FS_FREE, f]:
            return -ENOSPC                       # xfs_trans_alloc_inode
        hole = blk[base + i] == BLK_HOLE
        j = i + 1
        while j < i + want and (blk[base + j] == BLK_HOLE) == hole:
            j += 1
        if hole:
            for k in range(i, j):
                blk[base + k] = BLK_UNWRITTEN
            fs[FS_FREE, f] -= j - i
        i = j
    return OK


@kernel
def falloc_mode_check(mode):
    """``vfs_fallocate``'s mode checks: -EOPNOTSUPP or 0 (before any access check)."""
    known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_WRITE_ZEROES
    if mode & ~known:
        return -EOPNOTSUPP
    m = mode & ~FALLOC_FL_KEEP_SIZE
    if m != 0 and m != FALLOC_FL_PUNCH_HOLE and m != FALLOC_FL_ZERO_RANGE and \
            m != FALLOC_FL_WRITE_ZEROES:
        return -EOPNOTSUPP                       # one mode at a time
    if m == FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        return -EOPNOTSUPP
    if m == FALLOC_FL_WRITE_ZEROES and mode & FALLOC_FL_KEEP_SIZE:
        return -EOPNOTSUPP
    return 0


@kernel
def sys_fallocate(S, ti, ii, mode, offset, length):
    """fallocate(2) (``vfs_fallocate``, then ext4's, XFS's or shmem's): ext4 allocates unwritten
    extents (on ENOSPC what was allocated stays, and the size grows to cover it), punches holes,
    zeroes a range (its interior becomes unwritten, pages dropped) and, from 6.17, writes zeroes
    (every block of the range written by the device); XFS leaves what ext4 leaves where there is
    room, but allocates by ``xfs_alloc_file_space``'s rule (reserved up front, the size unchanged
    on ENOSPC; ZERO_RANGE punches before it allocates) and has no WRITE_ZEROES (6.18); tmpfs
    allocates pages (undone on ENOSPC) and punches; other filesystems give EOPNOTSUPP. Partial
    edge pages are not zeroed."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    f = ino[I_FS, ii]
    t = fs[FS_TYPE, f]
    end = offset + length
    first = offset >> 12
    last = (end + PAGE - 1) >> 12
    inner_first = (offset + PAGE - 1) >> 12
    inner_last = end >> 12
    m = mode & ~FALLOC_FL_KEEP_SIZE
    if t == FST_XFS and m == FALLOC_FL_WRITE_ZEROES:
        return -EOPNOTSUPP, 0                    # xfs_file_fallocate: not XFS_FALLOC_FL_SUPPORTED
    if not delalloc_fs(t) and not (t == FST_TMPFS and (m == 0 or m == FALLOC_FL_PUNCH_HOLE)):
        return -EOPNOTSUPP, 0
    if t == FST_TMPFS and not file_room(fgs, pc, wbq, vmstat,
                                        last - first + huge_room(S, ii, first, last), 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    gs[G_CUR_MEMCG] = task[T_MEMCG, ti]
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    st = OK
    keep = (mode & FALLOC_FL_KEEP_SIZE) != 0
    if m == FALLOC_FL_PUNCH_HOLE:
        if inner_last > inner_first:
            now = truncate_range(S, ii, inner_first, inner_last, now, False)
            if delalloc_fs(t):
                fs_punch_blocks(fs, ino, blk, ii, inner_first, inner_last)
    elif t == FST_TMPFS:
        # shmem_fallocate: a page for every index of the range, all or nothing
        if last - first > fs[FS_BLOCKS, f]:
            st = -ENOSPC                          # "avoid a swapstorm if len is impossible"
        else:
            added = 0
            new_pages = np.empty(last - first, np.int64)
            fresh = -1                            # the huge folio this call allocated last
            for index in range(first, last):
                pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
                if pfn >= 0:
                    h = file_folio_head(fr_flags, pfn)
                    if h != fresh:
                        fr_flags[h] &= ~PG_falloc_new   # a cached folio is initialised now
                    continue
                if fs[FS_FREE, f] <= 0:
                    st = -ENOSPC
                    break
                if shmem_huge_wanted(cfg, fs, ino, ii, index, end, 0, 0, HUGE_FOR_WRITE):
                    pfn, c = shmem_alloc_huge(S, ii, index, 0, HUGE_FOR_WRITE, now)
                    now += c
                    if pfn >= 0:
                        pfn = file_folio_head(fr_flags, pfn)
                        fresh = pfn
                if pfn < 0:
                    pfn, c = pagecache_alloc(S, ii, now)
                    now += c + cfg[C_COST_PC_ALLOC] + cfg[C_COST_CLEAR_PAGE]
                    if pfn < 0:
                        st = -ENOMEM
                        break
                    filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs,
                                     ino, ii, index, pfn, gs, shadow, False)
                fr_flags[pfn] |= PG_falloc_new    # not uptodate until written
                new_pages[added] = pfn
                added += 1
            if st != OK:
                for k in range(added):            # shmem_undo_range
                    drop_page(S, new_pages[k])
            elif not keep and end > ino[I_SIZE, ii]:
                ino[I_SIZE, ii] = end
    elif t == FST_XFS and m == FALLOC_FL_ZERO_RANGE:
        # xfs_falloc_zero_range: xfs_free_file_space punches the range's whole blocks (their
        # pages go), then xfs_alloc_file_space preallocates the whole range; on ENOSPC the
        # punched blocks stay holes and the size stays. Success leaves what ext4's leaves.
        if inner_last > inner_first:
            now = truncate_range(S, ii, inner_first, inner_last, now, False)
            fs_punch_blocks(fs, ino, blk, ii, inner_first, inner_last)
        st = xfs_alloc_file_space(fs, ino, blk, ii, first, last)
        if st == OK and not keep and end > ino[I_SIZE, ii]:
            ino[I_SIZE, ii] = end
    elif m == FALLOC_FL_ZERO_RANGE or m == FALLOC_FL_WRITE_ZEROES:
        # ext4_zero_range: unaligned edges preallocated (unwritten); the interior's pages go and
        # its blocks become unwritten (ZERO_RANGE) or are zeroed by the device (WRITE_ZEROES)
        zeroes = m == FALLOC_FL_WRITE_ZEROES
        grow_to = -1 if keep or end <= ino[I_SIZE, ii] else end
        if offset & 4095 or end & 4095:
            st = ext4_alloc_unwritten(fs, ino, blk, ii, first, last, grow_to)
        if st == OK and inner_last > inner_first:
            now = truncate_range(S, ii, inner_first, inner_last, now, False)
            base = ino[I_BLK, ii]
            nz = 0
            for i in range(inner_first, inner_last):
                if blk[base + i] == BLK_HOLE:
                    if fs[FS_FREE, f] <= 0:
                        st = -ENOSPC
                        break
                    fs[FS_FREE, f] -= 1
                blk[base + i] = BLK_WRITTEN if zeroes else BLK_UNWRITTEN
                nz += 1
            if zeroes and nz > 0:
                start = max(now, fs[FS_DISK_FREE_AT, f])
                now = start + fs[FS_WR_LAT, f] + nz * fs[FS_WR_PAGE, f]
                fs[FS_DISK_FREE_AT, f] = now
                fs[FS_BYTES_WRITTEN, f] += nz * PAGE
            if (st == OK or nz > 0) and grow_to >= 0:
                reached = last if st == OK else inner_first + nz
                ino[I_SIZE, ii] = max(ino[I_SIZE, ii], min(grow_to, reached * PAGE))
    elif t == FST_XFS:
        # xfs_falloc_allocate_range: the size moves only when every block was allocated
        st = xfs_alloc_file_space(fs, ino, blk, ii, first, last)
        if st == OK and not keep and end > ino[I_SIZE, ii]:
            ino[I_SIZE, ii] = end
    else:
        st = ext4_alloc_unwritten(fs, ino, blk, ii, first, last, -1 if keep else end)
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return st, 0


@kernel
def file_release(S, ii):
    """The last reference to an unlinked inode went: free its pages, blocks and caches."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    last = max((ino[I_SIZE, ii] + PAGE - 1) >> 12, ino[I_BLKCAP, ii], ino[I_PAGES_END, ii])
    now = ino[I_WB_DONE, ii]
    truncate_range(S, ii, 0, last, max(now, gs[G_NOW]), True)
    if has_blocks(fs, ino, ii):
        fs_punch_blocks(fs, ino, blk, ii, 0, ino[I_BLKCAP, ii])
    if ino[I_DCACHE, ii]:
        ino[I_DCACHE, ii] = 0
        fgs[FG_SLAB] -= 1
    ino[I_ALIVE, ii] = 0
    return OK, 0


@kernel
def split_last_huge(S, ii):
    """The 2013 series' close: the last writer's close splits the file's last huge page and frees
    its pages beyond the end of the file. Returns (OK, pages freed)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    size = ino[I_SIZE, ii]
    if cfg[C_HPC_MODEL] == HPC_MAINLINE or size == 0:
        return OK, 0
    pfn = filemap_get_folio(pc, fr32, fr_idx, ii, (size - 1) >> 12)
    if pfn < 0 or not fr_flags[pfn] & PG_file_thp:
        return OK, 0
    head = file_folio_head(fr_flags, pfn)
    base = fr_idx[head]
    if not split_file_folio(vmstat, fr32, fr_flags, fr_order, fr_memcg, lru, head):
        return OK, 0                               # mapped by a PMD ("2013+mmap"): left whole
    freed = 0
    for index in range((size + PAGE - 1) >> 12, base + HPAGE_PMD_NR):
        p = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if p >= 0 and fr32[FR_MAPCOUNT, p] == 0:
            drop_page(S, p)
            freed += 1
    return OK, freed


@kernel
def file_lookup(S, ti, ii):
    """A path lookup that ends at inode ``ii``: cheap when its dentry and inode are cached, else a
    slab allocation and an inode-table read from the disk."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    if ino[I_DCACHE, ii]:
        now += cfg[C_COST_LOOKUP_HIT]
    else:
        now += cfg[C_COST_LOOKUP_MISS]
        if has_blocks(fs, ino, ii):
            now = disk_read(fs, ino[I_FS, ii], now, 1)
            vmstat[VS_PGPGIN] += 4
        ino[I_DCACHE, ii] = 1
        fgs[FG_SLAB] += 1
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, 0


@kernel
def drop_caches(S, ti, value):
    """The work of a write to /proc/sys/vm/drop_caches (validation and the log are Python's).
    Returns (OK, pages dropped)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    dropped = 0
    if value & 1:
        for k in range(lru.shape[1] * 2):          # every memcg's file lists
            lv = k // 2
            li = LRU_INACTIVE_FILE if k % 2 == 0 else LRU_ACTIVE_FILE
            pfn = lru[LV_HEAD + li, lv]
            while pfn >= 0:
                nxt = fr32[FR_NEXT, pfn]           # read before the page goes
                f = fr_flags[pfn]
                if (f & (PG_dirty | PG_writeback | PG_swapbacked)) == 0 and \
                        not file_folio_mapped(fr32, fr_flags, pfn):
                    dropped += file_folio_nr(fr_flags, pfn)
                    drop_page(S, pfn)
                pfn = nxt
        vmstat[VS_DROP_PAGECACHE] += 1
        now += dropped * cfg[C_COST_RECLAIM_PAGE]
    if value & 2:
        for i in range(fgs[FG_NR_INODES]):
            if ino[I_ALIVE, i] and ino[I_DCACHE, i] and ino[I_REFS, i] == 0 and \
                    ino[I_NRPAGES, i] == 0 and has_blocks(fs, ino, i):   # tmpfs/ramfs: pinned
                ino[I_DCACHE, i] = 0
                fgs[FG_SLAB] -= 1
        # drop_slab runs every shrinker: the deferred-split one splits every queued THP
        deferred_split_scan(S, gs[G_DEFERRED_N], 0, False)
        vmstat[VS_DROP_SLAB] += 1
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, dropped


@kernel
def catch_up(S, ti):
    """Background work up to task ``ti``'s clock (after it slept)."""
    return machine_catch_up(S, S.task[T_CLOCK, ti])


@kernel
def machine_catch_up(S, until):
    """Background work up to ``until`` ps (``Machine.advance``, or a task that slept)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if not file_room(fgs, pc, wbq, vmstat, 0, 0, 0, gs):
        return NEED_GROW, 0
    background(S, until)
    if until > gs[G_NOW]:
        gs[G_NOW] = until
    return OK, 0

