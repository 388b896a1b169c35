"""The walks behind the /proc observables, and the clear_refs write (fs/proc/task_mmu.c)."""
from .consts import (
    SWP_COUNT,
    FILE_ENTIRE,
    PG_file_thp,
    PG_swapbacked,
    PG_ramfs,
    PG_dirty,
    PG_anon,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_SPECIAL,
    FR_MAPCOUNT,
    FR_OWNER,
    HPAGE_PMD_NR,
    HPAGE_PMD_SIZE,
    MM_PGD,
    PG_lazyfree,
    PG_referenced,
    PG_tail,
    C_COST_COPY_PTE,
    C_COST_SYSCALL,
    C_COST_TLB_FLUSH,
    MM_VBASE,
    MM_VCOUNT,
    OK,
    T_CLOCK,
    V_END,
    V_FILE,
    V_START,
)
from .filemap import file_entire_mapcount, file_folio_head
from .jit import kernel
from .pagetable import entry_pfn, next_pmd, pte_lookup, swp_offset
from .syscalls import op_begin, op_end
from .tlb import flush_tlb_mm

# smaps_walk output slots (pages, except PSS which is pages << 12 to keep the kernel's precision)
SM_RSS = 0
SM_PSS = 1
SM_SHARED_CLEAN = 2
SM_SHARED_DIRTY = 3
SM_PRIVATE_CLEAN = 4
SM_PRIVATE_DIRTY = 5
SM_REFERENCED = 6
SM_ANONYMOUS = 7
SM_ANON_HUGE = 8
SM_PSS_DIRTY = 9
SM_LAZYFREE = 10
SM_SHMEM_PMD = 11           # ShmemPmdMapped
SM_FILE_PMD = 12            # FilePmdMapped
SM_SWAP = 13                # swap entries (pages)
SM_SWAP_PSS = 14            # bytes: each entry's page divided among the PTEs that hold it
NR_SM = 15


@kernel
def smaps_walk(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, start, end, out, swp):
    """smaps_pte_range / smaps_pmd_entry over [start, end): accumulate into ``out``."""
    pgd = mm[MM_PGD, mmi]
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            if (e & _PAGE_SPECIAL) == 0 and fr_flags[entry_pfn(e)] & PG_file_thp:
                # smaps_pmd_entry for a page-cache THP
                head = entry_pfn(e)
                n = (nxt - va) >> 12
                first = (va >> 12) & (HPAGE_PMD_NR - 1)
                entire = fr32[FILE_ENTIRE, head + 1]
                dirty = (fr_flags[head] & PG_dirty) != 0
                for k in range(first, first + n):
                    _account(out, e, 1, entire + fr32[FR_MAPCOUNT, head + k], False, dirty)
                if fr_flags[head] & PG_swapbacked and not fr_flags[head] & PG_ramfs:
                    out[SM_SHMEM_PMD] += n
                else:
                    out[SM_FILE_PMD] += n
            elif (e & _PAGE_SPECIAL) == 0:
                head = entry_pfn(e)
                n = (nxt - va) >> 12
                first = (va >> 12) & (HPAGE_PMD_NR - 1)
                entire = fr32[FR_OWNER, head + 1]
                for k in range(first, first + n):
                    # each subpage: the PMD mappings plus its own PTE mappings elsewhere
                    _account(out, e, 1, entire + fr32[FR_MAPCOUNT, head + k], True, False)
                out[SM_ANON_HUGE] += n
                if fr_flags[head] & PG_lazyfree and (e & _PAGE_DIRTY) == 0:
                    out[SM_LAZYFREE] += n
            va = nxt
            continue
        tb = pte_lookup(pt, fr_idx, e, va)
        for i in range((nxt - va) >> 12):
            pe = pt[tb + i]
            if (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
                if pe != 0:
                    # a swap entry: Swap, and SwapPss by the slot's count (swp_swapcount)
                    out[SM_SWAP] += 1
                    out[SM_SWAP_PSS] += 4096 // max(swp[SWP_COUNT, swp_offset(pe)], 1)
                continue
            if (pe & _PAGE_SPECIAL) != 0:
                continue
            pfn = entry_pfn(pe)
            mc = fr32[FR_MAPCOUNT, pfn]
            f = fr_flags[pfn]
            if f & PG_file_thp:
                head = file_folio_head(fr_flags, pfn)
                mc += file_entire_mapcount(fr32, fr_flags, pfn)
                f = fr_flags[head]                 # the folio's dirty bit
            elif f & PG_tail or fr_order[pfn] > 0:
                mc += fr32[FR_OWNER, (pfn & ~(HPAGE_PMD_NR - 1)) + 1]
            anon = (f & (PG_anon | PG_tail)) != 0
            _account(out, pe, 1, mc, anon, not anon and (f & PG_dirty) != 0)
            if fr_flags[pfn] & PG_lazyfree and (pe & _PAGE_DIRTY) == 0:
                out[SM_LAZYFREE] += 1
        va = nxt


@kernel
def _account(out, e, n, mapcount, anon, page_dirty):
    """smaps_account: a page counts dirty if its PTE or (a file page) the page itself is."""
    dirty = (e & _PAGE_DIRTY) != 0 or page_dirty
    out[SM_RSS] += n
    if anon:
        out[SM_ANONYMOUS] += n
    if e & _PAGE_ACCESSED:
        out[SM_REFERENCED] += n
    mc = max(mapcount, 1)
    out[SM_PSS] += (n << 12) // mc
    if dirty:
        out[SM_PSS_DIRTY] += (n << 12) // mc
    if mapcount >= 2:
        if dirty:
            out[SM_SHARED_DIRTY] += n
        else:
            out[SM_SHARED_CLEAN] += n
    elif dirty:
        out[SM_PRIVATE_DIRTY] += n
    else:
        out[SM_PRIVATE_CLEAN] += n


@kernel
def dump_leaves(cfg, pt, fr_idx, mm, mmi, start, end, vas, entries):
    """Every present (or zero-page) leaf in [start, end): its address and entry; returns count."""
    pgd = mm[MM_PGD, mmi]
    n = 0
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            if n < vas.shape[0]:
                vas[n] = va & ~(HPAGE_PMD_SIZE - 1)
                entries[n] = e
            n += 1
            va = nxt
            continue
        tb = pte_lookup(pt, fr_idx, e, va)
        for i in range((nxt - va) >> 12):
            pe = pt[tb + i]
            if pe != 0:
                if n < vas.shape[0]:
                    vas[n] = va + (i << 12)
                    entries[n] = pe
                n += 1
        va = nxt
    return n


@kernel
def clear_refs(S, ti, mmi, kind):
    """A write to /proc/PID/clear_refs (clear_refs_write): ``kind`` 1 clears the accessed bits of
    every page table leaf and PG_referenced of the pages they map, 2 only in anonymous VMAs, 3
    only in file VMAs; then the mm's TLB entries go. The writer ``ti`` pays a system call plus
    one entry's work per leaf. Returns (OK, leaves visited)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pgd = mm[MM_PGD, mmi]
    leaves = 0
    if pgd >= 0:
        base = mm[MM_VBASE, mmi]
        for j in range(mm[MM_VCOUNT, mmi]):
            p = base + j
            f = vma[V_FILE, p]
            if f == -2 or (kind == 2 and f >= 0) or (kind == 3 and f < 0):
                continue
            va = vma[V_START, p]
            end = vma[V_END, p]
            while va < end:
                pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
                if pos < 0:
                    va = nxt
                    continue
                e = pt[pos]
                if e & _PAGE_PSE:
                    if (e & _PAGE_SPECIAL) == 0:
                        fr_flags[entry_pfn(e)] &= ~PG_referenced
                    pt[pos] = e & ~_PAGE_ACCESSED
                    leaves += 1
                    va = nxt
                    continue
                tb = pte_lookup(pt, fr_idx, e, va)
                for i in range((nxt - va) >> 12):
                    pe = pt[tb + i]
                    if (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
                        continue
                    pt[tb + i] = pe & ~_PAGE_ACCESSED
                    leaves += 1
                    if (pe & _PAGE_SPECIAL) == 0:
                        pfn = entry_pfn(pe)
                        if (fr_flags[pfn] & PG_tail) != 0:
                            pfn = pfn & ~(HPAGE_PMD_NR - 1)
                        fr_flags[pfn] &= ~PG_referenced
                va = nxt
    flush_tlb_mm(cfg, tlb, pwc, mmi + 1)
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += (cfg[C_COST_SYSCALL] + cfg[C_COST_TLB_FLUSH]
                          + leaves * cfg[C_COST_COPY_PTE])
    op_end(gs, task, cpus, ti)
    return OK, leaves
