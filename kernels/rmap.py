"""Reverse-map bookkeeping of anonymous folios (mm/rmap.c ``folio_remove_rmap_pte``, and the
freeing that follows the last unmapping): shared by faults, zapping, khugepaged and swap-out; and
the splits of anonymous THPs that go through the reverse map (``split_anon_folio``, the
deferred-split shrinker)."""
from .consts import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    PTE_PFN_MASK,
    C_KH_MAX_PTES_NONE,
    C_NR_FRAMES,
    C_ZERO_REMAP,
    G_DEFERRED_HEAD,
    G_DEFERRED_N,
    G_NR_MEMCG,
    G_NR_MM,
    MM_ANON,
    MM_ANONPAGES,
    MM_PGD,
    PG_partially_mapped,
    PG_written,
    PTRS_PER_TABLE,
    VS_THP_UNDERUSED_SPLIT_PAGE,
    FR_MAPCOUNT,
    FR_NEXT,
    FR_OWNER,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    PG_head,
    PG_mlocked,
    PG_tail,
    VS_NR_ANON_PAGES,
    VS_NR_MLOCK,
    VS_NR_UNEVICTABLE,
    VS_UNEVICTABLE_PGS_CLEARED,
    VS_PGFREE,
)
from .huge_memory import deferred_split_folio, deferred_split_remove, split_folio, split_folio_pmds
from .jit import kernel
from .page_alloc import free_pages
from .page_counter import CHARGE_ANON, memcg_is_descendant, memcg_uncharge_folio
from .pagetable import entry_pfn, pmd_lookup
from .tlb import flush_tlb_page


@kernel
def free_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, head, order):
    """Free an anonymous folio whose last mapping went: uncharge it, then back to the buddy."""
    memcg_uncharge_folio(gs, fr32, head, 1 << order, CHARGE_ANON)
    if fr_flags[head] & PG_mlocked:
        # __page_cache_release of a folio still mlocked: off the unevictable list
        vmstat[VS_NR_MLOCK] -= 1 << order
        vmstat[VS_NR_UNEVICTABLE] -= 1 << order
        vmstat[VS_UNEVICTABLE_PGS_CLEARED] += 1 << order
    if order > 0:
        deferred_split_remove(gs, fr32, fr_flags, head)
    fr_flags[head] = 0
    fr32[FR_MAPCOUNT, head] = 0
    fr32[FR_OWNER, head] = 0
    fr_idx[head] = 0
    if order > 0:
        # an unmapped THP's tails have zero mapcounts, and only page[1] uses the owner and index
        # slots (both 0 once unmapped): clearing the tails' flags leaves the block clean
        fr_flags[head + 1:head + (1 << order)] = 0
        fr32[FR_OWNER, head + 1] = 0
        fr_idx[head + 1] = 0
    vmstat[VS_PGFREE] += 1 << order
    free_pages(gs, fr32, fr_flags, fr_order, pb_mt, head, order)


@kernel
def remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pfn):
    """folio_remove_rmap_pte: drop one PTE mapping of ``pfn``; free the folio when unmapped.

    Returns True when a THP's page lost its last mapping (no PMD maps the folio) and the folio
    stays mapped: the caller queues it for a deferred split at the end of its batch of PTEs
    (__folio_remove_rmap's ``partially_mapped``; ``queue_if_partial``)."""
    if (fr_flags[pfn] & PG_tail) != 0 or fr_order[pfn] > 0:
        head = pfn & ~(HPAGE_PMD_NR - 1)
        fr32[FR_MAPCOUNT, pfn] -= 1
        fr_idx[head + 1] -= 1
        gone = fr32[FR_MAPCOUNT, pfn] == 0 and fr32[FR_OWNER, head + 1] == 0
        if gone:
            vmstat[VS_NR_ANON_PAGES] -= 1        # NR_ANON_MAPPED: the page's last mapping
        if fr_idx[head + 1] == 0 and fr32[FR_OWNER, head + 1] == 0:
            free_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, head, HPAGE_PMD_ORDER)
            return False
        return gone
    fr32[FR_MAPCOUNT, pfn] -= 1
    if fr32[FR_MAPCOUNT, pfn] == 0:
        vmstat[VS_NR_ANON_PAGES] -= 1
        free_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pfn, 0)
    return False


@kernel
def queue_if_partial(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, head):
    """After a batch of PTE removals in which a page of the THP at ``head`` lost its last
    mapping: queue the folio if it survived, still mapped and by PTEs only
    (deferred_split_folio)."""
    if (fr_flags[head] & PG_head) != 0 and fr_order[head] == HPAGE_PMD_ORDER \
            and fr32[FR_OWNER, head + 1] == 0 and fr_idx[head + 1] > 0:
        deferred_split_folio(gs, vmstat, fr32, fr_flags, head, True)


@kernel
def pte_mapped_pages(fr32, fr_idx, head):
    """Subpages of a THP mapped by at least one PTE."""
    if fr_idx[head + 1] == 0:
        return 0
    n = 0
    for i in range(HPAGE_PMD_NR):
        if fr32[FR_MAPCOUNT, head + i] > 0:
            n += 1
    return n




# ---- splitting anonymous THPs through the reverse map ---------------------------------------------

@kernel
def thp_underused(cfg, fr_flags, head):
    """thp_underused (6.12): more than max_ptes_none of the THP's pages are zero-filled (never
    written); never when max_ptes_none is 511."""
    limit = cfg[C_KH_MAX_PTES_NONE]
    if limit >= HPAGE_PMD_NR - 1:
        return False
    zero = 0
    for i in range(HPAGE_PMD_NR):
        if (fr_flags[head + i] & PG_written) == 0:
            zero += 1
            if zero > limit:
                return True
    return False


@kernel
def remap_zero_subpages(S, head, anon, va0):
    """6.12+ (remap_page with RMP_USE_SHARED_ZEROPAGE, try_to_map_unused_to_zeropage): once an
    anonymous THP at ``head`` has split, every PTE that maps one of its zero-filled pages maps the
    shared zero page instead (read-only, special; the mm's anon Rss drops), and a page so unmapped
    everywhere is freed. ``anon`` and ``va0``: the folio's anon tree and address, read before the
    split (which may have freed the head page). Returns the pages freed."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    zp = cfg[C_NR_FRAMES]
    freed = 0
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va0)
        if pos < 0 or (pt[pos] & _PAGE_PRESENT) == 0 or (pt[pos] & _PAGE_PSE) != 0:
            continue
        base = fr_idx[entry_pfn(pt[pos])] * PTRS_PER_TABLE
        for i in range(HPAGE_PMD_NR):
            p = head + i
            e = pt[base + i]
            if (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0 or (e & _PAGE_SPECIAL) != 0 or \
                    entry_pfn(e) != p or (fr_flags[p] & (PG_written | PG_mlocked)) != 0:
                continue
            # the VMA's protection (a PROT_NONE one's too) on the zero page: read-only, clean
            pt[base + i] = (e & ~(PTE_PFN_MASK | _PAGE_RW | _PAGE_DIRTY)) | _PAGE_ACCESSED | \
                _PAGE_SPECIAL | (zp << 12)
            mm[MM_ANONPAGES, m] -= 1
            flush_tlb_page(cfg, tlb, pwc, m + 1, va0 + (i << 12))
            if fr32[FR_MAPCOUNT, p] == 1:
                freed += 1
            remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, p)
    return freed


@kernel
def split_and_remap(S, head):
    """__split_huge_page of an anonymous THP no PMD maps (``split_folio``: its unmapped pages
    freed) and, from 6.12, the zero-page remap of its zero-filled pages (``remap_zero_subpages``).
    Returns the pages freed, or -1 if it cannot split."""
    anon = S.fr32[FR_OWNER, head]
    va = S.fr_idx[head] << 12               # read before the split frees the head page
    got = split_folio(S.gs, S.vmstat, S.fr32, S.fr_idx, S.fr_flags, S.fr_order, S.pb_mt, head)
    if got >= 0 and S.cfg[C_ZERO_REMAP]:
        got += remap_zero_subpages(S, head, anon, va)
    return got


@kernel
def split_anon_folio(S, head):
    """split_huge_page of an anonymous THP: every PMD that maps it is split first
    (``split_folio_pmds``), then the folio (``split_and_remap``). Returns the pages freed, or -1
    if it cannot split (mlocked: left as it is)."""
    if S.fr_flags[head] & PG_mlocked:
        return -1
    split_folio_pmds(S.cfg, S.gs, S.vmstat, S.fr32, S.fr_idx, S.fr_flags, S.pt, S.pt_aux, S.mm,
                     S.tlb, S.pwc, head)
    return split_and_remap(S, head)


@kernel(inline="always")
def _deferred_match(gs, fr_memcg, head, target, local):
    """Is queued THP ``head`` on memcg ``target``'s queue (``local``: charged to it; else to its
    subtree, every THP for the root)?"""
    if local:
        return fr_memcg[head] == target
    return target == 0 or memcg_is_descendant(gs, fr_memcg[head], target)


@kernel
def deferred_split_count(S, target, local):
    """deferred_split_count: the THPs on ``target``'s queue (see ``_deferred_match``)."""
    gs = S.gs
    if (target == 0 and not local) or gs[G_NR_MEMCG] == 1:
        return gs[G_DEFERRED_N]             # the whole queue (one memcg: every THP is the root's)
    n = 0
    head = gs[G_DEFERRED_HEAD]
    while head >= 0:
        if _deferred_match(gs, S.fr_memcg, head, target, local):
            n += 1
        head = S.fr32[FR_NEXT, head + 2]
    return n


@kernel
def deferred_split_scan(S, nr_to_scan, target, local):
    """The deferred-split shrinker: up to ``nr_to_scan`` queued THPs charged to memcg ``target``'s
    subtree (every THP for the root, 0; with ``local`` those charged to ``target`` itself, its
    own queue), oldest first: the kernel's queues are per memcg (5.4+, memcg-aware). A partially
    mapped one is split (it stays queued if it cannot be); from 6.12 an underused one
    (``thp_underused``) is split too (thp_underused_split_page) and any other leaves the queue.
    Returns the pages freed."""
    gs = S.gs
    fr32 = S.fr32
    fr_flags = S.fr_flags
    freed = 0
    head = gs[G_DEFERRED_HEAD]
    n = 0
    while head >= 0 and n < nr_to_scan:
        nxt = fr32[FR_NEXT, head + 2]
        if not _deferred_match(gs, S.fr_memcg, head, target, local):
            head = nxt
            continue
        n += 1
        if fr_flags[head] & PG_partially_mapped:
            f = split_and_remap(S, head)
        elif thp_underused(S.cfg, fr_flags, head):
            f = split_anon_folio(S, head)
            if f >= 0:
                S.vmstat[VS_THP_UNDERUSED_SPLIT_PAGE] += 1
            else:
                deferred_split_remove(gs, fr32, fr_flags, head)
        else:
            f = 0
            deferred_split_remove(gs, fr32, fr_flags, head)
        if f > 0:
            freed += f
        head = nxt
    return freed
