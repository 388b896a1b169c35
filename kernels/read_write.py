"""File system calls (fs/read_write.c, mm/filemap.c, fs/sync.c, fs/open.c, fs/drop_caches.c).

Entry kernels take the machine's ``State`` and return ``(status, value)``:
status 0, a negative errno, or NEED_GROW (the page-cache index or the writeback ring needs room:
checked before anything changes, so Python grows them and calls again).

Each call starts by bringing background work up to the caller's clock (``background``): writeback
completions, the flusher's wakeups and kswapd. Then:

- ``sys_pread``: ``filemap_read``: cached pages are copied (``folio_mark_accessed`` each); a miss
  reads a readahead window (``page_cache_sync_ra``: the initial window ``get_init_ra_size`` for a
  sequential stream or a read at offset 0, growing by ``get_next_ra_size``; a random read gets
  just its own pages); pages over holes, unwritten or reserved blocks are zero-filled without
  I/O; the task waits for the disk.
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
    V_END,
    V_START,
    V_PGOFF,
    V_FILE,
    MM_VCOUNT,
    MM_VBASE,
    MM_PGD,
    MM_USERS,
    G_NR_MM,
    BLK_UNWRITTEN,
    BLK_WRITTEN,
    C_COST_CLEAR_PAGE,
    C_COST_LOOKUP_HIT,
    C_COST_LOOKUP_MISS,
    C_COST_MKWRITE,
    C_COST_PC_ALLOC,
    C_COST_PC_COPY,
    C_COST_RECLAIM_PAGE,
    C_COST_SYSCALL,
    C_DIRTY_WB_PS,
    C_LRU_POLICY,
    C_READ_AHEAD,
    EINVAL,
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
    FST_EXT4,
    FST_RAMFS,
    FST_TMPFS,
    G_NOW,
    I_ALIVE,
    I_BLK,
    I_BLKCAP,
    I_DCACHE,
    I_FS,
    I_NRDIRTY,
    I_NRPAGES,
    I_RA_NEXT,
    I_RA_SIZE,
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
    filemap_add_page,
    filemap_get_folio,
    filemap_remove_page,
)
from .fs import fs_fallocate, fs_punch_blocks, fs_reads_zeros, fs_write_begin, has_blocks
from .file_fault import file_room
from .jit import kernel
from .memory import zap_page_range
from .tlb import flush_tlb_range
from .lru import folio_mark_accessed
from .page_writeback import (
    ALL,
    NEVER,
    balance_dirty_pages,
    flusher_run,
    wb_complete,
    write_inode_pages,
)
from .syscalls import op_begin, op_end
from .readahead import disk_read, get_init_ra_size, get_next_ra_size, read_pages
from .vmscan import alloc_page_reclaim, kswapd_catch_up

PAGE = 4096
DIRTY_RATELIMIT = 32         # pages a writer dirties between checks of the dirty limits


@kernel
def background(S, now):
    """Writeback completions, flusher wakeups and kswapd's work, up to ``now``."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
    flusher_run(S, now)
    kswapd_catch_up(S, now)


@kernel(inline="always")
def arm_flusher(cfg, fgs, vmstat, now):
    if vmstat[VS_NR_DIRTY] > 0 and fgs[FG_NEXT_FLUSH] == NEVER:
        fgs[FG_NEXT_FLUSH] = now + cfg[C_DIRTY_WB_PS]


@kernel
def sys_pread(S, ti, ii, pos, count):
    """pread(2) of [pos, pos + count): returns (status, bytes read)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    size = ino[I_SIZE, ii]
    end = min(pos + count, size)
    first = pos >> 12
    last = (end + PAGE - 1) >> 12
    mx = max(1, cfg[C_READ_AHEAD])
    if not file_room(fgs, pc, wbq, vmstat, max(0, last - first) + mx, 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    if end <= pos:
        task[T_CLOCK, ti] = now
        op_end(gs, task, cpus, ti)
        return OK, 0
    policy = cfg[C_LRU_POLICY]
    eof = (size + PAGE - 1) >> 12
    index = first
    while index < last:
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            prev_next = ino[I_RA_NEXT, ii]
            req = last - index
            if index == 0 or index == prev_next or index + 1 == prev_next:
                if ino[I_RA_SIZE, ii] > 0 and index == prev_next:
                    window = get_next_ra_size(ino[I_RA_SIZE, ii], mx)
                else:
                    window = get_init_ra_size(req, mx)
                ino[I_RA_SIZE, ii] = window
                window = max(window, min(req, mx))
            else:
                window = min(req, mx)              # a small random read: as is
                ino[I_RA_SIZE, ii] = 0
            st, now = read_pages(S, ii, index, min(index + window, eof), now)
            if st < 0:
                task[T_CLOCK, ti] = now
                op_end(gs, task, cpus, ti)
                done = max(0, index * PAGE - pos)
                return (OK, done) if done > 0 else (st, 0)
            pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, fr_memcg[pfn], pfn, 1)
        now += cfg[C_COST_PC_COPY]
        index += 1
    ino[I_RA_NEXT, ii] = last
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, end - pos


@kernel
def sys_pwrite(S, ti, ii, pos, count):
    """pwrite(2) of [pos, pos + count) (contents are not simulated): returns (status, bytes)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    end = pos + count
    first = pos >> 12
    last = (end + PAGE - 1) >> 12
    n = last - first
    if not file_room(fgs, pc, wbq, vmstat, n, n, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
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
                pfn, c = alloc_page_reclaim(S, now)
                now += c + cfg[C_COST_PC_ALLOC]
                if pfn < 0:
                    err = -ENOMEM
                    break
                filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino,
                                 ii, index, pfn)
                if hi - lo < PAGE:
                    now += cfg[C_COST_CLEAR_PAGE]
        if fr_flags[pfn] & PG_writeback:
            # folio_wait_stable: wait for the page's I/O before changing it
            if ino[I_WB_DONE, ii] > now:
                now = ino[I_WB_DONE, ii]
            wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
        if fr_flags[pfn] & PG_mappedtodisk:
            c = cfg[C_COST_MKWRITE]              # its buffers are mapped already
        else:
            c = fs_write_begin(cfg, fs, ino, blk, ii, index, True)
            if c < 0:
                err = c
                break
            fr_flags[pfn] |= PG_mappedtodisk
        now += c + cfg[C_COST_PC_COPY]
        account_page_dirtied(vmstat, fr_flags, fs, ino, ii, pfn, now)
        folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, fr_memcg[pfn], pfn, 1)
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
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
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
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
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


@kernel
def drop_page(S, pfn):
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    filemap_remove_page(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg,
                        pb_mt, pc, lru, fgs, fs, ino, pfn)


@kernel
def unmap_mapping_pages(S, ii, first, last):
    """Zap every PTE that maps pages [first, last) of inode ``ii`` (its private copies too), in
    every address space (``unmap_mapping_pages`` with even_cows, as truncation does)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    for mmi in range(gs[G_NR_MM]):
        if mm[MM_USERS, mmi] <= 0 or mm[MM_PGD, mmi] < 0:
            continue
        b = mm[MM_VBASE, mmi]
        for k in range(mm[MM_VCOUNT, mmi]):
            p = b + k
            if vma[V_FILE, p] != ii:
                continue
            s0 = vma[V_START, p]
            pg = vma[V_PGOFF, p]
            lo = max(s0, s0 + ((first - pg) << 12))
            hi = min(vma[V_END, p], s0 + ((last - pg) << 12))
            if lo < hi:
                if zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                  pt_aux, mm, mmi, lo, hi) > 0:
                    flush_tlb_range(cfg, tlb, pwc, mmi + 1, lo, hi)


@kernel
def truncate_range(S, ii, first, last, now):
    """``truncate_inode_pages_range`` over page indexes [first, last): unmaps them everywhere,
    waits for writeback of the pages it removes, and removes them. Returns the time it
    finished."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    unmap_mapping_pages(S, ii, first, last)
    if ino[I_NRPAGES, ii] == 0:
        return now
    for index in range(first, last):
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
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
def sys_ftruncate(S, ti, ii, length):
    """ftruncate(2): pages and blocks wholly beyond the new size go; a longer size adds a hole."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    old = ino[I_SIZE, ii]
    if length < old:
        first = (length + PAGE - 1) >> 12
        last = max((old + PAGE - 1) >> 12, ino[I_BLKCAP, ii])
        now = truncate_range(S, ii, first, last, now)
        if has_blocks(fs, ino, ii):
            fs_punch_blocks(fs, ino, blk, ii, first, last)
    ino[I_SIZE, ii] = length
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, 0


@kernel
def sys_fallocate(S, ti, ii, mode, offset, length):
    """fallocate(2) on ext4 (allocate, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE, WRITE_ZEROES); tmpfs
    allocates pages; other filesystems give EOPNOTSUPP."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    f = ino[I_FS, ii]
    t = fs[FS_TYPE, f]
    end = offset + length
    first = offset >> 12
    last = (end + PAGE - 1) >> 12
    known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | FALLOC_FL_WRITE_ZEROES
    if mode & ~known:
        return -EOPNOTSUPP, 0
    if mode & FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        return -EOPNOTSUPP, 0
    if (mode & FALLOC_FL_WRITE_ZEROES) and mode != FALLOC_FL_WRITE_ZEROES:
        return -EINVAL, 0
    if t != FST_EXT4 and not (t == FST_TMPFS and mode & ~FALLOC_FL_KEEP_SIZE == 0):
        return -EOPNOTSUPP, 0
    if t == FST_TMPFS and not file_room(fgs, pc, wbq, vmstat, last - first, 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    st = OK
    if t == FST_TMPFS:
        for index in range(first, last):
            if filemap_get_folio(pc, fr32, fr_idx, ii, index) >= 0:
                continue
            if fs[FS_FREE, f] <= 0:
                st = -ENOSPC
                break
            pfn, c = alloc_page_reclaim(S, now)
            now += c + cfg[C_COST_PC_ALLOC] + cfg[C_COST_CLEAR_PAGE]
            if pfn < 0:
                st = -ENOMEM
                break
            filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs,
                             ino, ii, index, pfn)
    elif mode & FALLOC_FL_PUNCH_HOLE:
        inner_first = (offset + PAGE - 1) >> 12
        inner_last = end >> 12
        if inner_last > inner_first:
            now = truncate_range(S, ii, inner_first, inner_last, now)
            fs_punch_blocks(fs, ino, blk, ii, inner_first, inner_last)
    elif mode & FALLOC_FL_ZERO_RANGE:
        now = truncate_range(S, ii, first, last, now)
        fs_punch_blocks(fs, ino, blk, ii, first, last)
        st = fs_fallocate(fs, ino, blk, ii, first, last)
    else:
        st = fs_fallocate(fs, ino, blk, ii, first, last)
        if st == OK and mode & FALLOC_FL_WRITE_ZEROES:
            # the device writes zeroes over the range; the blocks become written extents
            base = ino[I_BLK, ii]
            nz = 0
            for i in range(first, last):
                if blk[base + i] == BLK_UNWRITTEN:
                    blk[base + i] = BLK_WRITTEN
                    nz += 1
            if nz:
                start = max(now, fs[FS_DISK_FREE_AT, f])
                now = start + fs[FS_WR_LAT, f] + nz * fs[FS_WR_PAGE, f]
                fs[FS_DISK_FREE_AT, f] = now
                fs[FS_BYTES_WRITTEN, f] += nz * PAGE
    if st == OK and not mode & FALLOC_FL_KEEP_SIZE and end > ino[I_SIZE, ii]:
        ino[I_SIZE, ii] = end
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return st, 0


@kernel
def file_release(S, ii):
    """The last reference to an unlinked inode went: free its pages, blocks and caches."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    last = max((ino[I_SIZE, ii] + PAGE - 1) >> 12, ino[I_BLKCAP, ii])
    now = ino[I_WB_DONE, ii]
    truncate_range(S, ii, 0, last, max(now, gs[G_NOW]))
    if has_blocks(fs, ino, ii):
        fs_punch_blocks(fs, ino, blk, ii, 0, ino[I_BLKCAP, ii])
    if ino[I_DCACHE, ii]:
        ino[I_DCACHE, ii] = 0
        fgs[FG_SLAB] -= 1
    ino[I_ALIVE, ii] = 0
    return OK, 0


@kernel
def file_lookup(S, ti, ii):
    """A path lookup that ends at inode ``ii``: cheap when its dentry and inode are cached, else a
    slab allocation and an inode-table read from the disk."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
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
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    op_begin(task, cpus, ti)
    now = task[T_CLOCK, ti] + cfg[C_COST_SYSCALL]
    background(S, now)
    dropped = 0
    if value & 1:
        for li in (LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
            pfn = lru[LV_HEAD + li, 0]
            while pfn >= 0:
                nxt = fr32[FR_NEXT, pfn]           # read before the page goes
                f = fr_flags[pfn]
                if (f & (PG_dirty | PG_writeback | PG_swapbacked)) == 0 and fr32[FR_MAPCOUNT, pfn] == 0:
                    drop_page(S, pfn)
                    dropped += 1
                pfn = nxt
        vmstat[VS_DROP_PAGECACHE] += 1
        now += dropped * cfg[C_COST_RECLAIM_PAGE]
    if value & 2:
        for i in range(fgs[FG_NR_INODES]):
            if ino[I_ALIVE, i] and ino[I_DCACHE, i] and ino[I_REFS, i] == 0 and ino[I_NRPAGES, i] == 0:
                ino[I_DCACHE, i] = 0
                fgs[FG_SLAB] -= 1
        vmstat[VS_DROP_SLAB] += 1
    task[T_CLOCK, ti] = now
    op_end(gs, task, cpus, ti)
    return OK, dropped


@kernel
def catch_up(S, ti):
    """Background work up to task ``ti``'s clock (after it slept)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq = S
    if not file_room(fgs, pc, wbq, vmstat, 0, 0, 0, gs):
        return NEED_GROW, 0
    now = task[T_CLOCK, ti]
    background(S, now)
    if now > gs[G_NOW]:
        gs[G_NOW] = now
    return OK, 0
