"""Reading pages in (mm/readahead.c): readahead windows, their marks, and the disk reads that fill
them.

A window is a ``file_ra_state`` (``RA_START``, ``RA_SIZE``, ``RA_ASYNC``, ``RA_PREV``): an open
file's ``ra`` array for read(), a column of the inode's ``I_MRA`` rows for its mappings (Linux keeps
it in the struct file a mapping holds). The page at ``start + size - async_size`` gets
PG_readahead when the window allocates it; a reader reaching that page starts the next window
asynchronously (``page_cache_async_ra``) and goes on, so the disk works while the reader does.

The rules are two eras' (``C_KERNEL``): ``ondemand_readahead`` (3.10 to 6.10: a miss at the
expected index ramps the window up too; a window the reader would hit at once grows by the next
size) and ``page_cache_sync_ra``/``page_cache_async_ra`` since 6.11 (a new window's async part is
half of it when the read covers it all; an async window is trimmed to a multiple of four pages).
From 6.11 a window also carries a folio order (``RA_ORDER``): a sync window starts at 0, each
async one asks for 2 more, and ``page_cache_ra_order`` fills the window with folios of that order
where the mapping has large folios (XFS from 5.18, ext4 from 6.16); elsewhere the order falls
back to 0.

A page under read I/O is locked until its request completes: each inode remembers its latest two
readahead requests (``I_IO_*``: pages [lo, hi) locked until done), and a reader of a page in one
waits for it (``ra_wait``). Older requests are taken as complete.
"""
from .consts import (
    C_COST_CLEAR_PAGE,
    C_COST_PC_ALLOC,
    C_HPC_MODEL,
    C_KERNEL,
    C_READ_AHEAD,
    C_IO_PAGES,
    RA_PAGES,
    ENOMEM,
    FS_BYTES_READ,
    FS_DISK_FREE_AT,
    FS_RD_LAT,
    FS_RD_PAGE,
    FS_TYPE,
    G_OOM_MEMCG,
    G_STALL_PS,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    HPC_MAINLINE,
    I_FS,
    I_IO_DONE,
    I_IO_DONE_OLD,
    I_IO_HI,
    I_IO_HI_OLD,
    I_IO_LO,
    I_IO_LO_OLD,
    I_SIZE,
    OK,
    PG_readahead,
    PG_writeback,
    RA_ASYNC,
    RA_ORDER,
    RA_PREV,
    RA_SIZE,
    RA_START,
    VM_HUGEPAGE,
    VM_RAND_READ,
    VS_PGPGIN,
)
from .filemap import (
    file_folio_head,
    file_folio_nr,
    filemap_add_page,
    filemap_get_folio,
    filemap_index_large,
    large_folios,
)
from .fs import fs_reads_zeros
from .jit import kernel
from .lru import folio_add_lru
from .memcontrol import pagecache_alloc, pagecache_alloc_order
from .workingset import workingset_refault_folio

PAGE = 4096


@kernel(inline="always")
def roundup_pow_of_two(n):
    r = 1
    while r < n:
        r <<= 1
    return r


@kernel(inline="always")
def get_init_ra_size(size, mx):
    newsize = roundup_pow_of_two(size)
    if newsize <= mx // 32:
        return newsize * 4
    if newsize <= mx // 4:
        return newsize * 2
    return mx


@kernel(inline="always")
def get_next_ra_size(cur, mx):
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


@kernel
def disk_read(fs, f, now, npages):
    """A read request of ``npages`` on filesystem ``f``'s disk issued at ``now``: its completion."""
    start = max(now, fs[FS_DISK_FREE_AT, f])
    done = start + fs[FS_RD_LAT, f] + npages * fs[FS_RD_PAGE, f]
    fs[FS_DISK_FREE_AT, f] = done
    fs[FS_BYTES_READ, f] += npages * PAGE
    return done


@kernel
def read_pages_ra(S, ii, first, last, mark, now):
    """``page_cache_ra_unbounded`` + ``read_pages``: the missing pages of [first, last) are added to
    the page cache (the one at ``mark``, if among them, with PG_readahead) and read with one disk
    request for those that hold data; an allocation failure ends the window there (what was
    added is still read). Returns (status, time the request is submitted, time its pages are
    ready, whether it brings back workingset pages)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    nio = 0
    cpu = now
    thrash = False
    st = OK
    lo = -1
    hi = -1
    for index in range(first, last):
        if filemap_get_folio(pc, fr32, fr_idx, ii, index) >= 0:
            continue
        pfn, c = pagecache_alloc(S, ii, cpu)
        cpu += c + cfg[C_COST_PC_ALLOC]
        if pfn < 0:
            st = -ENOMEM
            break
        if filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii,
                            index, pfn, gs, shadow, True):
            thrash = True
        if index == mark:
            fr_flags[pfn] |= PG_readahead
        if fs_reads_zeros(ino, blk, fs, ii, index):
            cpu += cfg[C_COST_CLEAR_PAGE]
        else:
            nio += 1
            if lo < 0:
                lo = index
            hi = index + 1
    return st, cpu, submit_read(vmstat, fs, ino, ii, nio, lo, hi, cpu), thrash


@kernel
def submit_read(vmstat, fs, ino, ii, nio, lo, hi, cpu):
    """``read_pages``: one disk request for the ``nio`` pages holding data among [lo, hi) of inode
    ``ii``, submitted at ``cpu``; its pages stay locked until it completes (the inode keeps its
    latest two requests). Returns when they are ready (``cpu`` with nothing to read)."""
    if nio == 0:
        return cpu
    vmstat[VS_PGPGIN] += 4 * nio
    done = disk_read(fs, ino[I_FS, ii], cpu, nio)
    ino[I_IO_LO_OLD, ii] = ino[I_IO_LO, ii]
    ino[I_IO_HI_OLD, ii] = ino[I_IO_HI, ii]
    ino[I_IO_DONE_OLD, ii] = ino[I_IO_DONE, ii]
    ino[I_IO_LO, ii] = lo
    ino[I_IO_HI, ii] = hi
    ino[I_IO_DONE, ii] = done
    return done


@kernel
def read_pages(S, ii, first, last, now):
    """Bring the missing pages of [first, last) into the page cache and wait for them. Returns
    (status, time the pages are ready)."""
    st, cpu, done, thrash = read_pages_ra(S, ii, first, last, -1, now)
    return st, wait_read(S, cpu, done, thrash)


@kernel(inline="always")
def wait_read(S, cpu, done, thrash):
    """A reader waits for its request: the time it resumes. Waiting for a workingset page's read
    is a memory stall (read_pages' psi_memstall_enter, folio_wait_bit_common): the thrashing PSI
    counts."""
    if thrash and done > cpu:
        S.gs[G_STALL_PS] += done - cpu
    return max(cpu, done)


@kernel(inline="always")
def ra_wait(ino, ii, index, now):
    """When the page at ``index`` is locked under one of the inode's pending read requests: the
    time that request completes (the reader waits, ``folio_wait_locked``); else ``now``."""
    if ino[I_IO_DONE, ii] > now and ino[I_IO_LO, ii] <= index < ino[I_IO_HI, ii]:
        return ino[I_IO_DONE, ii]
    if ino[I_IO_DONE_OLD, ii] > now and ino[I_IO_LO_OLD, ii] <= index < ino[I_IO_HI_OLD, ii]:
        return ino[I_IO_DONE_OLD, ii]
    return now


@kernel
def do_page_cache_ra(S, ii, index, nr, lookahead, now):
    """``do_page_cache_ra``: read ``nr`` pages from ``index`` (not past EOF), marking the page
    ``lookahead`` pages before the end. From 5.10 the count is clipped at EOF first (the mark
    moves with it); before, pages past EOF are just not read. Returns as ``read_pages_ra``."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    size = ino[I_SIZE, ii]
    if size == 0 or nr <= 0:
        return OK, now, now, False
    end_index = (size - 1) >> 12
    if index > end_index:
        return OK, now, now, False
    if cfg[C_KERNEL] >= 510:
        nr = min(nr, end_index - index + 1)
        mark = index + nr - lookahead if lookahead <= nr else -1
        last = index + nr
    else:
        mark = index + nr - lookahead
        last = min(index + nr, end_index + 1)
    return read_pages_ra(S, ii, index, last, mark, now)


@kernel
def page_cache_ra_order(S, ii, ra, start, now):
    """``page_cache_ra_order`` for the window in ``ra`` read from page ``start`` (``ractl``'s
    index: ``ra[RA_START]`` but for a VM_HUGEPAGE fault's window, which leaves ``ra->start``).
    A mapping without large folios reads it with order-0 pages (``do_page_cache_ra``;
    ``ra->order`` falls back to 0). XFS and 6.16+ ext4 (``large_folios``) fill it with folios of the
    window's order: ``RA_ORDER`` capped at PMD order and at ``ilog2(size)``, each folio's order
    lowered to its index's alignment (``__ffs``) and to what fits before the window's end or EOF;
    the folio holding the mark (rounded down to the folio) gets PG_readahead. The first cached
    page in the way (-EEXIST) or a folio not allocated (``__GFP_NORETRY``) ends that loop, and
    the rest of the window is read with order-0 pages, as a second request. Returns as
    ``read_pages_ra``."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    size = ra[RA_SIZE]
    if not large_folios(cfg, fs[FS_TYPE, ino[I_FS, ii]]):
        ra[RA_ORDER] = 0
        return do_page_cache_ra(S, ii, start, size, ra[RA_ASYNC], now)
    if ino[I_SIZE, ii] == 0 or size <= 0:
        return OK, now, now, False
    limit = min((ino[I_SIZE, ii] - 1) >> 12, start + size - 1)
    mark = start + size - ra[RA_ASYNC]
    new_order = min(HPAGE_PMD_ORDER, ra[RA_ORDER])
    while new_order > 0 and (1 << new_order) > size:
        new_order -= 1                               # ilog2(ra->size)
    ra[RA_ORDER] = new_order
    index = start
    cpu = now
    nio = 0
    lo = -1
    hi = -1
    thrash = False
    stopped = False
    while index <= limit:
        order = new_order
        if index & ((1 << order) - 1):
            order = 0
            while not (index >> order) & 1:
                order += 1                           # __ffs(index)
        while order > 0 and index + (1 << order) - 1 > limit:
            order -= 1
        nr = 1 << order
        for i in range(nr):
            if filemap_get_folio(pc, fr32, fr_idx, ii, index + i) >= 0:
                stopped = True                       # filemap_add_folio: -EEXIST
                break
        if stopped:
            break
        if order == 0:
            pfn, c = pagecache_alloc(S, ii, cpu)
        else:
            pfn, c = pagecache_alloc_order(S, ii, order, cpu)
        cpu += c + cfg[C_COST_PC_ALLOC]
        if pfn < 0:
            stopped = True
            break
        if order == 0:
            thrash |= filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs,
                                       ino, ii, index, pfn, gs, shadow, True)
        else:
            filemap_index_large(vmstat, fr32, fr_idx, fr_flags, pc, fgs, fs, ino, ii, index, pfn,
                                order)
            thrash |= workingset_refault_folio(gs, vmstat, lru, shadow, ino, fr_flags, fr_memcg,
                                               ii, index, pfn, nr)
            folio_add_lru(lru, fr32, fr_flags, fr_memcg[pfn], pfn, nr)
        if index == (mark >> order) << order:
            fr_flags[pfn] |= PG_readahead
        for i in range(nr):
            if fs_reads_zeros(ino, blk, fs, ii, index + i):
                cpu += cfg[C_COST_CLEAR_PAGE]
            else:
                nio += 1
                if lo < 0:
                    lo = index + i
                hi = index + i + 1
        index += nr
    done = submit_read(vmstat, fs, ino, ii, nio, lo, hi, cpu)
    st = OK
    if stopped and size > index - start:
        # pages already cached left gaps (or memory ran short): the regular path reads the rest
        st, cpu, done2, thrash2 = do_page_cache_ra(S, ii, index, size - (index - start),
                                                   ra[RA_ASYNC], cpu)
        done = max(done, done2)
        thrash |= thrash2
    return st, cpu, done, thrash


@kernel(inline="always")
def hugepage_ra_wanted(cfg, vm_flags):
    """do_sync_mmap_readahead's VM_HUGEPAGE branch (5.18+ mainline page cache, checked before
    MADV_RANDOM and read_ahead_kb): a MADV_HUGEPAGE file mapping reads PMD-sized folios."""
    return (vm_flags & VM_HUGEPAGE) != 0 and cfg[C_KERNEL] >= 518 and \
        cfg[C_HPC_MODEL] == HPC_MAINLINE


@kernel
def hugepage_readahead(S, ii, ra, index, vm_flags, now):
    """The VM_HUGEPAGE read fault's window: from the PMD-aligned page at or below ``index``, two
    PMD-sized folios (one under MADV_RANDOM), the second marked (``async_size`` = 512),
    ``ra->order`` = PMD order; ``ra->start`` keeps its old value. On a file without large folios
    the same pages come as order-0 ones. Returns as ``read_pages_ra``."""
    ra[RA_SIZE] = HPAGE_PMD_NR if vm_flags & VM_RAND_READ else 2 * HPAGE_PMD_NR
    ra[RA_ASYNC] = HPAGE_PMD_NR
    ra[RA_ORDER] = HPAGE_PMD_ORDER
    return page_cache_ra_order(S, ii, ra, index & ~(HPAGE_PMD_NR - 1), now)


@kernel
def _cached_before(pc, fr32, fr_idx, ii, index, mx):
    """Cached pages right before ``index`` (``page_cache_prev_miss``), counting at most ``mx``."""
    n = 0
    while n < mx and index - 1 - n >= 0 and \
            filemap_get_folio(pc, fr32, fr_idx, ii, index - 1 - n) >= 0:
        n += 1
    return n


@kernel
def _next_miss(pc, fr32, fr_idx, ii, index, mx):
    """``page_cache_next_miss``: the first index from ``index`` not cached, looking at ``mx`` pages
    at most (``index + mx`` if all are)."""
    for k in range(mx):
        if filemap_get_folio(pc, fr32, fr_idx, ii, index + k) < 0:
            return index + k
    return index + mx


@kernel(inline="always")
def ra_pages(cfg, ra):
    """The window's maximum for this state: its own ``ra_pages`` (POSIX_FADV_SEQUENTIAL doubles
    it) or the device's (``read_ahead_kb / 4``)."""
    return ra[RA_PAGES] if ra[RA_PAGES] >= 0 else cfg[C_READ_AHEAD]


@kernel(inline="always")
def ractl_max_pages(cfg, mx, req):
    """``ractl_max_pages``: a request larger than the window may read up to the device's
    ``io_pages`` at once (4.10+, 9491ae4aade6)."""
    if cfg[C_KERNEL] >= 410 and req > mx and cfg[C_IO_PAGES] > mx:
        return min(req, cfg[C_IO_PAGES])
    return mx


@kernel(inline="always")
def force_limit(cfg, nr, mx):
    """How many of ``nr`` pages ``force_page_cache_ra`` reads with window ``mx``."""
    if cfg[C_KERNEL] >= 410:
        return min(nr, max(cfg[C_IO_PAGES], mx))
    return nr


@kernel
def force_page_cache_ra(S, ii, index, nr, mx, now):
    """``force_page_cache_ra``: read ``nr`` pages from ``index`` whatever the state says (a
    random-access file, POSIX_FADV_WILLNEED, readahead off), in 2 MiB requests, none marked:
    from 4.10 at most ``max(io_pages, ra_pages)`` of them (600e19afc5f8), before that all.
    Returns as ``read_pages_ra`` (the last request's times)."""
    nr = min(force_limit(S.cfg, nr, mx), ((S.ino[I_SIZE, ii] + PAGE - 1) >> 12) - index)
    st, cpu, done, thrash = OK, now, now, False
    while nr > 0:
        chunk = min(nr, 512)
        st, cpu, d, th = do_page_cache_ra(S, ii, index, chunk, 0, cpu)
        done = max(done, d)
        thrash = thrash or th
        if st != OK:
            break
        index += chunk
        nr -= chunk
    return st, cpu, done, thrash


@kernel(inline="always")
def _merge_self_hit(ra, index, mx):
    """Before 6.11: a window the read would hit the mark of at once grows by the next size."""
    if index == ra[RA_START] and ra[RA_SIZE] == ra[RA_ASYNC]:
        ra[RA_ASYNC] = get_next_ra_size(ra[RA_SIZE], mx)
        ra[RA_SIZE] += ra[RA_ASYNC]


@kernel
def ra_sync(S, ii, ra, index, req, mx, now):
    """``page_cache_sync_ra`` (before 6.11, ``ondemand_readahead``) for a read of ``req`` pages that
    missed at ``index``: a sequential miss (offset 0, the page after the previous read, or a read
    larger than a window) starts a window; cached history right before ``index`` sizes one
    (context readahead); anything else reads just the request and leaves the state alone. The
    caller waits. Returns as ``read_pages_ra``."""
    cfg = S.cfg
    pc, fr32, fr_idx = S.pc, S.fr32, S.fr_idx
    new = cfg[C_KERNEL] >= 611
    mx = ractl_max_pages(cfg, mx, req)
    prev = ra[RA_PREV]
    seq = prev >= 0 and 0 <= index - (prev >> 12) <= 1
    if not new and index != 0 and (index == ra[RA_START] + ra[RA_SIZE] - ra[RA_ASYNC]
                                   or index == ra[RA_START] + ra[RA_SIZE]):
        # the expected index: assume a sequential stream, push the window forward
        ra[RA_START] += ra[RA_SIZE]
        ra[RA_SIZE] = get_next_ra_size(ra[RA_SIZE], mx)
        ra[RA_ASYNC] = ra[RA_SIZE]
    elif index == 0 or req > mx or seq:
        ra[RA_START] = index
        ra[RA_SIZE] = get_init_ra_size(req, mx)
        if ra[RA_SIZE] > req:
            ra[RA_ASYNC] = ra[RA_SIZE] - req
        else:
            ra[RA_ASYNC] = ra[RA_SIZE] >> 1 if new else ra[RA_SIZE]
    else:
        contig = _cached_before(pc, fr32, fr_idx, ii, index, mx)
        if contig <= req:
            return do_page_cache_ra(S, ii, index, req, 0, now)   # a random read: as is
        if contig >= index:
            contig *= 2                      # cached from the start: a whole-file read
        ra[RA_START] = index
        ra[RA_SIZE] = min(contig + req, mx)
        ra[RA_ASYNC] = 1
    if not new:
        _merge_self_hit(ra, index, mx)
        return do_page_cache_ra(S, ii, ra[RA_START], ra[RA_SIZE], ra[RA_ASYNC], now)
    ra[RA_ORDER] = 0
    return page_cache_ra_order(S, ii, ra, ra[RA_START], now)


@kernel
def ra_async(S, ii, ra, index, nr, req, mx, now):
    """``page_cache_async_ra`` for a reader reaching the PG_readahead mark of an ``nr``-page folio
    at ``index``: at the expected place (6.11+: the mark rounded down to the folio) the window
    moves on and grows; a mark without matching state (interleaved streams) sizes the next
    window from the cached run after it. The reader does not wait. Returns (time the request is
    submitted)."""
    cfg, gs = S.cfg, S.gs
    pc, fr32, fr_idx = S.pc, S.fr32, S.fr_idx
    new = cfg[C_KERNEL] >= 611
    mx = ractl_max_pages(cfg, mx, req)
    if not new and index == 0:
        ra[RA_START] = 0
        ra[RA_SIZE] = get_init_ra_size(req, mx)
        ra[RA_ASYNC] = ra[RA_SIZE] - req if ra[RA_SIZE] > req else ra[RA_SIZE]
    elif index == (ra[RA_START] + ra[RA_SIZE] - ra[RA_ASYNC]) // nr * nr or \
            (not new and index == ra[RA_START] + ra[RA_SIZE]):
        ra[RA_START] += ra[RA_SIZE]
        nxt = get_next_ra_size(ra[RA_SIZE], mx)
        ra[RA_SIZE] = max(ra[RA_SIZE], nxt) if new else nxt
        ra[RA_ASYNC] = ra[RA_SIZE]
    else:
        start = _next_miss(pc, fr32, fr_idx, ii, index + 1, mx)
        if start - index > mx:
            return now
        ra[RA_START] = start
        ra[RA_SIZE] = get_next_ra_size(start - index + req, mx)
        ra[RA_ASYNC] = ra[RA_SIZE]
    oom = gs[G_OOM_MEMCG]
    if new:
        # 6.11+: ra->order grows by 2 (page_cache_ra_order sets it back to 0 on a mapping
        # without large folios), and the window's end is aligned to
        # 1 << min(order, ffs(ra_pages) - 1) pages
        ra[RA_ORDER] += 2
        tz = 0
        while tz < ra[RA_ORDER] and (mx >> tz) & 1 == 0:
            tz += 1
        align = 1 << tz
        end = ra[RA_START] + ra[RA_SIZE]
        aligned = end - end % align
        if aligned > ra[RA_START]:
            ra[RA_SIZE] -= end - aligned
        ra[RA_ASYNC] = ra[RA_SIZE]
        st, cpu, done, thrash = page_cache_ra_order(S, ii, ra, ra[RA_START], now)
    else:
        _merge_self_hit(ra, index, mx)
        st, cpu, done, thrash = do_page_cache_ra(S, ii, ra[RA_START], ra[RA_SIZE], ra[RA_ASYNC],
                                                 now)
    gs[G_OOM_MEMCG] = oom                    # readahead's allocations fail quietly
    return cpu


@kernel(inline="always")
def ra_busy(fr_flags, ino, ii, pfn, now):
    """Cheap test before ``ra_hit``: does page ``pfn`` carry the mark, or may it be locked under a
    pending read? (Almost never, for a cached page: the rest of the work stays out of line.)"""
    return (fr_flags[file_folio_head(fr_flags, pfn)] & PG_readahead) != 0 or \
        ino[I_IO_DONE, ii] > now or ino[I_IO_DONE_OLD, ii] > now


@kernel
def ra_hit(S, fr_flags, ino, ii, ra, index, pfn, req, mx, now, by_folio):
    """A reader found page ``index`` cached as frame ``pfn``: if its folio carries the mark, clear
    it and start the next window (not while the page is under writeback: Linux shares the bit
    with PG_reclaim); then wait for the page if its read is still pending. read() asks for the
    window from the folio (``by_folio``: its index, and ``req`` counted from it), a fault from
    the faulting page. Returns (the time the reader goes on, whether a window started: its
    allocations may have reclaimed the page). ``fr_flags`` and ``ino`` are the caller's: taking
    them from ``S`` here would cost a reference-count round trip per page."""
    h = file_folio_head(fr_flags, pfn)
    started = False
    if fr_flags[h] & PG_readahead and not fr_flags[h] & PG_writeback:
        fr_flags[h] &= ~PG_readahead
        if mx > 0:
            at = index
            if by_folio:
                at = S.fr_idx[h]
                req += index - at
            now = ra_async(S, ii, ra, at, file_folio_nr(fr_flags, h), req, mx, now)
            started = True
    return ra_wait(ino, ii, index, now), started
