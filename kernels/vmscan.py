"""Reclaim (mm/vmscan.c) and the allocations that wait on it.

Zone watermarks (``FG_WMARK_*``) are computed as the kernel does (``mmcore.files`` derives them
from ``min_free_kbytes`` and ``watermark_scale_factor``). An allocation that finds free memory
below the low watermark wakes kswapd; kswapd then works on its own clock (``FG_KSWAPD_CLOCK``),
``C_COST_KSWAPD_PAGE`` per page, catching up to the time of each later allocation, until free
memory is back above the high watermark. An allocation that would take free memory below the min
watermark reclaims directly, SWAP_CLUSTER_MAX pages at a time, on the allocating task's clock
(``allocstall_normal``, ``pgscan_direct``, ``pgsteal_direct``).

What reclaim frees is chosen by the LRU policy (``lru.isolate_victim``): clean, unmapped file
pages, and mapped ones through the reverse map: a mapped page whose PTEs were accessed since the
last look stays (activated if it was referenced before or through several PTEs), otherwise every
PTE mapping it is removed (``try_to_unmap``) and it is freed. Dirty pages it meets make it start
writeback (``wakeup_flusher_threads``); a direct
reclaimer that freed nothing waits for a batch of writeback to complete (``reclaim_throttle``) and
tries again; written pages that reclaim passed over are rotated to the inactive tail.
"""
from .consts import (
    VM_LOCKED,
    HPAGE_PMD_SIZE,
    V_FLAGS,
    V_PGOFF,
    V_END,
    V_START,
    MM_PGD,
    PTE_PFN_MASK,
    _PAGE_PSE,
    _PAGE_PRESENT,
    _PAGE_ACCESSED,
    VS_PGACTIVATE,
    PG_active,
    PG_referenced,
    POLICY_LINUX,
    FR_OWNER,
    FR_MAPCOUNT,
    C_COST_KSWAPD_PAGE,
    C_WORKINGSET,
    C_COST_RECLAIM_PAGE,
    C_LRU_POLICY,
    FG_KSWAPD_BUSY_PS,
    FG_KSWAPD_CLOCK,
    FG_KSWAPD_LAST_END,
    FG_KSWAPD_FAILURES,
    MAX_RECLAIM_RETRIES,
    FG_NR_INODES,
    FG_WB_HEAD,
    FG_WB_TAIL,
    FG_WMARK_HIGH,
    FG_WMARK_LOW,
    FG_WMARK_MIN,
    G_NR_FREE,
    I_NRDIRTY,
    MIGRATE_MOVABLE,
    SWAP_CLUSTER_MAX,
    VS_ALLOCSTALL_NORMAL,
    VS_NR_DIRTY,
    VS_PAGEOUTRUN,
    VS_PGALLOC,
    VS_PGSCAN_DIRECT,
    VS_PGSCAN_FILE,
    VS_PGSCAN_KSWAPD,
    VS_PGSTEAL_DIRECT,
    VS_PGSTEAL_FILE,
    VS_PGSTEAL_KSWAPD,
    G_NR_MEMCG,
    G_RECLAIM_CURSOR,
    MC_EV_LOW,
    MC_LOW,
    MC_MIN,
    MC_ONLINE,
    MC_PGSCAN,
    MC_PGSTEAL,
    MC_USAGE,
    MC_SWAP_USAGE,
    MC_MEMSW_MAX,
    C_SWAPPINESS,
    G_NR_SWAP_FREE,
    G_SWAP_IO_PS,
    G_STALL_PS,
    LRU_INACTIVE_FILE,
    LV_PAGES,
    VS_NR_ANON_PAGES,
    C_KERNEL,
    G_DEFERRED_N,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    MC_SPLIT_DEFERRED,
)
from .page_counter import mc, memcg_is_descendant
from .swap import shrink_anon
from .filemap import file_entire_mapcount, file_folio_mapped, file_folio_nr, filemap_remove_large, \
    filemap_remove_page, zap_file_pmd
from .filemap import unmap_file_pte
from .rmap import deferred_split_count, deferred_split_scan
from .jit import kernel
from .pagetable import pmd_lookup, pte_lookup
from .tlb import flush_tlb_page, flush_tlb_range
from .lru import folio_add_lru, isolate_victim, mlock_cache_folio
from .workingset import workingset_eviction
from .page_alloc import rmqueue
from .page_writeback import ALL, file_pmd_of, inode_vmas, wb_complete, wb_room, wb_wait_until, write_inode_pages

KSWAPD_IDLE = -1
# get_scan_count's cache trim mode, approximately: while the lists being reclaimed hold this many
# inactive file pages (inactive file >> DEF_PRIORITY is non-zero), reclaim takes file pages
# first and anonymous pages only for what it still lacks
CACHE_TRIM_PAGES = 1 << 12
SCAN_PER_BATCH = 4 * SWAP_CLUSTER_MAX   # pages examined before a reclaim attempt gives up
DEF_PRIORITY = 12                       # a reclaim pass scans lru_pages >> priority, 12 down to 0
SHRINK_BATCH = 128                      # objects a shrinker scans per call (batch 0: default)


@kernel
def folio_referenced(S, head, nr):
    """How many PTEs mapping the page-cache folio at ``head`` (``nr`` pages) have their accessed
    bit set; the bits are cleared (``folio_referenced``: one walk of the file's mappings for the
    whole folio; x86 does not flush the TLB for it, so an access that hits the TLB leaves the
    bit clear)."""
    return _folio_pte_walk(S, head, nr, False)


@kernel
def _folio_pte_walk(S, head, nr, unmap):
    """Every PTE through which the file's mappings map a page of the folio at ``head``: counts
    (and clears) the accessed bits, or with ``unmap`` removes each PTE and flushes it from the
    TLBs (try_to_unmap). The inode's VMAs are listed once for the folio."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    base = fr_idx[head]
    where = inode_vmas(gs, mm, vma, fr32[FR_OWNER, head], False)
    refs = 0
    for k in range(where.shape[1]):
        mmi, p = where[0, k], where[1, k]
        # the folio's pages inside the VMA: index base + j at V_START + (base + j - V_PGOFF) pages
        lo = max(0, vma[V_PGOFF, p] - base)
        hi = min(nr, vma[V_PGOFF, p] + ((vma[V_END, p] - vma[V_START, p]) >> 12) - base)
        for j in range(lo, hi):
            if fr32[FR_MAPCOUNT, head + j] <= 0:
                continue
            q = file_pte_of(cfg, pt, fr_idx, mm, vma, mmi, p, base + j, head + j)
            if q < 0:
                continue
            if unmap:
                pt[q] = 0
                unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, head + j)
                flush_tlb_page(cfg, tlb, pwc, mmi + 1,
                               vma[V_START, p] + ((base + j - vma[V_PGOFF, p]) << 12))
            elif pt[q] & _PAGE_ACCESSED:
                pt[q] &= ~_PAGE_ACCESSED
                refs += 1
    return refs


@kernel
def folio_locked_mapping(S, head, nr):
    """How VM_LOCKED VMAs map the large page-cache folio at ``head`` (``nr`` pages): 2 when one
    maps all of it by PTEs, 1 when one maps only part of it, else 0."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    ii = fr32[FR_OWNER, head]
    base = fr_idx[head]
    where = inode_vmas(gs, mm, vma, ii, False)
    out = 0
    for k in range(where.shape[1]):
        mmi, p = where[0, k], where[1, k]
        if not vma[V_FLAGS, p] & VM_LOCKED:
            continue
        n = 0
        for j in range(nr):
            if file_pte_of(cfg, pt, fr_idx, mm, vma, mmi, p, base + j, head + j) >= 0:
                n += 1
        if n == nr:
            return 2
        if n > 0:
            out = 1
    return out


@kernel
def folio_pmd_walk(S, head, unmap):
    """The PMDs mapping the PMD-sized page-cache folio at ``head`` (through the file's
    mappings): returns (how many have their accessed bit set, which it clears; whether one is in
    a VM_LOCKED VMA); with ``unmap`` every one goes instead (try_to_unmap, TTU_SPLIT_HUGE_PMD
    for a file folio: the PMD is cleared)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    where = inode_vmas(gs, mm, vma, fr32[FR_OWNER, head], False)
    refs = 0
    locked = False
    for k in range(where.shape[1]):
        mmi, p = where[0, k], where[1, k]
        pos, va = file_pmd_of(cfg, pt, fr_idx, mm, vma, mmi, p, head)
        if pos < 0:
            continue
        if unmap:
            zap_file_pmd(vmstat, fr32, fr_flags, pt, mm, mmi, pos, True)
            flush_tlb_range(cfg, tlb, pwc, mmi + 1, va, va + HPAGE_PMD_SIZE)
            continue
        locked = locked or (vma[V_FLAGS, p] & VM_LOCKED) != 0
        if pt[pos] & _PAGE_ACCESSED:
            pt[pos] &= ~_PAGE_ACCESSED
            refs += 1
    return refs, locked


@kernel
def try_to_unmap(S, head, nr):
    """Remove every PTE that maps a page of the page-cache folio at ``head`` (``nr`` pages)
    (``try_to_unmap``: one walk of the file's mappings), flushing each from the TLBs."""
    _folio_pte_walk(S, head, nr, True)


@kernel(inline="always")
def file_pte_of(cfg, pt, fr_idx, mm, vma, mmi, p, index, pfn):
    """Position of the PTE through which VMA ``p`` maps page ``index`` as frame ``pfn``, or -1."""
    off = index - vma[V_PGOFF, p]
    va = vma[V_START, p] + (off << 12)
    if off < 0 or va >= vma[V_END, p]:
        return -1
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0 or (pt[pos] & _PAGE_PRESENT) == 0 or pt[pos] & _PAGE_PSE:
        return -1
    q = pte_lookup(pt, fr_idx, pt[pos], va)
    if (pt[q] & _PAGE_PRESENT) == 0 or ((pt[q] & PTE_PFN_MASK) >> 12) != pfn:
        return -1
    return q


@kernel
def shrink_lruvec(S, lv, nr_to_reclaim, target):
    """Free up to ``nr_to_reclaim`` pages from lruvec ``lv`` (memcg ``lv``'s lists) under the
    configured policy, examining at most SCAN_PER_BATCH pages per page freed; each page freed
    leaves a shadow entry recording reclaim root ``target``'s age (``workingset_eviction``).
    Returns (freed, scanned)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    policy = cfg[C_LRU_POLICY]
    freed = 0
    scanned0 = vmstat[VS_PGSCAN_FILE]
    kept = 0
    while freed < nr_to_reclaim:
        pfn = isolate_victim(policy, vmstat, lru, fr32, fr32, fr_flags, fr_order, lv,
                             SCAN_PER_BATCH, True)
        if pfn < 0:
            break
        nr = file_folio_nr(fr_flags, pfn)         # the folio's head, with all its pages
        pmd_refs = 0
        locked = 0
        if file_entire_mapcount(fr32, fr_flags, pfn) > 0:
            pmd_refs, pmd_locked = folio_pmd_walk(S, pfn, False)
            locked = 2 if pmd_locked else 0
        if locked == 0 and nr > 1 and file_folio_mapped(fr32, fr_flags, pfn):
            locked = folio_locked_mapping(S, pfn, nr)
        if locked > 0:
            # a VM_LOCKED VMA maps it: folio_referenced_one mlocks a large folio it maps by a
            # PMD or whole by PTEs ("restore the mlock which got missed"); try_to_unmap_one gives
            # up on it either way (activate_locked)
            if locked == 1 and policy == POLICY_LINUX:
                fr_flags[pfn] |= PG_active
                vmstat[VS_PGACTIVATE] += nr
            folio_add_lru(lru, fr32, fr_flags, lv, pfn, nr)
            if locked == 2:
                mlock_cache_folio(vmstat, lru, fr32, fr_flags, lv, pfn, nr)
            else:
                kept += nr
                if kept > lru_pages(S, lv, False):
                    break                          # nothing here reclaim may take
            continue
        if file_folio_mapped(fr32, fr_flags, pfn):
            refs = pmd_refs + folio_referenced(S, pfn, nr)
            if refs > 0 and policy == POLICY_LINUX:
                # folio_check_references: a page used through its mappings stays; used by more
                # than one PTE, or twice, it is activated
                if fr_flags[pfn] & PG_referenced or refs > 1:
                    fr_flags[pfn] = (fr_flags[pfn] | PG_active) & ~PG_referenced
                    vmstat[VS_PGACTIVATE] += nr
                else:
                    fr_flags[pfn] |= PG_referenced
                folio_add_lru(lru, fr32, fr_flags, lv, pfn, nr)
                continue
            if file_entire_mapcount(fr32, fr_flags, pfn) > 0:
                folio_pmd_walk(S, pfn, True)
            try_to_unmap(S, pfn, nr)
        if cfg[C_WORKINGSET]:
            for j in range(nr):
                workingset_eviction(gs, lru, shadow, ino, fr_flags, fr32[FR_OWNER, pfn],
                                    fr_idx[pfn] + j, pfn, target)
        if nr == 1:
            filemap_remove_page(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt,
                                pc, lru, fgs, fs, ino, pfn)
        else:
            filemap_remove_large(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt,
                                 pc, lru, fgs, fs, ino, pfn)
        freed += nr
    scanned = vmstat[VS_PGSCAN_FILE] - scanned0
    gs[mc(lv, MC_PGSCAN)] += scanned
    gs[mc(lv, MC_PGSTEAL)] += freed
    return freed, scanned


@kernel
def shrink_memcgs(S, target, nr_to_reclaim, kswapd):
    """Reclaim up to ``nr_to_reclaim`` pages from the lruvecs of ``target``'s subtree (every
    memcg when ``target`` is the root): one walk from a rotating cursor, as mem_cgroup_iter
    resumes a shared walk, each memcg asked for what is still missing (the kernel's proportional
    scan targets are not modelled). A memcg at or under its memory.min is never reclaimed; one at
    or under its memory.low is passed over while the others give enough, then reclaimed all the
    same (its ``low`` event), as shrink_node_memcgs
    does. Returns (freed, scanned)."""
    gs = S.gs
    n = gs[G_NR_MEMCG]
    if n == 1:
        return shrink_lruvec(S, 0, nr_to_reclaim, 0)
    freed = 0
    scanned = 0
    start = gs[G_RECLAIM_CURSOR] % n
    for rnd in range(2):
        for k in range(n):
            c = (start + k) % n
            if freed >= nr_to_reclaim:
                break
            if gs[mc(c, MC_ONLINE)] == 0 or not memcg_is_descendant(gs, c, target):
                continue
            usage = gs[mc(c, MC_USAGE)]
            if c != target and c != 0 and usage <= gs[mc(c, MC_MIN)]:
                continue                                 # mem_cgroup_below_min: hard protection
            low = gs[mc(c, MC_LOW)]
            protected = c != target and c != 0 and low > 0 and usage <= low
            if protected != (rnd == 1):
                continue
            if protected:
                gs[mc(c, MC_EV_LOW)] += 1
            got, sc = shrink_lruvec(S, c, nr_to_reclaim - freed, target)
            freed += got
            scanned += sc
            if got > 0:
                gs[G_RECLAIM_CURSOR] = c + 1
        if freed > 0:
            break
    return freed, scanned


@kernel
def inactive_file_pages(S, target):
    """Inactive file pages on the lruvecs of ``target``'s subtree."""
    gs = S.gs
    n = 0
    for c in range(gs[G_NR_MEMCG]):
        if gs[mc(c, MC_ONLINE)] != 0 and memcg_is_descendant(gs, c, target):
            n += S.lru[LV_PAGES + LRU_INACTIVE_FILE, c]
    return n


@kernel
def shrink_anon_and_file(S, target, nr_to_reclaim, kswapd, may_swap):
    """Reclaim from ``target``'s subtree, file and anonymous pages balanced as get_scan_count
    does, approximately: with swap space free and ``may_swap``, and fewer inactive file pages
    than CACHE_TRIM_PAGES, a ``swappiness``/200 share of the batch comes from swapping out
    anonymous pages first; then file pages; then anonymous pages for whatever is still missing
    (at most two passes of the anon CLOCK, as the kernel's priority loop ends with a scan of
    the whole list). Returns (file freed, file scanned, anon freed, anon scanned)."""
    gs = S.gs
    swap_ok = may_swap and gs[G_NR_SWAP_FREE] > 0
    af = 0
    asc = 0
    sw = S.cfg[C_SWAPPINESS]
    if swap_ok and sw > 0 and inactive_file_pages(S, target) < CACHE_TRIM_PAGES:
        want = (nr_to_reclaim * sw + 199) // 200
        af, asc = shrink_anon(S, target, want, SCAN_PER_BATCH * want)
    got, scanned = shrink_memcgs(S, target, nr_to_reclaim - af if nr_to_reclaim > af else 0,
                                 kswapd)
    if swap_ok and got + af < nr_to_reclaim:
        more = nr_to_reclaim - got - af
        f, sc = shrink_anon(S, target, more, 2 * S.vmstat[VS_NR_ANON_PAGES] + SCAN_PER_BATCH)
        af += f
        asc += sc
    return got, scanned, af, asc


@kernel
def take_swap_io(gs):
    """The swap writes the reclaim just done issued (their cost in ps), taken once."""
    t = gs[G_SWAP_IO_PS]
    gs[G_SWAP_IO_PS] = 0
    return t


@kernel
def lru_pages(S, target, anon):
    """Pages on the lists reclaim scans in ``target``'s subtree: the file lists, and the anon
    ones when it may swap (get_scan_count's eligible pages)."""
    gs = S.gs
    n = 0
    for c in range(gs[G_NR_MEMCG]):
        if gs[mc(c, MC_ONLINE)] != 0 and memcg_is_descendant(gs, c, target):
            n += S.lru[LV_PAGES + LRU_INACTIVE_FILE, c] + S.lru[LV_PAGES + LRU_ACTIVE_FILE, c]
            if anon:
                n += S.lru[LV_PAGES + LRU_INACTIVE_ANON, c] + S.lru[LV_PAGES + LRU_ACTIVE_ANON, c]
    return n


@kernel
def last_priority(eligible, scanned, met):
    """The priority a reclaim pass (do_try_to_free_pages, balance_pgdat) ended at: it scans
    ``eligible >> priority`` pages at each priority from DEF_PRIORITY down and stops once it has
    reclaimed enough (``met``): the first priority whose scans add up to the pages the LRU pass
    examined; 0 when it never reclaimed enough."""
    if not met:
        return 0
    total = 0
    for p in range(DEF_PRIORITY, -1, -1):
        total += eligible >> p
        if total >= scanned:
            return p
    return 0


@kernel
def do_shrink_deferred_split(S, c, local, priority):
    """do_shrink_slab of the deferred-split shrinker at ``priority`` on memcg ``c``'s queue
    (``local``: its own, 5.4+; else the whole node's): count_objects gives ``freeable``; the
    work is ``freeable >> priority`` times 4 / DEFAULT_SEEKS plus the deferred count shifted by
    the priority, capped at twice ``freeable``, done in SHRINK_BATCH calls while a batch or the
    whole queue remains; what was not done is deferred to the next call (at most twice
    ``freeable``). Returns the pages freed."""
    gs = S.gs
    freeable = deferred_split_count(S, c, local)
    if freeable == 0:
        return 0
    k = mc(c, MC_SPLIT_DEFERRED)
    nr = gs[k]
    gs[k] = 0                                   # xchg_nr_deferred
    delta = (freeable >> priority) * 4 // 2
    total = min((nr >> priority) + delta, 2 * freeable)
    freed = 0
    scanned = 0
    while total >= SHRINK_BATCH or total >= freeable:
        n = min(SHRINK_BATCH, total)
        got = deferred_split_scan(S, n, c, local)
        if got == 0 and deferred_split_count(S, c, local) == 0:
            break                               # SHRINK_STOP: nothing split, the queue empty
        freed += got
        total -= n
        scanned += n
    gs[k] += min(max(nr + delta - scanned, 0), 2 * freeable)
    return freed


@kernel
def shrink_slab_split(S, target, last):
    """The deferred-split shrinker's share of one reclaim pass over ``target``'s subtree that
    went from DEF_PRIORITY down to priority ``last``: shrink_slab after the lruvecs at each
    priority, on each memcg's own queue (memcg-aware, 5.4+). Returns the pages freed; those do
    not count as reclaimed (no reclaim_state accounting), so they do not end the pass early."""
    gs = S.gs
    freed = 0
    for p in range(DEF_PRIORITY, last - 1, -1):
        if gs[G_DEFERRED_N] == 0:
            break                                   # every queue empty: each call would stop
        for c in range(gs[G_NR_MEMCG]):
            if gs[mc(c, MC_ONLINE)] != 0 and memcg_is_descendant(gs, c, target):
                freed += do_shrink_deferred_split(S, c, True, p)
    return freed


@kernel
def shrink_node(S, nr_to_reclaim, kswapd):
    """Global reclaim: every memcg's lruvec (``shrink_memcgs`` from the root), and the
    deferred-split shrinker, which frees the unmapped parts of queued THPs. From 4.16 the
    shrinkers run after the lruvecs at each priority, with a share of their objects set by the
    priority (``shrink_slab_split``); before that, the model splits SWAP_CLUSTER_MAX queued
    THPs first. Returns the number freed."""
    vmstat = S.vmstat
    if S.cfg[C_KERNEL] >= 416:
        freed = 0
        swap_ok = S.gs[G_NR_SWAP_FREE] > 0
        eligible = lru_pages(S, 0, swap_ok)
        got, scanned, af, asc = shrink_anon_and_file(S, 0, nr_to_reclaim, kswapd, True)
        if S.gs[G_DEFERRED_N] > 0:
            freed = shrink_slab_split(S, 0, last_priority(eligible, scanned + asc,
                                                          got + af >= nr_to_reclaim))
    else:
        freed = deferred_split_scan(S, SWAP_CLUSTER_MAX, 0, False)
        got, scanned, af, asc = shrink_anon_and_file(
            S, 0, nr_to_reclaim - freed if freed < nr_to_reclaim else 0, kswapd, True)
    freed += got + af
    if freed > 0:
        S.fgs[FG_KSWAPD_FAILURES] = 0          # shrink_node: reclaimable again
    if kswapd:
        vmstat[VS_PGSCAN_KSWAPD] += scanned + asc
        vmstat[VS_PGSTEAL_KSWAPD] += got + af
    else:
        vmstat[VS_PGSCAN_DIRECT] += scanned + asc
        vmstat[VS_PGSTEAL_DIRECT] += got + af
    vmstat[VS_PGSTEAL_FILE] += got
    return freed


@kernel
def try_to_free_mem_cgroup_pages(S, target, nr_pages):
    """Memcg reclaim against ``target``'s limit: at least SWAP_CLUSTER_MAX pages from its
    subtree's lruvecs, counted as direct reclaim, and the deferred-split shrinker over the THPs
    charged to its subtree (its memcgs' own queues), ordered as ``shrink_node`` orders them.
    Returns the number freed."""
    vmstat = S.vmstat
    gs = S.gs
    new = S.cfg[C_KERNEL] >= 416
    split = 0 if new else deferred_split_scan(S, SWAP_CLUSTER_MAX, target, False)
    # v1: when memory+swap is the limit in the way, swapping out cannot help (no MAY_SWAP)
    may_swap = gs[mc(target, MC_USAGE)] + gs[mc(target, MC_SWAP_USAGE)] + nr_pages <= \
        gs[mc(target, MC_MEMSW_MAX)]
    want = max(nr_pages, SWAP_CLUSTER_MAX)
    eligible = lru_pages(S, target, may_swap and gs[G_NR_SWAP_FREE] > 0)
    got, scanned, af, asc = shrink_anon_and_file(S, target, want - split if split < want else 0,
                                                 False, may_swap)
    if new and gs[G_DEFERRED_N] > 0:
        split = shrink_slab_split(S, target, last_priority(eligible, scanned + asc,
                                                           got + af >= want))
    vmstat[VS_PGSCAN_DIRECT] += scanned + asc
    vmstat[VS_PGSTEAL_DIRECT] += got + af
    vmstat[VS_PGSTEAL_FILE] += got
    if got + af + split > 0:
        S.fgs[FG_KSWAPD_FAILURES] = 0
    return got + af + split


@kernel
def start_dirty_writeback(S, now):
    """Reclaim met dirty pages: write back every dirty inode (as far as the ring has room)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    for i in range(fgs[FG_NR_INODES]):
        if ino[I_NRDIRTY, i] > 0 and wb_room(fgs, wbq) >= ino[I_NRDIRTY, i]:
            write_inode_pages(S, i, now, ALL)


@kernel
def kswapd_catch_up(S, now):
    """Let kswapd do the work it had time for by ``now``; wake it if free memory is below low."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if fgs[FG_KSWAPD_CLOCK] == KSWAPD_IDLE:
        if gs[G_NR_FREE] >= fgs[FG_WMARK_LOW] or fgs[FG_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES:
            return                                # balanced, or hopeless (wakeup_kswapd)
        fgs[FG_KSWAPD_CLOCK] = now                # woken: its work starts now
        vmstat[VS_PAGEOUTRUN] += 1
        return
    per = max(1, cfg[C_COST_KSWAPD_PAGE])
    while gs[G_NR_FREE] < fgs[FG_WMARK_HIGH] and fgs[FG_KSWAPD_CLOCK] < now:
        budget = min(SWAP_CLUSTER_MAX, (now - fgs[FG_KSWAPD_CLOCK] + per - 1) // per)
        got = shrink_node(S, budget, True)
        dt = max(got, 1) * per + take_swap_io(gs)
        fgs[FG_KSWAPD_CLOCK] += dt
        fgs[FG_KSWAPD_BUSY_PS] += dt              # balance_pgdat runs in psi_memstall (PSI)
        if got == 0:
            if vmstat[VS_NR_DIRTY] > 0:
                start_dirty_writeback(S, fgs[FG_KSWAPD_CLOCK])
            # a run that reclaimed nothing: after MAX_RECLAIM_RETRIES of them kswapd sleeps
            # until some reclaim succeeds again (balance_pgdat's kswapd_failures)
            fgs[FG_KSWAPD_FAILURES] += 1
            if fgs[FG_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES:
                fgs[FG_KSWAPD_LAST_END] = fgs[FG_KSWAPD_CLOCK]
                fgs[FG_KSWAPD_CLOCK] = KSWAPD_IDLE
                return
            break
    if gs[G_NR_FREE] >= fgs[FG_WMARK_HIGH]:
        fgs[FG_KSWAPD_LAST_END] = fgs[FG_KSWAPD_CLOCK]
        fgs[FG_KSWAPD_CLOCK] = KSWAPD_IDLE        # balanced: back to sleep


@kernel(inline="always")
def alloc_page_fast(S, now):
    """``alloc_page_reclaim`` with its common case inline: kswapd asleep and free memory at or
    above the low watermark mean nothing to wake and nothing to reclaim, so the page comes
    straight from the buddy allocator (the same result, without a call that passes the state)."""
    gs = S.gs
    fgs = S.fgs
    if fgs[FG_KSWAPD_CLOCK] == KSWAPD_IDLE and gs[G_NR_FREE] >= fgs[FG_WMARK_LOW]:
        pfn = rmqueue(gs, S.cfg, S.fr32, S.fr_flags, S.fr_order, S.pb_mt, 0, MIGRATE_MOVABLE)
        if pfn >= 0:
            S.vmstat[VS_PGALLOC] += 1
            return pfn, 0
    return alloc_page_reclaim(S, now)


@kernel
def reclaim_for_tables(S, now):
    """Free memory is down to the few pages a fault's page tables may need: wake kswapd, and
    reclaim one batch directly if it is gone below the min watermark. Returns the cost in ps."""
    gs = S.gs
    kswapd_catch_up(S, now)
    if gs[G_NR_FREE] > S.fgs[FG_WMARK_MIN]:
        return 0
    S.vmstat[VS_ALLOCSTALL_NORMAL] += 1
    got = shrink_node(S, SWAP_CLUSTER_MAX, False)
    c = got * S.cfg[C_COST_RECLAIM_PAGE] + take_swap_io(gs)
    gs[G_STALL_PS] += c
    return c


@kernel
def alloc_page_reclaim(S, now):
    """An order-0 movable allocation that may reclaim: (pfn or -1, cost in ps to the caller)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    kswapd_catch_up(S, now)
    cost = 0
    for attempt in range(4):
        if gs[G_NR_FREE] > fgs[FG_WMARK_MIN] or attempt == 3:
            pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, 0, MIGRATE_MOVABLE)
            if pfn >= 0:
                vmstat[VS_PGALLOC] += 1
                gs[G_STALL_PS] += cost              # direct reclaim is a memory stall (PSI)
                return pfn, cost
        vmstat[VS_ALLOCSTALL_NORMAL] += 1
        got = shrink_node(S, SWAP_CLUSTER_MAX, False)
        cost += got * cfg[C_COST_RECLAIM_PAGE] + take_swap_io(gs)
        if got == 0:
            if vmstat[VS_NR_DIRTY] > 0:
                start_dirty_writeback(S, now + cost)
            # reclaim_throttle: wait for a batch of writeback to finish, then try again
            pending = fgs[FG_WB_TAIL] - fgs[FG_WB_HEAD]
            if pending > 0:
                t = wb_wait_until(fgs, wbq, min(SWAP_CLUSTER_MAX, pending))
                if t > now + cost:
                    cost = t - now
                wb_complete(vmstat, fr32, fr_flags, fr_memcg, lru, fgs, wbq, now + cost)
    gs[G_STALL_PS] += cost
    return -1, cost
