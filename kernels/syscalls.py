"""System calls and the access drivers: the entry kernels the Python API and the batch runner share.

Every entry kernel takes the ``State`` tuple, unpacks it once and returns ``(status, value)``:
status ``OK``, ``NEED_GROW`` (nothing was changed; grow and call again) or a negative errno.
Operations reserve what they need before they mutate anything, so a restart has no side effects.
"""
import numpy as np

from .consts import (
    G_OOM_MEMCG,
    I_MRA,
    MADV_NORMAL,
    MADV_RANDOM,
    MADV_SEQUENTIAL,
    MADV_WILLNEED,
    NR_RA_FIELDS,
    VM_RAND_READ,
    VM_SEQ_READ,
    G_STALL_PS,
    T_STALL_PS,
    G_SWAP_IO_PS,
    C_KERNEL,
    MADV_COLD,
    MADV_PAGEOUT,
    MM_MEMCG,
    G_CUR_MEMCG,
    T_MEMCG,
    T_FLAGS,
    C_OVERCOMMIT,
    G_COMMITTED,
    MAP_NORESERVE,
    OVERCOMMIT_NEVER,
    TF_CAP_SYS_ADMIN,
    VM_ACCOUNT,
    VM_NORESERVE,
    G_HIST_FAULT,
    V_PGOFF,
    FAULT_PC_RESERVE,
    MADV_WILLWRITE,
    EOVERFLOW,
    VM_MAYSHARE,
    MAP_SHARED_VALIDATE,
    MAP_SHARED,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    C_COST_SYSCALL,
    C_COST_TLB_FLUSH,
    C_MMAP_BASE,
    C_THP_ALIGN,
    C_THP_DISABLE_MODE,
    CPU_FREE_AT,
    EEXIST,
    EFAULT,
    EINVAL,
    ENOMEM,
    G_NOW,
    HPAGE_PMD_SIZE,
    MADV_DONTNEED,
    MADV_FREE,
    MADV_HUGEPAGE,
    MADV_NOHUGEPAGE,
    MADV_POPULATE_READ,
    MADV_POPULATE_WRITE,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_TYPE,
    MCL_CURRENT,
    MCL_FUTURE,
    MCL_ONFAULT,
    MM_BRK,
    MM_BRK_START,
    MM_DEF_FLAGS,
    MM_FLAGS,
    MM_LOCKED,
    MM_PGD,
    MM_PGTABLES,
    MM_TOTAL_VM,
    MM_USERS,
    MM_VBASE,
    MM_VCOUNT,
    MMF_DISABLE_THP_COMPLETELY,
    MMF_DISABLE_THP_EXCEPT_ADVISED,
    MMF_VM_HUGEPAGE,
    NEED_GROW,
    OK,
    PR_GET_THP_DISABLE,
    PR_SET_THP_DISABLE,
    PR_THP_DISABLE_EXCEPT_ADVISED,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    SEGV,
    SIGBUS,
    T_CLOCK,
    T_CPU,
    T_MINFLT,
    T_MM,
    TASK_SIZE,
    THP_ALIGN_ANY,
    THP_ALIGN_MULTIPLE,
    THPDIS_DEF_FLAGS,
    THPDIS_EXCEPT_ADVISED,
    THPDIS_MMF,
    THPDIS_NONE,
    V_END,
    V_ANON_VMA,
    V_FILE,
    V_FLAGS,
    V_START,
    VM_EXEC,
    VM_HUGEPAGE,
    VM_LOCKED,
    VM_LOCKONFAULT,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYWRITE,
    VM_NOHUGEPAGE,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
    VS_PGFAULT,
)
from .fork import copy_mm, exit_mmap
from .file_fault import file_room
from .readahead import force_limit, force_page_cache_ra, ra_pages
from .filemap import filemap_get_folio
from .fs import has_blocks
from .borrow import borrow_state
from .huge_memory import collapse_vma_ok, hugepage_pmd_enabled, khugepaged_enter, khugepaged_exit
from .shmem import khugepaged_enter_file_vma
from .events import hist_add
from .jit import kernel
from .overcommit import accountable_mapping, vm_enough_memory, vm_unacct_memory
from .swap import madvise_cold, madvise_pageout
from .memory import (
    FAULT_RESERVE_TABLES,
    access_loop,
    free_pgtables,
    handle_mm_fault,
    zap_page_range,
)
from .mlock import (
    MLOCK_LOCK,
    MLOCK_UNLOCK,
    MLOCK_ZAP,
    lazyfree_range,
    lazyfree_split_at,
    mlock_vma_pages_range,
    munlock_mm,
    munlock_pmd_at,
)
from .willwrite import block_willwrite_page, willwrite_in_eof, willwrite_plan
from .mmap import (
    find_vma_index,
    get_unmapped_area,
    range_has_vma,
    vma_insert_at,
    vma_lookup,
    vma_merge_around,
    vma_remove_at,
    vma_reserve,
    vma_split_at,
)
from .mprotect import change_protection, split_pmd_at
from .pagetable import pmd_lookup, pt_slots_available, pte_lookup
from .tlb import flush_tlb_mm, flush_tlb_range

# ---- time ---------------------------------------------------------------------------------------

@kernel
def op_begin(task, cpus, ti):
    """An operation starts when both its task and its CPU are free."""
    c = task[T_CPU, ti]
    if cpus[c, CPU_FREE_AT] > task[T_CLOCK, ti]:
        task[T_CLOCK, ti] = cpus[c, CPU_FREE_AT]


@kernel
def op_end(gs, task, cpus, ti):
    task[T_STALL_PS, ti] += gs[G_STALL_PS]      # the op's memory stalls are its task's
    gs[G_STALL_PS] = 0
    c = task[T_CPU, ti]
    t = task[T_CLOCK, ti]
    cpus[c, CPU_FREE_AT] = t
    if t > gs[G_NOW]:
        gs[G_NOW] = t


@kernel
def _noop_syscall(S, ti):
    """A call that succeeds without doing anything (length 0) still costs its entry and exit."""
    op_begin(S.task, S.cpus, ti)
    S.task[T_CLOCK, ti] += S.cfg[C_COST_SYSCALL]
    op_end(S.gs, S.task, S.cpus, ti)
    return OK


# ---- mmap / munmap ------------------------------------------------------------------------------

@kernel
def accounted_pages(mm, vma, mmi, start, end):
    """Pages of VM_ACCOUNT VMAs inside [start, end)."""
    n = 0
    b = mm[MM_VBASE, mmi]
    for j in range(mm[MM_VCOUNT, mmi]):
        p = b + j
        if vma[V_FLAGS, p] & VM_ACCOUNT:
            lo = max(start, vma[V_START, p])
            hi = min(end, vma[V_END, p])
            if lo < hi:
                n += (hi - lo) >> 12
    return n


@kernel
def calc_vm_flags(prot):
    f = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
    if prot & PROT_READ:
        f |= VM_READ
    if prot & PROT_WRITE:
        f |= VM_WRITE
    if prot & PROT_EXEC:
        f |= VM_EXEC
    return f


@kernel
def do_munmap(S, mmi, start, end):
    """Remove [start, end): split, zap, drop VMAs, free tables, flush. Room reserved by caller."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    vma_split_at(mm, vma, mmi, start)
    vma_split_at(mm, vma, mmi, end)
    i = find_vma_index(mm, vma, mmi, start)
    zapped = 0
    while i < mm[MM_VCOUNT, mmi]:
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] >= end:
            break
        s = vma[V_START, p]
        e = vma[V_END, p]
        if vma[V_FLAGS, p] & VM_LOCKED:
            mlock_vma_pages_range(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma,
                                  mmi, s, e, MLOCK_ZAP)
        zapped += zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                 pt_aux, mm, tlb, pwc, mmi, s, e, swp)
        mm[MM_TOTAL_VM, mmi] -= (e - s) >> 12
        if vma[V_FLAGS, p] & VM_LOCKED:
            mm[MM_LOCKED, mmi] -= (e - s) >> 12
        vm_unacct_memory(gs, vma[V_FLAGS, p], (e - s) >> 12)
        vma_remove_at(mm, vma, mmi, i)
    free_pgtables(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                  mmi, start, end)
    flush_tlb_range(cfg, tlb, pwc, mmi + 1, start, end)
    return zapped


@kernel(inline="always")
def anon_enrols(cfg, mm, vma, mmi, p, flags):
    """khugepaged_enter_vma's test for anonymous VMA ``p`` seen with VMA flags ``flags``: it has
    an anon_vma, khugepaged runs, and the sysfs mode, the prctl and an aligned 2 MiB range allow
    a collapse there."""
    return vma[V_ANON_VMA, p] != 0 and hugepage_pmd_enabled(cfg) and collapse_vma_ok(
        cfg, mm[MM_FLAGS, mmi], flags, -1, True, vma[V_START, p], vma[V_END, p], 1)


@kernel
def anon_vma_enter(cfg, gs, mm, vma, mmi, p, now):
    """khugepaged_enter_vma for anonymous VMA ``p`` with its own flags, after an mmap or brk
    made or grew it: a new VMA has no anon_vma yet, so it waits for its first THP fault; one that
    merged into a VMA with an anon_vma enrols the mm where khugepaged may collapse there."""
    if anon_enrols(cfg, mm, vma, mmi, p, vma[V_FLAGS, p]):
        khugepaged_enter(cfg, gs, mm, mmi, now)


@kernel
def sys_mmap(S, ti, addr, length, prot, flags, ii, pgoff):
    """do_mmap (mm/mmap.c): anonymous private mappings (``ii`` -1) and file mappings of inode
    ``ii`` from page ``pgoff``, shared or private (the caller checked the file's access mode).
    Returns (status, address)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if vma_reserve(gs, mm, vma, mmi, 3) != OK:
        return NEED_GROW, 0
    st, a, extra = _mmap(S, mmi, addr, length, prot, flags, ii, pgoff,
                         (task[T_FLAGS, ti] & TF_CAP_SYS_ADMIN) != 0)
    if st == OK:                       # a call that fails validation changes nothing, time included
        op_begin(task, cpus, ti)
        task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
        # __mmap_new_vma / vma_merge_new_range: khugepaged_enter_vma for the VMA the mapping
        # became or merged into
        p = mm[MM_VBASE, mmi] + find_vma_index(mm, vma, mmi, a)
        if ii >= 0:
            khugepaged_enter_file_vma(cfg, gs, fs, ino, mm, mmi, ii, vma[V_START, p],
                                      vma[V_END, p], vma[V_PGOFF, p], vma[V_FLAGS, p],
                                      task[T_CLOCK, ti])
        else:
            anon_vma_enter(cfg, gs, mm, vma, mmi, p, task[T_CLOCK, ti])
        task[T_CLOCK, ti] += extra
        op_end(gs, task, cpus, ti)
    return st, a


@kernel
def _mmap(S, mmi, addr, length, prot, flags, ii, pgoff, cap_sys_admin):
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if length <= 0:
        return -EINVAL, 0, 0
    if length > TASK_SIZE:
        return -ENOMEM, 0, 0
    ln = (length + 4095) & ~4095
    mtype = flags & MAP_TYPE
    if ii < 0:
        if mtype != MAP_PRIVATE or (flags & MAP_ANONYMOUS) == 0:
            return -EINVAL, 0, 0
    elif mtype != MAP_PRIVATE and mtype != MAP_SHARED and mtype != MAP_SHARED_VALIDATE:
        return -EINVAL, 0, 0
    if ii >= 0 and pgoff + (ln >> 12) > (1 << 40):
        return -EOVERFLOW, 0, 0
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
        return -EINVAL, 0, 0
    fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) != 0
    extra = 0
    vm_flags = calc_vm_flags(prot) | mm[MM_DEF_FLAGS, mmi]
    if ii >= 0 and mtype != MAP_PRIVATE:
        vm_flags |= VM_SHARED | VM_MAYSHARE
    if flags & MAP_NORESERVE and cfg[C_OVERCOMMIT] != OVERCOMMIT_NEVER:
        vm_flags |= VM_NORESERVE
    if fixed:
        if addr & 4095:
            return -EINVAL, 0, 0
        if addr + ln > TASK_SIZE or addr < 0:
            return -ENOMEM, 0, 0
        if range_has_vma(mm, vma, mmi, addr, addr + ln):
            if flags & MAP_FIXED_NOREPLACE and not (flags & MAP_FIXED):
                return -EEXIST, 0, 0
            replaced = accounted_pages(mm, vma, mmi, addr, addr + ln)
            if accountable_mapping(vm_flags) and vm_enough_memory(
                    cfg, gs, vmstat, fgs, mm, mmi, (ln >> 12) - replaced, cap_sys_admin) != 0:
                return -ENOMEM, 0, 0            # mmap_region: the old mapping stays
            if do_munmap(S, mmi, addr, addr + ln) > 0:
                extra = cfg[C_COST_TLB_FLUSH]
            if accountable_mapping(vm_flags):
                gs[G_COMMITTED] += replaced     # its charge passes to the new mapping
                vm_flags |= VM_ACCOUNT
        start = addr
    else:
        start = -1
        if addr > 0:
            h = (addr + 4095) & ~4095
            if h + ln <= TASK_SIZE and not range_has_vma(mm, vma, mmi, h, h + ln):
                start = h
        if start < 0:
            al = cfg[C_THP_ALIGN]
            align = ((al == THP_ALIGN_MULTIPLE and (ln & (HPAGE_PMD_SIZE - 1)) == 0)
                     or (al == THP_ALIGN_ANY and ln >= HPAGE_PMD_SIZE))
            start = get_unmapped_area(mm, vma, mmi, ln, align, cfg[C_MMAP_BASE])
            if start < 0:
                return -ENOMEM, 0, 0
    if accountable_mapping(vm_flags) and not vm_flags & VM_ACCOUNT:
        if vm_enough_memory(cfg, gs, vmstat, fgs, mm, mmi, ln >> 12, cap_sys_admin) != 0:
            return -ENOMEM, 0, 0
        vm_flags |= VM_ACCOUNT
    i = find_vma_index(mm, vma, mmi, start)
    vma_insert_at(mm, vma, mmi, i, start, start + ln, vm_flags, pgoff if ii >= 0 else start >> 12,
                  ii)
    vma_merge_around(mm, vma, mmi, i)
    mm[MM_TOTAL_VM, mmi] += ln >> 12
    if vm_flags & VM_LOCKED:
        mm[MM_LOCKED, mmi] += ln >> 12
    return OK, start, extra


@kernel
def sys_munmap(S, ti, addr, length):
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if (addr & 4095) != 0 or length <= 0 or addr < 0:
        return -EINVAL, 0
    ln = (length + 4095) & ~4095
    if addr + ln > TASK_SIZE or ln > TASK_SIZE:
        return -EINVAL, 0
    if vma_reserve(gs, mm, vma, mmi, 1) != OK:
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    if range_has_vma(mm, vma, mmi, addr, addr + ln):
        if do_munmap(S, mmi, addr, addr + ln) > 0:
            task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]
    op_end(gs, task, cpus, ti)
    return OK, 0


# ---- populate (MAP_POPULATE, MADV_POPULATE_*, mlock) -------------------------------------------

@kernel
def populate_range(S, ti, start, end, write):
    """Fault in [start, end) like get_user_pages: returns (status, resume address).

    Pages already mapped with the needed rights are skipped, so a restart repeats nothing.
    """
    S = borrow_state(S)                  # handed down to file faults: no reference counting
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    va = start
    mode = write
    op_begin(task, cpus, ti)
    while va < end:
        if pt_slots_available(gs) < FAULT_RESERVE_TABLES:
            op_end(gs, task, cpus, ti)
            return NEED_GROW, va
        if mode == 2:                  # mlock: populate_vma_page_range writes private writable VMAs
            p = vma_lookup(mm, vma, mmi, va)
            if p < 0 or vma[V_FILE, p] == -2 or (vma[V_FLAGS, p] & (VM_READ | VM_WRITE
                                                                     | VM_EXEC)) == 0:
                va += 4096             # holes, special and PROT_NONE mappings are not populated
                continue
            # FOLL_WRITE only for private writable mappings: a shared one is populated read-only
            write = 1 if (vma[V_FLAGS, p] & (VM_WRITE | VM_SHARED)) == VM_WRITE else 0
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
        if pos >= 0 and (pt[pos] & _PAGE_PRESENT) != 0:
            e = pt[pos]
            if e & _PAGE_PSE:
                if not write or (e & _PAGE_RW) != 0:
                    va = (va | (HPAGE_PMD_SIZE - 1)) + 1
                    continue
            else:
                e = pt[pte_lookup(pt, fr_idx, e, va)]
                if (e & _PAGE_PRESENT) != 0 and (not write or (e & _PAGE_RW) != 0):
                    va += 4096
                    continue
        vmstat[VS_PGFAULT] += 1
        task[T_MINFLT, ti] += 1
        st, c = handle_mm_fault(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                pt_aux, mm, vma, tlb, pwc, mmi, va, write != 0, S, ti,
                                task[T_CLOCK, ti])
        task[T_CLOCK, ti] += c
        if st != NEED_GROW:
            hist_add(gs, G_HIST_FAULT, c)
        if st != OK:
            op_end(gs, task, cpus, ti)
            return (-EFAULT if st == SEGV or st == SIGBUS else st), va
    op_end(gs, task, cpus, ti)
    return OK, end


# ---- madvise --------------------------------------------------------------------------------------

MOD_BITS = 0     # madvise: set and clear VM_* bits
MOD_LOCK = 1     # mlock: VM_LOCKED on or off (and the pages' mlock state)
MOD_PROT = 2     # mprotect: replace VM_READ/WRITE/EXEC (and the page-table entries)


@kernel
def modify_vmas(S, mmi, start, end, kind, a, b, stop_at_hole, cap_sys_admin):
    """vma_modify_flags over [start, end): a VMA whose flags would not change is left alone (no
    split: mprotect_fixup / mlock_fixup / madvise_update_vma return early); one that changes is
    split at the range's ends (a THP PMD a boundary falls in is split first), changed and merged
    with its neighbours. A hole stops mprotect and mlock (``stop_at_hole``); madvise goes on.

    Returns (no hole met, PMD splits, page-table entries changed).
    """
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    full = True
    splits = 0
    changed = 0
    va = start
    while va < end:
        i = find_vma_index(mm, vma, mmi, va)
        if i >= mm[MM_VCOUNT, mmi] or vma[V_START, mm[MM_VBASE, mmi] + i] >= end:
            full = False
            break
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] > va:
            full = False
            if stop_at_hole:
                break
            va = vma[V_START, p]
        old = vma[V_FLAGS, p]
        if kind == MOD_PROT:
            new = (old & ~(VM_READ | VM_WRITE | VM_EXEC)) | a
        else:
            new = (old | a) & ~b
        if new == old or (kind == MOD_LOCK and vma[V_FILE, p] == -2):
            va = vma[V_END, p]
            continue
        if kind == MOD_PROT and new & VM_WRITE and \
                not old & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE):
            # mprotect_fixup: a private mapping made writable is charged now
            pages = (min(end, vma[V_END, p]) - max(va, vma[V_START, p])) >> 12
            if vm_enough_memory(cfg, gs, vmstat, fgs, mm, mmi, pages, cap_sys_admin) != 0:
                return False, splits, changed
            new |= VM_ACCOUNT
        if vma[V_START, p] < va:
            if old & VM_LOCKED:
                munlock_pmd_at(cfg, vmstat, lru, pt, fr32, fr_idx, fr_flags, mm, mmi, va)
            splits += split_pmd_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                   pt_aux, mm, tlb, pwc, mmi, va)
            vma_split_at(mm, vma, mmi, va)
            i += 1
            p = mm[MM_VBASE, mmi] + i
        if vma[V_END, p] > end:
            if old & VM_LOCKED:
                munlock_pmd_at(cfg, vmstat, lru, pt, fr32, fr_idx, fr_flags, mm, mmi, end)
            splits += split_pmd_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                   pt_aux, mm, tlb, pwc, mmi, end)
            vma_split_at(mm, vma, mmi, end)
        s0 = vma[V_START, p]
        e0 = vma[V_END, p]
        vma[V_FLAGS, p] = new
        if kind == MOD_LOCK and (old & VM_LOCKED) != (new & VM_LOCKED):
            pages = (e0 - s0) >> 12
            mm[MM_LOCKED, mmi] += pages if new & VM_LOCKED else -pages
            mlock_vma_pages_range(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma,
                                  mmi, s0, e0, MLOCK_LOCK if new & VM_LOCKED else MLOCK_UNLOCK)
        elif kind == MOD_PROT:
            changed += change_protection(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, s0,
                                         e0, new)
        vma_merge_around(mm, vma, mmi, i)
        va = e0
    return full, splits, changed


@kernel
def madvise_willwrite(S, ti, mmi, addr, end):
    """MADV_WILLWRITE over [addr, end) (see ``willwrite``): returns (status, bytes prepared)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    npages = (end - addr) >> 12
    if not file_room(fgs, pc, wbq, vmstat, npages + FAULT_PC_RESERVE, npages + FAULT_PC_RESERVE,
                     2 * (npages >> 9) + 2 * FAULT_RESERVE_TABLES, gs):
        return NEED_GROW, 0                      # room for every page first: nothing is redone
    op_begin(task, cpus, ti)
    gs[G_CUR_MEMCG] = task[T_MEMCG, ti]
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    i = find_vma_index(mm, vma, mmi, addr)
    va = addr
    full = True
    total = 0
    st = OK
    while i < mm[MM_VCOUNT, mmi] and st == OK:
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] >= end:
            break
        s = max(vma[V_START, p], addr)
        if s > va:
            full = False
        e = min(vma[V_END, p], end)
        vf = vma[V_FLAGS, p]
        ii = vma[V_FILE, p]
        plan = willwrite_plan(cfg, fs, ino, vf, ii)
        if plan < 0:
            st = plan
            break
        a = s
        while plan > 0 and a < e:
            write = plan == 2
            if plan == 1 and not willwrite_in_eof(ino, ii, vma[V_START, p], vma[V_PGOFF, p], a):
                st = -EFAULT                     # block_willwrite: the page lies beyond EOF
                break
            pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], a)
            e_ = 0
            if pos >= 0 and (pt[pos] & _PAGE_PRESENT) != 0:
                e_ = pt[pos]
                if (e_ & _PAGE_PSE) == 0:
                    e_ = pt[pte_lookup(pt, fr_idx, e_, a)]
            if (e_ & _PAGE_PRESENT) == 0 or (write and (e_ & _PAGE_RW) == 0):
                # get_user_pages on the one page (room was reserved above: no NEED_GROW)
                r, _ = populate_range(S, ti, a, a + 4096, 1 if write else 0)
                if r != OK:
                    st = r
                    break
            if plan == 1:
                index = vma[V_PGOFF, p] + ((a - vma[V_START, p]) >> 12)
                pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
                c = block_willwrite_page(cfg, fs, ino, blk, fr_flags, ii, index, pfn)
                if c < 0:
                    st = c
                    break
                task[T_CLOCK, ti] += c
            total += 4096
            a += 4096
        va = e
        i += 1
    if va < end:
        full = False
    op_end(gs, task, cpus, ti)
    if st != OK:
        return st, 0
    return (OK if full else -ENOMEM), total


@kernel
def sys_madvise(S, ti, addr, length, advice):
    """mm/madvise.c: returns (status, 0); a hole gives -ENOMEM after the mapped parts are done."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if addr & 4095 or addr < 0 or length < 0:
        return -EINVAL, 0
    if not (advice == MADV_DONTNEED or advice == MADV_HUGEPAGE or advice == MADV_NOHUGEPAGE
            or advice == MADV_NORMAL or advice == MADV_RANDOM or advice == MADV_SEQUENTIAL
            or advice == MADV_WILLNEED
            or advice == MADV_POPULATE_READ or advice == MADV_POPULATE_WRITE
            or advice == MADV_FREE or advice == MADV_WILLWRITE
            or ((advice == MADV_COLD or advice == MADV_PAGEOUT) and cfg[C_KERNEL] >= 504)):
        return -EINVAL, 0
    ln = (length + 4095) & ~4095
    if length == 0:
        return _noop_syscall(S, ti), 0
    end = addr + ln
    if end > TASK_SIZE:
        return -EINVAL, 0
    if vma_reserve(gs, mm, vma, mmi, 2) != OK:
        return NEED_GROW, 0
    if advice == MADV_WILLWRITE:
        return madvise_willwrite(S, ti, mmi, addr, end)
    if advice == MADV_WILLNEED and not file_room(fgs, pc, wbq, vmstat,
                                                 _willneed_pages(S, mmi, addr, end) + 1024, 0, 0,
                                                 gs):
        return NEED_GROW, 0
    if advice == MADV_POPULATE_READ or advice == MADV_POPULATE_WRITE:
        op_begin(task, cpus, ti)
        task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
        op_end(gs, task, cpus, ti)
        return OK, 1           # the caller runs madvise_populate_extent, then populate_range
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    full = True
    if advice == MADV_HUGEPAGE:
        # hugepage_madvise: VM_HUGEPAGE on, VM_NOHUGEPAGE off, and khugepaged_enter_vma for each
        # VMA as it was, with the new flags: the mm enrols if khugepaged runs and may collapse
        # there (a file VMA: its huge= setting; an anonymous one: an anon_vma and an aligned
        # 2 MiB range, the sysfs mode, the prctl)
        now = task[T_CLOCK, ti]
        anon = False
        parts, _ = vma_parts(mm, vma, mmi, addr, end)
        for k in range(parts.shape[1]):
            q = parts[0, k]
            f = vma[V_FILE, q]
            if f == -1:
                anon = anon or anon_enrols(cfg, mm, vma, mmi, q,
                                           (vma[V_FLAGS, q] | VM_HUGEPAGE) & ~VM_NOHUGEPAGE)
            elif f >= 0:
                khugepaged_enter_file_vma(cfg, gs, fs, ino, mm, mmi, f, vma[V_START, q],
                                          vma[V_END, q], vma[V_PGOFF, q],
                                          (vma[V_FLAGS, q] | VM_HUGEPAGE) & ~VM_NOHUGEPAGE, now)
        full, splits, _ = modify_vmas(S, mmi, addr, end, MOD_BITS, VM_HUGEPAGE, VM_NOHUGEPAGE,
                                         False, False)
        if anon:
            khugepaged_enter(cfg, gs, mm, mmi, now)
    elif advice == MADV_NOHUGEPAGE:
        full, splits, _ = modify_vmas(S, mmi, addr, end, MOD_BITS, VM_NOHUGEPAGE, VM_HUGEPAGE,
                                         False, False)
    elif advice == MADV_NORMAL or advice == MADV_RANDOM or advice == MADV_SEQUENTIAL:
        # madvise_update_vma: the fault readahead mode of the range (VM_RAND_READ, VM_SEQ_READ)
        a = VM_RAND_READ if advice == MADV_RANDOM else (VM_SEQ_READ if advice == MADV_SEQUENTIAL
                                                        else 0)
        full, splits, _ = modify_vmas(S, mmi, addr, end, MOD_BITS, a,
                                      (VM_RAND_READ | VM_SEQ_READ) & ~a, False, False)
    elif advice == MADV_WILLNEED:
        # madvise_willneed, VMA by VMA: a file's range is read ahead without waiting
        # (vfs_fadvise POSIX_FADV_WILLNEED with the mapping's readahead state); a memory
        # filesystem's and anonymous memory's need nothing here (no swap cache is kept)
        splits = 0
        parts, full = vma_parts(mm, vma, mmi, addr, end)
        for k in range(parts.shape[1]):
            p, s, e = parts[0, k], parts[1, k], parts[2, k]
            ii = vma[V_FILE, p]
            if ii >= 0 and has_blocks(fs, ino, ii):
                ra = ino[I_MRA:I_MRA + NR_RA_FIELDS, ii]
                oom = gs[G_OOM_MEMCG]
                st, cpu, done, thrash = force_page_cache_ra(
                    S, ii, vma[V_PGOFF, p] + ((s - vma[V_START, p]) >> 12), (e - s) >> 12,
                    ra_pages(cfg, ra), task[T_CLOCK, ti])
                gs[G_OOM_MEMCG] = oom          # readahead's allocations fail quietly
                task[T_CLOCK, ti] = cpu
    elif advice == MADV_COLD or advice == MADV_PAGEOUT:
        # madvise_cold / madvise_pageout, VMA by VMA: a locked VMA ends the call with EINVAL
        # (can_madv_lru_vma), a hole gives ENOMEM after the rest is done
        splits = 0
        parts, full = vma_parts(mm, vma, mmi, addr, end)
        n = 0
        st = OK
        for k in range(parts.shape[1]):
            p, s, e = parts[0, k], parts[1, k], parts[2, k]
            if vma[V_FLAGS, p] & VM_LOCKED:
                st = -EINVAL
                break
            if advice == MADV_PAGEOUT:
                n += madvise_pageout(S, mmi, s, e)
            else:
                n += madvise_cold(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, s, e)
        task[T_CLOCK, ti] += gs[G_SWAP_IO_PS]         # the writes it queued
        gs[G_SWAP_IO_PS] = 0
        if n > 0:
            flush_tlb_range(cfg, tlb, pwc, mmi + 1, addr, end)
            task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]
        if st != OK:
            op_end(gs, task, cpus, ti)
            return st, 0
    else:
        # madvise_dontneed_free, VMA by VMA: a locked VMA ends the call with EINVAL (the earlier
        # ones stay done); each VMA's part is flushed on its own, MADV_FREE's only if an entry
        # changed or a THP partly inside was split; one flush is paid if any part was
        splits = 0
        parts, full = vma_parts(mm, vma, mmi, addr, end)
        zapped = 0
        st = OK
        for k in range(parts.shape[1]):
            p, s, e = parts[0, k], parts[1, k], parts[2, k]
            if vma[V_FLAGS, p] & VM_LOCKED or (advice == MADV_FREE and vma[V_FILE, p] >= 0):
                st = -EINVAL                     # MADV_FREE is for anonymous memory only
                break
            if advice == MADV_FREE:
                n = 0
                for a in (s, e):
                    n += lazyfree_split_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                           pt, pt_aux, mm, tlb, pwc, mmi, a)
                n += lazyfree_range(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, s, e)
                if n > 0:
                    flush_tlb_range(cfg, tlb, pwc, mmi + 1, s, e)
            else:
                n = zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                   pt_aux, mm, tlb, pwc, mmi, s, e, swp)
                flush_tlb_range(cfg, tlb, pwc, mmi + 1, s, e)
            zapped += n
        if zapped > 0:
            task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]
        if st != OK:
            op_end(gs, task, cpus, ti)
            return st, 0
    if (advice == MADV_HUGEPAGE or advice == MADV_NOHUGEPAGE) and splits > 0:
        task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]       # the split PMD's flush
    op_end(gs, task, cpus, ti)
    return (OK if full else -ENOMEM), 0


@kernel
def vma_parts(mm, vma, mmi, start, end):
    """The VMAs of address space ``mmi`` over [start, end), in address order: ``parts[:, k]`` is
    (VMA slot, start, end) of the k-th one's part; and whether they cover the whole range (no
    hole: madvise's ENOMEM otherwise, once the parts are done)."""
    i0 = find_vma_index(mm, vma, mmi, start)
    b = mm[MM_VBASE, mmi]
    n = 0
    while i0 + n < mm[MM_VCOUNT, mmi] and vma[V_START, b + i0 + n] < end:
        n += 1
    parts = np.empty((3, n), np.int64)
    full = True
    va = start
    for k in range(n):
        p = b + i0 + k
        s = max(vma[V_START, p], start)
        if s > va:
            full = False
        va = min(vma[V_END, p], end)
        parts[0, k] = p
        parts[1, k] = s
        parts[2, k] = va
    return parts, full and va >= end


@kernel
def _willneed_pages(S, mmi, start, end):
    """The most pages MADV_WILLNEED over [start, end) may read: a window per file VMA."""
    mm, vma, ino, cfg = S.mm, S.vma, S.ino, S.cfg
    parts, _ = vma_parts(mm, vma, mmi, start, end)
    n = 0
    for k in range(parts.shape[1]):
        ii = vma[V_FILE, parts[0, k]]
        if ii >= 0:
            pages = (parts[2, k] - parts[1, k]) >> 12
            n += force_limit(cfg, pages, ra_pages(cfg, ino[I_MRA:I_MRA + NR_RA_FIELDS, ii]))
    return n


@kernel
def _populate_check(mm, vma, mmi, start, end, write):
    """(status, limit): how far [start, end) can be populated, and the error met there, if any
    (madvise_populate faults the good part first, then fails)."""
    i = find_vma_index(mm, vma, mmi, start)
    va = start
    while va < end:
        if i >= mm[MM_VCOUNT, mmi]:
            return -ENOMEM, va
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] > va:
            return -ENOMEM, va
        f = vma[V_FLAGS, p]
        if (write and (f & VM_WRITE) == 0) or (f & (VM_READ | VM_WRITE | VM_EXEC)) == 0:
            return -EINVAL, va        # 6.18 madvise_populate: a permission mismatch is EINVAL
        va = min(vma[V_END, p], end)
        i += 1
    return OK, end


@kernel
def madvise_populate_extent(S, ti, start, end, write):
    """Entry kernel: (status, limit) for MADV_POPULATE_READ/WRITE over [start, end)."""
    mm = S.mm
    return _populate_check(mm, S.vma, S.task[T_MM, ti], start, end, write)


# ---- prctl ------------------------------------------------------------------------------------------

@kernel
def sys_prctl_thp(S, ti, option, arg2, arg3, arg4, arg5):
    """PR_SET_THP_DISABLE / PR_GET_THP_DISABLE; a call that succeeds costs a syscall."""
    task = S.task
    st, v = _prctl_thp(S, ti, option, arg2, arg3, arg4, arg5)
    if st == OK:
        op_begin(task, S.cpus, ti)
        task[T_CLOCK, ti] += S.cfg[C_COST_SYSCALL]
        op_end(S.gs, task, S.cpus, ti)
    return st, v


@kernel
def _prctl_thp(S, ti, option, arg2, arg3, arg4, arg5):
    """The profile's semantics (kernel/sys.c)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    mode = cfg[C_THP_DISABLE_MODE]
    if mode == THPDIS_NONE:
        return -EINVAL, 0
    comp = 1 << MMF_DISABLE_THP_COMPLETELY
    exc = 1 << MMF_DISABLE_THP_EXCEPT_ADVISED
    if option == PR_GET_THP_DISABLE:
        if arg2 != 0 or arg3 != 0 or arg4 != 0 or arg5 != 0:
            return -EINVAL, 0
        if mode == THPDIS_DEF_FLAGS:
            return OK, 1 if (mm[MM_DEF_FLAGS, mmi] & VM_NOHUGEPAGE) else 0
        if mm[MM_FLAGS, mmi] & comp:
            return OK, 1
        if mm[MM_FLAGS, mmi] & exc:
            return OK, 1 | PR_THP_DISABLE_EXCEPT_ADVISED
        return OK, 0
    if option != PR_SET_THP_DISABLE:
        return -EINVAL, 0
    if arg4 != 0 or arg5 != 0:
        return -EINVAL, 0
    if mode == THPDIS_EXCEPT_ADVISED:
        if arg2 == 0:
            if arg3 != 0:
                return -EINVAL, 0
            mm[MM_FLAGS, mmi] &= ~(comp | exc)
        elif arg3 == 0:
            mm[MM_FLAGS, mmi] = (mm[MM_FLAGS, mmi] | comp) & ~exc
        elif arg3 == PR_THP_DISABLE_EXCEPT_ADVISED:
            mm[MM_FLAGS, mmi] = (mm[MM_FLAGS, mmi] | exc) & ~comp
        else:
            return -EINVAL, 0
        return OK, 0
    if arg3 != 0:
        return -EINVAL, 0
    if mode == THPDIS_MMF:
        if arg2:
            mm[MM_FLAGS, mmi] |= comp
        else:
            mm[MM_FLAGS, mmi] &= ~comp
    else:
        if arg2:
            mm[MM_DEF_FLAGS, mmi] |= VM_NOHUGEPAGE
        else:
            mm[MM_DEF_FLAGS, mmi] &= ~VM_NOHUGEPAGE
    return OK, 0


# ---- the access drivers ----------------------------------------------------------------------------

@kernel
def run_touch(S, ti, start, length, stride, write, i0):
    """One byte at each ``start + i*stride`` in order; returns (status, index reached)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    n = (length + stride - 1) // stride
    w = np.full(1, 1 if write else 0, np.int8)
    op_begin(task, cpus, ti)
    st, i = access_loop(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                        vma, tlb, pwc, task, cpus, ev, smp, ti, np.empty(0, np.int64), w, start,
                        stride, n, i0, np.empty(0, np.int8), S)
    op_end(gs, task, cpus, ti)
    return st, i


@kernel
def run_access(S, ti, addrs, writes, i0, results):
    """The trace-driven path: ``addrs[i]`` with ``writes[i]`` (or ``writes[0]`` for all).

    With a ``results`` array of the same length, a SIGSEGV is recorded there (1) and the stream
    goes on; with an empty one the stream stops at the first. Returns (status, index reached).
    """
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    op_begin(task, cpus, ti)
    st, i = access_loop(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                        vma, tlb, pwc, task, cpus, ev, smp, ti, addrs, writes, 0, 0, addrs.shape[0],
                        i0, results, S)
    op_end(gs, task, cpus, ti)
    return st, i


# ---- fork / exit ------------------------------------------------------------------------------------

@kernel
def sys_fork(S, ti, cti, cmm):
    """Copy task ``ti``'s address space into the fresh mm ``cmm`` of the new task ``cti``.

    The caller has made the child's VMA segment large enough. Returns (status, 0).
    """
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pm = task[T_MM, ti]
    if pt_slots_available(gs) < mm[MM_PGTABLES, pm] + FAULT_RESERVE_TABLES:
        return NEED_GROW, 0
    # dup_mmap charges every VM_ACCOUNT VMA it copies (to the parent's mm)
    acct = accounted_pages(mm, vma, pm, 0, TASK_SIZE)
    cap = (task[T_FLAGS, ti] & TF_CAP_SYS_ADMIN) != 0
    if acct > 0 and vm_enough_memory(cfg, gs, vmstat, fgs, mm, pm, acct, cap) != 0:
        return -ENOMEM, 0
    op_begin(task, cpus, ti)
    mm[MM_MEMCG, cmm] = mm[MM_MEMCG, pm]        # the child starts in its parent's cgroup
    task[T_MEMCG, cti] = task[T_MEMCG, ti]
    st, cost = copy_mm(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                       vma, pm, cmm, swp)
    if st != OK:
        exit_mmap(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                  tlb, pwc, cmm, swp)
    elif mm[MM_FLAGS, pm] & (1 << MMF_VM_HUGEPAGE):
        khugepaged_enter(cfg, gs, mm, cmm, task[T_CLOCK, ti])     # khugepaged_fork
    flush_tlb_mm(cfg, tlb, pwc, pm + 1)
    task[T_CLOCK, ti] += cost + cfg[C_COST_SYSCALL] + cfg[C_COST_TLB_FLUSH]
    op_end(gs, task, cpus, ti)
    task[T_CLOCK, cti] = task[T_CLOCK, ti]
    return st, 0


@kernel
def mm_put(S, mmi):
    """mmput: drop a user; the last one tears the address space down."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mm[MM_USERS, mmi] -= 1
    zapped = 0
    if mm[MM_USERS, mmi] == 0:
        khugepaged_exit(gs, mm, mmi)
        munlock_mm(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma, mmi)
        zapped = exit_mmap(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                           mm, vma, tlb, pwc, mmi, swp)
        flush_tlb_mm(cfg, tlb, pwc, mmi + 1)
    return OK, zapped


@kernel
def charge_syscall(S, ti, flush):
    """clone, execve, exit: a system call's cost on the task's clock (and a TLB flush's when the
    call tore an address space with mappings down)."""
    op_begin(S.task, S.cpus, ti)
    S.task[T_CLOCK, ti] += S.cfg[C_COST_SYSCALL] + (S.cfg[C_COST_TLB_FLUSH] if flush else 0)
    op_end(S.gs, S.task, S.cpus, ti)
    return OK, 0


# ---- mprotect -----------------------------------------------------------------------------------------

@kernel
def sys_mprotect(S, ti, addr, length, prot):
    """do_mprotect_pkey for anonymous memory. Returns (status, 0)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if addr & 4095 or addr < 0 or length < 0:
        return -EINVAL, 0
    if length == 0:
        return _noop_syscall(S, ti), 0
    if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
        return -EINVAL, 0
    end = addr + ((length + 4095) & ~4095)
    if end <= addr or end > TASK_SIZE:
        return -ENOMEM, 0
    if vma_reserve(gs, mm, vma, mmi, 2) != OK:
        return NEED_GROW, 0
    if vma_lookup(mm, vma, mmi, addr) < 0:
        return -ENOMEM, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    rights = calc_vm_flags(prot) & (VM_READ | VM_WRITE | VM_EXEC)
    full, splits, changed = modify_vmas(S, mmi, addr, end, MOD_PROT, rights, 0, True,
                                               (task[T_FLAGS, ti] & TF_CAP_SYS_ADMIN) != 0)
    if changed > 0 or splits > 0:
        flush_tlb_range(cfg, tlb, pwc, mmi + 1, addr, end)
        task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]
    op_end(gs, task, cpus, ti)
    return (OK if full else -ENOMEM), 0


@kernel
def _lock_vmas(S, mmi, start, end, set_bits, clear_bits):
    """apply_vma_lock_flags: VM_LOCKED on or off over [start, end). Returns (False if a hole was
    met (the VMAs before it changed), PMDs split). The vDSO's special mappings are never locked."""
    full, splits, _ = modify_vmas(S, mmi, start, end, MOD_LOCK, set_bits, clear_bits, True,
                                     False)
    return full, splits


@kernel
def sys_mlock(S, ti, addr, length, lock, onfault):
    """mlock2 / munlock: returns (status, 1 if the caller should populate [start, end))."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if addr < 0 or length < 0:
        return -EINVAL, 0
    start = addr & ~4095
    end = start + ((length + (addr & 4095) + 4095) & ~4095)
    if end > TASK_SIZE:
        return -ENOMEM, 0
    if end == start:
        return _noop_syscall(S, ti), 0
    if vma_reserve(gs, mm, vma, mmi, 2) != OK:
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    if lock:
        bits = VM_LOCKED | (VM_LOCKONFAULT if onfault else 0)
        full, splits = _lock_vmas(S, mmi, start, end, bits, 0 if onfault else VM_LOCKONFAULT)
    else:
        full, splits = _lock_vmas(S, mmi, start, end, 0, VM_LOCKED | VM_LOCKONFAULT)
    if splits > 0:
        task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]       # the split PMD's flush
    op_end(gs, task, cpus, ti)
    if not full:
        return -ENOMEM, 0
    return OK, 1 if lock and not onfault else 0


@kernel
def sys_mlockall(S, ti, flags):
    """mlockall(MCL_*) with flags > 0, munlockall with flags == 0. Returns (status, populate?)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if flags < 0 or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        return -EINVAL, 0
    if vma_reserve(gs, mm, vma, mmi, 2) != OK:
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    onfault = (flags & MCL_ONFAULT) != 0
    mm[MM_DEF_FLAGS, mmi] &= ~(VM_LOCKED | VM_LOCKONFAULT)
    if flags & MCL_FUTURE:
        mm[MM_DEF_FLAGS, mmi] |= VM_LOCKED | (VM_LOCKONFAULT if onfault else 0)
    populate = 0
    if flags == 0 or flags & MCL_CURRENT:
        lock = (flags & MCL_CURRENT) != 0
        i = 0
        while i < mm[MM_VCOUNT, mmi]:
            p = mm[MM_VBASE, mmi] + i
            s = vma[V_START, p]
            e = vma[V_END, p]
            if lock:
                _lock_vmas(S, mmi, s, e, VM_LOCKED | (VM_LOCKONFAULT if onfault else 0),
                           0 if onfault else VM_LOCKONFAULT)
            else:
                _lock_vmas(S, mmi, s, e, 0, VM_LOCKED | VM_LOCKONFAULT)
            i = find_vma_index(mm, vma, mmi, e)
        populate = 1 if lock and not onfault else 0
    op_end(gs, task, cpus, ti)
    return OK, populate


@kernel
def sys_brk(S, ti, addr):
    """brk(2): returns (status, new break); growth maps like mmap(PROT_READ|PROT_WRITE)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mmi = task[T_MM, ti]
    if vma_reserve(gs, mm, vma, mmi, 3) != OK:
        return NEED_GROW, 0
    op_begin(task, cpus, ti)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL]
    old = mm[MM_BRK, mmi]
    res = old
    if addr >= mm[MM_BRK_START, mmi] and addr < TASK_SIZE:
        oa = (old + 4095) & ~4095
        na = (addr + 4095) & ~4095
        if na < oa:
            if range_has_vma(mm, vma, mmi, na, oa) and do_munmap(S, mmi, na, oa) > 0:
                task[T_CLOCK, ti] += cfg[C_COST_TLB_FLUSH]
            res = addr
        elif na == oa or not range_has_vma(mm, vma, mmi, oa, na):
            f = calc_vm_flags(PROT_READ | PROT_WRITE) | mm[MM_DEF_FLAGS, mmi] | VM_ACCOUNT
            cap = (task[T_FLAGS, ti] & TF_CAP_SYS_ADMIN) != 0
            if na > oa and vm_enough_memory(cfg, gs, vmstat, fgs, mm, mmi, (na - oa) >> 12, cap) != 0:
                na = oa                           # do_brk_flags: ENOMEM, the break stays
                addr = old
            if na > oa:
                i = find_vma_index(mm, vma, mmi, oa)
                vma_insert_at(mm, vma, mmi, i, oa, na, f, oa >> 12, -1)
                i = vma_merge_around(mm, vma, mmi, i)
                # do_brk_flags: a break that extends the old heap VMA enrols it as mmap would
                anon_vma_enter(cfg, gs, mm, vma, mmi, mm[MM_VBASE, mmi] + i, task[T_CLOCK, ti])
                mm[MM_TOTAL_VM, mmi] += (na - oa) >> 12
                if f & VM_LOCKED:
                    mm[MM_LOCKED, mmi] += (na - oa) >> 12
            res = addr
    mm[MM_BRK, mmi] = res
    op_end(gs, task, cpus, ti)
    return OK, res
