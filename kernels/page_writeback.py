"""Dirty pages and writeback (mm/page-writeback.c, fs/fs-writeback.c) in simulated time.

A disk is one FIFO queue per filesystem (``FS_DISK_FREE_AT``): a request starts when the queue
drains, pays the latency once, then the per-page transfer time. Submitted pages carry PG_writeback
and wait in one completion ring (``wbq``: pfn, done time) that is retired in submission order: on
one disk that is completion order; with several disks, a page on a fast disk can stay under
writeback until pages submitted before it to a slower disk complete.

- ``write_inode_pages``: ``write_cache_pages`` for one inode: dirty pages go to the disk in index
  order from the inode's ``writeback_index``, each block allocated or converted on the way
  (``fs_writeback_block``); background writeback sends MAX_WRITEBACK_PAGES at a time.
- The flusher: ``dirty_writeback_centisecs`` after an inode is first dirtied it wakes, writes back
  inodes dirtied more than ``dirty_expire_centisecs`` ago, and keeps writing oldest-first while
  Dirty is above the background threshold; it sleeps when nothing is dirty.
- ``balance_dirty_pages``: above the background threshold a writer kicks the flusher; above the
  dirty threshold it waits for writeback to bring Dirty + Writeback back under it. Thresholds are
  ``global_dirty_limits``: the ratios of dirtyable memory (free pages plus the file LRU).
"""
import numpy as np

from .consts import (
    HPAGE_PMD_NR,
    HPAGE_PMD_SIZE,
    PTE_PFN_MASK,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_DIRTY,
    _PAGE_RW,
    VM_SHARED,
    V_END,
    V_START,
    V_PGOFF,
    V_FLAGS,
    V_FILE,
    MM_VCOUNT,
    MM_VBASE,
    MM_PGD,
    MM_USERS,
    G_NR_MM,
    FR_MAPCOUNT,
    C_DIRTY_BG_RATIO,
    C_DIRTY_EXPIRE_PS,
    C_DIRTY_RATIO,
    C_DIRTY_WB_PS,
    FG_NEXT_FLUSH,
    FG_NR_INODES,
    FG_WB_HEAD,
    FG_WB_TAIL,
    FS_BYTES_WRITTEN,
    FS_DISK_FREE_AT,
    FS_WR_LAT,
    FS_WR_PAGE,
    G_NR_FREE,
    I_ALIVE,
    I_BLKCAP,
    I_DIRTIED_WHEN,
    I_FS,
    I_NRDIRTY,
    I_SIZE,
    I_WB_DONE,
    I_WB_NEXT,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_FILE,
    LV_PAGES,
    LV_TAIL,
    MAX_WRITEBACK_PAGES,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_reclaim,
    PG_unevictable,
    PG_writeback,
    VS_NR_DIRTY,
    VS_NR_WRITEBACK,
    VS_NR_WRITTEN,
    VS_PGPGOUT,
    VS_PGROTATED,
)
from .filemap import (
    account_page_cleaned,
    file_entire_mapcount,
    file_folio_head,
    file_folio_nr,
    filemap_get_folio,
)
from .fs import fs_writeback_block
from .jit import kernel
from .pagetable import pmd_lookup, pte_lookup
from .tlb import flush_tlb_page, flush_tlb_range
from .lru import lru_del

NEVER = 1 << 62
ALL = 1 << 62


@kernel(inline="always")
def wb_room(fgs, wbq):
    return wbq.shape[1] - (fgs[FG_WB_TAIL] - fgs[FG_WB_HEAD])


@kernel
def wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now):
    """End writeback on every page whose I/O is done by ``now`` (``folio_end_writeback``); a page
    reclaim passed over (PG_reclaim) goes to the inactive tail (``folio_rotate_reclaimable``)."""
    cap = wbq.shape[1]
    h = fgs[FG_WB_HEAD]
    t = fgs[FG_WB_TAIL]
    while h < t:
        s = h % cap
        if wbq[1, s] > now:
            break
        pfn = wbq[0, s]                      # a folio's head
        f = fr_flags[pfn]
        nr = file_folio_nr(fr_flags, pfn)
        fr_flags[pfn] = f & ~PG_writeback
        vmstat[VS_NR_WRITEBACK] -= nr
        vmstat[VS_NR_WRITTEN] += nr
        if f & PG_reclaim:
            fr_flags[pfn] &= ~(PG_reclaim | PG_active)
            if f & PG_lru and not f & PG_unevictable:    # mlocked since: not rotated
                lv = fr_memcg[pfn]
                li = LRU_ACTIVE_FILE if f & PG_active else LRU_INACTIVE_FILE
                lru_del(lru, fr32, lv, li, pfn, nr)
                _lru_add_tail(lru, fr32, lv, LRU_INACTIVE_FILE, pfn, nr)
                vmstat[VS_PGROTATED] += nr
        h += 1
    fgs[FG_WB_HEAD] = h


@kernel(inline="always")
def _lru_add_tail(lru, links, lv, li, pfn, nr):
    tail = lru[LV_TAIL + li, lv]
    links[1, pfn] = tail                 # FR_PREV
    links[0, pfn] = -1                   # FR_NEXT
    if tail >= 0:
        links[0, tail] = pfn
    else:
        lru[li, lv] = pfn                # LV_HEAD
    lru[LV_TAIL + li, lv] = pfn
    lru[LV_PAGES + li, lv] += nr


@kernel
def inode_vmas(gs, mm, vma, ii, shared_only):
    """The file's mappings (``i_mmap``): (mm index, VMA pool index) of every VMA of every live
    address space with page tables that maps inode ``ii`` (only shared ones with
    ``shared_only``), as the two rows of an array."""
    n = 0
    for mmi in range(gs[G_NR_MM]):
        if mm[MM_USERS, mmi] > 0 and mm[MM_PGD, mmi] >= 0:
            n += mm[MM_VCOUNT, mmi]
    out = np.empty((2, n), np.int64)
    k = 0
    for mmi in range(gs[G_NR_MM]):
        if mm[MM_USERS, mmi] <= 0 or mm[MM_PGD, mmi] < 0:
            continue
        b = mm[MM_VBASE, mmi]
        for q in range(mm[MM_VCOUNT, mmi]):
            p = b + q
            if vma[V_FILE, p] == ii and (not shared_only or vma[V_FLAGS, p] & VM_SHARED):
                out[0, k] = mmi
                out[1, k] = p
                k += 1
    return out[:, :k]


@kernel
def folio_mkclean(S, ii, index):
    """Write-protect (and clean) every PTE that maps page ``index`` of inode ``ii`` through a
    shared mapping, so the next store faults and dirties the page again (``folio_mkclean``, via
    the file's mappings)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    where = inode_vmas(gs, mm, vma, ii, True)
    for k in range(where.shape[1]):
        mmi, p = where[0, k], where[1, k]
        off = index - vma[V_PGOFF, p]
        va = vma[V_START, p] + (off << 12)
        if off < 0 or va >= vma[V_END, p]:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
        if pos < 0 or (pt[pos] & _PAGE_PRESENT) == 0 or pt[pos] & _PAGE_PSE:
            continue                             # PMDs: folio_mkclean_pmd
        q = pte_lookup(pt, fr_idx, pt[pos], va)
        if pt[q] & _PAGE_RW:
            pt[q] &= ~(_PAGE_RW | _PAGE_DIRTY)
            flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)


@kernel(inline="always")
def file_pmd_of(cfg, pt, fr_idx, mm, vma, mmi, p, head):
    """(position, address) of the PMD through which VMA ``p`` of mm ``mmi`` maps the PMD-sized
    page-cache folio at ``head`` by that PMD, or (-1, address)."""
    off = fr_idx[head] - vma[V_PGOFF, p]
    va = vma[V_START, p] + (off << 12)
    if off < 0 or va >= vma[V_END, p] or va & (HPAGE_PMD_SIZE - 1):
        return -1, va
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0 or (pt[pos] & _PAGE_PSE) == 0 or ((pt[pos] & PTE_PFN_MASK) >> 12) != head:
        return -1, va
    return pos, va


@kernel
def folio_mkclean_pmd(S, ii, head):
    """``folio_mkclean`` for the PMDs that map the PMD-sized folio at ``head`` of inode ``ii``
    through shared mappings: each writable one is write-protected and cleaned, so the next store
    faults (wp_huge_pmd zaps it, and the fault maps it again after page_mkwrite)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    where = inode_vmas(gs, mm, vma, ii, True)
    for k in range(where.shape[1]):
        mmi = where[0, k]
        pos, va = file_pmd_of(cfg, pt, fr_idx, mm, vma, mmi, where[1, k], head)
        if pos >= 0 and pt[pos] & _PAGE_RW:
            pt[pos] &= ~(_PAGE_RW | _PAGE_DIRTY)
            flush_tlb_range(cfg, tlb, pwc, mmi + 1, va, va + HPAGE_PMD_SIZE)


@kernel
def _submit_folio(S, ii, f, head, done):
    """The dirty folio at ``head`` (pages ``fr_idx[head]`` on) of inode ``ii`` into the request
    ending at ``done`` on filesystem ``f``: each page's block written, the folio cleaned and its
    mapped pages write-protected (folio_clear_dirty_for_io), PG_writeback, one entry in the
    writeback ring. Returns (the request's new end, pages submitted)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    base = fr_idx[head]
    nr = file_folio_nr(fr_flags, head)
    for j in range(nr):
        done += fs[FS_WR_PAGE, f] + fs_writeback_block(cfg, fs, ino, blk, ii, base + j)
    account_page_cleaned(vmstat, fr_flags, fs, ino, ii, head)
    for j in range(nr):
        if fr32[FR_MAPCOUNT, head + j] > 0:
            folio_mkclean(S, ii, base + j)
    if nr == HPAGE_PMD_NR and file_entire_mapcount(fr32, fr_flags, head) > 0:
        folio_mkclean_pmd(S, ii, head)
    fr_flags[head] |= PG_writeback
    vmstat[VS_NR_WRITEBACK] += nr
    vmstat[VS_PGPGOUT] += 4 * nr
    t = fgs[FG_WB_TAIL]
    cap = wbq.shape[1]
    wbq[0, t % cap] = head
    wbq[1, t % cap] = done
    fgs[FG_WB_TAIL] = t + 1
    return done, nr


@kernel(inline="always")
def _end_request(fs, ino, ii, f, sent, done):
    """A request of ``sent`` pages ending at ``done``: the disk is busy until then."""
    fs[FS_DISK_FREE_AT, f] = done
    fs[FS_BYTES_WRITTEN, f] += sent * 4096
    if done > ino[I_WB_DONE, ii]:
        ino[I_WB_DONE, ii] = done


@kernel
def write_inode_pages(S, ii, now, nr_to_write):
    """Submit up to ``nr_to_write`` dirty pages of inode ``ii`` as one request, in index order
    from its ``writeback_index`` onwards and cyclically (the caller checked the ring has room).
    Returns the number of pages submitted."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    n = min(ino[I_NRDIRTY, ii], nr_to_write)
    if n <= 0:
        return 0
    f = ino[I_FS, ii]
    start = max(now, fs[FS_DISK_FREE_AT, f])
    done = start + fs[FS_WR_LAT, f]
    npages = max((ino[I_SIZE, ii] + 4095) >> 12, ino[I_BLKCAP, ii])
    sent = 0
    first = ino[I_WB_NEXT, ii] if ino[I_WB_NEXT, ii] < npages else 0
    index = first
    for k in range(npages):
        if sent >= n:
            break
        index = first + k
        if index >= npages:
            index -= npages
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            continue
        pfn = file_folio_head(fr_flags, pfn)      # a large folio goes whole, met at any page
        if not fr_flags[pfn] & PG_dirty:
            continue
        done, got = _submit_folio(S, ii, f, pfn, done)
        sent += got
    ino[I_WB_NEXT, ii] = index + 1
    _end_request(fs, ino, ii, f, sent, done)
    return sent


@kernel
def write_range_pages(S, ii, now, lo, hi):
    """``filemap_fdatawrite_range`` with WB_SYNC_NONE: submit the dirty pages of inode ``ii`` in
    [lo, hi) as one request, in index order, without waiting (the caller checked the ring has
    room). Returns the number of pages submitted."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if ino[I_NRDIRTY, ii] <= 0:
        return 0
    f = ino[I_FS, ii]
    done = max(now, fs[FS_DISK_FREE_AT, f]) + fs[FS_WR_LAT, f]
    sent = 0
    hi = min(hi, max((ino[I_SIZE, ii] + 4095) >> 12, ino[I_BLKCAP, ii]))
    for index in range(lo, hi):
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
        if pfn < 0:
            continue
        pfn = file_folio_head(fr_flags, pfn)
        if not fr_flags[pfn] & PG_dirty:
            continue
        done, got = _submit_folio(S, ii, f, pfn, done)
        sent += got
    if sent == 0:
        return 0
    _end_request(fs, ino, ii, f, sent, done)
    return sent


@kernel(inline="always")
def dirty_limits(cfg, gs, lru):
    """(background threshold, dirty threshold) in pages (``global_dirty_limits``)."""
    avail = gs[G_NR_FREE]
    for lv in range(lru.shape[1]):                 # every memcg's file lists
        avail += lru[LV_PAGES + LRU_INACTIVE_FILE, lv] + lru[LV_PAGES + LRU_ACTIVE_FILE, lv]
    thresh = avail * cfg[C_DIRTY_RATIO] // 100
    bg = avail * cfg[C_DIRTY_BG_RATIO] // 100
    if bg >= thresh:
        bg = thresh // 2
    return bg, thresh


@kernel
def oldest_dirty_inode(ino, nr):
    best = -1
    for i in range(nr):
        if ino[I_ALIVE, i] and ino[I_NRDIRTY, i] > 0:
            if best < 0 or ino[I_DIRTIED_WHEN, i] < ino[I_DIRTIED_WHEN, best]:
                best = i
    return best


@kernel
def flusher_run(S, now):
    """Every flusher wakeup due by ``now``: write back expired inodes, then oldest-first while above
    the background threshold. Returns False (nothing done) if the ring lacks room for every dirty
    page; the caller grows it and calls again."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if wb_room(fgs, wbq) < vmstat[VS_NR_DIRTY]:
        return False
    nr = fgs[FG_NR_INODES]
    while fgs[FG_NEXT_FLUSH] <= now:
        t = fgs[FG_NEXT_FLUSH]
        expire = t - cfg[C_DIRTY_EXPIRE_PS]
        for i in range(nr):
            if ino[I_ALIVE, i] and ino[I_NRDIRTY, i] > 0 and ino[I_DIRTIED_WHEN, i] <= expire:
                write_inode_pages(S, i, t, ALL)
        background_writeback(S, t)
        if vmstat[VS_NR_DIRTY] > 0:
            fgs[FG_NEXT_FLUSH] = t + cfg[C_DIRTY_WB_PS]
        else:
            fgs[FG_NEXT_FLUSH] = NEVER
    return True


@kernel
def background_writeback(S, now):
    """Write back oldest-dirtied inodes while Dirty exceeds the background threshold."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    bg, _ = dirty_limits(cfg, gs, lru)
    nr = fgs[FG_NR_INODES]
    while vmstat[VS_NR_DIRTY] > bg:
        i = oldest_dirty_inode(ino, nr)
        if i < 0:
            break
        write_inode_pages(S, i, now, MAX_WRITEBACK_PAGES)


@kernel
def wb_wait_until(fgs, wbq, k):
    """The completion time of the ``k``-th oldest page under writeback (k >= 1), or -1."""
    if fgs[FG_WB_TAIL] - fgs[FG_WB_HEAD] < k:
        return -1
    cap = wbq.shape[1]
    latest = 0
    h = fgs[FG_WB_HEAD]
    for j in range(k):
        d = wbq[1, (h + j) % cap]
        if d > latest:
            latest = d
    return latest


@kernel
def balance_dirty_pages(S, now):
    """After a writer dirtied pages: kick background writeback when Dirty exceeds the background
    threshold; when Dirty + Writeback exceeds the dirty threshold, wait until enough writeback
    completes to bring it back (below the freerun point, (bg + thresh) / 2, nothing waits).
    Returns the writer's new clock."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    bg, thresh = dirty_limits(cfg, gs, lru)
    if vmstat[VS_NR_DIRTY] > bg:
        background_writeback(S, now)
    total = vmstat[VS_NR_DIRTY] + vmstat[VS_NR_WRITEBACK]
    if total <= (bg + thresh) // 2:
        return now
    excess = total - thresh
    if excess <= 0:
        return now
    t = wb_wait_until(fgs, wbq, excess)
    if t > now:
        now = t
    wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now)
    return now
