"""mprotect and the page-table side of VMA changes (mm/mprotect.c, mm/huge_memory.c)."""
from .consts import (
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    HPAGE_PMD_SIZE,
    MM_PGD,
    VM_EXEC,
    VM_READ,
    VM_WRITE,
    PG_anon_exclusive,
)
from .huge_memory import split_huge_pmd, split_page_too
from .jit import kernel
from .pagetable import entry_pfn, next_pmd, pmd_lookup, pte_lookup
from .tlb import flush_tlb_page


@kernel
def split_pmd_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, tlb,
                 pwc, mmi, va):
    """vma_adjust_trans_huge: a VMA boundary inside a PMD-mapped THP splits that PMD first (3.10:
    and the page). Returns 1 if it split."""
    if (va & (HPAGE_PMD_SIZE - 1)) == 0:
        return 0
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0 or (pt[pos] & _PAGE_PSE) == 0 or (pt[pos] & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
        return 0
    head = entry_pfn(pt[pos])
    split_huge_pmd(cfg, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, mmi, pos)
    flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
    split_page_too(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, tlb,
                   pwc, head)
    return 1


@kernel
def _exclusive(fr_flags, pfn):
    """PageAnonExclusive (for a PMD leaf, the head page's)."""
    return (fr_flags[pfn] & PG_anon_exclusive) != 0


@kernel
def new_leaf(e, vm_flags, exclusive):
    """change_pte_range / change_huge_pmd on one leaf for the VMA's new flags."""
    if e & _PAGE_PROTNONE and (e & _PAGE_PRESENT) == 0:
        e = (e & ~_PAGE_PROTNONE) | _PAGE_PRESENT
    if (vm_flags & (VM_READ | VM_WRITE | VM_EXEC)) == 0:
        return (e & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE
    if (vm_flags & VM_WRITE) == 0:
        e &= ~_PAGE_RW
    elif exclusive and (e & _PAGE_SPECIAL) == 0:
        e |= _PAGE_RW
    if vm_flags & VM_EXEC:
        e &= ~_PAGE_NX
    else:
        e |= _PAGE_NX
    return e


@kernel
def change_protection(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, start, end, vm_flags):
    """Rewrite the leaves of [start, end) (PMDs at the ends already split). Returns how many
    entries changed."""
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return 0
    changed = 0
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            pfn = entry_pfn(e)
            ne = new_leaf(e, vm_flags, (e & _PAGE_SPECIAL) == 0
                          and _exclusive(fr_flags, pfn))
            if ne != e:
                pt[pos] = ne
                changed += 1
            va = nxt
            continue
        tb = pte_lookup(pt, fr_idx, e, va)
        for k in range((nxt - va) >> 12):
            pe = pt[tb + k]
            if pe == 0 or (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
                continue                      # none, or a swap entry: nothing to change
            ne = new_leaf(pe, vm_flags, (pe & _PAGE_SPECIAL) == 0
                          and _exclusive(fr_flags, entry_pfn(pe)))
            if ne != pe:
                pt[tb + k] = ne
                changed += 1
        va = nxt
    return changed
