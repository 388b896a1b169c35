"""Reverse-map bookkeeping of anonymous folios (mm/rmap.c ``folio_remove_rmap_pte``, and the
freeing that follows the last unmapping): shared by faults, zapping, khugepaged and swap-out."""
from .consts import (
    FR_MAPCOUNT,
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
from .huge_memory import deferred_split_folio, deferred_split_remove
from .jit import kernel
from .page_alloc import free_pages
from .page_counter import CHARGE_ANON, memcg_uncharge_folio


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
        deferred_split_folio(gs, vmstat, fr32, fr_flags, head)


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


