"""x86-64 page tables kept in a pool of simulated frames (arch/x86/mm/pgtable.c, mm/memory.c).

Every table is a real frame from the buddy allocator (UNMOVABLE); its 512 entries live in the pool
``pt`` at ``slot * 512``; ``fr_idx[pfn]`` gives a table frame's slot and ``pt_aux[0, slot]`` its
pfn. Entries use the hardware bit layout, so a dump reads like the hardware's.
"""
from .consts import (
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_TABLE,
    C_PT_LEVELS,
    FR_NEXT,
    FR_OWNER,
    G_PT_CAP,
    G_PT_NEXT,
    G_PT_NFREE,
    MIGRATE_UNMOVABLE,
    MM_PGD,
    MM_PGTABLES,
    PTE_PFN_MASK,
    PTRS_PER_TABLE,
    VS_NR_PAGE_TABLE_PAGES,
    VS_PGALLOC,
    VS_PGFREE,
    PG_head,
    PG_pgtable,
)
from .jit import kernel
from .page_alloc import free_pages, rmqueue


@kernel
def entry_pfn(e):
    return (e & PTE_PFN_MASK) >> 12


# x86-64 swap entries (arch/x86/include/asm/pgtable_64.h): not present, not PROT_NONE; the type
# in the top 5 bits (0 here: one swap device), the offset inverted from bit 9 up (L1TF: an
# inverted offset never points at memory)
SWP_OFFSET_BITS = 50
SWP_OFFSET_MASK = (1 << SWP_OFFSET_BITS) - 1


@kernel(inline="always")
def is_swap_pte(e):
    """A swap entry: non-zero, neither present nor a PROT_NONE leaf."""
    return e != 0 and (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0


@kernel(inline="always")
def swp_entry_pte(offset):
    """__swp_entry(0, offset) as a PTE (__swp_entry_to_pte)."""
    return ((~offset) & SWP_OFFSET_MASK) << 9


@kernel(inline="always")
def swp_offset(e):
    """__swp_offset of a swap PTE."""
    return ((~e) >> 9) & SWP_OFFSET_MASK


@kernel
def pt_slots_available(gs):
    return gs[G_PT_NFREE] + gs[G_PT_CAP] - gs[G_PT_NEXT]


@kernel
def top_shift(cfg):
    return 39 + 9 * (cfg[C_PT_LEVELS] - 4)


@kernel
def alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, owner):
    """pte_alloc_one & co.: one zeroed table frame; returns its pfn or -1 (no memory).

    The caller has checked ``pt_slots_available``: the pool never runs out here.
    """
    pfn = alloc_deposit_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux,
                              owner)
    if pfn >= 0:
        base = fr_idx[pfn] * PTRS_PER_TABLE
        pt[base:base + PTRS_PER_TABLE] = 0
    return pfn


@kernel(inline="always")
def alloc_deposit_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, owner):
    """A table frame from the pool with its entries left as they were: ``alloc_table`` zeroes
    them; the PTE table a PMD leaf deposits (pgtable_trans_huge_deposit) is taken as it is. The
    kernel's comes zeroed too, but nothing reads a deposited table before the PMD split that
    withdraws it writes all 512 of its entries (``__split_huge_pmd_locked``), and a zap frees it
    unread, so the 4 KiB the zeroing would write are host time for nothing. The page-table
    accounting and the simulated cost are the same."""
    pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, 0, MIGRATE_UNMOVABLE)
    if pfn < 0:
        return -1
    if gs[G_PT_NFREE] > 0:
        gs[G_PT_NFREE] -= 1
        slot = pt_aux[1, gs[G_PT_NFREE]]
    else:
        slot = gs[G_PT_NEXT]
        gs[G_PT_NEXT] = slot + 1
    pt_aux[0, slot] = pfn
    fr_idx[pfn] = slot
    fr_flags[pfn] = PG_head | PG_pgtable
    fr32[FR_OWNER, pfn] = owner
    fr32[FR_NEXT, pfn] = -1          # head of the deposited-table list (pmd_huge_pte)
    vmstat[VS_PGALLOC] += 1
    return pfn


@kernel
def free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, pfn):
    slot = fr_idx[pfn]
    pt_aux[1, gs[G_PT_NFREE]] = slot
    gs[G_PT_NFREE] += 1
    pt_aux[0, slot] = -1
    fr_flags[pfn] = 0
    fr_idx[pfn] = 0
    fr32[FR_OWNER, pfn] = 0
    vmstat[VS_PGFREE] += 1
    free_pages(gs, fr32, fr_flags, fr_order, pb_mt, pfn, 0)


@kernel
def pmd_lookup(cfg, pt, fr_idx, pgd_pfn, va):
    """Position in ``pt`` of the PMD entry covering ``va``, or -1 if an upper level is missing."""
    if pgd_pfn < 0:
        return -1
    slot = fr_idx[pgd_pfn]
    shift = top_shift(cfg)
    while shift > 21:
        e = pt[slot * PTRS_PER_TABLE + ((va >> shift) & 511)]
        if (e & _PAGE_PRESENT) == 0:
            return -1
        slot = fr_idx[entry_pfn(e)]
        shift -= 9
    return slot * PTRS_PER_TABLE + ((va >> 21) & 511)


@kernel
def pte_lookup(pt, fr_idx, pmde, va):
    """Position of the PTE for ``va`` in the PTE table a non-leaf PMD entry points to."""
    return fr_idx[entry_pfn(pmde)] * PTRS_PER_TABLE + ((va >> 12) & 511)


@kernel(inline="always")
def pmd_alloc_walk(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi,
                   va):
    """Walk to the PMD entry of ``va``, allocating missing PUD/PMD (and P4D) tables top-down.

    Returns (position or -1 on no memory, number of tables allocated). The PGD must exist.
    """
    slot = fr_idx[mm[MM_PGD, mmi]]
    shift = top_shift(cfg)
    n = 0
    while shift > 21:
        pos = slot * PTRS_PER_TABLE + ((va >> shift) & 511)
        e = pt[pos]
        if (e & _PAGE_PRESENT) == 0:
            pfn = alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                              mmi)
            if pfn < 0:
                return -1, n
            n += 1
            mm[MM_PGTABLES, mmi] += 1
            vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
            e = _PAGE_TABLE | (pfn << 12)
            pt[pos] = e
        slot = fr_idx[entry_pfn(e)]
        shift -= 9
    return slot * PTRS_PER_TABLE + ((va >> 21) & 511), n


@kernel
def deposit_table(fr32, pmd_table_pfn, table_pfn):
    """pgtable_trans_huge_deposit: keep a PTE table for a later split, listed on the PMD table."""
    fr32[FR_NEXT, table_pfn] = fr32[FR_NEXT, pmd_table_pfn]
    fr32[FR_NEXT, pmd_table_pfn] = table_pfn


@kernel
def withdraw_table(fr32, pmd_table_pfn):
    t = fr32[FR_NEXT, pmd_table_pfn]
    fr32[FR_NEXT, pmd_table_pfn] = fr32[FR_NEXT, t]
    fr32[FR_NEXT, t] = -1
    return t


@kernel
def next_pmd(cfg, pt, fr_idx, pgd, va, end):
    """Step of a walk over [va, end) by PMD ranges: (PMD entry position or -1, next address).

    -1 means nothing is mapped up to the next address (a missing table skips its whole span).
    """
    nxt = min((va | ((1 << 21) - 1)) + 1, end)
    pos = pmd_lookup(cfg, pt, fr_idx, pgd, va)
    if pos < 0:
        return -1, min((va | ((1 << 30) - 1)) + 1, end)
    if pt[pos] == 0:
        return -1, nxt
    return pos, nxt
