"""Direct compaction for THP allocations (mm/compaction.c, simplified).

A migrate scanner walks pageblocks up from pfn 0, a free scanner walks MOVABLE pageblocks down from
the top of the initialised range; movable pages move from the one to the other until an order-9
block can be allocated or the scanners meet. Pages are found in page tables through the reverse
map (anon root + virtual page number), exactly one mapping per movable page.
"""
from .consts import (
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    C_COST_COMPACT_SCAN,
    C_COST_MIGRATE_PAGE,
    C_THP_DEFRAG,
    DEFRAG_ALWAYS,
    DEFRAG_DEFER_MADVISE,
    DEFRAG_MADVISE,
    FR_MAPCOUNT,
    FR_OWNER,
    G_HIGH_WATER,
    G_NR_FREE,
    G_NR_MM,
    HPAGE_PMD_ORDER,
    MIGRATE_MOVABLE,
    MM_ANON,
    MM_PGD,
    PAGEBLOCK_ORDER,
    PTE_PFN_MASK,
    VM_HUGEPAGE,
    VS_COMPACT_FAIL,
    VS_COMPACT_FREE_SCANNED,
    VS_COMPACT_ISOLATED,
    VS_COMPACT_MIGRATE_SCANNED,
    VS_COMPACT_STALL,
    VS_COMPACT_SUCCESS,
    VS_PGMIGRATE_SUCCESS,
    PG_anon,
    PG_buddy,
    PG_head,
)
from .jit import kernel
from .page_alloc import _expand, _list_del, free_pages, rmqueue
from .pagetable import entry_pfn, pmd_lookup, pte_lookup
from .tlb import flush_tlb_page

PB_NR = 1 << PAGEBLOCK_ORDER


@kernel
def _movable_source(fr32, fr_flags, fr_order, start):
    """(suitable, in-use frames, frames scanned): every in-use frame a movable order-0 anon page
    mapped at most once (isolate_migratepages_block would give up on anything else)."""
    p = start
    used = 0
    while p < start + PB_NR:
        f = fr_flags[p]
        if f & PG_buddy:
            p += 1 << fr_order[p]
            continue
        if (f & PG_head) and (f & PG_anon) and fr_order[p] == 0 and fr32[FR_MAPCOUNT, p] <= 1:
            used += 1
            p += 1
            continue
        return False, used, p - start + 1
    return True, used, PB_NR


@kernel
def _isolate_free_in_block(gs, fr32, fr_flags, fr_order, pb_mt, start):
    """Take the lowest free page of a pageblock (isolate_freepages_block, one page); -1 if none."""
    p = start
    while p < start + PB_NR:
        if fr_flags[p] & PG_buddy:
            o = fr_order[p]
            _list_del(gs, fr32, p, o, pb_mt[p >> PAGEBLOCK_ORDER])
            fr_flags[p] &= ~PG_buddy
            _expand(gs, fr32, fr_flags, fr_order, pb_mt, p, 0, o)
            fr_order[p] = 0
            gs[G_NR_FREE] -= 1
            return p, p - start + 1
        p += 1
    return -1, PB_NR


@kernel
def _repoint_pte(cfg, pt, fr_idx, mm, gs, anon, vpn, old, new):
    """rmap walk: find the PTE mapping ``old`` in an mm of the anon tree and point it at ``new``."""
    va = vpn << 12
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va)
        if pos < 0 or pt[pos] == 0 or (pt[pos] & _PAGE_PSE) != 0:
            continue
        q = pte_lookup(pt, fr_idx, pt[pos], va)
        e = pt[q]
        if (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 and entry_pfn(e) == old:
            pt[q] = (e & ~PTE_PFN_MASK) | (new << 12)
            return m
    return -1


@kernel
def compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc):
    """Compact until an order-9 block can be had; returns (pfn or -1, cost in ps)."""
    vmstat[VS_COMPACT_STALL] += 1
    cost = 0
    nblocks = gs[G_HIGH_WATER] >> PAGEBLOCK_ORDER
    mig = 0
    free_pb = nblocks - 1
    while mig < free_pb:
        start = mig << PAGEBLOCK_ORDER
        ok, used, scanned = _movable_source(fr32, fr_flags, fr_order, start)
        vmstat[VS_COMPACT_MIGRATE_SCANNED] += scanned
        cost += scanned * cfg[C_COST_COMPACT_SCAN]
        if ok and used > 0:
            p = start
            while p < start + PB_NR and mig < free_pb:
                f = fr_flags[p]
                if f & PG_buddy:
                    p += 1 << fr_order[p]
                    continue
                # a target page from the free scanner
                new = -1
                while new < 0 and free_pb > mig:
                    if pb_mt[free_pb] == MIGRATE_MOVABLE:
                        new, fs = _isolate_free_in_block(gs, fr32, fr_flags, fr_order, pb_mt,
                                                         free_pb << PAGEBLOCK_ORDER)
                        vmstat[VS_COMPACT_FREE_SCANNED] += fs
                        cost += fs * cfg[C_COST_COMPACT_SCAN]
                    if new < 0:
                        free_pb -= 1
                if new < 0:
                    break
                vmstat[VS_COMPACT_ISOLATED] += 2
                anon = fr32[FR_OWNER, p]
                vpn = fr_idx[p]
                fr_flags[new] = fr_flags[p]
                fr_order[new] = 0
                fr32[FR_OWNER, new] = anon
                fr32[FR_MAPCOUNT, new] = fr32[FR_MAPCOUNT, p]
                fr_idx[new] = vpn
                if fr32[FR_MAPCOUNT, p] > 0:
                    m = _repoint_pte(cfg, pt, fr_idx, mm, gs, anon, vpn, p, new)
                    if m >= 0:
                        flush_tlb_page(cfg, tlb, pwc, m + 1, vpn << 12)
                fr_flags[p] = 0
                fr32[FR_OWNER, p] = 0
                fr32[FR_MAPCOUNT, p] = 0
                fr_idx[p] = 0
                free_pages(gs, fr32, fr_flags, fr_order, pb_mt, p, 0)
                vmstat[VS_PGMIGRATE_SUCCESS] += 1
                cost += cfg[C_COST_MIGRATE_PAGE]
                p += 1
            pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER,
                          MIGRATE_MOVABLE)
            if pfn >= 0:
                vmstat[VS_COMPACT_SUCCESS] += 1
                return pfn, cost
        mig += 1
    vmstat[VS_COMPACT_FAIL] += 1
    return -1, cost


@kernel
def defrag_direct(cfg, vm_flags):
    """Whether a THP fault may stall in direct compaction (the sysfs defrag mode)."""
    d = cfg[C_THP_DEFRAG]
    if d == DEFRAG_ALWAYS:
        return True
    if d == DEFRAG_MADVISE or d == DEFRAG_DEFER_MADVISE:
        return (vm_flags & VM_HUGEPAGE) != 0
    return False


@kernel
def alloc_thp(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc,
              vm_flags):
    """Allocate an order-9 MOVABLE folio with the effort the defrag mode allows: (pfn, cost)."""
    pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
    if pfn >= 0 or not defrag_direct(cfg, vm_flags):
        return pfn, 0
    return compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc)
