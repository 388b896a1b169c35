"""khugepaged and MADV_COLLAPSE: coalescing 4 KiB anonymous pages into PMD-mapped THPs
(mm/khugepaged.c; spec 3.6-3.9).

khugepaged is a background thread in simulated time. It sleeps ``scan_sleep_millisecs`` between
wakeups (``alloc_sleep_millisecs`` after a failed huge page allocation), and asleep for good while
no mm is enrolled. Each wakeup examines ``pages_to_scan`` PTEs' worth of 2 MiB ranges, mm by mm in
enrolment order, resuming where the last wakeup stopped; a pass over every enrolled mm counts in
``full_scans``. The kernels that advance a task's clock stop with TIMER when a wakeup is due, and
``khugepaged_run`` (its own entry kernel, so the fault path's compilation does not grow with it)
runs the wakeups due, before they re-enter. A wakeup's scanning and copying run on khugepaged's
own time (``G_KH_BUSY_PS``); the next wakeup comes that much later.

A range collapses when (``hpage_collapse_scan_pmd``): its PMD maps a PTE table; PTEs that are none
or map the zero page number at most ``max_ptes_none``; swap entries at most ``max_ptes_swap``;
pages mapped more than once at most ``max_ptes_shared``; every page is anonymous and on the LRU;
one PTE or page is young or referenced; and the kernel profile's writable rule holds
(``C_COLLAPSE_RULE``). MADV_COLLAPSE ignores the three limits, the referenced test and the sysfs
``enabled`` mode.
"""
from .consts import (
    C_ZERO_REMAP,
    C_COST_SWAP_READ,
    C_SHRINK_UNDERUSED,
    MM_SWAPENTS,
    PG_written,
    SWP_WRITTEN,
    VS_PGMAJFAULT,
    VS_PSWPIN,
    _PAGE_PROTNONE,
    MM_MEMCG,
    SCAN_CGROUP_CHARGE_FAIL,
    VS_PGFREE,
    PG_dirty,
    FST_TMPFS,
    FS_TYPE,
    C_HPC_MODEL,
    FG_PC_USED,
    FS_FREE,
    HPC_MAINLINE,
    I_FS,
    I_SIZE,
    PG_file_thp,
    SCAN_VMA_CHECK,
    VM_SHARED,
    VS_NR_PAGE_TABLE_PAGES,
    VS_THP_FILE_MAPPED,
    MM_PGTABLES,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    C_COLLAPSE_RULE,
    C_COST_CLEAR_PAGE,
    C_COST_COPY_PAGE,
    C_COST_SCAN_PTE,
    C_COST_SYSCALL,
    C_COST_TLB_FLUSH,
    C_KH_ALLOC_SLEEP_PS,
    C_KH_DEFRAG,
    C_KH_MAX_PTES_NONE,
    C_KH_MAX_PTES_SHARED,
    C_KH_MAX_PTES_SWAP,
    C_KERNEL,
    C_KH_PAGES_TO_SCAN,
    C_KH_SCAN_SLEEP_PS,
    C_NR_FRAMES,
    COLLAPSE_ALL_WRITABLE,
    COLLAPSE_ONE_WRITABLE,
    EAGAIN,
    EBUSY,
    EINVAL,
    ENOMEM,
    FR_MAPCOUNT,
    FR_OWNER,
    G_KH_ADDR,
    G_KH_BUSY_PS,
    G_KH_COLLAPSED,
    G_KH_FULL_SCANS,
    G_KH_MM,
    G_KH_SCANNED,
    G_KH_WAKE,
    G_NR_MM,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    HPAGE_PMD_SIZE,
    MIGRATE_MOVABLE,
    MM_ANON,
    MM_ANON_THP,
    MM_ANONPAGES,
    MM_FLAGS,
    MM_HAD_PMD,
    MM_KH_SEQ,
    MM_PGD,
    MM_USERS,
    MM_VBASE,
    MM_VCOUNT,
    MMF_VM_HUGEPAGE,
    NEED_GROW,
    OK,
    PTRS_PER_TABLE,
    SCAN_ALLOC_HUGE_PAGE_FAIL,
    SCAN_EXCEED_NONE_PTE,
    SCAN_FAIL,
    SCAN_EXCEED_SHARED_PTE,
    SCAN_EXCEED_SWAP_PTE,
    SCAN_LACK_REFERENCED_PAGE,
    SCAN_PAGE_ANON,
    SCAN_PAGE_COMPOUND,
    SCAN_PAGE_COUNT,
    SCAN_PAGE_LRU,
    SCAN_PAGE_NULL,
    SCAN_PAGE_RO,
    SCAN_PMD_MAPPED,
    SCAN_PMD_NULL,
    SCAN_SUCCEED,
    T_CLOCK,
    TASK_SIZE,
    T_MM,
    V_END,
    V_ANON_VMA,
    V_FILE,
    V_PGOFF,
    V_FLAGS,
    V_START,
    VM_LOCKED,
    VM_WRITE,
    VS_NR_ANON_PAGES,
    VS_NR_ANON_THP,
    VS_PGALLOC,
    VS_THP_COLLAPSE_ALLOC,
    VS_THP_COLLAPSE_ALLOC_FAILED,
    VS_THP_SCAN_EXCEED_NONE_PTE,
    VS_THP_SCAN_EXCEED_SHARE_PTE,
    VS_THP_SCAN_EXCEED_SWAP_PTE,
    PG_anon,
    PG_lru,
    LRU_UNEVICTABLE,
    PG_referenced,
    PG_tail,
)
from .compaction import try_compact_direct
from .events import NEVER, rearm
from .huge_memory import (
    collapse_vma_ok,
    deferred_split_folio,
    hugepage_pmd_enabled,
    leaf_prot,
    prep_anon_folio,
)
from .jit import kernel
from .lru import file_lru, lru_move_head
from .page_counter import CHARGE_ANON, memcg_commit, memcg_try_charge, page_counter_uncharge
from .memory import queue_if_partial, remove_rmap_pte
from .pagetable import swp_offset
from .swap import swap_put
from .mlock import mlock_folio, munlock_anon_pte_page
from .file_fault import file_room, munlock_mapped
from .mmap import find_vma_index
from .filemap import (
    charge_kind,
    file_folio_head,
    filemap_add_large,
    filemap_get_folio,
    filemap_remove_page,
    map_file_pmd,
    unmap_file_pte,
)
from .page_writeback import inode_vmas
from .pagetable import free_table
from .shmem import HUGE_FOR_FAULT, file_thp_vma_ok, shmem_huge_wanted
from .vmscan import file_pte_of
from .page_alloc import free_pages, rmqueue
from .pagetable import deposit_table, entry_pfn, pmd_lookup
from .syscalls import op_begin, op_end, vma_parts
from .tlb import flush_tlb_range


@kernel
def scan_pmd(cfg, vmstat, fr32, fr_flags, fr_order, pt, tb, khugepaged):
    """hpage_collapse_scan_pmd over the PTE table at ``pt[tb:tb + 512]``: a SCAN_* result.

    khugepaged counts the thp_scan_exceed_* events (5.8+); MADV_COLLAPSE (``khugepaged`` false)
    has no limits and no referenced test. Before 5.8 ("khugepaged: allow to collapse a page shared
    across fork", "... PTE-mapped compound pages") a page mapped more than once or part of a
    compound page aborts the scan.
    """
    zp = cfg[C_NR_FRAMES]
    rule = cfg[C_COLLAPSE_RULE]
    old = cfg[C_KERNEL] < 508
    counting = khugepaged and not old
    max_none = cfg[C_KH_MAX_PTES_NONE] if khugepaged else HPAGE_PMD_NR
    max_swap = cfg[C_KH_MAX_PTES_SWAP] if khugepaged else HPAGE_PMD_NR
    max_shared = cfg[C_KH_MAX_PTES_SHARED] if khugepaged else HPAGE_PMD_NR
    none = 0
    unmapped = 0
    shared = 0
    referenced = 0
    writable = 0
    pages = 0
    for i in range(HPAGE_PMD_NR):
        e = pt[tb + i]
        zero = e != 0 and (e & _PAGE_PRESENT) != 0 and (
            (e & _PAGE_SPECIAL) != 0 or entry_pfn(e) == zp)
        if zero and rule == COLLAPSE_ALL_WRITABLE:
            return SCAN_PAGE_RO                  # 3.10: the zero page is not writable
        if e == 0 or zero:                       # none, or the zero page (counted as none)
            none += 1
            if none > max_none:
                if counting:
                    vmstat[VS_THP_SCAN_EXCEED_NONE_PTE] += 1
                return SCAN_EXCEED_NONE_PTE
            continue
        if (e & _PAGE_PRESENT) == 0:
            # a swap entry (a PROT_NONE leaf would be present on x86; such VMAs are skipped)
            if rule == COLLAPSE_ALL_WRITABLE:
                return SCAN_PAGE_NULL            # 3.10: any non-present PTE aborts
            unmapped += 1
            if unmapped > max_swap:
                if counting:
                    vmstat[VS_THP_SCAN_EXCEED_SWAP_PTE] += 1
                return SCAN_EXCEED_SWAP_PTE
            continue
        pfn = entry_pfn(e)
        if e & _PAGE_RW:
            writable += 1
        elif rule == COLLAPSE_ALL_WRITABLE:
            return SCAN_PAGE_RO
        # the folio's flags: a subpage of a PTE-mapped THP answers for its head
        head = pfn
        mapcount = fr32[FR_MAPCOUNT, pfn]
        if fr_flags[pfn] & PG_tail or fr_order[pfn] > 0:
            if old:
                return SCAN_PAGE_COMPOUND        # before 5.8 a compound page aborts
            head = pfn & ~(HPAGE_PMD_NR - 1)
            mapcount += fr32[FR_OWNER, head + 1]  # and its PMD mappings map it too
        f = fr_flags[head]
        if (f & PG_anon) == 0:
            return SCAN_PAGE_ANON
        if (f & PG_lru) == 0:
            return SCAN_PAGE_LRU
        if mapcount > 1:
            if old:
                return SCAN_PAGE_COUNT           # before 5.8: page_count != 1 aborts
            shared += 1
            if shared > max_shared:
                if counting:
                    vmstat[VS_THP_SCAN_EXCEED_SHARE_PTE] += 1
                return SCAN_EXCEED_SHARED_PTE
        if (e & _PAGE_ACCESSED) != 0 or (f & PG_referenced) != 0:
            referenced += 1
        pages += 1
    if pages == 0:
        return SCAN_PAGE_NULL
    if rule == COLLAPSE_ONE_WRITABLE and writable == 0:
        return SCAN_PAGE_RO
    if khugepaged and (referenced == 0 or (unmapped > 0 and referenced < HPAGE_PMD_NR // 2)):
        return SCAN_LACK_REFERENCED_PAGE
    return SCAN_SUCCEED


@kernel
def alloc_collapse_folio(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb,
                         pwc, cg, direct):
    """alloc_charge_folio: an order-9 block (with direct compaction when ``direct``), counted
    in thp_collapse_alloc or thp_collapse_alloc_failed, then charged to memcg ``cg`` (the caller
    commits it). Returns (SCAN_SUCCEED, SCAN_ALLOC_HUGE_PAGE_FAIL or SCAN_CGROUP_CHARGE_FAIL,
    pfn or -1, cost in ps)."""
    cost = 0
    pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
    if pfn < 0 and direct:
        pfn, cost = try_compact_direct(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                       pt, mm, tlb, pwc)
    if pfn < 0:
        vmstat[VS_THP_COLLAPSE_ALLOC_FAILED] += 1
        return SCAN_ALLOC_HUGE_PAGE_FAIL, -1, cost
    vmstat[VS_THP_COLLAPSE_ALLOC] += 1
    vmstat[VS_PGALLOC] += HPAGE_PMD_NR
    if memcg_try_charge(gs, cg, HPAGE_PMD_NR) >= 0:   # mem_cgroup_charge refused it
        vmstat[VS_PGFREE] += HPAGE_PMD_NR
        free_pages(gs, fr32, fr_flags, fr_order, pb_mt, pfn, HPAGE_PMD_ORDER)
        return SCAN_CGROUP_CHARGE_FAIL, -1, cost
    return SCAN_SUCCEED, pfn, cost


@kernel
def collapse_huge_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                       vma, tlb, pwc, mmi, vm_flags, pos, haddr, direct, swp):
    """collapse_huge_page for an anonymous range that passed ``scan_pmd``: allocate a THP (with
    compaction when ``direct``), copy the pages in (zeroing the holes), install the PMD, free the
    old pages and deposit the emptied PTE table. Returns (SCAN_* result, cost in ps)."""
    cg = mm[MM_MEMCG, mmi]
    r, pfn, cost = alloc_collapse_folio(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                        pt, mm, tlb, pwc, cg, direct)
    if r != SCAN_SUCCEED:
        return r, cost
    memcg_commit(gs, fr32, cg, pfn, HPAGE_PMD_NR, CHARGE_ANON)
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, HPAGE_PMD_ORDER, mm[MM_ANON, mmi],
                    haddr >> 12)
    table = entry_pfn(pt[pos])
    tb = fr_idx[table] * PTRS_PER_TABLE
    zp = cfg[C_NR_FRAMES]
    copied = 0
    swapped = 0
    zeroed = 0
    for i in range(HPAGE_PMD_NR):
        e = pt[tb + i]
        pt[tb + i] = 0
        if e != 0 and (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
            # __collapse_huge_page_swapin: the page is read from swap into the new THP
            if swp[SWP_WRITTEN, swp_offset(e)]:
                fr_flags[pfn + i] |= PG_written
            elif cfg[C_ZERO_REMAP]:
                zeroed += 1              # 6.12+: from the swap zeromap, no read
            swap_put(gs, swp, swp_offset(e), 1)
            mm[MM_SWAPENTS, mmi] -= 1
            swapped += 1
            continue
        if e == 0 or (e & _PAGE_PRESENT) == 0:
            continue
        p = entry_pfn(e)
        if (e & _PAGE_SPECIAL) != 0 or p == zp:
            continue
        copied += 1
        fr_flags[pfn + i] |= fr_flags[p] & PG_written     # copied in: what the page held
        if vm_flags & VM_LOCKED:
            munlock_anon_pte_page(cfg, gs, vmstat, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma,
                                  mmi, p)
        if remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, p):
            queue_if_partial(gs, vmstat, fr32, fr_idx, fr_flags, fr_order,
                             p & ~(HPAGE_PMD_NR - 1))
    vmstat[VS_PSWPIN] += swapped - zeroed
    vmstat[VS_PGMAJFAULT] += swapped
    cost += copied * cfg[C_COST_COPY_PAGE] \
        + (swapped - zeroed) * (cfg[C_COST_SWAP_READ] + cfg[C_COST_COPY_PAGE]) \
        + (HPAGE_PMD_NR - copied - swapped + zeroed) * cfg[C_COST_CLEAR_PAGE]
    fr32[FR_OWNER, pfn + 1] = 1
    if vm_flags & VM_LOCKED:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)
    e = leaf_prot(vm_flags) | _PAGE_DIRTY | _PAGE_PSE | (pfn << 12)
    if vm_flags & VM_WRITE:
        e |= _PAGE_RW
    pt[pos] = e
    deposit_table(fr32, pt_aux[0, pos // PTRS_PER_TABLE], table)
    mm[MM_HAD_PMD, mmi] = 1
    mm[MM_ANONPAGES, mmi] += HPAGE_PMD_NR - copied
    mm[MM_ANON_THP, mmi] += 1
    vmstat[VS_NR_ANON_PAGES] += HPAGE_PMD_NR
    vmstat[VS_NR_ANON_THP] += 1
    if cfg[C_SHRINK_UNDERUSED]:
        deferred_split_folio(gs, vmstat, fr32, fr_flags, pfn, False)
    flush_tlb_range(cfg, tlb, pwc, mmi + 1, haddr, haddr + HPAGE_PMD_SIZE)
    cost += cfg[C_COST_TLB_FLUSH]
    return SCAN_SUCCEED, cost


@kernel
def try_collapse(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                 tlb, pwc, mmi, vm_flags, haddr, khugepaged, direct, swp):
    """Scan the 2 MiB range at ``haddr`` and collapse it if it qualifies: (SCAN_*, cost in ps)."""
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], haddr)
    if pos < 0 or pt[pos] == 0:
        return SCAN_PMD_NULL, 0
    pmde = pt[pos]
    if pmde & _PAGE_PSE:
        return SCAN_PMD_MAPPED, 0
    tb = fr_idx[entry_pfn(pmde)] * PTRS_PER_TABLE
    r = scan_pmd(cfg, vmstat, fr32, fr_flags, fr_order, pt, tb, khugepaged)
    cost = HPAGE_PMD_NR * cfg[C_COST_SCAN_PTE]
    if r != SCAN_SUCCEED:
        return r, cost
    r, c = collapse_huge_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                              mm, vma, tlb, pwc, mmi, vm_flags, pos, haddr, direct, swp)
    return r, cost + c


@kernel
def _next_mm(gs, mm, after):
    """The enrolled live mm with the lowest enrolment number above ``after``, or -1."""
    best = -1
    bs = 0
    for i in range(gs[G_NR_MM]):
        s = mm[MM_KH_SEQ, i]
        if s > after and (best < 0 or s < bs):
            best = i
            bs = s
    return best


@kernel
def _has_work(cfg, gs, mm):
    return hugepage_pmd_enabled(cfg) and _next_mm(gs, mm, 0) >= 0


@kernel
def _leave(mm, mmi):
    """collect_mm_slot: the mm leaves khugepaged's list."""
    mm[MM_KH_SEQ, mmi] = 0
    mm[MM_FLAGS, mmi] &= ~(1 << MMF_VM_HUGEPAGE)


@kernel
def scan_mm_slot(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                 tlb, pwc, pages, S, swp):
    """khugepaged_scan_mm_slot: scan from the saved mm and address until ``pages`` of progress.

    Returns (progress, last SCAN_* result, cost in ps)."""
    mmi = gs[G_KH_MM]
    if mmi < 0:
        mmi = _next_mm(gs, mm, 0)
        gs[G_KH_MM] = mmi
        gs[G_KH_ADDR] = 0
    if mmi < 0:
        return pages, SCAN_FAIL, 0
    progress = 1                         # the visit itself counts (khugepaged_scan_mm_slot)
    result = SCAN_SUCCEED
    cost = 0
    alive = mm[MM_USERS, mmi] > 0
    direct = cfg[C_KH_DEFRAG] != 0
    if alive:
        base = mm[MM_VBASE, mmi]
        for j in range(mm[MM_VCOUNT, mmi]):
            p = base + j
            vs = vma[V_START, p]
            ve = vma[V_END, p]
            if ve <= gs[G_KH_ADDR]:
                continue
            flags = vma[V_FLAGS, p]
            fileok = vma[V_FILE, p] >= 0 and file_collapse_vma_ok(S, mmi, p)
            if fileok and cfg[C_HPC_MODEL] == HPC_MAINLINE and \
                    not shmem_huge_wanted(cfg, S.fs, S.ino, vma[V_FILE, p], vma[V_PGOFF, p], 0,
                                          flags, mm[MM_FLAGS, mmi], HUGE_FOR_FAULT):
                progress += 1                # thp_vma_allowable_order with TVA_ENFORCE_SYSFS:
                continue                     # the huge= setting at the VMA's first index
            if not fileok and not collapse_vma_ok(cfg, mm[MM_FLAGS, mmi], flags, vma[V_FILE, p],
                                                  True, vs, ve, vma[V_ANON_VMA, p]):
                progress += 1
                continue
            hstart = (vs + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
            hend = ve & ~(HPAGE_PMD_SIZE - 1)
            if hstart >= hend or gs[G_KH_ADDR] > hend:
                progress += 1
                continue
            if gs[G_KH_ADDR] < hstart:
                gs[G_KH_ADDR] = hstart
            while gs[G_KH_ADDR] < hend:
                a = gs[G_KH_ADDR]
                if fileok:
                    result, c = collapse_file(S, mmi, p, a, True, direct)
                else:
                    result, c = try_collapse(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order,
                                             pb_mt, pt, pt_aux, mm, vma, tlb, pwc, mmi, flags, a,
                                             True, direct, swp)
                cost += c
                if result == SCAN_SUCCEED:
                    gs[G_KH_COLLAPSED] += 1
                gs[G_KH_ADDR] = a + HPAGE_PMD_SIZE
                progress += HPAGE_PMD_NR
                if result == SCAN_ALLOC_HUGE_PAGE_FAIL or progress >= pages:
                    return progress, result, cost
    # the mm is done (or gone): on to the next one; past the last, a full scan is complete
    nxt = _next_mm(gs, mm, mm[MM_KH_SEQ, mmi])
    if not alive:
        _leave(mm, mmi)
    gs[G_KH_ADDR] = 0
    gs[G_KH_MM] = nxt
    if nxt < 0:
        gs[G_KH_FULL_SCANS] += 1
    return progress, result, cost


@kernel
def khugepaged_do_scan(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                       vma, tlb, pwc, S):
    """One wakeup: scan ``pages_to_scan`` PTEs' worth. Returns (busy ps, allocation failed?)."""
    pages = cfg[C_KH_PAGES_TO_SCAN]
    progress = 0
    passes = 0
    busy = 0
    while True:
        if gs[G_KH_MM] < 0:
            passes += 1
        if _has_work(cfg, gs, mm) and passes < 2:
            n, result, c = scan_mm_slot(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                        pt, pt_aux, mm, vma, tlb, pwc, pages - progress, S, S.swp)
            progress += n
            busy += c
            gs[G_KH_SCANNED] += n
            if result == SCAN_ALLOC_HUGE_PAGE_FAIL:
                return busy, True
        else:
            progress = pages
        if progress >= pages:
            return busy, False


@kernel
def khugepaged_wakeup(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                      vma, tlb, pwc, S):
    """One wakeup of khugepaged at ``gs[G_KH_WAKE]``: its scan, then its next wakeup."""
    t = gs[G_KH_WAKE]
    busy, failed = khugepaged_do_scan(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                      pt, pt_aux, mm, vma, tlb, pwc, S)
    gs[G_KH_BUSY_PS] += busy
    if failed:
        nxt = t + busy + cfg[C_KH_ALLOC_SLEEP_PS]
    elif _has_work(cfg, gs, mm):
        nxt = t + busy + cfg[C_KH_SCAN_SLEEP_PS]
    else:
        nxt = NEVER                       # wait_event_freezable until an mm enrols
    gs[G_KH_WAKE] = max(nxt, t + 1000)
    rearm(gs)


@kernel
def madvise_collapse_errno(r):
    if r == SCAN_ALLOC_HUGE_PAGE_FAIL:
        return -ENOMEM
    if r == SCAN_EXCEED_NONE_PTE or r == SCAN_CGROUP_CHARGE_FAIL:
        return -EBUSY
    if r == SCAN_PAGE_COUNT or r == SCAN_PAGE_LRU:
        return -EAGAIN
    return -EINVAL


@kernel
def madvise_collapse_goes_on(r):
    """madvise_collapse's whitelist: results after which it goes on to the next range (the ones
    the engine produces); any other failure ends the call."""
    return (r == SCAN_PMD_NULL or r == SCAN_PAGE_RO or r == SCAN_LACK_REFERENCED_PAGE
            or r == SCAN_PAGE_NULL or r == SCAN_PAGE_COUNT or r == SCAN_PAGE_COMPOUND
            or r == SCAN_PAGE_LRU)


@kernel
def _collapse_vma(S, ti, mmi, p, start, end):
    """madvise_collapse on one VMA's part [start, end): (status, ranges PMD-mapped)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    flags = vma[V_FLAGS, p]
    fileok = vma[V_FILE, p] >= 0 and file_collapse_vma_ok(S, mmi, p)
    if not fileok and not collapse_vma_ok(cfg, mm[MM_FLAGS, mmi], flags, vma[V_FILE, p], False,
                                          vma[V_START, p], vma[V_END, p], vma[V_ANON_VMA, p]):
        return -EINVAL, 0
    hstart = (start + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
    hend = end & ~(HPAGE_PMD_SIZE - 1)
    thps = 0
    last_fail = SCAN_FAIL
    a = hstart
    while a < hend:
        if fileok:
            r, c = collapse_file(S, mmi, p, a, False, True)
        else:
            r, c = try_collapse(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                pt_aux, mm, vma, tlb, pwc, mmi, flags, a, False, True, swp)
        task[T_CLOCK, ti] += c
        if r == SCAN_SUCCEED or r == SCAN_PMD_MAPPED:
            thps += 1
        else:
            last_fail = r
            if not madvise_collapse_goes_on(r):
                break
        a += HPAGE_PMD_SIZE
    if thps == (hend - hstart) >> 21:     # -1 when the part holds no aligned range: EINVAL
        return OK, thps
    return madvise_collapse_errno(last_fail), thps


@kernel
def _collapse_room(S, mmi, start, end):
    """Page-cache entries MADV_COLLAPSE over [start, end) may add: the holes of every 2 MiB range
    of a file VMA that lies inside the file (each collapse_file fills its range's holes)."""
    vma = S.vma
    need = 0
    parts, _ = vma_parts(S.mm, vma, mmi, start, end)
    for k in range(parts.shape[1]):
        p = parts[0, k]
        ii = vma[V_FILE, p]
        if ii < 0:
            continue
        pages = (S.ino[I_SIZE, ii] + 4095) >> 12
        h = (parts[1, k] + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
        while h + HPAGE_PMD_SIZE <= parts[2, k]:
            index = vma[V_PGOFF, p] + ((h - vma[V_START, p]) >> 12)
            if index + HPAGE_PMD_NR <= pages:
                for i in range(index, index + HPAGE_PMD_NR):
                    if filemap_get_folio(S.pc, S.fr32, S.fr_idx, ii, i) < 0:
                        need += 1
            h += HPAGE_PMD_SIZE
    return need


@kernel
def sys_madvise_collapse(S, ti, start, length):
    """madvise(MADV_COLLAPSE): collapse every 2 MiB range inside [start, start + length), VMA by
    VMA, synchronously on the caller's clock. Returns (status, ranges PMD-mapped); a hole gives
    -ENOMEM after the mapped parts are done."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if start & 4095 or start < 0 or length < 0:
        return -EINVAL, 0
    end = start + ((length + 4095) & ~4095)
    if end > TASK_SIZE:
        return -EINVAL, 0
    mmi = task[T_MM, ti]
    # room in the page-cache index for every hole the collapses may fill, before any work (the
    # kernel's xarray grows as it goes: NEED_GROW here, and the call starts again)
    need = _collapse_room(S, mmi, start, end)
    if need > 0 and not file_room(fgs, pc, wbq, vmstat, need, 0, 0, gs):
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    a = start
    hole = False
    thps = 0
    st = OK
    while a < end:
        i = find_vma_index(mm, vma, mmi, a)
        if i >= mm[MM_VCOUNT, mmi]:
            hole = True
            break
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] >= end:
            hole = True
            break
        if vma[V_START, p] > a:
            hole = True
        e = min(end, vma[V_END, p])
        st, n = _collapse_vma(S, ti, mmi, p, max(a, vma[V_START, p]), e)
        thps += n
        if st != OK:
            break
        a = e
    op_end(gs, task, cpus, ti)
    if st == OK and hole:
        st = -ENOMEM
    return st, thps


# ---- page-cache ranges (hpage_collapse_scan_file, collapse_file, retract_page_tables) -----------
# What the 2013 series left out: khugepaged coalescing the small pages of a memory filesystem's
# file into a PMD-sized page-cache folio (mainline tmpfs, 4.8+; ramfs under "2013+mmap"). The old
# pages are unmapped everywhere and replaced in the page cache; holes are filled with zeroes
# (they count against the filesystem's blocks); PTE tables left empty in suitable VMAs are freed
# (retract_page_tables) so the next fault maps the folio with a PMD. MADV_COLLAPSE installs the
# caller's PMD at once.

@kernel
def file_collapse_vma_ok(S, mmi, p):
    """thp_vma_allowable_order for file VMA ``p`` as it stands (``shmem.file_thp_vma_ok``)."""
    vma = S.vma
    return file_thp_vma_ok(S.cfg, S.fs, S.ino, S.mm[MM_FLAGS, mmi], vma[V_FILE, p],
                           vma[V_START, p], vma[V_END, p], vma[V_PGOFF, p], vma[V_FLAGS, p])


@kernel
def retract_range(S, mmi, p, index, head, install):
    """collapse_pte_mapped_thp / retract_page_tables for VMA ``p`` of address space ``mmi`` over
    page ``index`` (the first of the page-cache THP at ``head``): a PTE table that maps nothing
    but that folio's pages at their places has those PTEs cleared and goes; with ``install`` the
    folio is then mapped by a PMD. Returns (SCAN_*, cost in ps)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    va = vma[V_START, p] + ((index - vma[V_PGOFF, p]) << 12)
    if va < vma[V_START, p] or va + HPAGE_PMD_SIZE > vma[V_END, p] or va & (HPAGE_PMD_SIZE - 1):
        return SCAN_VMA_CHECK, 0
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0:
        return SCAN_PMD_NULL, 0
    e = pt[pos]
    if e & _PAGE_PSE:
        return SCAN_PMD_MAPPED, 0
    cost = 0
    if e != 0:
        table = entry_pfn(e)
        tb = fr_idx[table] * PTRS_PER_TABLE
        for k in range(HPAGE_PMD_NR):
            pe = pt[tb + k]
            if pe != 0 and ((pe & _PAGE_PRESENT) == 0 or (pe & _PAGE_SPECIAL) != 0
                            or entry_pfn(pe) != head + k):
                return SCAN_FAIL, 0              # something else lives in the table
        for k in range(HPAGE_PMD_NR):
            if pt[tb + k] != 0:
                pt[tb + k] = 0
                unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, head + k)
        pt[pos] = 0
        free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, table)
        mm[MM_PGTABLES, mmi] -= 1
        vmstat[VS_NR_PAGE_TABLE_PAGES] -= 1
        flush_tlb_range(cfg, tlb, pwc, mmi + 1, va, va + HPAGE_PMD_SIZE)
        cost += cfg[C_COST_TLB_FLUSH]
    if install:
        flags = vma[V_FLAGS, p]
        pe = leaf_prot(flags) | _PAGE_PSE | (head << 12)
        if flags & VM_SHARED and flags & VM_WRITE:
            pe |= _PAGE_RW
        pt[pos] = pe
        map_file_pmd(vmstat, fr32, fr_flags, mm, mmi, head)
        mm[MM_HAD_PMD, mmi] = 1
        vmstat[VS_THP_FILE_MAPPED] += 1          # set_huge_pmd counts it (seen on a 6.18 host)
    return SCAN_SUCCEED, cost


@kernel
def collapse_file(S, mmi, p, haddr, khugepaged, direct):
    """hpage_collapse_scan_file and collapse_file for the 2 MiB range at ``haddr`` of file VMA
    ``p`` (``file_collapse_vma_ok`` passed): (SCAN_* result, cost in ps). A range whose folio is
    huge already is only retracted (and, for MADV_COLLAPSE, PMD-mapped)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    ii = vma[V_FILE, p]
    index = vma[V_PGOFF, p] + ((haddr - vma[V_START, p]) >> 12)
    cost = HPAGE_PMD_NR * cfg[C_COST_SCAN_PTE]
    if index + HPAGE_PMD_NR > (ino[I_SIZE, ii] + 4095) >> 12:
        return SCAN_FAIL, cost                   # the range reaches past EOF
    none = 0
    for k in range(HPAGE_PMD_NR):
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index + k)
        if pfn < 0:
            none += 1
        elif fr_flags[pfn] & PG_file_thp:
            # SCAN_PTE_MAPPED_HUGEPAGE, then collapse_pte_mapped_thp; khugepaged counts a range
            # already PMD-mapped as a success, so pages_collapsed grows on every pass over it
            # (as this 6.18 host's counter does over a tmpfs huge=always mapping)
            r, c = retract_range(S, mmi, p, index, file_folio_head(fr_flags, pfn), not khugepaged)
            if r == SCAN_PMD_MAPPED and khugepaged:
                r = SCAN_SUCCEED
            return r, cost + c
    if khugepaged and none > cfg[C_KH_MAX_PTES_NONE]:
        if cfg[C_KERNEL] >= 508:
            vmstat[VS_THP_SCAN_EXCEED_NONE_PTE] += 1
        return SCAN_EXCEED_NONE_PTE, cost
    f = ino[I_FS, ii]
    if (fgs[FG_PC_USED] + none) * 2 > pc.shape[0]:
        return SCAN_FAIL, cost                   # no room in the page-cache index
    cg = mm[MM_MEMCG, mmi]
    r, new, c = alloc_collapse_folio(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                     mm, tlb, pwc, cg, direct)
    cost += c
    if r != SCAN_SUCCEED:
        return r, cost
    if none == HPAGE_PMD_NR:
        # nothing cached in the range (MADV_COLLAPSE only: khugepaged stopped at max_ptes_none):
        # collapse_file finds no entry and gives the folio back (SCAN_TRUNCATED: EINVAL)
        page_counter_uncharge(gs, cg, HPAGE_PMD_NR)
        vmstat[VS_PGFREE] += HPAGE_PMD_NR
        free_pages(gs, fr32, fr_flags, fr_order, pb_mt, new, HPAGE_PMD_ORDER)
        return SCAN_FAIL, cost
    # try_to_unmap every old page, then replace it in the page cache by the new folio's page
    where = inode_vmas(gs, mm, vma, ii, False)
    for k in range(HPAGE_PMD_NR):
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index + k)
        if pfn < 0:
            continue
        w = 0
        while fr32[FR_MAPCOUNT, pfn] > 0 and w < where.shape[1]:
            q = file_pte_of(cfg, pt, fr_idx, mm, vma, where[0, w], where[1, w], index + k, pfn)
            if q >= 0:
                pt[q] = 0
                if vma[V_FLAGS, where[1, w]] & VM_LOCKED:
                    munlock_mapped(vmstat, lru, fr32, fr_flags, pfn)     # TTU_IGNORE_MLOCK
                unmap_file_pte(vmstat, fr32, fr_flags, mm, where[0, w], pfn)
            w += 1
    if fs[FS_FREE, f] < none:
        # shmem_charge cannot hold the holes: roll back. The folio goes; the old pages stay
        # cached, unmapped (the next touch faults them in again), and go back to the head of
        # their lists (folio_putback_lru, in index order)
        page_counter_uncharge(gs, cg, HPAGE_PMD_NR)
        vmstat[VS_PGFREE] += HPAGE_PMD_NR
        free_pages(gs, fr32, fr_flags, fr_order, pb_mt, new, HPAGE_PMD_ORDER)
        for w in range(where.shape[1]):          # the unmapped PTEs' TLB entries (try_to_unmap)
            va = vma[V_START, where[1, w]] + ((index - vma[V_PGOFF, where[1, w]]) << 12)
            flush_tlb_range(cfg, tlb, pwc, where[0, w] + 1, va, va + HPAGE_PMD_SIZE)
        for k in range(HPAGE_PMD_NR):
            pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index + k)
            if pfn >= 0 and fr_flags[pfn] & PG_lru and file_lru(fr_flags, pfn) != LRU_UNEVICTABLE:
                lru_move_head(lru, fr32, fr_memcg[pfn], file_lru(fr_flags, pfn), pfn)
        return SCAN_FAIL, cost
    for k in range(HPAGE_PMD_NR):
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index + k)
        if pfn >= 0:
            filemap_remove_page(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pc,
                                lru, fgs, fs, ino, pfn)
    memcg_commit(gs, fr32, cg, new, HPAGE_PMD_NR, charge_kind(fs, ino, ii))
    filemap_add_large(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii, index,
                      new, HPAGE_PMD_ORDER)
    if fs[FS_TYPE, f] == FST_TMPFS:
        fr_flags[new] |= PG_dirty                # collapse_file: folio_mark_dirty (shmem)
    present = HPAGE_PMD_NR - none
    cost += present * cfg[C_COST_COPY_PAGE] + none * cfg[C_COST_CLEAR_PAGE]
    result = SCAN_SUCCEED
    for w in range(where.shape[1]):
        m = where[0, w]
        q = where[1, w]
        va = vma[V_START, q] + ((index - vma[V_PGOFF, q]) << 12)
        lo = max(va, vma[V_START, q])
        hi = min(va + HPAGE_PMD_SIZE, vma[V_END, q])
        if lo < hi:
            flush_tlb_range(cfg, tlb, pwc, m + 1, lo, hi)
            cost += cfg[C_COST_TLB_FLUSH]
        own = (not khugepaged) and m == mmi and q == p
        if vma[V_ANON_VMA, q] != 0 and not own:
            continue                             # retract_page_tables: a private VMA written to
        r, c = retract_range(S, m, q, index, new, own)
        cost += c
        if own and r != SCAN_SUCCEED:
            result = r                           # collapse_pte_mapped_thp could not map it here
    if not khugepaged and mm[MM_PGD, mmi] < 0:
        result = SCAN_PMD_NULL                   # no page tables at all: nothing to map it into
    return result, cost
