"""fork's address-space copy and exit's teardown (kernel/fork.c dup_mmap, mm/memory.c
copy_page_range, mm/mmap.c exit_mmap)."""
import numpy as np

from .consts import (
    MM_SWAPENTS,
    SWP_COUNT,
    _PAGE_PROTNONE,
    G_COMMITTED,
    VM_ACCOUNT,
    PG_anon,
    VM_SHARED,
    V_FILE,
    _PAGE_ACCESSED,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_TABLE,
    C_COST_COPY_PTE,
    C_COST_PGTABLE_ALLOC,
    C_PT_LEVELS,
    ENOMEM,
    FR_MAPCOUNT,
    FR_OWNER,
    HPAGE_PMD_NR,
    MM_ANON,
    MM_ANON_THP,
    MM_ANONPAGES,
    MM_BRK,
    MM_BRK_START,
    MM_DEF_FLAGS,
    MM_FLAGS,
    MM_HAD_PMD,
    MM_LOCKED,
    MM_PGD,
    MM_PGTABLES,
    MM_TOTAL_VM,
    MM_VBASE,
    MM_VCOUNT,
    MMF_DISABLE_THP_COMPLETELY,
    MMF_DISABLE_THP_EXCEPT_ADVISED,
    MMF_VM_HUGEPAGE,
    NR_V_FIELDS,
    OK,
    PTRS_PER_TABLE,
    V_END,
    V_FLAGS,
    V_START,
    VM_LOCKED,
    VM_LOCKONFAULT,
    VM_NOHUGEPAGE,
    VS_NR_PAGE_TABLE_PAGES,
    PG_anon_exclusive,
    PG_tail,
    PG_file_thp,
)
from .filemap import file_rss
from .jit import kernel
from .memory import zap_page_range
from .mlock import mlock_range
from .pagetable import (
    alloc_deposit_table,
    alloc_table,
    deposit_table,
    entry_pfn,
    free_table,
    next_pmd,
    pmd_alloc_walk,
    pte_lookup,
    swp_offset,
)

MMF_INIT_MASK = ((1 << MMF_DISABLE_THP_COMPLETELY) | (1 << MMF_DISABLE_THP_EXCEPT_ADVISED)
                 | (1 << MMF_VM_HUGEPAGE))


@kernel
def _child_pte_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                     cm, va):
    """The child's PTE table for ``va`` (allocated top-down if missing): (table pfn, tables made)."""
    pos, n = pmd_alloc_walk(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                            mm, cm, va)
    if pos < 0:
        return -1, -1, n
    if pt[pos] == 0:
        t = alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, cm)
        if t < 0:
            return -1, -1, n
        pt[pos] = _PAGE_TABLE | (t << 12)
        mm[MM_PGTABLES, cm] += 1
        vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
        n += 1
    return pos, entry_pfn(pt[pos]), n


@kernel
def copy_mm(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma, pm,
            cm, swp):
    """dup_mmap + copy_page_range from mm ``pm`` into the empty mm ``cm``.

    Returns (status, cost): OK, or -ENOMEM (the caller tears the child down).
    """
    cost = 0
    pb = mm[MM_VBASE, pm]
    cb = mm[MM_VBASE, cm]
    cnt = mm[MM_VCOUNT, pm]
    for i in range(cnt):
        for f in range(NR_V_FIELDS):
            vma[f, cb + i] = vma[f, pb + i]
        vma[V_FLAGS, cb + i] &= ~(VM_LOCKED | VM_LOCKONFAULT)
    mm[MM_VCOUNT, cm] = cnt
    mm[MM_FLAGS, cm] = mm[MM_FLAGS, pm] & MMF_INIT_MASK
    mm[MM_DEF_FLAGS, cm] = mm[MM_DEF_FLAGS, pm] & VM_NOHUGEPAGE
    mm[MM_ANON, cm] = mm[MM_ANON, pm]
    mm[MM_TOTAL_VM, cm] = mm[MM_TOTAL_VM, pm]
    mm[MM_LOCKED, cm] = 0
    mm[MM_BRK, cm] = mm[MM_BRK, pm]
    mm[MM_BRK_START, cm] = mm[MM_BRK_START, pm]
    ppgd = mm[MM_PGD, pm]
    if ppgd < 0:
        return OK, cost
    pgd = alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, cm)
    if pgd < 0:
        return -ENOMEM, cost
    mm[MM_PGD, cm] = pgd
    vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
    cost += cfg[C_COST_PGTABLE_ALLOC]
    tcost = cfg[C_COST_PGTABLE_ALLOC]
    ccost = cfg[C_COST_COPY_PTE]
    for i in range(cnt):
        start = vma[V_START, pb + i]
        end = vma[V_END, pb + i]
        if vma[V_FILE, pb + i] >= 0 and vma[V_FLAGS, pb + i] & VM_SHARED:
            continue        # vma_needs_copy: a shared file mapping faults its pages in again
        va = start
        while va < end:
            pos, nxt = next_pmd(cfg, pt, fr_idx, ppgd, va, end)
            if pos < 0:
                va = nxt
                continue
            e = pt[pos]
            if e & _PAGE_PSE and fr_flags[entry_pfn(e)] & PG_file_thp:
                va = nxt        # copy_huge_pmd: a file PMD is not copied (faulted in again)
                continue
            if e & _PAGE_PSE:
                # copy_huge_pmd: PMD table first, then the table to deposit, then the entries
                cpos, n = pmd_alloc_walk(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                         pt, pt_aux, mm, cm, va)
                cost += n * tcost
                if cpos < 0:
                    return -ENOMEM, cost
                dep = alloc_deposit_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order,
                                          pb_mt, pt_aux, cm)
                if dep < 0:
                    return -ENOMEM, cost
                cost += tcost + ccost
                deposit_table(fr32, pt_aux[0, cpos // PTRS_PER_TABLE], dep)
                mm[MM_PGTABLES, cm] += 1
                vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
                if (e & _PAGE_SPECIAL) == 0:
                    e &= ~_PAGE_RW
                    pt[pos] = e
                    head = entry_pfn(e)
                    fr32[FR_OWNER, head + 1] += 1
                    for q in range(HPAGE_PMD_NR):
                        fr_flags[head + q] &= ~PG_anon_exclusive
                    mm[MM_ANONPAGES, cm] += HPAGE_PMD_NR
                    mm[MM_ANON_THP, cm] += 1
                pt[cpos] = e & ~_PAGE_ACCESSED
                mm[MM_HAD_PMD, cm] = 1
                va = nxt
                continue
            tb = pte_lookup(pt, fr_idx, e, va)
            ctab = -1
            for k in range((nxt - va) >> 12):
                pe = pt[tb + k]
                if pe == 0:
                    continue
                if ctab < 0:
                    cpos, ctab, n = _child_pte_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags,
                                                     fr_order, pb_mt, pt, pt_aux, mm, cm, va)
                    cost += n * tcost
                    if ctab < 0:
                        return -ENOMEM, cost
                    cbase = fr_idx[ctab] * PTRS_PER_TABLE + ((va >> 12) & 511)
                if (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
                    # a swap entry: the child holds it too (swap_duplicate)
                    swp[SWP_COUNT, swp_offset(pe)] += 1
                    mm[MM_SWAPENTS, cm] += 1
                    pt[cbase + k] = pe
                    cost += ccost
                    continue
                if (pe & _PAGE_SPECIAL) == 0 and (fr_flags[entry_pfn(pe)] & (PG_anon | PG_tail)) == 0:
                    # a page-cache page in a private file mapping: one more read-only mapping
                    pfn = entry_pfn(pe)
                    fr32[FR_MAPCOUNT, pfn] += 1
                    file_rss(mm, cm, fr_flags, pfn, 1)
                elif (pe & _PAGE_SPECIAL) == 0:
                    pe &= ~_PAGE_RW
                    pt[tb + k] = pe
                    pfn = entry_pfn(pe)
                    fr32[FR_MAPCOUNT, pfn] += 1
                    fr_flags[pfn] &= ~PG_anon_exclusive
                    if fr_flags[pfn] & PG_tail or fr_order[pfn] > 0:
                        fr_idx[(pfn & ~(HPAGE_PMD_NR - 1)) + 1] += 1
                    mm[MM_ANONPAGES, cm] += 1
                pt[cbase + k] = pe & ~_PAGE_ACCESSED
                cost += ccost
            va = nxt
    return OK, cost


@kernel
def free_all_tables(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                    mmi):
    """Free every page table of an mm whose VMAs are gone: the lowest level first, each level in
    ascending address order, the PGD last (free_pgtables over the whole space, then pgd_free)."""
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return
    levels = cfg[C_PT_LEVELS]
    # depth d tables are pointed to by entries of depth d-1 tables; PTE tables have depth levels-1
    for depth in range(levels - 1, 0, -1):
        _free_depth(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi,
                    pgd, depth)
    free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, pgd)
    vmstat[VS_NR_PAGE_TABLE_PAGES] -= 1
    mm[MM_PGD, mmi] = -1


@kernel
def _free_depth(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi, pgd,
                depth):
    """Depth-first, ascending walk down to the tables of ``depth``, freeing each."""
    slots = np.zeros(6, np.int64)
    idx = np.zeros(6, np.int64)
    slots[0] = fr_idx[pgd]
    idx[0] = 0
    d = 0
    while d >= 0:
        if idx[d] >= PTRS_PER_TABLE:
            d -= 1
            if d >= 0:
                idx[d] += 1
            continue
        pos = slots[d] * PTRS_PER_TABLE + idx[d]
        e = pt[pos]
        if (e & _PAGE_PRESENT) == 0 or (e & _PAGE_PSE) != 0:
            idx[d] += 1
            continue
        child = entry_pfn(e)
        if d + 1 == depth:
            pt[pos] = 0
            free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, child)
            mm[MM_PGTABLES, mmi] -= 1
            vmstat[VS_NR_PAGE_TABLE_PAGES] -= 1
            idx[d] += 1
        else:
            d += 1
            slots[d] = fr_idx[child]
            idx[d] = 0


@kernel
def exit_mmap(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma, tlb,
              pwc, mmi, swp):
    """Tear down an mm: zap every VMA in address order, then free every table. Returns the
    leaves zapped."""
    b = mm[MM_VBASE, mmi]
    zapped = 0
    for i in range(mm[MM_VCOUNT, mmi]):
        if vma[V_FLAGS, b + i] & VM_ACCOUNT:                   # vm_unacct_memory(nr_accounted)
            gs[G_COMMITTED] -= (vma[V_END, b + i] - vma[V_START, b + i]) >> 12
        if vma[V_FLAGS, b + i] & VM_LOCKED:
            mlock_range(cfg, pt, fr_idx, fr_flags, fr_order, vmstat, mm, mmi, vma[V_START, b + i],
                        vma[V_END, b + i], False)
        zapped += zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                 pt_aux, mm, tlb, pwc, mmi, vma[V_START, b + i],
                                 vma[V_END, b + i], swp)
    mm[MM_VCOUNT, mmi] = 0
    mm[MM_TOTAL_VM, mmi] = 0
    mm[MM_LOCKED, mmi] = 0
    free_all_tables(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi)
    return zapped
