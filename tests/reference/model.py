"""Plain-Python reference model of mmcore (tests/reference/SEMANTICS.md).

Slow and obvious on purpose: dicts, lists and ints, one Python object per page table, VMA and
folio. The JIT engine (kernels/) implements the same page; differential tests compare the two
state for state. Function names follow the Linux function each part mirrors.

Choices made where SEMANTICS.md (and the brief) leave room -- each is the most literal reading
or, where the page is silent, Linux's rule:

Buddy allocator
 B1. ``claim`` moves the other free blocks of the claimed pageblock(s) in ascending pfn order,
     each inserted at the head of its new list (so the list ends up in descending order).
 B2. The compaction free scanner "takes the lowest free pfn with alloc semantics restricted to the
     block": the free block containing that pfn is removed and split like ``expand``; when the
     block is an order-10 block whose lower half lies in the pageblock below, the half not
     containing the pfn goes back to the lists (head) first.
 B3. ``free_lists()`` returns a tuple ``(lists, high_water)``; ``lists`` has all 33 keys.
Page tables
 P1. Only 4-level paging is modelled (``page_table_levels = 5`` is not part of this API).
 P2. The huge zero PMD also deposits a PTE table (as Linux ``set_huge_zero_folio`` does; it is
     needed to split the PMD). Allocation order for every THP-style fault, zero page included:
     the order-9 folio (huge zero page only if not yet allocated) first, then the deposited table.
 P3. Zapping a whole huge PMD (munmap or MADV_DONTNEED) frees its deposited PTE table at once
     (``zap_deposited_table``); "MADV_DONTNEED frees no tables" is read as "no table of the
     hierarchy".
 P4. Frees happen immediately, in this order: leaves in ascending VA order (for a huge PMD the
     deposited table, then the folio if its mapcount reached 0), then ``free_pgtables`` in
     post-order ascending (PTE tables, then their PMD table, then the PUD table).
 P5. The PGD is allocated by the first fault that passes the VMA check (a SIGSEGV allocates
     nothing).
Faults
 F1. Huge zero page: allocated like a THP -- order 9 MOVABLE with the faulting VMA's defrag effort
     (direct compaction allowed); zeroing costs 512 clears; never freed (no shrinker). Its
     failure counts only ``thp_zero_page_alloc_failed`` (not ``thp_fault_fallback``).
 F2. Read fault on an empty PMD with ``use_zero_page = 0``: a THP is allocated (Linux); the PMD is
     ``P|US|A|D|PS`` (+RW if VM_WRITE) as in ``map_anon_folio_pmd``.
 F3. Write to a huge zero PMD: no eligibility re-check (``do_huge_zero_wp_pmd``); failure counts
     ``thp_fault_fallback``. zero_wp profile: 3.10, 3.15, 6.18 = "thp"; 4.13 = "split". The THP
     reuses the zero PMD's deposited table.
 F4. Order-0 allocation failure (data page or page table) raises ``OutOfMemory`` (VM_FAULT_OOM);
     a deposited-table failure after a successful THP frees the THP and raises too.
 F5. GUP faults (MAP_POPULATE, MADV_POPULATE_*) skip the arch access check; their permission
     check is ``check_vma_flags``: MAP_POPULATE (FOLL_FORCE) skips PROT_NONE VMAs only,
     MADV_POPULATE needs VM_WRITE/VM_READ and returns EINVAL otherwise (Linux 6.18 __get_user_pages
     with FOLL_MADV_POPULATE; the brief guessed EFAULT -- see POPULATE_PERM_ERRNO). A hole stops
     MADV_POPULATE at once with ENOMEM (pages before it stay populated). MAP_POPULATE ignores OOM.
 F6. ``do_wp_page`` reuse follows PageAnonExclusive (E1).
Mappings
 M1. THP-aligned placement (6.18 profile, length a multiple of 2 MiB) applies whenever the hint is
     not usable; if the padded search fails, the plain search is used (Linux). The found start is
     rounded up (an already aligned start is kept, as SEMANTICS says).
 M2. A non-zero hint below mmap_min_addr is raised to 65536 (``round_hint_to_min``).
 M3. Error order of mmap follows do_mmap: length 0 -> EINVAL, length > TASK_SIZE -> ENOMEM,
     MAP_FIXED range -> ENOMEM, MAP_FIXED alignment -> EINVAL, no room -> ENOMEM, NOREPLACE
     overlap -> EEXIST, map type -> EINVAL. Shared or file mappings and MAP_LOCKED/GROWSDOWN/HUGETLB
     raise NotImplementedError. VMA flags: prot bits | VM_MAY{READ,WRITE,EXEC} | def_flags (no
     VM_ACCOUNT / VM_SOFTDIRTY). anon_vma compatibility is ignored when merging.
 M4. ``MMF_VM_HUGEPAGE`` (``mm_flags()``) means "on khugepaged's list" (SEMANTICS 11): set by an
     eligible THP fault, MADV_HUGEPAGE and fork of a listed mm; mmap and brk do not enrol.
 M5. The POPULATE advices and the defrag value "defer"/"defer+madvise" exist in every profile except
     that "3.10" restricts defrag to always/madvise/never (the brief's wording; real 3.15 lacked
     "defer" too).
TLB / costs
 T1. Counters: ``dtlb_misses`` = accesses that miss both L1s; ``stlb_misses`` = every walk (the
     walk before and the walk after a fault, and the walk caused by a write hitting a clean
     entry); ``walk_loads`` = loads of all walks. A walk when the mm has no PGD yet costs 1 load.
 T2. A write that hits a clean (or read-only) L1 entry walks at once (no STLB lookup). The STLB
     lookup costs ``stlb_hit_ps`` only when it satisfies the access.
 T3. The PDPTE cache is direct-mapped like the PDE cache. Walks fill the PDPTE cache on passing a
     present PUD entry and the PDE cache on passing a present non-leaf PMD entry (also when the
     walk then faults). A flush of [start, end) invalidates the mm's TLB entries and PSC entries
     whose region intersects the range, on every CPU.
 T4. ``tlb_flush_ps`` is charged: once per munmap / madvise / MAP_FIXED call that zapped a present
     leaf (zero-page leaves included) or split a huge PMD; in a fault, once per flush event (COW
     of a present PTE, PMD split, huge-zero PMD replaced by a THP). Migration's flush is inside
     ``migrate_page_ps``. madvise costs ``syscall_ps`` like mmap/munmap/prctl; sysfs writes cost
     nothing. GUP faults cost what a fault costs, without access/walk costs.
 T5. Costs of a fault: fault_ps + pgtable_alloc_ps per table (PGD and deposits included) +
     clear_page_ps per zeroed 4 KiB (THP and huge zero page 512x; COW of the zero page clears) +
     copy_page_ps per copied 4 KiB + compaction (compact_scan_ps per migrate-scanned pfn,
     migrate_page_ps per migrated page).
Compaction
 C1. The migrate scanner looks at every pfn of each pageblock it visits (512 per block, counted in
     ``compact_migrate_scanned``); the free scanner adds 512 to ``compact_free_scanned`` for each
     pageblock it starts to look into (lazily, when a destination page is first needed). No
     migratetype restrictions on either scanner. The allocation is retried after every source
     block; when the free scanner runs into the migrate scanner's block the run fails at once.
Observables
 O1. ``frame_state()`` lists data folios (anonymous and the huge zero page, mapcount 0); page
     tables are in ``page_table_frames()``. A folio's mapcount is its number of leaf mappings
     (PMD mappings + PTE mappings of its subpages).
 O2. ``nr_anon_pages`` = anonymous 4 KiB pages mapped by at least one leaf; ``nr_anon_transparent_
     hugepages`` = anonymous folios with a PMD mapping; ``nr_page_table_pages`` counts every table
     frame, PGDs and deposited tables included.
 O3. smaps ``Rss``/``Referenced`` skip zero-page leaves (``vm_normal_page`` returns NULL).
 O4. status ``THP_enabled`` is 1 on profiles 3.10 and 3.15.
 O5. ``mm_flags()``, ``vmas()``, ``min_flt()``, ``pageblock_migratetypes()``, ``page_table_frames()``
     and ``exit()`` are extras beyond the brief (for differential tests).
 O6. ``_deposit_table`` allocates before touching ``mm.deposits`` (an OOM used to leave an empty
     deposit stack behind; found by the section-9 stress).
API edges
 A1. Every public call is one operation on the task clock (SEMANTICS 8), so even an empty
     ``access()`` moves the task clock up to its CPU's free time. Addresses outside [0, 2**47)
     raise ValueError (no page walk can represent them).
 A2. ``SegmentationFault`` / ``OutOfMemory`` leave the state of earlier accesses, and the cost of
     the failing access (its fault included), in place.
Life cycle, protection, locking, heap (SEMANTICS 9)
 X1. ``nr_anon_pages`` / ``nr_anon_transparent_hugepages`` stay derived from the mappings (O2), which
     is the first/last-mapping rule. page_mapcount(page) = its PTE mappings + its folio's PMD
     mappings; that is the "mapcount" of MADV_FREE (do_wp_page and mprotect use E1). The rmap
     of an order-0 page is the list of its (mm, va) mappings; compaction still migrates mapcount-1
     pages only (C1). Every mm mapping a folio must share its anon root (checked).
 X2. ``clone_thread`` is one operation on the caller's clock costing ``syscall_ps`` (SEMANTICS is
     silent); the thread gets the next pid, CPU ``(pid - 1) % ncpus``, the caller's comm, tgid and
     oom_score_adj, and a clock equal to the caller's at the end. ``fork``'s child likewise.
 X3. fork copies VMAs one for one (dup_mmap): neighbours that become identical once VM_LOCKED is
     cleared are not merged, so identical adjacent VMAs can exist (the invariant allows it); a
     later mprotect/madvise/mlock around them merges them (anon_vma ignored, M3). mm ids (ASIDs)
     come from their own counter, not from pids.
 X4. fork running out of memory: the half-built child is torn down (exit_mmap) and fork raises
     OSError(ENOMEM); the parent keeps its write-protected entries; flush_tlb_mm, its
     ``tlb_flush_ps`` and all costs stay; no pid is used.
 X5. fork allocates child tables only for present leaves ("as in a fault"), in address order: the
     child PGD first (``pgtable_alloc_ps``, not in VmPTE), then per leaf PUD, PMD, then the PTE table
     or the THP/huge-zero deposit. (Linux would also allocate child PTE tables under empty parent
     PTE tables and skip VMAs without an anon_vma.) PROT_NONE leaves are copied like present ones.
 X6. execve: the caller keeps its pid ("pid kept"; Linux's de_thread would hand a non-leader the
     leader's pid) and becomes its group's leader; the other tasks of its thread group are removed
     first (their mm puts cost nothing extra), then the old mm is put. The fresh mm is what
     ``spawn`` gives (the three vDSO VMAs, D1) with brk reset, mm flags & the THP-disable bits (not MMF_VM_HUGEPAGE) and
     def_flags & VM_NOHUGEPAGE (MCL_FUTURE is dropped). execve and exit cost ``syscall_ps`` (+ one
     ``tlb_flush_ps`` if a teardown zapped a leaf, as before for exit).
 X7. Extras: ``task_info(pid)``; ``spawn(comm, oom_score_adj)``.
 V1. vma_adjust_trans_huge: every VMA split (munmap, mprotect, madvise flags, mlock/munlock/mlockall)
     goes through ``_split_vma_at``, which splits a huge PMD (huge zero included) straddling an
     unaligned split address first and then charges one flush (T4).
 P1. mprotect entry rules change only P, PROTNONE (bit 8), RW and NX; US, A, D and SPECIAL are kept
     (Linux's pte_modify would also drop US for PROT_NONE and set A). "Exclusive" = PageAnonExclusive
     of the page (a PMD: its head page), E1. A PROT_NONE leaf is present for
     software (Rss, zap, fork, page_table(), smaps) but not for the walk: any access faults and the
     VMA check raises SegmentationFault. Unknown prot bits = anything but READ|WRITE|EXEC
     (PROT_SEM, PROT_GROWSDOWN/UP included) -> EINVAL.
 P2. mprotect checks in do_mprotect_pkey's order: unaligned -> EINVAL, len 0 -> 0, wrap -> ENOMEM,
     unknown prot -> EINVAL, no VMA at addr -> ENOMEM (SEMANTICS lists prot before len 0; Linux's
     order wins, so mprotect(a, 0, 8) == 0). Negative values raise ValueError. A VMA whose flags do
     not change is neither split nor merged (mprotect_fixup). The VM_MAY* check (EACCES) is coded
     although unreachable for anonymous private VMAs.
 P3. mprotect flush: if any leaf entry changed or a huge PMD was split, the call's whole range
     [addr, addr + PAGE_ALIGN(len)) is invalidated once and ``tlb_flush_ps`` charged once (also when
     it then fails at a hole); a call that changes VMA flags only costs ``syscall_ps``.
 P4. mprotect does not populate a VM_LOCKED VMA that becomes writable (Linux's mprotect_fixup
     would); SEMANTICS does not list it.
 L1. PG_mlocked is ``Folio.mlocked`` with Linux's ``mlock_count`` (SEMANTICS 10 "Mlocked"), kept
     for every folio, order 0 included: ``_mlock_folio`` / ``_munlock_folio`` at the events of
     6.18 -- a new folio faulted into a locked VMA; ``_mlock_pte_range`` from ``_mlock_fixup``
     (PMD and order-0 page once, a PTE-mapped THP once per folio_pte_batch run, mlocked only by a
     run of all 512 pages); a zap of a locked VMA (``_unmap_range``, before the VMAs go); the old
     page of a COW in a locked VMA; a PMD split inside a locked VMA (``_split_huge_pmd``).
     ``nr_mlock`` sums the mlocked folios. Checked: an order-0 page's count equals its mappings in
     VM_LOCKED VMAs (the engine keeps no count for order-0 pages and relies on that; it keeps a
     THP's in a tail page), except a page split off a THP that was not mlocked (one partly in a
     locked VMA): like Linux, the split leaves it unlocked (Linux mlocks it when reclaim's rmap
     walk meets it in the VM_LOCKED VMA; neither model does), so its count is at most that. ``VmLck`` = MM_LOCKED * 4,
     MM_LOCKED follows mlock_fixup / mmap_region / do_brk_flags / munmap and always equals the size of
     the VM_LOCKED VMAs (checked). smaps ``Locked`` = the VMA's Pss when VM_LOCKED (Linux
     ``pss_locked``: per 4 KiB page ``(PAGE_SIZE << 12) // page_mapcount``, summed, ``>> 12``, in
     kB rounded down), so a page shared with a fork child counts half.
 L2. mlock/munlock: ``start &= PAGE_MASK``, ``len = PAGE_ALIGN(len + offset)`` (so len 0 at an
     unaligned start locks that page); end wrapping -> EINVAL; no VMA at start or a hole -> ENOMEM
     after the earlier VMAs changed, nothing populated. mlock's OOM -> EAGAIN
     (__mlock_posix_error_return); mlockall / mmap / brk populate with ignore_errors (an OOM ends
     that VMA's population). mlockall(MCL_CURRENT) without MCL_FUTURE clears an earlier MCL_FUTURE
     (apply_mlockall_flags); MCL_ONFAULT gives VM_LOCKED|VM_LOCKONFAULT (0x80000), never populated.
     MAP_LOCKED stays unsupported (M3).
 L3. Population (mlock, mlockall(MCL_CURRENT), mmap/brk under MCL_FUTURE, MAP_POPULATE) is
     __mm_populate: VM_LOCKONFAULT VMAs and PROT_NONE VMAs are skipped without an error (Linux's GUP
     would fail PROT_NONE with EFAULT, which mlock reports as ENOMEM); write faults iff VM_WRITE
     (private), GUP faults as F5.
 L4. MADV_FREE: the lazy-free mark is per 4 KiB page and never cleared (no reclaim yet); smaps
     ``LazyFree`` counts marked pages whose leaf is clean (not D). Marked: page_mapcount 1 (a PMD:
     folio mapcount 1) -- A and D cleared even if already clear. A huge-zero PMD is skipped, never
     split (Linux is_huge_zero_pmd); a partly covered THP PMD is split whether shared or not
     (literal SEMANTICS). A VM_LOCKED VMA -> EINVAL (can_madv_lru_vma, as for MADV_DONTNEED), earlier
     VMAs done. Flush (range invalidation + one ``tlb_flush_ps``) only if an entry changed or a PMD
     was split.
 H1. brk: growing needs [PAGE_ALIGN(brk), PAGE_ALIGN(addr)) free of VMAs and <= TASK_SIZE (no
     stack-guard gap); the range is inserted like mmap (merging with either neighbour,
     khugepaged_enter_vma as mmap); shrinking always succeeds (Linux returns the old break when no
     VMA intersects the range); an unchanged aligned end only moves ``brk``. The raw requested
     value is returned and stored. fork copies start_brk/brk, execve resets them.
Amendments (SEMANTICS 10)
 E1. PageAnonExclusive is ``Folio.exclusive``, one flag per 4 KiB page: every page of a new anon
     folio (4 KiB fault, COW copy, THP fault, huge-zero write that gets a THP) starts exclusive;
     fork clears the flag of every page the child maps too (a PMD: all 512); the flags stay with
     the folio object, so migration keeps them and a split PMD's PTEs inherit them. do_wp_page:
     exclusive -> reuse; else an order-0 page with page_mapcount 1, or a THP subpage whose folio
     has entire_mapcount 0 and exactly one PTE mapping in all, is made exclusive and reused;
     otherwise copied. A read-only THP PMD: exclusive head -> reuse; else entire_mapcount 1 and no
     PTE mapping -> all 512 made exclusive and reused; else split + copy. mprotect's write upgrade
     needs the page's (a PMD: head page's) flag. Checked: a writable leaf maps an exclusive page;
     an exclusive page is mapped at most once; a PMD-mapped folio's flags are all equal.
 D1. The vDSO: ``_new_mm`` (spawn, execve; not fork's child, which copies its parent's VMAs) puts
     ``[vvar]``, ``[vvar_vclock]`` and ``[vdso]`` (``VDSO_VMAS``) below MMAP_BASE, pgoff 0,
     ``Vma.special`` set: they never merge (mmap_region, mprotect/madvise/mlock merges); any fault
     in them (user access or GUP) is a SIGSEGV, so MADV_POPULATE over them fails with EFAULT after
     populating what comes before (Linux: check_vma_flags gives -EFAULT for the VM_IO|VM_PFNMAP
     vvar pages); mlock/munlock/mlockall leave their flags and MM_LOCKED alone and population skips
     them. Otherwise they are ordinary VMAs: munmap, mprotect, MADV_DONTNEED/FREE/HUGEPAGE act on
     them like on anonymous VMAs (nothing is mapped there), and they keep page tables covering
     their range alive in free_pgtables. total_vm / VmSize is not modelled.
 R1. Costs of failing calls: errors from argument checks raise ``_Rejected`` (an OSError) and
     ``_run`` then leaves every clock alone (task, CPU, machine): mmap's checks (EINVAL, ENOMEM
     length/range/no room, EEXIST), munmap's EINVAL, madvise's advice/alignment EINVAL,
     mprotect's EINVAL and wrap ENOMEM and "no VMA at addr" ENOMEM, every prctl error, and (same
     rule, SEMANTICS does not list them) mlock's wrap EINVAL and mlockall's EINVAL. Everything
     else that fails costs syscall_ps and what it did: ENOMEM at a hole (mprotect, mlock,
     madvise; also madvise/mlock with no VMA at all in range), MADV_DONTNEED/FREE's EINVAL on a
     locked VMA, MADV_POPULATE's EINVAL/EFAULT/ENOMEM, fork's ENOMEM.
khugepaged and MADV_COLLAPSE (SEMANTICS 11)
 K1. khugepaged is a cursor over ``kh_mms`` (enrolment order) and a wake time; ``_run_timers`` runs
     the wakeups due before an operation, before each access of a stream, in ``nanosleep`` and
     ``advance``, with the interrupted operation's cost kept aside. SCAN results are strings.
 K2. Linux's rules only (the engine follows them since the departures once listed here were
     fixed).
THP splits (SEMANTICS 12)
 S1. The deferred split queue is ``self.deferred`` (oldest first), ``Folio.deferred`` its flag,
     ``Folio.partially_mapped`` the partial mark; ``_remove_rmap_ptes`` / ``_zap_huge_pmd`` queue
     partially mapped THPs, ``_queue_new_thp`` (6.18) new ones, ``_free_folio`` dequeues.
     ``Folio.written`` per page: a store reached it (``_mark_written``, from the TLB entry's frame).
 S2. Zap batches follow ``folio_pte_batch``; ``_split_folio`` builds the order-0 folios' rmaps by
     walking every live mm's leaves.
 S3. ``departures=`` names engine behaviours from ``SPLIT_DEPARTURES`` to follow instead of
     Linux's rule; the default follows Linux.
 S4. 3.x: ``_split_huge_pmd`` of an anonymous THP calls ``_split_huge_page`` (other PMDs first,
     then the page); with ``split_310_zap_cow_only`` only munmap/MADV_DONTNEED and the COW fault
     split the page (``_split_page_too``).
"""

from __future__ import annotations

import math
from collections import namedtuple

# ----------------------------------------------------------------------------- constants
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = ~(PAGE_SIZE - 1)
HPAGE_PMD_SHIFT = 21
HPAGE_PMD_SIZE = 1 << HPAGE_PMD_SHIFT
HPAGE_PMD_NR = 512
HPAGE_PMD_ORDER = 9
MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = 11
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR = 1 << PAGEBLOCK_ORDER

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE = 0, 1, 2
MIGRATETYPES = (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE)
# mm/page_alloc.c fallbacks[] (SEMANTICS 1, simplified)
FALLBACKS = {
    MIGRATE_UNMOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),
    MIGRATE_MOVABLE: (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),
    MIGRATE_RECLAIMABLE: (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),
}

# arch/x86/include/asm/pgtable_types.h
_PAGE_PRESENT = 1 << 0
_PAGE_RW = 1 << 1
_PAGE_USER = 1 << 2
_PAGE_ACCESSED = 1 << 5
_PAGE_DIRTY = 1 << 6
_PAGE_PSE = 1 << 7
_PAGE_PROTNONE = 1 << 8  # _PAGE_GLOBAL reused for PROT_NONE leaves (P clear)
_PAGE_SPECIAL = 1 << 9
_PAGE_SOFTDIRTY = 1 << 11
_PAGE_NX = 1 << 63
PTE_PFN_MASK = ((1 << 52) - 1) & PAGE_MASK
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY

PGD_LEVEL, PUD_LEVEL, PMD_LEVEL, PTE_LEVEL = 4, 3, 2, 1
LEVEL_SHIFT = {PGD_LEVEL: 39, PUD_LEVEL: 30, PMD_LEVEL: 21, PTE_LEVEL: 12}
USER_VA_LIMIT = 1 << 47

TASK_SIZE = 0x7FFFFFFFF000
MMAP_BASE = TASK_SIZE - (128 << 20)
MMAP_MIN_ADDR = 65536

VM_READ, VM_WRITE, VM_EXEC, VM_SHARED = 0x1, 0x2, 0x4, 0x8
VM_MAYREAD, VM_MAYWRITE, VM_MAYEXEC, VM_MAYSHARE = 0x10, 0x20, 0x40, 0x80
VM_GROWSDOWN, VM_LOCKED = 0x100, 0x2000
VM_LOCKONFAULT = 0x80000
VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
VM_HUGEPAGE, VM_NOHUGEPAGE = 0x20000000, 0x40000000
VM_ACCOUNT, VM_NORESERVE = 0x100000, 0x200000  # overcommit accounting (mode 0: never refused here)

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_TYPE = 0x01, 0x02, 0x03
MAP_FIXED, MAP_ANONYMOUS = 0x10, 0x20
MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE = 0x100, 0x2000, 0x4000, 0x8000
MAP_HUGETLB, MAP_FIXED_NOREPLACE = 0x40000, 0x100000
_MAP_UNSUPPORTED = MAP_GROWSDOWN | MAP_LOCKED | MAP_HUGETLB

MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 4, 8, 14, 15
MADV_POPULATE_READ, MADV_POPULATE_WRITE = 22, 23

MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4

PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_THP_DISABLE_EXCEPT_ADVISED = 1 << 1

MMF_VM_HUGEPAGE = 17
MMF_DISABLE_THP_EXCEPT_ADVISED = 23
MMF_DISABLE_THP_COMPLETELY = 24
MMF_DISABLE_THP = 24  # 4.13 name of the same bit
# MMF_INIT_MASK as far as the model has mm flags: the THP-disable bits (kept by fork and exec)
MMF_THP_DISABLE_MASK = (1 << MMF_DISABLE_THP_EXCEPT_ADVISED) | (1 << MMF_DISABLE_THP_COMPLETELY)
VM_INIT_DEF_MASK = VM_NOHUGEPAGE

START_BRK = 0x555555559000
PSS_SHIFT = 12  # fs/proc/task_mmu.c: Pss is accumulated in bytes << PSS_SHIFT
# SEMANTICS 10: the vDSO mappings every new address space starts with, just below mmap_base
VDSO_VMAS = ((MMAP_BASE - 0x8000, MMAP_BASE - 0x4000, VM_READ | VM_MAYREAD, "[vvar]"),
             (MMAP_BASE - 0x4000, MMAP_BASE - 0x2000, VM_READ | VM_MAYREAD, "[vvar_vclock]"),
             (MMAP_BASE - 0x2000, MMAP_BASE, VM_READ | VM_EXEC | VM_MAYREAD | VM_MAYEXEC, "[vdso]"))

EPERM, ENOENT, EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EINVAL = 1, 2, 11, 12, 13, 14, 16, 17, 22
# Linux 6.18 __get_user_pages(FOLL_MADV_POPULATE): check_vma_flags() failure -> -EINVAL.
POPULATE_PERM_ERRNO = EINVAL

KERNELS = ("3.10", "3.15", "4.13", "6.18")
ZERO_WP = {"3.10": "thp", "3.15": "thp", "4.13": "split", "6.18": "thp"}
THP_ENABLED_VALUES = ("always", "madvise", "never")
DEFRAG_VALUES = ("always", "defer", "defer+madvise", "madvise", "never")
DEFRAG_VALUES_3_10 = ("always", "madvise", "never")
SYSFS_THP = "kernel/mm/transparent_hugepage/"

DEFAULT_TLB = dict(l1_4k_entries=64, l1_4k_ways=4, l1_2m_entries=32, l1_2m_ways=4,
                   stlb_entries=1536, stlb_ways=12, pde_cache_entries=32, pdpte_cache_entries=4)
DEFAULT_COSTS = dict(access_ps=333, stlb_hit_ps=3000, walk_load_ps=2333, fault_ps=400000,
                     clear_page_ps=100000, copy_page_ps=200000, pgtable_alloc_ps=150000,
                     syscall_ps=100000, tlb_flush_ps=100000, compact_scan_ps=5000,
                     migrate_page_ps=700000, copy_pte_ps=2000, scan_pte_ps=10000,
                     kswapd_page_ps=200000, reclaim_page_ps=200000)
VMSTAT_EVENTS = ("pgfault", "thp_fault_alloc", "thp_fault_fallback", "thp_zero_page_alloc",
                 "thp_zero_page_alloc_failed", "thp_split_pmd", "compact_stall", "compact_success",
                 "compact_fail", "compact_migrate_scanned", "compact_free_scanned",
                 "pgmigrate_success", "thp_collapse_alloc", "thp_collapse_alloc_failed",
                 "thp_scan_exceed_none_pte", "thp_scan_exceed_swap_pte",
                 "thp_scan_exceed_share_pte", "thp_split_page", "thp_deferred_split_page",
                 "thp_underused_split_page")
# khugepaged's sysfs knobs and their defaults (/sys/kernel/mm/transparent_hugepage/khugepaged/)
DEFAULT_KHUGEPAGED = dict(pages_to_scan=4096, scan_sleep_millisecs=10000,
                          alloc_sleep_millisecs=60000, defrag=1, max_ptes_none=511,
                          max_ptes_swap=64, max_ptes_shared=256)
MADV_COLLAPSE = 25
# madvise_collapse's whitelist: results after which it goes on to the next range
MADV_COLLAPSE_GOES_ON = frozenset({"pmd_null", "page_ro", "lack_referenced_page", "page_null",
                                   "page_count", "page_compound", "page_lru"})
# khugepaged's writable rule per profile (SEMANTICS 11): every present PTE writable (3.x), at
# least one writable PTE (4.0 .. 6.17), no writable test (6.18)
COLLAPSE_RULE = {"3.10": "all_writable", "3.15": "all_writable", "4.13": "one_writable",
                 "6.18": "any"}
SWAP_CLUSTER_MAX = 32
FAULT_RESERVE_TABLES = 8
MAX_RECLAIM_RETRIES = 16     # kswapd runs freeing nothing before it gives up
# Profiles whose split_huge_page splits the compound page together with the PMD (3.x)
SPLIT_PAGE_KERNELS = ("3.10", "3.15")
# Where the engine's THP splitting is known to depart from Linux (SEMANTICS 12 "Known
# departures"). A RefMachine made with ``departures=`` naming some of them follows the engine
# there; without, it follows Linux.
SPLIT_DEPARTURES = (
    "split_queue_pmd_mapped",   # a subpage's last PTE mapping queues a folio still PMD-mapped
    "split_queue_unbatched",    # zap removes a THP's PTE mappings one by one (no folio_pte_batch)
    "split_310_zap_cow_only",   # 3.x splits the page only in zap and COW, and only if no other
                                # PMD maps it (split_huge_page splits every PMD, always)
)


class SegmentationFault(Exception):
    """SIGSEGV delivered to the task at ``address``."""

    def __init__(self, address):
        super().__init__(f"SIGSEGV at {address:#x}")
        self.address = address


class OutOfMemory(Exception):
    """A fault returned VM_FAULT_OOM (an order-0 allocation failed); no OOM killer here."""

    def __init__(self, address):
        super().__init__(f"VM_FAULT_OOM at {address:#x}")
        self.address = address


def _oserror(code):
    import os
    return OSError(code, os.strerror(code))


class _Rejected(OSError):
    """An error from a call's argument checks, raised before anything changed: the call costs
    nothing and the clocks do not move (SEMANTICS 10)."""


def _rejected(code):
    import os
    return _Rejected(code, os.strerror(code))


def _page_align(n):
    return (n + PAGE_SIZE - 1) & PAGE_MASK


def _signed64(entry):
    return entry - (1 << 64) if entry & (1 << 63) else entry


def _entry_pfn(entry):
    return (entry & PTE_PFN_MASK) >> PAGE_SHIFT


def _pt_index(va, level):
    return (va >> LEVEL_SHIFT[level]) & 511


def _intersects(a0, a1, b0, b1):
    return a0 < b1 and b0 < a1


def _present(entry):
    """pte_present/pmd_present: a PROT_NONE leaf (P clear, PROTNONE set) is still present to
    software (mapped, in Rss); only the hardware walk (``_walk``) looks at P alone."""
    return bool(entry & (_PAGE_PRESENT | _PAGE_PROTNONE))


def _batch_bits(entry):
    """What folio_pte_batch compares besides the pfn: all but accessed, dirty and writable."""
    return entry & ~(PTE_PFN_MASK | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW)


# ----------------------------------------------------------------------------- buddy allocator
class BuddyZone:
    """One zone of the buddy allocator (mm/page_alloc.c; SEMANTICS 1).

    Lists are Python lists with the head at index 0. Blocks at and above ``high_water`` are free
    without being listed; they act as the tail of the (10, MOVABLE) list.
    """

    def __init__(self, nr_pages):
        self.nr_pages = nr_pages
        self.high_water = 0
        self.lists = {(o, mt): [] for o in range(NR_PAGE_ORDERS) for mt in MIGRATETYPES}
        self.free_order = {}  # head pfn -> order of an explicit free block
        self.free_mt = {}  # head pfn -> migratetype of the list it sits on
        self.pageblock_mt = [MIGRATE_MOVABLE] * (nr_pages >> PAGEBLOCK_ORDER)

    # -- list primitives (add_to_free_list / del_page_from_free_list)
    def _add(self, pfn, order, mt):
        self.lists[(order, mt)].insert(0, pfn)
        self.free_order[pfn] = order
        self.free_mt[pfn] = mt

    def _del(self, pfn):
        order = self.free_order.pop(pfn)
        mt = self.free_mt.pop(pfn)
        self.lists[(order, mt)].remove(pfn)
        return order

    def _pb_mt(self, pfn):
        return self.pageblock_mt[pfn >> PAGEBLOCK_ORDER]

    def _take_head(self, order, mt):
        """Head block of the (order, mt) list, or the next implicit block; -1 if none."""
        lst = self.lists[(order, mt)]
        if lst:
            pfn = lst[0]
            self._del(pfn)
            return pfn
        if mt == MIGRATE_MOVABLE and order == MAX_PAGE_ORDER and self.high_water < self.nr_pages:
            pfn = self.high_water
            self.high_water += 1 << MAX_PAGE_ORDER
            return pfn
        return -1

    def _expand(self, pfn, high, low):
        """expand(): give back the upper halves, each to its own pageblock's list."""
        while high > low:
            high -= 1
            buddy = pfn + (1 << high)
            self._add(buddy, high, self._pb_mt(buddy))

    def _claim(self, pfn, order, mt):
        """Claim the pageblock(s) of a stolen block (SEMANTICS 1 step 2, see B1)."""
        start = pfn & ~(PAGEBLOCK_NR - 1)
        end = start + max(1 << order, PAGEBLOCK_NR)
        for pb in range(start >> PAGEBLOCK_ORDER, end >> PAGEBLOCK_ORDER):
            self.pageblock_mt[pb] = mt
        inside = sorted(h for h, o in self.free_order.items()
                        if start <= h and h + (1 << o) <= end)
        for head in inside:
            o = self._del(head)
            self._add(head, o, mt)

    def alloc(self, order, mt):
        """__rmqueue_smallest, then __rmqueue_fallback; -1 on failure (nothing changes)."""
        for o in range(order, NR_PAGE_ORDERS):
            pfn = self._take_head(o, mt)
            if pfn >= 0:
                self._expand(pfn, o, order)
                return pfn
        for o in range(MAX_PAGE_ORDER, order - 1, -1):
            for fallback_mt in FALLBACKS[mt]:
                pfn = self._take_head(o, fallback_mt)
                if pfn >= 0:
                    if o >= PAGEBLOCK_ORDER // 2:
                        self._claim(pfn, o, mt)
                    self._expand(pfn, o, order)
                    return pfn
        return -1

    def free(self, pfn, order):
        """__free_one_page: merge with free buddies of the same order, insert at the head."""
        while order < MAX_PAGE_ORDER:
            buddy = pfn ^ (1 << order)
            if buddy >= self.high_water or self.free_order.get(buddy) != order:
                break
            self._del(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self._add(pfn, order, self._pb_mt(pfn))

    def free_block_containing(self, pfn):
        """(head, order) of the explicit free block holding pfn, or None."""
        for o in range(NR_PAGE_ORDERS):
            head = pfn & ~((1 << o) - 1)
            if self.free_order.get(head) == o:
                return head, o
        return None

    def is_free(self, pfn):
        return pfn >= self.high_water or self.free_block_containing(pfn) is not None

    def isolate_lowest_free(self, pb):
        """Compaction free scanner: take the lowest free pfn of pageblock pb (B2); -1 if none."""
        base = pb << PAGEBLOCK_ORDER
        for target in range(base, base + PAGEBLOCK_NR):
            blk = self.free_block_containing(target)
            if blk is None:
                continue
            cur, o = blk
            self._del(cur)
            while o > 0:
                o -= 1
                half = 1 << o
                if target >= cur + half:
                    self._add(cur, o, self._pb_mt(cur))
                    cur += half
                else:
                    self._add(cur + half, o, self._pb_mt(cur + half))
            return cur
        return -1

    def nr_free(self):
        explicit = sum(1 << o for o in self.free_order.values())
        return explicit + (self.nr_pages - self.high_water)


# ----------------------------------------------------------------------------- records
class Folio:
    """An allocated data folio: anonymous (order 0 or 9) or the huge zero page."""

    __slots__ = ("pfn", "order", "kind", "entire_mapcount", "page_mapcount", "rmap", "anon_root",
                 "lazyfree", "exclusive", "mlocked", "mlock_count", "split_unlocked",
                 "partially_mapped", "deferred", "written")

    def __init__(self, pfn, order, kind):
        self.pfn = pfn
        self.order = order
        self.kind = kind  # "anon" or "huge_zero"
        self.entire_mapcount = 0  # PMD mappings
        self.page_mapcount = [0] * (1 << order)  # PTE mappings per subpage
        self.rmap = []  # order-0 anon page: the (mm, va) of every PTE mapping it (X1)
        self.anon_root = None  # anon_vma tree (shared along fork) of the mm that faulted it in
        self.lazyfree = [False] * (1 << order)  # MADV_FREE per subpage (!PG_swapbacked, L4)
        # PageAnonExclusive per subpage (SEMANTICS 10): set on every page of a new anon folio
        self.exclusive = [kind == "anon"] * (1 << order)
        self.mlocked = False  # PG_mlocked (L1)
        self.mlock_count = 0  # folio->mlock_count: mlocks not yet undone (0 unless mlocked)
        self.split_unlocked = False  # split off a THP that was not mlocked (L1)
        self.partially_mapped = False  # PG_partially_mapped: some subpage unmapped (S1)
        self.deferred = False  # on the deferred split queue (S1)
        # per subpage: a store reached it since it was zero-filled (S1: thp_underused, the zero
        # page remap on split)
        self.written = [False] * (1 << order)

    def mapcount(self):
        return self.entire_mapcount + sum(self.page_mapcount)

    def page_mapcount_of(self, sub):
        """page_mapcount(): PTE mappings of the subpage plus the folio's PMD mappings."""
        return self.page_mapcount[sub] + self.entire_mapcount


class Table:
    """One page-table page: 512 entries (unsigned ints)."""

    __slots__ = ("pfn", "level", "entries")

    def __init__(self, pfn, level):
        self.pfn = pfn
        self.level = level
        self.entries = [0] * 512


class Vma:
    __slots__ = ("start", "end", "flags", "pgoff", "special", "anon_vma")

    def __init__(self, start, end, flags, special=None):
        self.start, self.end, self.flags, self.pgoff = start, end, flags, start >> PAGE_SHIFT
        self.special = special  # "[vvar]", "[vvar_vclock]", "[vdso]" (D1), else None
        if special is not None:
            self.pgoff = 0
        # an anon_vma is attached (anon_vma_prepare): by a write fault in a private VMA, or a
        # fault where a THP may come in (the huge zero page too); split halves keep it, a merge
        # ORs it, fork copies it
        self.anon_vma = False

    def mergeable(self):
        return self.special is None

    def __repr__(self):
        name = f" {self.special}" if self.special else ""
        return f"Vma({self.start:#x}-{self.end:#x} {self.flags:#x}{name})"


class Mm:
    def __init__(self, mm_id):
        self.id = mm_id  # also the ASID
        self.users = 1  # MM_USERS: tasks using this mm (threads share it)
        self.anon_root = mm_id  # anon_vma tree id; a forked child keeps its parent's
        self.locked_vm = 0  # MM_LOCKED: pages in VM_LOCKED VMAs (VmLck)
        self.start_brk = self.brk = START_BRK
        self.pgd = None  # pfn of the PGD table
        self.vmas = []  # sorted by start, non-overlapping
        self.rss_anon = 0
        self.nr_pgtables = 0  # PUD + PMD + PTE tables + deposited tables (mm_pgtables_bytes / 4096)
        self.deposits = {}  # (va >> 30) -> stack of PTE tables deposited on that PMD table (LIFO)
        self.flags = 0  # mm->flags (MMF_*)
        self.def_flags = 0  # mm->def_flags (3.15 PR_SET_THP_DISABLE)

    def find_vma(self, va):
        for vma in self.vmas:
            if vma.start <= va < vma.end:
                return vma
        return None

    def vmas_in(self, start, end):
        return [v for v in self.vmas if _intersects(v.start, v.end, start, end)]

    def any_vma_in(self, start, end):
        return any(_intersects(v.start, v.end, start, end) for v in self.vmas)


class Task:
    def __init__(self, pid, comm, mm, cpu, tgid=None, oom_score_adj=0):
        self.pid, self.comm, self.mm, self.cpu = pid, comm, mm, cpu
        self.tgid = pid if tgid is None else tgid
        self.oom_score_adj = oom_score_adj
        self.clock_ps = 0
        self.min_flt = 0
        self.accesses = self.dtlb_misses = self.stlb_misses = self.walk_loads = 0


TlbEntry = namedtuple("TlbEntry", "asid vpn shift pfn writable dirty")


class SetAssocTlb:
    """A set-associative TLB with LRU replacement (invalid way first, lowest index first)."""

    def __init__(self, entries, ways):
        self.nsets = entries // ways
        self.ways = ways
        self.sets = [[None] * ways for _ in range(self.nsets)]
        self.stamps = [[0] * ways for _ in range(self.nsets)]
        self.clock = 0

    def _touch(self, s, w):
        self.clock += 1
        self.stamps[s][w] = self.clock

    def lookup(self, asid, vpn, shift):
        s = vpn % self.nsets
        for w, e in enumerate(self.sets[s]):
            if e is not None and e.asid == asid and e.vpn == vpn and e.shift == shift:
                self._touch(s, w)
                return e
        return None

    def fill(self, entry):
        s = entry.vpn % self.nsets
        ways = self.sets[s]
        victim = None
        for w, e in enumerate(ways):  # same tag: update in place
            if e is not None and (e.asid, e.vpn, e.shift) == (entry.asid, entry.vpn, entry.shift):
                victim = w
                break
        if victim is None and None in ways:
            victim = ways.index(None)
        if victim is None:
            victim = min(range(self.ways), key=lambda w: (self.stamps[s][w], w))
        ways[victim] = entry
        self._touch(s, victim)

    def invalidate(self, asid, start, end):
        for ways in self.sets:
            for w, e in enumerate(ways):
                if e is not None and e.asid == asid and _intersects(
                        e.vpn << e.shift, (e.vpn + 1) << e.shift, start, end):
                    ways[w] = None

    def entries(self):
        return [e for ways in self.sets for e in ways if e is not None]


class Cpu:
    def __init__(self, tlb):
        self.l1_4k = SetAssocTlb(tlb["l1_4k_entries"], tlb["l1_4k_ways"])
        self.l1_2m = SetAssocTlb(tlb["l1_2m_entries"], tlb["l1_2m_ways"])
        self.stlb = SetAssocTlb(tlb["stlb_entries"], tlb["stlb_ways"])
        self.pde = [None] * tlb["pde_cache_entries"]  # (asid, va >> 21, PTE-table pfn)
        self.pdpte = [None] * tlb["pdpte_cache_entries"]  # (asid, va >> 30, PMD-table pfn)
        self.free_ps = 0

    def l1_for(self, shift):
        return self.l1_4k if shift == PAGE_SHIFT else self.l1_2m


def _psc_invalidate(cache, key_shift, asid, start, end):
    for i, e in enumerate(cache):
        if e is not None and e[0] == asid and _intersects(
                e[1] << key_shift, (e[1] + 1) << key_shift, start, end):
            cache[i] = None


# ----------------------------------------------------------------------------- the machine
class RefMachine:
    """Reference model of one simulated machine (see the module docstring for the choices)."""

    def __init__(self, memory_bytes, ncpus=1, kernel="6.18", thp_enabled="always",
                 thp_defrag="madvise", use_zero_page=True, tlb=None, costs=None,
                 khugepaged=None, departures=()):
        nr_pages = memory_bytes // PAGE_SIZE
        if memory_bytes % PAGE_SIZE or nr_pages == 0 or nr_pages % 1024:
            raise ValueError("memory must be a positive multiple of 4 MiB")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}")
        self.kernel = kernel
        self.nr_pages = nr_pages
        self.zero_pfn = nr_pages  # ZERO_PAGE(0): outside the zone
        self.buddy = BuddyZone(nr_pages)
        self.tlb_cfg = dict(DEFAULT_TLB, **(tlb or {}))
        self.costs = dict(DEFAULT_COSTS, **(costs or {}))
        self.cpus = [Cpu(self.tlb_cfg) for _ in range(ncpus)]
        self.ncpus = ncpus
        self.thp_enabled = self.thp_defrag = None
        try:
            self.sysfs_write(SYSFS_THP + "enabled", thp_enabled)
            self.sysfs_write(SYSFS_THP + "defrag", thp_defrag)
        except OSError:
            raise ValueError(f"bad THP setting {thp_enabled!r}/{thp_defrag!r} for {kernel}") from None
        self.use_zero_page = bool(use_zero_page)
        self.shrink_underused = True   # transparent_hugepage/shrink_underused (6.18 only)
        self.huge_zero_pfn = None
        self.tasks = {}
        self.next_pid = 1
        self.next_mm_id = 1
        self.folios = {}  # head pfn -> Folio
        self.tables = {}  # pfn -> Table (every page-table frame, deposited ones included)
        self.events = {k: 0 for k in VMSTAT_EVENTS}
        self.now_ps = 0
        self._cost = 0
        self._flush_needed = False
        self._op_start = 0
        self._fault_start = 0
        # khugepaged (SEMANTICS 11)
        self.kh_knobs = dict(DEFAULT_KHUGEPAGED, **(khugepaged or {}))
        unknown = set(departures) - set(SPLIT_DEPARTURES)
        if unknown:
            raise ValueError(f"unknown departures {sorted(unknown)}")
        self.departures = frozenset(departures)
        self.kh_mms = []            # khugepaged_scan.mm_head: enrolled mms, in enrolment order
        self.kh_scan_mm = None      # khugepaged_scan.mm_slot
        self.kh_scan_addr = 0       # khugepaged_scan.address
        self.kh_wake_ps = None      # next wakeup; None: asleep until an mm enrols
        self.kh_busy_ps = 0
        self.kh_pages_collapsed = 0
        self.kh_full_scans = 0
        self.kh_pages_scanned = 0
        # THP splitting (SEMANTICS 12): the deferred split queue, oldest first, and kswapd
        self.deferred = []
        self.split_nr_deferred = 0   # the deferred-split shrinker's nr_deferred (6.18 reclaim)
        self.kswapd_ps = None       # kswapd's own clock; None: asleep
        self.kswapd_failures = 0    # its runs that freed nothing in a row (MAX_RECLAIM_RETRIES)
        self.wmark_min, self.wmark_low, self.wmark_high = self._watermarks(memory_bytes)

    # ------------------------------------------------------------------ time (SEMANTICS 8)
    def _run(self, task, body, syscall=True):
        """Run one operation on the task's clock: start at max(task clock, cpu free time)."""
        cpu = self.cpus[task.cpu]
        start = max(task.clock_ps, cpu.free_ps)
        self._run_timers(start)  # khugepaged wakeups due before the op can start
        self._op_start = start
        self._cost = self.costs["syscall_ps"] if syscall else 0
        self._flush_needed = False
        rejected = False
        try:
            return body()
        except _Rejected:
            rejected = True  # argument checks: nothing changed, no time (SEMANTICS 10)
            assert not self._flush_needed
            raise
        finally:
            if not rejected:
                if self._flush_needed:
                    self._cost += self.costs["tlb_flush_ps"]
                    self._flush_needed = False
                end = start + self._cost
                task.clock_ps = cpu.free_ps = end
                self.now_ps = max(self.now_ps, end)

    def _watermarks(self, memory_bytes):
        """__setup_per_zone_wmarks for the one zone (pages): min_free_kbytes is
        int_sqrt(kbytes * 16) in [128, 262144], raised while THP is enabled to
        set_recommended_min_free_kbytes (11 pageblocks, at most 5% of memory);
        watermark_scale_factor 10."""
        kb = memory_bytes >> 10
        v = min(max(math.isqrt(kb * 16), 128), 262144)
        if self.thp_enabled != "never":
            v = max(v, min(11 * PAGEBLOCK_NR * 4, kb // 20))
        wmin = v >> 2
        tmp = max(wmin >> 2, self.nr_pages * 10 // 10000)
        return wmin, wmin + tmp, wmin + 2 * tmp

    @property
    def now_ns(self):
        return self.now_ps // 1000

    def _task(self, pid):
        if pid not in self.tasks:
            raise KeyError(f"no task {pid}")
        return self.tasks[pid]

    # ------------------------------------------------------------------ tasks (SEMANTICS 9)
    def _new_mm(self, vdso=True):
        """A new mm; a new address space (spawn, execve) starts with the vDSO VMAs (SEMANTICS 10),
        fork's child (vdso=False) copies its parent's instead."""
        mm = Mm(self.next_mm_id)
        self.next_mm_id += 1
        if vdso:
            mm.vmas = [Vma(s, e, f, name) for s, e, f, name in VDSO_VMAS]
        return mm

    def _new_task(self, comm, mm, tgid=None, oom_score_adj=0):
        pid = self.next_pid
        self.next_pid += 1
        self.tasks[pid] = Task(pid, comm, mm, (pid - 1) % self.ncpus, tgid, oom_score_adj)
        return self.tasks[pid]

    def _mms(self):
        """Every live mm (once each, threads share theirs), by id."""
        return {t.mm.id: t.mm for t in self.tasks.values()}

    def spawn(self, comm="task", oom_score_adj=0):
        return self._new_task(comm, self._new_mm(), oom_score_adj=oom_score_adj).pid

    def exit(self, pid):
        """do_exit -> exit_mm -> mmput: the last user's exit tears the mm down (exit_mmap)."""
        task = self._task(pid)
        self._run(task, lambda: self._mmput(task.mm))
        del self.tasks[pid]

    def _mmput(self, mm):
        mm.users -= 1
        assert mm.users >= 0
        if mm.users == 0:
            self._khugepaged_exit(mm)
            self._exit_mmap(mm)

    def _exit_mmap(self, mm):
        """exit_mmap: zap every VMA in address order, free every table bottom-up, the PGD last."""
        if mm.vmas:
            self._unmap_range(mm, 0, TASK_SIZE)
        if mm.pgd is not None:
            self._free_pgtables(mm, 0, USER_VA_LIMIT)
            self._free_table(mm, mm.pgd, counted=False)
            mm.pgd = None
        self._tlb_invalidate(mm, 0, 1 << 64)
        assert mm.nr_pgtables == 0 and mm.rss_anon == 0 and mm.locked_vm == 0 and not mm.deposits

    def clone_thread(self, pid):
        """clone(CLONE_VM | CLONE_THREAD ...): a new task sharing the mm (X2)."""
        task = self._task(pid)

        def body():
            task.mm.users += 1
        self._run(task, body)
        thread = self._new_task(task.comm, task.mm, task.tgid, task.oom_score_adj)
        thread.clock_ps = task.clock_ps
        return thread.pid

    def fork(self, pid):
        """fork: dup_mm + copy_page_range (SEMANTICS 9); OSError(ENOMEM) if a table runs out."""
        parent = self._task(pid)
        mm = self._run(parent, lambda: self._dup_mm(parent.mm))
        child = self._new_task(parent.comm, mm, oom_score_adj=parent.oom_score_adj)
        child.clock_ps = parent.clock_ps
        return child.pid

    def _dup_mm(self, old):
        mm = self._new_mm(vdso=False)
        mm.anon_root = old.anon_root
        mm.flags = old.flags & (MMF_THP_DISABLE_MASK | (1 << MMF_VM_HUGEPAGE))
        mm.def_flags = old.def_flags & VM_INIT_DEF_MASK
        mm.start_brk, mm.brk = old.start_brk, old.brk
        for v in old.vmas:  # one for one: no merging of VMAs that became identical (X3)
            vma = Vma(v.start, v.end, v.flags & ~VM_LOCKED_MASK, v.special)
            vma.pgoff = v.pgoff
            vma.anon_vma = v.anon_vma
            mm.vmas.append(vma)
        try:
            if old.pgd is not None:
                mm.pgd = self._alloc_table(mm, PGD_LEVEL, 0, counted=False)
                self._copy_page_range(old, mm)
            if old.flags & (1 << MMF_VM_HUGEPAGE):
                mm.flags &= ~(1 << MMF_VM_HUGEPAGE)
                self._khugepaged_enter(mm, self._op_start)  # khugepaged_fork
        except OutOfMemory:
            self._exit_mmap(mm)  # X4
            raise _oserror(ENOMEM) from None
        finally:
            self._tlb_invalidate(old, 0, 1 << 64)  # flush_tlb_mm(oldmm)
            self._cost += self.costs["tlb_flush_ps"]
        return mm

    def _copy_page_range(self, old, mm):
        """copy_page_range for every VMA, leaf by leaf in address order (X5)."""
        for va, entry, size_kb in list(self._leaves(old, 0, USER_VA_LIMIT)):
            pfn = _entry_pfn(entry)
            pmd_c = self._pmd_alloc_path(mm, va)
            if size_kb == 2048:  # copy_huge_pmd
                i = _pt_index(va, PMD_LEVEL)
                src = self._table_at(old, va, PMD_LEVEL)
                self._deposit_table(mm, va, va)
                if pfn != self.huge_zero_pfn:
                    entry &= ~_PAGE_RW
                    src.entries[i] = entry
                    folio = self.folios[pfn]
                    folio.entire_mapcount += 1
                    folio.exclusive = [False] * HPAGE_PMD_NR  # both mms map all 512 pages
                    mm.rss_anon += HPAGE_PMD_NR
                pmd_c.entries[i] = entry & ~_PAGE_ACCESSED
            else:  # copy_present_pte
                pte_c = self._get_or_alloc(mm, pmd_c, va, PTE_LEVEL)
                src, j, _ = self._leaf(old, va)
                if pfn != self.zero_pfn:
                    entry &= ~_PAGE_RW
                    src.entries[j] = entry
                    folio, sub = self._folio_of(pfn)
                    folio.page_mapcount[sub] += 1
                    folio.exclusive[sub] = False
                    if folio.order == 0:
                        folio.rmap.append((mm, va))
                    mm.rss_anon += 1
                pte_c.entries[j] = entry & ~_PAGE_ACCESSED
            self._cost += self.costs["copy_pte_ps"]

    def execve(self, pid, comm):
        """execve: other threads exit, the task gets a fresh mm, the old one loses a user (X6)."""
        task = self._task(pid)

        def body():
            for other in [t for t in self.tasks.values() if t.tgid == task.tgid and t is not task]:
                self._mmput(other.mm)
                del self.tasks[other.pid]
            old = task.mm
            mm = self._new_mm()
            mm.flags = old.flags & MMF_THP_DISABLE_MASK
            mm.def_flags = old.def_flags & VM_INIT_DEF_MASK
            task.mm = mm
            task.comm = comm
            task.tgid = task.pid
            self._mmput(old)
        self._run(task, body)

    def task_info(self, pid):
        t = self._task(pid)
        return {"pid": t.pid, "tgid": t.tgid, "comm": t.comm, "oom_score_adj": t.oom_score_adj,
                "cpu": t.cpu, "mm": t.mm.id, "mm_users": t.mm.users}

    # ------------------------------------------------------------------ frames
    def _alloc_table(self, mm, level, va, counted=True):
        """pte_alloc_one / pmd_alloc_one / pud_alloc_one / pgd_alloc: order 0 UNMOVABLE."""
        pfn = self.buddy.alloc(0, MIGRATE_UNMOVABLE)
        if pfn < 0:
            raise OutOfMemory(va)
        self.tables[pfn] = Table(pfn, level)
        self._cost += self.costs["pgtable_alloc_ps"]
        if counted:
            mm.nr_pgtables += 1
        return pfn

    def _free_table(self, mm, pfn, counted=True):
        table = self.tables.pop(pfn)
        assert not any(table.entries), "freeing a page table that still has entries"
        self.buddy.free(pfn, 0)
        if counted:
            mm.nr_pgtables -= 1

    def _new_folio(self, pfn, order, kind):
        folio = Folio(pfn, order, kind)
        self.folios[pfn] = folio
        self._cost += self.costs["clear_page_ps"] << order  # clear_page / folio_zero_user
        return folio

    def _free_folio(self, folio):
        self._deferred_split_remove(folio)
        del self.folios[folio.pfn]
        self.buddy.free(folio.pfn, folio.order)

    def _folio_of(self, pfn):
        """The folio holding pfn, and the subpage index."""
        folio = self.folios.get(pfn)
        if folio is None:
            folio = self.folios[pfn & ~(HPAGE_PMD_NR - 1)]
            assert folio.order == HPAGE_PMD_ORDER
        return folio, pfn - folio.pfn

    # ------------------------------------------------------------------ page-table helpers
    def _table_at(self, mm, va, level):
        """The table of `level` that maps va, or None if a level above is missing."""
        if mm.pgd is None:
            return None
        table = self.tables[mm.pgd]
        for lvl in (PGD_LEVEL, PUD_LEVEL, PMD_LEVEL):
            if lvl == level:
                return table
            entry = table.entries[_pt_index(va, lvl)]
            if not entry & _PAGE_PRESENT or (lvl == PMD_LEVEL and entry & _PAGE_PSE):
                return None
            table = self.tables[_entry_pfn(entry)]
        return table

    def _leaf(self, mm, va):
        """(table, index, level) of the present leaf mapping va, or None."""
        pmd_t = self._table_at(mm, va, PMD_LEVEL)
        if pmd_t is None:
            return None
        i = _pt_index(va, PMD_LEVEL)
        entry = pmd_t.entries[i]
        if not _present(entry):
            return None
        if entry & _PAGE_PSE:
            return pmd_t, i, PMD_LEVEL
        pte_t = self.tables[_entry_pfn(entry)]
        j = _pt_index(va, PTE_LEVEL)
        return (pte_t, j, PTE_LEVEL) if _present(pte_t.entries[j]) else None

    def _get_or_alloc(self, mm, table, va, child_level):
        """Follow (or allocate and install) the child table of `table` for va."""
        i = _pt_index(va, table.level)
        if not _present(table.entries[i]):
            pfn = self._alloc_table(mm, child_level, va)
            table.entries[i] = _PAGE_TABLE | (pfn << PAGE_SHIFT)
        return self.tables[_entry_pfn(table.entries[i])]

    def _pmd_alloc_path(self, mm, va):
        """pgd (first fault), pud_alloc, pmd_alloc (__handle_mm_fault); returns the PMD table."""
        if mm.pgd is None:
            mm.pgd = self._alloc_table(mm, PGD_LEVEL, va, counted=False)
        pud_t = self._get_or_alloc(mm, self.tables[mm.pgd], va, PUD_LEVEL)
        return self._get_or_alloc(mm, pud_t, va, PMD_LEVEL)

    @staticmethod
    def _prot_bits(vma):
        return 0 if vma.flags & VM_EXEC else _PAGE_NX

    def _iter_pmd_slots(self, mm, start, end):
        """Yield (pmd_table, index, slot_va) for present PMD entries intersecting [start, end)."""
        if mm.pgd is None:
            return
        pgd = self.tables[mm.pgd]
        for gi in range(512):
            g0 = gi << 39
            if not _intersects(g0, g0 + (1 << 39), start, end) or not pgd.entries[gi] & _PAGE_PRESENT:
                continue
            pud_t = self.tables[_entry_pfn(pgd.entries[gi])]
            for ui in range(512):
                u0 = g0 + (ui << 30)
                if not _intersects(u0, u0 + (1 << 30), start, end) or not pud_t.entries[ui] & _PAGE_PRESENT:
                    continue
                pmd_t = self.tables[_entry_pfn(pud_t.entries[ui])]
                for mi in range(512):
                    m0 = u0 + (mi << 21)
                    if _intersects(m0, m0 + HPAGE_PMD_SIZE, start, end) and _present(pmd_t.entries[mi]):
                        yield pmd_t, mi, m0

    # ------------------------------------------------------------------ TLB (SEMANTICS 7)
    def _tlb_invalidate(self, mm, start, end):
        """flush_tlb_mm_range on every CPU: TLB and paging-structure-cache entries (T3)."""
        for cpu in self.cpus:
            for tlb in (cpu.l1_4k, cpu.l1_2m, cpu.stlb):
                tlb.invalidate(mm.id, start, end)
            _psc_invalidate(cpu.pde, 21, mm.id, start, end)
            _psc_invalidate(cpu.pdpte, 30, mm.id, start, end)

    def _fault_flush(self, mm, start, end):
        """A flush inside a fault: state plus tlb_flush_ps (T4)."""
        self._tlb_invalidate(mm, start, end)
        self._cost += self.costs["tlb_flush_ps"]

    def _access(self, task, va, write):
        """One load or store by the task (SEMANTICS 7)."""
        if va < 0 or va >= USER_VA_LIMIT:
            raise ValueError(f"address {va:#x} outside the user half")
        cpu = self.cpus[task.cpu]
        asid = task.mm.id
        task.accesses += 1
        self._cost += self.costs["access_ps"]
        e = cpu.l1_4k.lookup(asid, va >> PAGE_SHIFT, PAGE_SHIFT)
        if e is None:
            e = cpu.l1_2m.lookup(asid, va >> HPAGE_PMD_SHIFT, HPAGE_PMD_SHIFT)
        if e is not None:
            if not write or (e.writable and e.dirty):
                if write:
                    self._mark_written(e, va)
                return
        else:
            task.dtlb_misses += 1
            e = cpu.stlb.lookup(asid, va >> PAGE_SHIFT, PAGE_SHIFT)
            if e is None:
                e = cpu.stlb.lookup(asid, va >> HPAGE_PMD_SHIFT, HPAGE_PMD_SHIFT)
            if e is not None and (not write or (e.writable and e.dirty)):
                self._cost += self.costs["stlb_hit_ps"]
                cpu.l1_for(e.shift).fill(e)
                if write:
                    self._mark_written(e, va)
                return
        for _ in range(3):
            entry = self._walk(task, va, write)
            if entry is not None:
                cpu.stlb.fill(entry)
                cpu.l1_for(entry.shift).fill(entry)
                if write:
                    self._mark_written(entry, va)
                return
            self._handle_mm_fault(task, va, write)
        raise AssertionError("fault did not make the access succeed")

    def _mark_written(self, e, va):
        """A store through TLB entry ``e``: the anonymous page it reaches holds data (S1)."""
        pfn = e.pfn + ((va >> PAGE_SHIFT) & ((1 << (e.shift - PAGE_SHIFT)) - 1))
        for head in (pfn, pfn & ~(HPAGE_PMD_NR - 1)):
            folio = self.folios.get(head)
            if folio is not None and folio.pfn <= pfn < folio.pfn + (1 << folio.order):
                if folio.kind == "anon":
                    folio.written[pfn - folio.pfn] = True
                return

    def _walk(self, task, va, write):
        """Hardware page walk with the PDE/PDPTE caches; a TlbEntry, or None to fault."""
        mm, cpu = task.mm, self.cpus[task.cpu]
        asid = mm.id
        task.stlb_misses += 1
        pde_key, pdpte_key = va >> 21, va >> 30
        pde = cpu.pde[pde_key % len(cpu.pde)]
        pdpte = cpu.pdpte[pdpte_key % len(cpu.pdpte)]
        if pde is not None and pde[:2] == (asid, pde_key):
            level, table = PTE_LEVEL, self.tables[pde[2]]
            assert table is self._table_at(mm, va, PTE_LEVEL), "stale PDE cache entry"
        elif pdpte is not None and pdpte[:2] == (asid, pdpte_key):
            level, table = PMD_LEVEL, self.tables[pdpte[2]]
            assert table is self._table_at(mm, va, PMD_LEVEL), "stale PDPTE cache entry"
        else:
            level, table = PGD_LEVEL, self.tables.get(mm.pgd)
        loads, leaf = 0, None
        while True:
            loads += 1
            if table is None:
                break
            i = _pt_index(va, level)
            entry = table.entries[i]
            if not entry & _PAGE_PRESENT:
                break
            table.entries[i] = entry | _PAGE_ACCESSED
            if level == PTE_LEVEL or (level == PMD_LEVEL and entry & _PAGE_PSE):
                leaf = (table, i, level)
                break
            child = _entry_pfn(entry)
            if level == PUD_LEVEL:
                cpu.pdpte[pdpte_key % len(cpu.pdpte)] = (asid, pdpte_key, child)
            elif level == PMD_LEVEL:
                cpu.pde[pde_key % len(cpu.pde)] = (asid, pde_key, child)
            table, level = self.tables[child], level - 1
        task.walk_loads += loads
        self._cost += loads * self.costs["walk_load_ps"]
        if leaf is None:
            return None
        table, i, level = leaf
        entry = table.entries[i]
        if write and not entry & _PAGE_RW:
            return None
        if write:
            entry |= _PAGE_DIRTY
            table.entries[i] = entry
        shift = HPAGE_PMD_SHIFT if level == PMD_LEVEL else PAGE_SHIFT
        return TlbEntry(asid, va >> shift, shift, _entry_pfn(entry),
                        bool(entry & _PAGE_RW), bool(entry & _PAGE_DIRTY))

    # ------------------------------------------------------------------ THP policy (SEMANTICS 4)
    def _thp_flags_allowable(self, mm, vm_flags):
        """thp_vma_allowable steps 1-4 (__thp_vma_allowable_orders / vma_thp_disabled)."""
        if self.thp_enabled == "never" or vm_flags & VM_NOHUGEPAGE:
            return False
        if self.kernel == "4.13" and mm.flags & (1 << MMF_DISABLE_THP):
            return False
        if self.kernel == "6.18":
            if mm.flags & (1 << MMF_DISABLE_THP_COMPLETELY):
                return False
            if mm.flags & (1 << MMF_DISABLE_THP_EXCEPT_ADVISED) and not vm_flags & VM_HUGEPAGE:
                return False
        return self.thp_enabled == "always" or bool(vm_flags & VM_HUGEPAGE)

    @staticmethod
    def _thp_geometry_ok(vma, va):
        haddr = va & ~(HPAGE_PMD_SIZE - 1)
        return haddr >= vma.start and haddr + HPAGE_PMD_SIZE <= vma.end


    def _defrag_direct(self, vma):
        """Direct compaction allowed for this VMA? (defrag sysfs, SEMANTICS 6)"""
        mode = self.thp_defrag
        if mode == "always":
            return True
        if mode in ("madvise", "defer+madvise"):
            return bool(vma.flags & VM_HUGEPAGE)
        return False

    def _alloc_huge(self, vma):
        """Order-9 MOVABLE allocation with the defrag mode's effort; pfn or -1."""
        pfn = self.buddy.alloc(HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
        if pfn < 0 and self._defrag_direct(vma):
            pfn = self._compact_order9()
        return pfn

    def _get_huge_zero_page(self, vma):
        """mm_get_huge_zero_folio: allocate on first use (F1)."""
        if self.huge_zero_pfn is None:
            pfn = self._alloc_huge(vma)
            if pfn < 0:
                self.events["thp_zero_page_alloc_failed"] += 1
                return -1
            self._new_folio(pfn, HPAGE_PMD_ORDER, "huge_zero")
            self.huge_zero_pfn = pfn
            self.events["thp_zero_page_alloc"] += 1
        return self.huge_zero_pfn

    def _deposit_table(self, mm, haddr, va):
        """pgtable_trans_huge_deposit: a stack per PMD table (one PMD table covers 1 GiB)."""
        pfn = self._alloc_table(mm, PTE_LEVEL, va)  # may raise: no empty stack left behind
        mm.deposits.setdefault(haddr >> 30, []).append(pfn)

    @staticmethod
    def _withdraw_table(mm, haddr):
        """pgtable_trans_huge_withdraw: the most recent deposit on that PMD table (LIFO)."""
        stack = mm.deposits[haddr >> 30]
        pfn = stack.pop()
        if not stack:
            del mm.deposits[haddr >> 30]
        return pfn

    def _map_anon_folio_pmd(self, mm, vma, pmd_t, i, pfn):
        """map_anon_folio_pmd: install a THP leaf, rss += 512, thp_fault_alloc."""
        folio = self.folios[pfn]
        folio.entire_mapcount += 1
        folio.anon_root = mm.anon_root
        entry = (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE
                 | self._prot_bits(vma) | (pfn << PAGE_SHIFT))
        if vma.flags & VM_WRITE:
            entry |= _PAGE_RW
        pmd_t.entries[i] = entry
        mm.rss_anon += HPAGE_PMD_NR
        self.events["thp_fault_alloc"] += 1
        if vma.flags & VM_LOCKED:
            self._mlock_folio(folio)  # mlock_new_folio (folio_add_lru_vma)
        self._queue_new_thp(folio)

    def _do_huge_pmd_anonymous_page(self, mm, vma, pmd_t, i, va, write):
        """True if the fault was handled with a PMD; False: fall back to 4 KiB."""
        self._khugepaged_enter(mm, self._fault_start)  # khugepaged_enter_vma (SEMANTICS 11)
        haddr = va & ~(HPAGE_PMD_SIZE - 1)
        if not write and self.use_zero_page:
            hzp = self._get_huge_zero_page(vma)
            if hzp < 0:
                return False
            self._deposit_table(mm, haddr, va)
            pmd_t.entries[i] = (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_PSE
                                | _PAGE_SPECIAL | self._prot_bits(vma) | (hzp << PAGE_SHIFT))
            return True
        pfn = self._alloc_huge(vma)
        if pfn < 0:
            self.events["thp_fault_fallback"] += 1
            return False
        folio = self._new_folio(pfn, HPAGE_PMD_ORDER, "anon")
        try:
            self._deposit_table(mm, haddr, va)
        except OutOfMemory:
            self._free_folio(folio)
            raise
        self._map_anon_folio_pmd(mm, vma, pmd_t, i, pfn)
        return True

    def _do_huge_pmd_wp_page(self, mm, vma, pmd_t, i, va):
        """Write to a read-only PMD leaf. True if handled; False after splitting the PMD."""
        entry = pmd_t.entries[i]
        haddr = va & ~(HPAGE_PMD_SIZE - 1)
        pfn = _entry_pfn(entry)
        if pfn == self.huge_zero_pfn:
            if ZERO_WP[self.kernel] == "thp":  # do_huge_zero_wp_pmd
                new = self._alloc_huge(vma)
                if new >= 0:
                    self._new_folio(new, HPAGE_PMD_ORDER, "anon")
                    pmd_t.entries[i] = 0
                    self._fault_flush(mm, haddr, haddr + HPAGE_PMD_SIZE)
                    self._map_anon_folio_pmd(mm, vma, pmd_t, i, new)
                    return True
                self.events["thp_fault_fallback"] += 1
        else:
            folio = self.folios[pfn]
            # do_huge_pmd_wp_page (SEMANTICS 10): an exclusive head page is reused; a folio with
            # one PMD mapping and no PTE mapping is reused and made exclusive
            reuse = folio.exclusive[0]
            if not reuse and folio.entire_mapcount == 1 and not any(folio.page_mapcount):
                folio.exclusive = [True] * HPAGE_PMD_NR
                reuse = True
            if reuse:
                pmd_t.entries[i] = entry | _PAGE_RW | _PAGE_DIRTY
                return True
        self._split_huge_pmd(mm, pmd_t, i, haddr)
        self._split_page_too(pfn)
        self._fault_flush(mm, haddr, haddr + HPAGE_PMD_SIZE)
        return False

    def _split_huge_pmd(self, mm, pmd_t, i, haddr, whole=True):
        """__split_huge_pmd: the deposited table becomes the PTE table (no flush cost here).
        3.x (Linux; ``whole``): split_huge_page splits the compound page and its other PMDs."""
        entry = pmd_t.entries[i]
        pte_pfn = self._withdraw_table(mm, haddr)
        pte_t = self.tables[pte_pfn]
        bits = entry & ~_PAGE_PSE & ~PTE_PFN_MASK
        pfn = _entry_pfn(entry)
        if pfn == self.huge_zero_pfn:
            for k in range(512):
                pte_t.entries[k] = bits | (self.zero_pfn << PAGE_SHIFT)
        else:
            folio = self.folios[pfn]
            for k in range(512):
                pte_t.entries[k] = bits | ((pfn + k) << PAGE_SHIFT)
                folio.page_mapcount[k] += 1
            folio.entire_mapcount -= 1
            vma = mm.find_vma(haddr)
            if vma is not None and vma.flags & VM_LOCKED:
                self._munlock_folio(folio)  # folio_remove_rmap_pmd -> munlock_vma_folio
        pmd_t.entries[i] = _PAGE_TABLE | (pte_pfn << PAGE_SHIFT)
        self.events["thp_split_pmd"] += 1
        self._tlb_invalidate(mm, haddr, haddr + HPAGE_PMD_SIZE)
        if (whole and pfn != self.huge_zero_pfn and self.kernel in SPLIT_PAGE_KERNELS
                and "split_310_zap_cow_only" not in self.departures):
            self._split_huge_page(self.folios[pfn])

    # ------------------------------------------------------------------ faults (SEMANTICS 5)
    def _handle_mm_fault(self, task, va, write, gup=False):
        """handle_mm_fault / __handle_mm_fault. gup=True: no arch access check (F5)."""
        mm = task.mm
        self._fault_start = self._op_start + self._cost  # the fault's time (enrolment)
        self.events["pgfault"] += 1
        task.min_flt += 1
        self._cost += self.costs["fault_ps"]
        vma = mm.find_vma(va)
        if vma is None or vma.special is not None:  # the vDSO is not modelled as memory (D1)
            raise SegmentationFault(va)
        if not gup and ((write and not vma.flags & VM_WRITE) or (not write and not vma.flags & VM_READ)):
            raise SegmentationFault(va)
        if write and not vma.flags & VM_SHARED:
            vma.anon_vma = True   # anon_vma_prepare, before the fault's work (which may fail)
        if self.buddy.nr_free() < FAULT_RESERVE_TABLES:
            # page tables are allocated with reclaim: kswapd, and below the min watermark one
            # batch of direct reclaim (SEMANTICS 12)
            self._kswapd_catch_up(self._fault_start)
            if self.buddy.nr_free() <= self.wmark_min:
                got = self._reclaim_split()
                self._cost += got * self.costs["reclaim_page_ps"]
                if got:
                    self.kswapd_failures = 0
        pmd_t = self._pmd_alloc_path(mm, va)
        i = _pt_index(va, PMD_LEVEL)
        entry = pmd_t.entries[i]
        assert not entry & _PAGE_PROTNONE, "PROT_NONE leaf in an accessible VMA"
        if not entry & _PAGE_PRESENT:
            if self._thp_flags_allowable(mm, vma.flags) and self._thp_geometry_ok(vma, va):
                vma.anon_vma = True   # do_huge_pmd_anonymous_page: vmf_anon_prepare
                if self._do_huge_pmd_anonymous_page(mm, vma, pmd_t, i, va, write):
                    return
        elif entry & _PAGE_PSE:
            if not (write and not entry & _PAGE_RW):
                return  # spurious
            if self._do_huge_pmd_wp_page(mm, vma, pmd_t, i, va):
                return
        pte_t = self._get_or_alloc(mm, pmd_t, va, PTE_LEVEL)  # pte_alloc
        self._handle_pte_fault(task, vma, pte_t, _pt_index(va, PTE_LEVEL), va, write)

    def _alloc_movable(self):
        """alloc_page_reclaim (SEMANTICS 12): wake kswapd (it catches up to now); take a page
        while free memory is above the min watermark; below it, up to three rounds of direct
        reclaim (the deferred split shrinker: no page of the LRU can go without swap), each
        followed by another try, the last one regardless of the watermark."""
        self._kswapd_catch_up(self._op_start + self._cost)
        for attempt in range(4):
            if self.buddy.nr_free() > self.wmark_min or attempt == 3:
                pfn = self.buddy.alloc(0, MIGRATE_MOVABLE)
                if pfn >= 0:
                    return pfn
            got = self._reclaim_split()
            self._cost += got * self.costs["reclaim_page_ps"]
            if got:
                self.kswapd_failures = 0
        return -1

    def _alloc_anon_page(self, mm, vma, va):
        pfn = self._alloc_movable()
        if pfn < 0:
            raise OutOfMemory(va)
        folio = self._new_folio(pfn, 0, "anon")
        folio.page_mapcount[0] = 1
        folio.rmap = [(mm, va & PAGE_MASK)]
        folio.anon_root = mm.anon_root
        if vma.flags & VM_LOCKED:
            self._mlock_folio(folio)  # mlock_new_folio (folio_add_lru_vma)
        return pfn

    def _anon_pte(self, vma, pfn):
        return (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW
                | self._prot_bits(vma) | (pfn << PAGE_SHIFT))

    def _handle_pte_fault(self, task, vma, pte_t, j, va, write):
        mm = task.mm
        entry = pte_t.entries[j]
        assert not entry & _PAGE_PROTNONE, "PROT_NONE leaf in an accessible VMA"
        if not entry & _PAGE_PRESENT:  # do_anonymous_page
            if not write:
                pte_t.entries[j] = (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_SPECIAL
                                    | self._prot_bits(vma) | (self.zero_pfn << PAGE_SHIFT))
                return
            pfn = self._alloc_anon_page(mm, vma, va)
            pte_t.entries[j] = self._anon_pte(vma, pfn)
            mm.rss_anon += 1
            return
        if write and not entry & _PAGE_RW:
            self._do_wp_page(mm, vma, pte_t, j, va)

    def _do_wp_page(self, mm, vma, pte_t, j, va):
        """Write to a present read-only PTE: zero page -> new page; reuse; or copy."""
        entry = pte_t.entries[j]
        old = _entry_pfn(entry)
        page_va = va & PAGE_MASK
        if old == self.zero_pfn:
            pfn = self._alloc_anon_page(mm, vma, va)  # wp_page_copy with a zeroed page
            pte_t.entries[j] = self._anon_pte(vma, pfn)
            mm.rss_anon += 1
            self._fault_flush(mm, page_va, page_va + PAGE_SIZE)
            return
        folio, sub = self._folio_of(old)
        if not folio.exclusive[sub]:  # wp_can_reuse_anon_folio (SEMANTICS 10)
            if folio.order == 0:
                can_reuse = folio.page_mapcount[0] == 1
            else:
                can_reuse = folio.entire_mapcount == 0 and sum(folio.page_mapcount) == 1
            if can_reuse:
                folio.exclusive[sub] = True
        if folio.exclusive[sub]:  # wp_page_reuse
            pte_t.entries[j] = entry | _PAGE_RW | _PAGE_DIRTY
            return
        pfn = self._alloc_movable()  # wp_page_copy
        if pfn < 0:
            raise OutOfMemory(va)
        folio, sub = self._folio_of(old)  # reclaim may have split the folio meanwhile
        new = Folio(pfn, 0, "anon")
        new.written[0] = folio.written[sub]   # the copy holds what the page held
        new.page_mapcount[0] = 1
        new.rmap = [(mm, page_va)]
        new.anon_root = mm.anon_root
        self.folios[pfn] = new
        self._cost += self.costs["copy_page_ps"]
        pte_t.entries[j] = self._anon_pte(vma, pfn)
        if vma.flags & VM_LOCKED:
            self._mlock_folio(new)  # mlock_new_folio
            self._munlock_folio(folio)  # folio_remove_rmap_pte -> munlock_vma_folio
        if folio.order == 0:
            folio.rmap.remove((mm, page_va))
        self._remove_rmap_ptes(folio, (sub,))
        self._fault_flush(mm, page_va, page_va + PAGE_SIZE)

    # ------------------------------------------------------------------ compaction (SEMANTICS 6)
    def _migration_sources(self, pb):
        """In-use order-0 anon pfns of pageblock pb, or None if the block cannot be a source."""
        base = pb << PAGEBLOCK_ORDER
        if (base in self.folios and self.folios[base].order > 0):
            return None  # a THP or the huge zero page covers the block
        sources = []
        for pfn in range(base, base + PAGEBLOCK_NR):
            if pfn in self.tables:
                return None
            folio = self.folios.get(pfn)
            if folio is not None:
                if folio.kind != "anon" or folio.order != 0 or folio.mapcount() > 1:
                    return None
                sources.append(pfn)
            else:
                assert self.buddy.is_free(pfn), f"pfn {pfn} neither free nor owned"
        return sources

    def _migrate_page(self, src, dst):
        """migrate_pages for one order-0 anon page: copy, repoint the PTE via rmap, free src."""
        folio = self.folios.pop(src)
        assert len(folio.rmap) == 1
        mm, va = folio.rmap[0]
        pte_t, j, level = self._leaf(mm, va)
        assert level == PTE_LEVEL and _entry_pfn(pte_t.entries[j]) == src
        pte_t.entries[j] = (pte_t.entries[j] & ~PTE_PFN_MASK) | (dst << PAGE_SHIFT)
        folio.pfn = dst
        self.folios[dst] = folio
        self.buddy.free(src, 0)
        self._tlb_invalidate(mm, va, va + PAGE_SIZE)
        self.events["pgmigrate_success"] += 1
        self._cost += self.costs["migrate_page_ps"]

    def _compact_order9(self):
        """Direct compaction for an order-9 MOVABLE allocation (compact_zone, C1); pfn or -1."""
        ev = self.events
        ev["compact_stall"] += 1
        migrate_pb = 0
        free_pb = (self.buddy.high_water >> PAGEBLOCK_ORDER) - 1
        free_pb_counted = False
        while migrate_pb < free_pb:
            ev["compact_migrate_scanned"] += PAGEBLOCK_NR
            self._cost += PAGEBLOCK_NR * self.costs["compact_scan_ps"]
            sources = self._migration_sources(migrate_pb)
            if sources is not None:
                for src in sources:
                    dst = -1
                    while free_pb > migrate_pb:
                        if not free_pb_counted:
                            ev["compact_free_scanned"] += PAGEBLOCK_NR
                            free_pb_counted = True
                        dst = self.buddy.isolate_lowest_free(free_pb)
                        if dst >= 0:
                            break
                        free_pb -= 1
                        free_pb_counted = False
                    if dst < 0:
                        ev["compact_fail"] += 1
                        return -1
                    self._migrate_page(src, dst)
                pfn = self.buddy.alloc(HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
                if pfn >= 0:
                    ev["compact_success"] += 1
                    return pfn
            migrate_pb += 1
        ev["compact_fail"] += 1
        return -1

    # ------------------------------------------------------------------ zap / unmap
    def _zap_ptes(self, mm, pte_t, j, n, va):
        """zap_present_ptes: clear ``n`` PTEs from slot j (one folio_pte_batch run) and drop
        their rmaps together."""
        pfn = _entry_pfn(pte_t.entries[j])
        for k in range(n):
            pte_t.entries[j + k] = 0
        if pfn == self.zero_pfn:
            return
        folio, sub = self._folio_of(pfn)
        mm.rss_anon -= n
        if folio.order == 0:
            folio.rmap.remove((mm, va))
        self._remove_rmap_ptes(folio, range(sub, sub + n))

    def _zap_batch(self, pte_t, j, jmax):
        """folio_pte_batch: how many PTEs from slot j (before jmax) map consecutive pages of
        one large folio with the same bits but for RW, A, D and soft-dirty (S2)."""
        e = pte_t.entries[j]
        pfn = _entry_pfn(e)
        if pfn == self.zero_pfn or "split_queue_unbatched" in self.departures:
            return 1
        folio, sub = self._folio_of(pfn)
        if folio.order == 0:
            return 1
        ign = ~(_PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_SOFTDIRTY | PTE_PFN_MASK)
        n = 1
        while (j + n < jmax and sub + n < HPAGE_PMD_NR
               and pte_t.entries[j + n] & ign == e & ign and _present(pte_t.entries[j + n])
               and _entry_pfn(pte_t.entries[j + n]) == pfn + n):
            n += 1
        return n

    # ------------------------------------------------------------------ THP splits (SEMANTICS 12)
    def _remove_rmap_ptes(self, folio, subs):
        """__folio_remove_rmap at PTE level for the subpages ``subs`` of one batch: a large folio
        without PMD mappings that loses the last mapping of some page but keeps others is
        queued for a deferred split; an unmapped folio is freed."""
        last = 0
        for sub in subs:
            folio.page_mapcount[sub] -= 1
            last += folio.page_mapcount[sub] == 0
        if folio.mapcount() == 0:
            self._free_folio(folio)
            return
        if folio.order and last and (folio.entire_mapcount == 0
                                     or "split_queue_pmd_mapped" in self.departures):
            self._deferred_split_folio(folio)

    def _deferred_split_folio(self, folio, partially_mapped=True):
        """deferred_split_folio (S1): queue an anonymous THP once; the first time it is marked
        partially mapped counts thp_deferred_split_page."""
        if folio.kind != "anon":
            return
        if partially_mapped and not folio.partially_mapped:
            folio.partially_mapped = True
            self.events["thp_deferred_split_page"] += 1
        if not folio.deferred:
            folio.deferred = True
            self.deferred.append(folio)

    def _queue_new_thp(self, folio):
        """6.12+ with shrink_underused: a new anonymous THP (fault, collapse) is queued for the
        underused check (S1)."""
        if self.kernel == "6.18" and self.shrink_underused:
            self._deferred_split_folio(folio, partially_mapped=False)

    def _deferred_split_remove(self, folio):
        if folio.deferred:
            folio.deferred = folio.partially_mapped = False
            self.deferred.remove(folio)

    def _split_folio(self, folio):
        """__split_huge_page of a THP mapped by PTEs only: 512 order-0 folios, the unmapped
        ones freed in pfn order; 6.18 then maps every PTE of a zero-filled page to the zero page,
        mm by mm (by id) and page by page, and frees the page when its last PTE goes (S1).
        -1 (left as it is, still queued) if a PMD maps it or it is mlocked; else the pages
        freed."""
        if folio.entire_mapcount or folio.mlocked:
            return -1
        self._deferred_split_remove(folio)
        rmaps = {}
        for mm in self._mms().values():
            for vma in mm.vmas:
                for va, e, size in self._leaves(mm, vma.start, vma.end):
                    k = _entry_pfn(e) - folio.pfn
                    if size == 4 and 0 <= k < HPAGE_PMD_NR:
                        rmaps.setdefault(k, []).append((mm, va))
        del self.folios[folio.pfn]
        freed = 0
        pages = {}
        for k in range(HPAGE_PMD_NR):
            if folio.page_mapcount[k] == 0:
                self.buddy.free(folio.pfn + k, 0)
                freed += 1
                continue
            page = Folio(folio.pfn + k, 0, "anon")
            page.page_mapcount[0] = folio.page_mapcount[k]
            assert len(rmaps[k]) == page.page_mapcount[0]
            page.rmap = rmaps[k]
            page.anon_root = folio.anon_root
            page.exclusive = [folio.exclusive[k]]
            page.lazyfree = [folio.lazyfree[0]]     # the folio's flags go to every new folio
            page.written = [folio.written[k]]
            page.split_unlocked = True              # PG_mlocked was clear on the THP (L1)
            self.folios[page.pfn] = page
            pages[k] = page
        self.events["thp_split_page"] += 1
        if self.kernel == "6.18":
            for mm in sorted({m for k in pages for m, _ in rmaps[k]}, key=lambda m: m.id):
                for k, page in pages.items():
                    if page.written[0]:
                        continue
                    for m, va in list(page.rmap):
                        if m is not mm:
                            continue
                        pte_t = self._table_at(mm, va, PTE_LEVEL)
                        j = _pt_index(va, PTE_LEVEL)
                        old = pte_t.entries[j]
                        pte_t.entries[j] = ((old & ~(PTE_PFN_MASK | _PAGE_RW | _PAGE_DIRTY))
                                            | _PAGE_ACCESSED | _PAGE_SPECIAL
                                            | (self.zero_pfn << PAGE_SHIFT))
                        mm.rss_anon -= 1
                        self._tlb_invalidate(mm, va, va + PAGE_SIZE)
                        page.rmap.remove((m, va))
                        freed += page.page_mapcount[0] == 1
                        self._remove_rmap_ptes(page, (0,))
        return freed

    def _thp_underused(self, folio):
        """thp_underused (S1): more than max_ptes_none zero-filled pages; never at 511."""
        limit = self.kh_knobs["max_ptes_none"]
        return limit < HPAGE_PMD_NR - 1 and folio.written.count(False) > limit

    def _reclaim_split(self):
        """The deferred-split shrinker's share of one reclaim pass (SEMANTICS 12). No page of the
        LRU can go here (no swap), so a pass never reclaims enough and runs from DEF_PRIORITY
        (12) down to 0; 6.18's shrink_slab runs the shrinker at each priority
        (``_do_shrink_split``). 4.13: SWAP_CLUSTER_MAX queued THPs. The pages freed."""
        if self.kernel != "6.18":
            return self._deferred_split_scan(SWAP_CLUSTER_MAX)
        return sum(self._do_shrink_split(p) for p in range(12, -1, -1))

    def _do_shrink_split(self, priority):
        """do_shrink_slab: freeable = the queue's length; work = (freeable >> priority) * 4 /
        DEFAULT_SEEKS (2) plus nr_deferred >> priority, at most 2 * freeable, done in batches of
        128 while a batch or the whole queue remains (stopping when a batch split nothing and
        left the queue empty); the work not done is deferred, at most 2 * freeable."""
        freeable = len(self.deferred)
        if not freeable:
            return 0
        nr, self.split_nr_deferred = self.split_nr_deferred, 0
        delta = (freeable >> priority) * 4 // 2
        total = min((nr >> priority) + delta, 2 * freeable)
        freed = scanned = 0
        while total >= 128 or total >= freeable:
            n = min(128, total)
            got = self._deferred_split_scan(n)
            if got == 0 and not self.deferred:
                break
            freed += got
            total -= n
            scanned += n
        self.split_nr_deferred += min(max(nr + delta - scanned, 0), 2 * freeable)
        return freed

    def _deferred_split_scan(self, nr_to_scan):
        """deferred_split_scan: the ``nr_to_scan`` oldest queued THPs. A partially mapped one
        is split (it stays queued if it cannot be); an underused one (6.18) is split and counts
        thp_underused_split_page; any other leaves the queue. The pages freed."""
        freed = 0
        for folio in self.deferred[:nr_to_scan]:
            if folio.partially_mapped:
                freed += max(self._split_folio(folio), 0)
            elif self._thp_underused(folio):
                got = self._split_huge_page(folio) if not folio.mlocked else -1
                if got >= 0:
                    self.events["thp_underused_split_page"] += 1
                    freed += got
                else:
                    self._deferred_split_remove(folio)
            else:
                self._deferred_split_remove(folio)
        return freed

    def _split_huge_page(self, folio):
        """3.x split_huge_page: every PMD that maps the folio, in every mm, is split, then the
        compound page (S4)."""
        for mm in list(self._mms().values()):
            for vma in list(mm.vmas):
                for va, e, size in list(self._leaves(mm, vma.start, vma.end)):
                    if size == 2048 and _entry_pfn(e) == folio.pfn:
                        pmd_t = self._table_at(mm, va, PMD_LEVEL)
                        self._split_huge_pmd(mm, pmd_t, _pt_index(va, PMD_LEVEL), va, whole=False)
        return self._split_folio(folio)

    def _split_page_too(self, pfn):
        """The engine's 3.x rule (``split_310_zap_cow_only``): after a zap's or a COW's PMD
        split, the page splits unless another PMD maps it."""
        if (self.kernel in SPLIT_PAGE_KERNELS and "split_310_zap_cow_only" in self.departures
                and pfn != self.huge_zero_pfn):
            self._split_folio(self.folios[pfn])

    def _kswapd_catch_up(self, now):
        """kswapd's work up to ``now`` (SEMANTICS 12): woken when free memory is below the low
        watermark, it shrinks (the deferred split shrinker, SWAP_CLUSTER_MAX THPs a round; no
        page of the LRU can go without swap) on its own clock at ``kswapd_page_ps`` per page
        freed until free memory reaches the high watermark or a round frees nothing."""
        if self.kswapd_ps is None:
            if self.buddy.nr_free() < self.wmark_low and self.kswapd_failures < MAX_RECLAIM_RETRIES:
                self.kswapd_ps = now
            return
        per = max(1, self.costs["kswapd_page_ps"])
        while self.buddy.nr_free() < self.wmark_high and self.kswapd_ps < now:
            got = self._reclaim_split()
            self.kswapd_ps += max(got, 1) * per
            if got == 0:
                self.kswapd_failures += 1
                if self.kswapd_failures >= MAX_RECLAIM_RETRIES:
                    self.kswapd_ps = None          # hopeless: asleep until reclaim works again
                    return
                break
            self.kswapd_failures = 0
        if self.buddy.nr_free() >= self.wmark_high:
            self.kswapd_ps = None

    def write_sysctl(self, pid, name, value):
        """Task.write_sysctl of ``vm.drop_caches`` (1..3, 4 from 3.15 on): one system call; its
        start runs kswapd's work due then; bit 2 (drop_slab) runs the deferred split shrinker
        over the whole queue. There is no page cache here, so bit 1 drops nothing."""
        task = self._task(pid)
        key = name.removeprefix("/proc/sys/").replace("/", ".")
        if key != "vm.drop_caches":
            raise NotImplementedError(name)
        v = int(str(value).strip())
        if not 1 <= v <= (3 if self.kernel == "3.10" else 4):
            raise _oserror(EINVAL)
        cpu = self.cpus[task.cpu]
        now = max(task.clock_ps, cpu.free_ps) + self.costs["syscall_ps"]
        self._kswapd_catch_up(now)
        if v & 2:
            self._deferred_split_scan(len(self.deferred))
        task.clock_ps = cpu.free_ps = now
        self.now_ps = max(self.now_ps, now)

    def _zap_huge_pmd(self, mm, pmd_t, i, haddr):
        """zap_huge_pmd: the deposited table goes first, then the folio if unmapped (P3, P4)."""
        pfn = _entry_pfn(pmd_t.entries[i])
        pmd_t.entries[i] = 0
        self._free_table(mm, self._withdraw_table(mm, haddr))
        if pfn == self.huge_zero_pfn:
            return
        folio = self.folios[pfn]
        folio.entire_mapcount -= 1
        mm.rss_anon -= HPAGE_PMD_NR
        if folio.mapcount() == 0:
            self._free_folio(folio)
        elif folio.entire_mapcount == 0 and not all(folio.page_mapcount):
            self._deferred_split_folio(folio)     # __folio_remove_rmap, RMAP_LEVEL_PMD

    def _zap_range(self, mm, start, end):
        """unmap_page_range over [start, end); splits partly covered huge PMDs. True if a
        present leaf was zapped or a PMD split (so the syscall pays one flush)."""
        did = False
        for pmd_t, i, m0 in list(self._iter_pmd_slots(mm, start, end)):
            entry = pmd_t.entries[i]
            if entry & _PAGE_PSE:
                did = True
                if start <= m0 and m0 + HPAGE_PMD_SIZE <= end:
                    self._zap_huge_pmd(mm, pmd_t, i, m0)
                    continue
                self._split_huge_pmd(mm, pmd_t, i, m0)
                self._split_page_too(_entry_pfn(entry))
                entry = pmd_t.entries[i]
            pte_t = self.tables[_entry_pfn(entry)]
            j = max(0, (start - m0) >> PAGE_SHIFT)
            jmax = min(512, (end - m0 + PAGE_SIZE - 1) >> PAGE_SHIFT)
            while j < jmax:
                va = m0 + (j << PAGE_SHIFT)
                if not _present(pte_t.entries[j]):
                    j += 1
                    continue
                n = self._zap_batch(pte_t, j, jmax)
                self._zap_ptes(mm, pte_t, j, n, va)
                did = True
                j += n
        self._tlb_invalidate(mm, start, end)
        return did

    def _free_pgtables(self, mm, start, end):
        """free_pgtables (SEMANTICS 2): post-order, tables whose range meets [start, end) and
        no remaining VMA. The PGD itself is never freed here."""
        if mm.pgd is None:
            return
        pgd = self.tables[mm.pgd]
        for gi in range(512):
            g0 = gi << 39
            if not (pgd.entries[gi] & _PAGE_PRESENT and _intersects(g0, g0 + (1 << 39), start, end)):
                continue
            pud_t = self.tables[_entry_pfn(pgd.entries[gi])]
            for ui in range(512):
                u0 = g0 + (ui << 30)
                if not (pud_t.entries[ui] & _PAGE_PRESENT and _intersects(u0, u0 + (1 << 30), start, end)):
                    continue
                pmd_t = self.tables[_entry_pfn(pud_t.entries[ui])]
                for mi in range(512):
                    m0 = u0 + (mi << 21)
                    if (_present(pmd_t.entries[mi]) and _intersects(m0, m0 + HPAGE_PMD_SIZE, start, end)
                            and not mm.any_vma_in(m0, m0 + HPAGE_PMD_SIZE)):
                        assert not pmd_t.entries[mi] & _PAGE_PSE
                        self._free_table(mm, _entry_pfn(pmd_t.entries[mi]))
                        pmd_t.entries[mi] = 0
                if not mm.any_vma_in(u0, u0 + (1 << 30)):
                    self._free_table(mm, pmd_t.pfn)
                    pud_t.entries[ui] = 0
            if not mm.any_vma_in(g0, g0 + (1 << 39)):
                self._free_table(mm, pud_t.pfn)
                pgd.entries[gi] = 0
        self._tlb_invalidate(mm, start, end)

    # ------------------------------------------------------------------ VMAs
    def _split_vma_at(self, mm, addr, zap=False):
        """__split_vma with vma_adjust_trans_huge: split a huge PMD straddling addr (``zap``:
        munmap's, which the engine does in its zap, with 3.x's page split)."""
        vma = mm.find_vma(addr)
        if vma is None or vma.start == addr:
            return
        if addr % HPAGE_PMD_SIZE:
            haddr = addr & ~(HPAGE_PMD_SIZE - 1)
            pmd_t = self._table_at(mm, haddr, PMD_LEVEL)
            i = _pt_index(haddr, PMD_LEVEL)
            if pmd_t is not None and pmd_t.entries[i] & _PAGE_PSE:
                pfn = _entry_pfn(pmd_t.entries[i])
                self._split_huge_pmd(mm, pmd_t, i, haddr)
                if zap:
                    self._split_page_too(pfn)
                self._flush_needed = True
        tail = Vma(addr, vma.end, vma.flags, vma.special)
        tail.pgoff = vma.pgoff + ((addr - vma.start) >> PAGE_SHIFT)
        tail.anon_vma = vma.anon_vma
        vma.end = addr
        mm.vmas.insert(mm.vmas.index(vma) + 1, tail)

    def _merge_around(self, mm, start, end):
        """Merge adjacent VMAs with identical flags touching [start, end] (vma_merge)."""
        k = 0
        while k + 1 < len(mm.vmas):
            a, b = mm.vmas[k], mm.vmas[k + 1]
            if (a.end == b.start and a.flags == b.flags and start <= b.start and a.end <= end
                    and a.mergeable() and b.mergeable()):
                a.end = b.end
                a.anon_vma |= b.anon_vma
                del mm.vmas[k + 1]
            else:
                k += 1

    def _unmap_range(self, mm, start, end):
        """do_vmi_munmap: split the edge VMAs, drop VMAs, zap, free page tables."""
        if not mm.any_vma_in(start, end):
            return
        self._split_vma_at(mm, start, zap=True)
        self._split_vma_at(mm, end, zap=True)
        for v in mm.vmas:  # zap_pte_range / zap_huge_pmd: munlock_vma_folio per mapping removed
            if start <= v.start and v.end <= end and v.flags & VM_LOCKED:
                self._mlock_pte_range(mm, v.start, v.end, lock=False)
        mm.locked_vm -= sum((v.end - v.start) >> PAGE_SHIFT for v in mm.vmas
                            if start <= v.start and v.end <= end and v.flags & VM_LOCKED)
        mm.vmas = [v for v in mm.vmas if not (start <= v.start and v.end <= end)]
        if self._zap_range(mm, start, end):
            self._flush_needed = True
        self._free_pgtables(mm, start, end)

    def _insert_vma(self, mm, start, end, flags):
        """mmap_region: merge with identical neighbours or insert a new VMA."""
        prev = next((v for v in mm.vmas if v.end == start and v.flags == flags and v.mergeable()), None)
        nxt = next((v for v in mm.vmas if v.start == end and v.flags == flags and v.mergeable()), None)
        if prev is not None and nxt is not None:
            prev.end = nxt.end
            prev.anon_vma |= nxt.anon_vma
            mm.vmas.remove(nxt)
            return prev
        if prev is not None:
            prev.end = end
            return prev
        if nxt is not None:
            nxt.start, nxt.pgoff = start, start >> PAGE_SHIFT
            return nxt
        vma = Vma(start, end, flags)
        mm.vmas.append(vma)
        mm.vmas.sort(key=lambda v: v.start)
        return vma

    def _unmapped_area_topdown(self, mm, length):
        """vm_unmapped_area top-down: highest addr, addr+len <= mmap_base, addr >= 65536."""
        high = MMAP_BASE
        for vma in sorted(mm.vmas, key=lambda v: v.start, reverse=True):
            if high - length < MMAP_MIN_ADDR:
                return None
            if vma.start >= high:
                continue
            if high - vma.end >= length:
                return high - length
            high = vma.start
        return high - length if high - length >= MMAP_MIN_ADDR else None

    def _get_unmapped_area(self, mm, hint, length):
        if hint and hint + length <= TASK_SIZE and not mm.any_vma_in(hint, hint + length):
            return hint
        if self.kernel == "6.18" and length % HPAGE_PMD_SIZE == 0:  # __thp_get_unmapped_area
            s = self._unmapped_area_topdown(mm, length + HPAGE_PMD_SIZE)
            if s is not None:
                return (s + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
        s = self._unmapped_area_topdown(mm, length)
        if s is None:
            raise _oserror(ENOMEM)
        return s

    # ------------------------------------------------------------------ syscalls
    def mmap(self, pid, length, prot, flags, addr=0):
        task = self._task(pid)
        return self._run(task, lambda: self._do_mmap(task, length, prot, flags, addr))

    def _do_mmap(self, task, length, prot, flags, addr):
        mm = task.mm
        if length < 0 or addr < 0:
            raise ValueError("negative length or address")
        if not flags & MAP_ANONYMOUS or flags & _MAP_UNSUPPORTED:
            raise NotImplementedError("only anonymous mappings without LOCKED/GROWSDOWN/HUGETLB")
        if length == 0:
            raise _rejected(EINVAL)
        length = _page_align(length)
        if length > TASK_SIZE:
            raise _rejected(ENOMEM)
        if flags & MAP_FIXED_NOREPLACE:
            flags |= MAP_FIXED
        if flags & MAP_FIXED:
            if addr > TASK_SIZE - length:
                raise _rejected(ENOMEM)
            if addr & ~PAGE_MASK:
                raise _rejected(EINVAL)
        else:
            addr &= PAGE_MASK  # round_hint_to_min
            if addr and addr < MMAP_MIN_ADDR:
                addr = MMAP_MIN_ADDR
            try:
                addr = self._get_unmapped_area(mm, addr, length)
            except OSError as e:
                raise _rejected(e.errno) from None
        end = addr + length
        if flags & MAP_FIXED_NOREPLACE and mm.any_vma_in(addr, end):
            raise _rejected(EEXIST)
        if flags & MAP_TYPE not in (MAP_SHARED, MAP_PRIVATE):
            raise _rejected(EINVAL)
        if flags & MAP_TYPE == MAP_SHARED:
            raise NotImplementedError("MAP_SHARED")
        vm_flags = (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
        vm_flags |= mm.def_flags
        if flags & MAP_NORESERVE:
            vm_flags |= VM_NORESERVE
        if vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE) == VM_WRITE:  # accountable_mapping
            vm_flags |= VM_ACCOUNT
        if flags & MAP_FIXED:
            self._unmap_range(mm, addr, end)
        self._enter_merged(mm, self._insert_vma(mm, addr, end, vm_flags))
        if vm_flags & VM_LOCKED:  # mmap_region: locked_vm += len (MCL_FUTURE)
            mm.locked_vm += length >> PAGE_SHIFT
        if flags & MAP_POPULATE or vm_flags & VM_LOCKED:
            self._mm_populate(task, addr, end, ignore_errors=True)
        return addr

    def _mm_populate(self, task, start, end, ignore_errors):
        """__mm_populate: populate_vma_page_range for every VMA in [start, end). Skipped: VM_LOCKONFAULT
        and PROT_NONE VMAs (L3). Write faults in private writable VMAs, read faults otherwise.
        ignore_errors: an OOM ends that VMA's population only; else OutOfMemory propagates."""
        mm = task.mm
        va = start
        while va < end:
            vma = next((v for v in mm.vmas if v.end > va), None)
            if vma is None or vma.start >= end:
                return
            s, e = max(va, vma.start), min(end, vma.end)
            if not vma.flags & VM_LOCKONFAULT and vma.flags & VM_ACCESS_FLAGS and vma.special is None:
                try:
                    self._populate(task, s, e, (vma.flags & (VM_WRITE | VM_SHARED)) == VM_WRITE)
                except OutOfMemory:
                    if not ignore_errors:
                        raise
            va = e

    def _populate(self, task, start, end, write):
        """__get_user_pages: fault every page that is not mapped with the needed right."""
        mm = task.mm
        va = start
        while va < end:
            leaf = self._leaf(mm, va)
            if leaf is not None:
                table, i, level = leaf
                if not write or table.entries[i] & _PAGE_RW:
                    va = ((va | (HPAGE_PMD_SIZE - 1)) + 1) if level == PMD_LEVEL else va + PAGE_SIZE
                    continue
            self._handle_mm_fault(task, va, write, gup=True)

    def mprotect(self, pid, addr, length, prot):
        task = self._task(pid)
        return self._run(task, lambda: self._do_mprotect(task.mm, addr, length, prot))

    def _do_mprotect(self, mm, start, length, prot):
        """do_mprotect_pkey (SEMANTICS 9; check order is Linux's, P2)."""
        if start < 0 or length < 0:
            raise ValueError("negative length or address")
        if start & ~PAGE_MASK:
            raise _rejected(EINVAL)
        if length == 0:
            return 0
        end = start + _page_align(length)
        if end >= 1 << 64:  # end <= start after wrapping
            raise _rejected(ENOMEM)
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
            raise _rejected(EINVAL)
        if mm.find_vma(start) is None:
            raise _rejected(ENOMEM)
        changed = False
        nstart = start
        try:
            while nstart < end:
                vma = mm.find_vma(nstart)
                if vma is None:  # a hole: earlier VMAs stay changed
                    raise _oserror(ENOMEM)
                newflags = (vma.flags & ~VM_ACCESS_FLAGS) | prot  # PROT_x == VM_x
                if (newflags & ~(newflags >> 4)) & VM_ACCESS_FLAGS:  # a right VM_MAYx forbids
                    raise _oserror(EACCES)
                tmp = min(vma.end, end)
                if newflags != vma.flags:  # mprotect_fixup
                    if newflags & VM_WRITE and not vma.flags & (VM_ACCOUNT | VM_WRITE | VM_SHARED
                                                                | VM_NORESERVE):
                        newflags |= VM_ACCOUNT  # a private mapping made writable is charged
                    self._split_vma_at(mm, nstart)
                    self._split_vma_at(mm, tmp)
                    mm.find_vma(nstart).flags = newflags
                    changed |= self._change_protection(mm, newflags, nstart, tmp)
                    self._merge_around(mm, nstart, tmp)
                nstart = tmp
        finally:
            if changed:  # P3: one flush of the call's range
                self._tlb_invalidate(mm, start, end)
                self._flush_needed = True
        return 0

    def _prot_entry(self, entry, vm_flags, exclusive):
        """change_pte_range / change_huge_pmd entry rules (P1)."""
        if not vm_flags & VM_ACCESS_FLAGS:  # PROT_NONE
            new = (entry & ~(_PAGE_PRESENT | _PAGE_RW)) | _PAGE_PROTNONE
        else:
            new = (entry & ~_PAGE_PROTNONE) | _PAGE_PRESENT
            if not vm_flags & VM_WRITE:
                new &= ~_PAGE_RW
            elif exclusive:
                new |= _PAGE_RW
        return (new & ~_PAGE_NX) if vm_flags & VM_EXEC else (new | _PAGE_NX)

    def _change_protection(self, mm, vm_flags, start, end):
        """Apply the entry rules to every leaf in [start, end); True if an entry changed or a
        huge PMD was split."""
        changed = False
        for pmd_t, i, m0 in list(self._iter_pmd_slots(mm, start, end)):
            entry = pmd_t.entries[i]
            if entry & _PAGE_PSE:
                if start <= m0 and m0 + HPAGE_PMD_SIZE <= end:
                    pfn = _entry_pfn(entry)
                    excl = pfn != self.huge_zero_pfn and self.folios[pfn].exclusive[0]
                    new = self._prot_entry(entry, vm_flags, excl)
                    changed |= new != entry
                    pmd_t.entries[i] = new
                    continue
                self._split_huge_pmd(mm, pmd_t, i, m0)
                changed = True
                entry = pmd_t.entries[i]
            pte_t = self.tables[_entry_pfn(entry)]
            for j in range(512):
                va = m0 + (j << PAGE_SHIFT)
                e = pte_t.entries[j]
                if not (start <= va < end and _present(e)):
                    continue
                pfn = _entry_pfn(e)
                excl = False
                if pfn != self.zero_pfn:
                    folio, sub = self._folio_of(pfn)
                    excl = folio.exclusive[sub]  # PageAnonExclusive (SEMANTICS 10)
                new = self._prot_entry(e, vm_flags, excl)
                changed |= new != e
                pte_t.entries[j] = new
        return changed

    def mlock(self, pid, addr, length):
        task = self._task(pid)
        return self._run(task, lambda: self._do_mlock(task, addr, length, VM_LOCKED))

    def munlock(self, pid, addr, length):
        task = self._task(pid)
        return self._run(task, lambda: self._do_mlock(task, addr, length, 0))

    def _do_mlock(self, task, addr, length, flags):
        """do_mlock / munlock: apply_vma_lock_flags, then (mlock) __mm_populate."""
        if addr < 0 or length < 0:
            raise ValueError("negative length or address")
        length = _page_align(length + (addr & ~PAGE_MASK))
        start = addr & PAGE_MASK
        end = start + length
        if end >= 1 << 64:
            raise _rejected(EINVAL)
        if end == start:
            return 0
        mm = task.mm
        if mm.find_vma(start) is None:
            raise _oserror(ENOMEM)
        nstart = start
        while nstart < end:  # apply_vma_lock_flags
            vma = mm.find_vma(nstart)
            if vma is None:
                raise _oserror(ENOMEM)  # nothing populated
            tmp = min(vma.end, end)
            self._mlock_fixup(mm, vma, nstart, tmp, (vma.flags & ~VM_LOCKED_MASK) | flags)
            nstart = tmp
        if flags & VM_LOCKED:
            try:
                self._mm_populate(task, start, end, ignore_errors=False)
            except OutOfMemory:
                raise _oserror(EAGAIN) from None  # __mlock_posix_error_return(-ENOMEM)
        return 0

    def _mlock_fixup(self, mm, vma, start, end, newflags):
        """mlock_fixup: split/merge, MM_LOCKED accounting, then mlock_vma_pages_range (L1)."""
        old = vma.flags
        if newflags == old or vma.special is not None:  # mlock skips the vDSO (D1)
            return
        self._split_vma_at(mm, start)
        self._split_vma_at(mm, end)
        mm.find_vma(start).flags = newflags
        self._merge_around(mm, start, end)
        npages = (end - start) >> PAGE_SHIFT
        if not newflags & VM_LOCKED:
            mm.locked_vm -= npages
        elif not old & VM_LOCKED:
            mm.locked_vm += npages
        if bool(newflags & VM_LOCKED) != bool(old & VM_LOCKED):  # else "mlocking twice would be wrong"
            self._mlock_pte_range(mm, start, end, lock=bool(newflags & VM_LOCKED))

    # ------------------------------------------------------------------ mlock state (L1)
    @staticmethod
    def _mlock_folio(folio):
        """mlock_folio / mlock_new_folio: set PG_mlocked (count 1), or count one more."""
        if folio.mlocked:
            folio.mlock_count += 1
        else:
            folio.mlocked, folio.mlock_count = True, 1

    @staticmethod
    def _munlock_folio(folio):
        """munlock_folio: one mlock fewer; PG_mlocked goes with the last."""
        if folio.mlocked:
            folio.mlock_count -= 1
            folio.mlocked = folio.mlock_count > 0

    def _mlock_pte_range(self, mm, start, end, lock):
        """mlock_pte_range over [start, end) (PMDs are never partly inside: VMA splits split
        them): a PMD-mapped THP and an order-0 page are (m)unlocked once; a PTE-mapped THP once
        per batch of PTEs mapping consecutive pages of it (folio_pte_batch within one PMD range
        of [start, end)), and mlocked only when one batch maps all 512 (allow_mlock_munlock)."""
        for pmd_t, i, m0 in list(self._iter_pmd_slots(mm, start, end)):
            entry = pmd_t.entries[i]
            if entry & _PAGE_PSE:
                assert start <= m0 and m0 + HPAGE_PMD_SIZE <= end, "PMD partly in an mlock walk"
                pfn = _entry_pfn(entry)
                if pfn != self.huge_zero_pfn:
                    (self._mlock_folio if lock else self._munlock_folio)(self.folios[pfn])
                continue
            pte_t = self.tables[_entry_pfn(entry)]
            j_end = min(512, (end - m0) >> PAGE_SHIFT)
            j = max(0, (start - m0) >> PAGE_SHIFT)
            while j < j_end:
                e = pte_t.entries[j]
                pfn = _entry_pfn(e)
                if not _present(e) or pfn == self.zero_pfn:
                    j += 1
                    continue
                folio, sub = self._folio_of(pfn)
                step = 1
                if folio.order:
                    while (j + step < j_end and sub + step < HPAGE_PMD_NR
                           and _batch_bits(pte_t.entries[j + step]) == _batch_bits(e)
                           and _entry_pfn(pte_t.entries[j + step]) == pfn + step):
                        step += 1
                if not lock:
                    self._munlock_folio(folio)
                elif step == 1 << folio.order:
                    self._mlock_folio(folio)
                j += step

    def mlockall(self, pid, flags):
        task = self._task(pid)
        return self._run(task, lambda: self._do_mlockall(task, flags))

    def munlockall(self, pid):
        task = self._task(pid)
        return self._run(task, lambda: self._apply_mlockall_flags(task.mm, 0))

    def _do_mlockall(self, task, flags):
        if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
            raise _rejected(EINVAL)
        self._apply_mlockall_flags(task.mm, flags)
        if flags & MCL_CURRENT:
            self._mm_populate(task, 0, TASK_SIZE, ignore_errors=True)
        return 0

    def _apply_mlockall_flags(self, mm, flags):
        mm.def_flags &= ~VM_LOCKED_MASK
        if flags & MCL_FUTURE:
            mm.def_flags |= VM_LOCKED | (VM_LOCKONFAULT if flags & MCL_ONFAULT else 0)
            if not flags & MCL_CURRENT:
                return 0
        to_add = 0
        if flags & MCL_CURRENT:
            to_add = VM_LOCKED | (VM_LOCKONFAULT if flags & MCL_ONFAULT else 0)
        va = 0
        while True:
            vma = next((v for v in mm.vmas if v.end > va), None)
            if vma is None:
                return 0
            va = vma.end
            self._mlock_fixup(mm, vma, vma.start, vma.end, (vma.flags & ~VM_LOCKED_MASK) | to_add)

    def brk(self, pid, addr):
        task = self._task(pid)
        return self._run(task, lambda: self._do_brk(task, addr))

    def _do_brk(self, task, brk):
        """SYSCALL_DEFINE1(brk) as SEMANTICS 9 states it (H1)."""
        mm = task.mm
        if brk < mm.start_brk:
            return mm.brk
        newbrk, oldbrk = _page_align(brk), _page_align(mm.brk)
        if newbrk == oldbrk:
            mm.brk = brk
            return brk
        if brk <= mm.brk:  # shrinking is always allowed
            mm.brk = brk
            self._unmap_range(mm, newbrk, oldbrk)
            return brk
        if newbrk > TASK_SIZE or mm.any_vma_in(oldbrk, newbrk):
            return mm.brk
        vm_flags = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | mm.def_flags | VM_ACCOUNT
        self._enter_merged(mm, self._insert_vma(mm, oldbrk, newbrk, vm_flags))
        mm.brk = brk
        if vm_flags & VM_LOCKED:
            mm.locked_vm += (newbrk - oldbrk) >> PAGE_SHIFT
            self._mm_populate(task, oldbrk, newbrk, ignore_errors=True)
        return brk

    def munmap(self, pid, addr, length):
        task = self._task(pid)

        def body():
            if addr & ~PAGE_MASK or addr < 0 or length <= 0 or addr > TASK_SIZE \
                    or _page_align(length) > TASK_SIZE - addr:
                raise _rejected(EINVAL)
            self._unmap_range(task.mm, addr, addr + _page_align(length))
            return 0
        return self._run(task, body)

    def madvise(self, pid, addr, length, advice):
        task = self._task(pid)
        return self._run(task, lambda: self._do_madvise(task, addr, length, advice))

    def _do_madvise(self, task, addr, length, advice):
        if advice == MADV_COLLAPSE and self.kernel == "6.18":
            return self._madvise_collapse(task, addr, length)
        if advice not in (MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                          MADV_POPULATE_READ, MADV_POPULATE_WRITE):
            raise _rejected(EINVAL)
        if addr & ~PAGE_MASK or addr < 0 or length < 0:
            raise _rejected(EINVAL)
        end = addr + _page_align(length)
        if end == addr:
            return 0
        if advice in (MADV_POPULATE_READ, MADV_POPULATE_WRITE):
            return self._madvise_populate(task, addr, end, advice == MADV_POPULATE_WRITE)
        if advice == MADV_HUGEPAGE:
            # hugepage_madvise: khugepaged_enter_vma for each VMA of the range as it was, with the
            # new flags (an anon_vma, an aligned 2 MiB range, the sysfs mode, the prctl); the mm
            # joins once the walk is over, whatever it did (SEMANTICS 11)
            seen = any(v.start < end and addr < v.end and self._enrols_at_madv_hugepage(task.mm, v)
                       for v in task.mm.vmas)
            try:
                return self._madvise_walk(task.mm, addr, end, advice)
            finally:
                if seen:
                    self._khugepaged_enter(task.mm, self._op_start + self.costs["syscall_ps"])
        return self._madvise_walk(task.mm, addr, end, advice)

    def _enrols_at_madv_hugepage(self, mm, v):
        """khugepaged_enter_vma(v, flags with VM_HUGEPAGE): may khugepaged collapse in ``v``?"""
        return self._enrols(mm, v, (v.flags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE)

    def _enrols(self, mm, v, flags):
        """khugepaged_enter_vma(v, flags): may khugepaged collapse in ``v`` with ``flags``?"""
        if v.special is not None:
            return False
        h = (v.start + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
        if h + HPAGE_PMD_SIZE > v.end:
            return False                      # thp_vma_suitable_order(vm_end - HPAGE_PMD_SIZE)
        w = Vma(v.start, v.end, flags)
        w.anon_vma = v.anon_vma
        return self._collapse_allowed(mm, w, khugepaged=True)

    def _enter_merged(self, mm, v):
        """mmap_region / do_brk_flags: khugepaged_enter_vma for the VMA the new range became or
        merged into. A new VMA has no anon_vma yet (it waits for its first THP fault); one grown
        from a VMA that has one enrols the mm where khugepaged may collapse there."""
        if v.anon_vma and self._enrols(mm, v, v.flags):
            self._khugepaged_enter(mm, self._op_start + self.costs["syscall_ps"])

    def _madvise_walk(self, mm, addr, end, advice):
        start, unmapped = addr, False
        while True:  # madvise_walk_vmas
            vma = next((v for v in mm.vmas if v.end > start), None)
            if vma is None:
                raise _oserror(ENOMEM)
            if start < vma.start:
                unmapped = True
                start = vma.start
                if start >= end:
                    break
            tmp = min(vma.end, end)
            if advice in (MADV_DONTNEED, MADV_FREE) and vma.flags & VM_LOCKED:
                raise _oserror(EINVAL)  # can_madv_lru_vma; earlier VMAs stay done
            if advice == MADV_DONTNEED:
                if self._zap_range(mm, start, tmp):
                    self._flush_needed = True
            elif advice == MADV_FREE:
                if self._madvise_free(mm, start, tmp):
                    self._flush_needed = True
            else:
                self._madvise_hugepage(mm, vma, start, tmp, advice)
            start = tmp
            if start >= end:
                break
        if unmapped:
            raise _oserror(ENOMEM)
        return 0

    def _madvise_free(self, mm, start, end):
        """madvise_free_pte_range / madvise_free_huge_pmd (SEMANTICS 9, L4). True if an entry
        changed or a PMD was split (the range is then flushed)."""
        changed = False
        for pmd_t, i, m0 in list(self._iter_pmd_slots(mm, start, end)):
            entry = pmd_t.entries[i]
            if entry & _PAGE_PSE:
                pfn = _entry_pfn(entry)
                if pfn == self.huge_zero_pfn:
                    continue
                if start <= m0 and m0 + HPAGE_PMD_SIZE <= end:
                    folio = self.folios[pfn]
                    if folio.mapcount() == 1:
                        new = entry & ~(_PAGE_ACCESSED | _PAGE_DIRTY)
                        changed |= new != entry
                        pmd_t.entries[i] = new
                        folio.lazyfree = [True] * HPAGE_PMD_NR
                    continue
                self._split_huge_pmd(mm, pmd_t, i, m0)
                changed = True
                entry = pmd_t.entries[i]
            pte_t = self.tables[_entry_pfn(entry)]
            for j in range(512):
                va = m0 + (j << PAGE_SHIFT)
                e = pte_t.entries[j]
                if not (start <= va < end and _present(e)) or _entry_pfn(e) == self.zero_pfn:
                    continue
                folio, sub = self._folio_of(_entry_pfn(e))
                if folio.page_mapcount_of(sub) != 1:
                    continue
                new = e & ~(_PAGE_ACCESSED | _PAGE_DIRTY)
                changed |= new != e
                pte_t.entries[j] = new
                folio.lazyfree[sub] = True
        if changed:
            self._tlb_invalidate(mm, start, end)
        return changed

    def _madvise_hugepage(self, mm, vma, start, end, advice):
        """hugepage_madvise + madvise_update_vma (split at the range ends, merge neighbours)."""
        if advice == MADV_HUGEPAGE:
            new_flags = (vma.flags & ~VM_NOHUGEPAGE) | VM_HUGEPAGE
        else:
            new_flags = (vma.flags & ~VM_HUGEPAGE) | VM_NOHUGEPAGE
        if new_flags == vma.flags:
            return
        self._split_vma_at(mm, start)
        self._split_vma_at(mm, end)
        mm.find_vma(start).flags = new_flags
        self._merge_around(mm, start, end)

    def _madvise_populate(self, task, start, end, write):
        """madvise_populate (6.18): stop at the first hole (ENOMEM) or bad VMA (EINVAL)."""
        mm = task.mm
        while start < end:
            vma = mm.find_vma(start)
            if vma is None:
                raise _oserror(ENOMEM)
            if not vma.flags & (VM_WRITE if write else VM_READ):
                raise _oserror(POPULATE_PERM_ERRNO)
            tmp = min(end, vma.end)
            try:
                self._populate(task, start, tmp, write)
            except OutOfMemory:
                raise _oserror(ENOMEM) from None
            except SegmentationFault:  # the vDSO (D1): VM_FAULT_SIGSEGV -> -EFAULT
                raise _oserror(EFAULT) from None
            start = tmp
        return 0

    def prctl(self, pid, option, arg2=0, arg3=0, arg4=0, arg5=0):
        task = self._task(pid)
        return self._run(task, lambda: self._do_prctl(task.mm, option, arg2, arg3, arg4, arg5))

    def _do_prctl(self, mm, option, arg2, arg3, arg4, arg5):
        """kernel/sys.c PR_SET/GET_THP_DISABLE per profile (spec section 2)."""
        if option not in (PR_SET_THP_DISABLE, PR_GET_THP_DISABLE) or self.kernel == "3.10":
            raise _rejected(EINVAL)
        completely = 1 << MMF_DISABLE_THP_COMPLETELY
        advised = 1 << MMF_DISABLE_THP_EXCEPT_ADVISED
        if option == PR_GET_THP_DISABLE:
            if arg2 or arg3 or arg4 or arg5:
                raise _rejected(EINVAL)
            if self.kernel == "3.15":
                return int(bool(mm.def_flags & VM_NOHUGEPAGE))
            if mm.flags & completely:
                return 1
            if self.kernel == "6.18" and mm.flags & advised:
                return 1 | PR_THP_DISABLE_EXCEPT_ADVISED
            return 0
        if self.kernel in ("3.15", "4.13"):
            if arg3 or arg4 or arg5:
                raise _rejected(EINVAL)
            if self.kernel == "3.15":
                mm.def_flags = (mm.def_flags | VM_NOHUGEPAGE) if arg2 else (mm.def_flags & ~VM_NOHUGEPAGE)
            else:
                mm.flags = (mm.flags | completely) if arg2 else (mm.flags & ~completely)
            return 0
        # 6.18 prctl_set_thp_disable
        if arg4 or arg5 or (not arg2 and arg3) or (arg3 & ~PR_THP_DISABLE_EXCEPT_ADVISED):
            raise _rejected(EINVAL)
        mm.flags &= ~(completely | advised)
        if arg2:
            mm.flags |= advised if arg3 & PR_THP_DISABLE_EXCEPT_ADVISED else completely
        return 0

    def sysfs_write(self, path, value):
        """/sys/kernel/mm/transparent_hugepage/{enabled,defrag,use_zero_page,shrink_underused}
        (the last on 6.18 only)."""
        if path.startswith("/sys/"):
            path = path[len("/sys/"):]
        if not path.startswith(SYSFS_THP):
            raise _oserror(ENOENT)
        knob = path[len(SYSFS_THP):]
        text = str(int(value) if isinstance(value, bool) else value).strip()
        if knob == "enabled":
            if text not in THP_ENABLED_VALUES:
                raise _oserror(EINVAL)
            self.thp_enabled = text
        elif knob == "defrag":
            allowed = DEFRAG_VALUES_3_10 if self.kernel == "3.10" else DEFRAG_VALUES
            if text not in allowed:
                raise _oserror(EINVAL)
            self.thp_defrag = text
        elif knob == "use_zero_page":
            if not text.isdigit() or int(text) > 1:
                raise _oserror(EINVAL)
            self.use_zero_page = bool(int(text))
        elif knob == "shrink_underused" and self.kernel == "6.18":
            if text not in ("0", "1"):
                raise _oserror(EINVAL)
            self.shrink_underused = text == "1"
        else:
            raise _oserror(ENOENT)

    # ------------------------------------------------------------------ user accesses
    def touch(self, pid, addr, length, stride=4096, write=True):
        if stride <= 0:
            raise ValueError("stride must be positive")
        self.access(pid, range(addr, addr + length, stride), write)

    def access(self, pid, addresses, write):
        task = self._task(pid)
        addresses = [int(a) for a in addresses]
        if isinstance(write, (bool, int)) or getattr(write, "ndim", 1) == 0:
            writes = [bool(write)] * len(addresses)
        else:
            writes = [bool(w) for w in write]
        if len(writes) != len(addresses):
            raise ValueError("write list and addresses differ in length")

        def body():
            for va, w in zip(addresses, writes):
                self._run_timers(self._op_start + self._cost)  # due before this access
                self._access(task, va, w)
        self._run(task, body, syscall=False)

    # ------------------------------------------------------------------ khugepaged (SEMANTICS 11)
    def _khugepaged_enter(self, mm, now_ps):
        """__khugepaged_enter: the mm joins the end of khugepaged's list (MMF_VM_HUGEPAGE); a
        khugepaged asleep for want of work wakes at ``now_ps`` (unless THP is ``never``)."""
        if mm in self.kh_mms:
            return
        mm.flags |= 1 << MMF_VM_HUGEPAGE
        self.kh_mms.append(mm)
        if self.kh_wake_ps is None and self.thp_enabled != "never":
            self.kh_wake_ps = now_ps

    def _khugepaged_exit(self, mm):
        """__khugepaged_exit: a dying mm leaves the list at once, unless khugepaged's cursor is
        on it (then the scan drops it when it next looks, collect_mm_slot)."""
        if mm in self.kh_mms and mm is not self.kh_scan_mm:
            self._kh_drop(mm)

    def _kh_drop(self, mm):
        self.kh_mms.remove(mm)
        mm.flags &= ~(1 << MMF_VM_HUGEPAGE)

    def _kh_has_work(self):
        return self.thp_enabled != "never" and bool(self.kh_mms)

    def _run_timers(self, until_ps):
        """Run every khugepaged wakeup due at or before ``until_ps``, each at its own time, on
        khugepaged's own clock: the interrupted operation's cost and flush flag are kept aside."""
        while self.kh_wake_ps is not None and self.kh_wake_ps <= until_ps:
            saved = self._cost, self._flush_needed
            self._cost, self._flush_needed = 0, False
            try:
                failed = self._khugepaged_do_scan()
                busy = self._cost
            finally:
                self._cost, self._flush_needed = saved
            t = self.kh_wake_ps
            self.kh_busy_ps += busy
            if failed:
                nxt = t + busy + self.kh_knobs["alloc_sleep_millisecs"] * 10**9
            elif self._kh_has_work():
                nxt = t + busy + self.kh_knobs["scan_sleep_millisecs"] * 10**9
            else:
                nxt = None                # wait_event until an mm enrols
            self.kh_wake_ps = None if nxt is None else max(nxt, t + 1000)

    def _khugepaged_do_scan(self):
        """khugepaged_do_scan: ``pages_to_scan`` of progress, mm after mm, resuming at the cursor;
        at most one pass through the list head. True if a huge page allocation failed (the
        engine ends the wakeup there and sleeps ``alloc_sleep_millisecs``)."""
        pages = self.kh_knobs["pages_to_scan"]
        progress = passes = 0
        while True:
            if self.kh_scan_mm is None:
                passes += 1
            if self._kh_has_work() and passes < 2:
                n, result = self._khugepaged_scan_mm_slot(pages - progress)
                progress += n
                self.kh_pages_scanned += n
                if result == "alloc_fail":
                    return True
            else:
                progress = pages
            if progress >= pages:
                return False

    def _khugepaged_scan_mm_slot(self, pages):
        """khugepaged_scan_mm_slot: (progress, last SCAN result). One unit of progress for the
        visit of the mm (Linux), one per VMA skipped, 512 per 2 MiB range examined."""
        if self.kh_scan_mm is None:
            self.kh_scan_mm, self.kh_scan_addr = self.kh_mms[0], 0
        mm = self.kh_scan_mm
        progress = 1          # the visit of the mm
        result = "succeed"
        alive = mm.users > 0      # hpage_collapse_test_exit
        if alive:
            for vma in list(mm.vmas):
                if vma.end <= self.kh_scan_addr:
                    continue      # vma_iter_init(address)
                hstart = (vma.start + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
                hend = vma.end & ~(HPAGE_PMD_SIZE - 1)
                if (not self._collapse_allowed(mm, vma, khugepaged=True) or hstart >= hend
                        or self.kh_scan_addr > hend):
                    progress += 1
                    continue
                self.kh_scan_addr = max(self.kh_scan_addr, hstart)
                while self.kh_scan_addr < hend:
                    result = self._collapse_scan_pmd(mm, vma, self.kh_scan_addr, True,
                                                     bool(self.kh_knobs["defrag"]))
                    if result == "succeed":
                        self.kh_pages_collapsed += 1
                    self.kh_scan_addr += HPAGE_PMD_SIZE
                    progress += HPAGE_PMD_NR
                    if result == "alloc_fail" or progress >= pages:
                        return progress, result
        # every VMA seen (or the mm is gone): the cursor moves on; past the tail, a full scan
        i = self.kh_mms.index(mm)
        nxt = self.kh_mms[i + 1] if i + 1 < len(self.kh_mms) else None
        if not alive:
            self._kh_drop(mm)     # collect_mm_slot
        self.kh_scan_mm, self.kh_scan_addr = nxt, 0
        if nxt is None:
            self.kh_full_scans += 1
        return progress, result

    def _collapse_allowed(self, mm, vma, khugepaged):
        """thp_vma_allowable_order for a collapse: an anonymous VMA with read or write access and
        an anon_vma, not VM_NOHUGEPAGE, not disabled for the mm; khugepaged also needs the sysfs
        mode."""
        if vma.special is not None or not vma.flags & (VM_READ | VM_WRITE) or not vma.anon_vma:
            return False
        if khugepaged:
            return self._thp_flags_allowable(mm, vma.flags)
        enabled, self.thp_enabled = self.thp_enabled, "always"  # no TVA_ENFORCE_SYSFS
        try:
            return self._thp_flags_allowable(mm, vma.flags)
        finally:
            self.thp_enabled = enabled

    def _collapse_scan_pmd(self, mm, vma, haddr, khugepaged, direct):
        """Find the PMD at ``haddr``, scan its PTE table (hpage_collapse_scan_pmd) and collapse
        it (collapse_huge_page) if it qualifies. Costs go to ``self._cost``. A SCAN result."""
        pmd_t = self._table_at(mm, haddr, PMD_LEVEL)
        i = _pt_index(haddr, PMD_LEVEL)
        if pmd_t is None or pmd_t.entries[i] == 0:
            return "pmd_null"
        if pmd_t.entries[i] & _PAGE_PSE:
            return "pmd_mapped"
        pte_t = self.tables[_entry_pfn(pmd_t.entries[i])]
        self._cost += HPAGE_PMD_NR * self.costs["scan_pte_ps"]  # the whole table, even if cut short
        result = self._scan_ptes(pte_t, khugepaged)
        if result != "succeed":
            return result
        return self._collapse_huge_page(mm, vma, pmd_t, i, haddr, direct)

    def _scan_ptes(self, pte_t, khugepaged):
        """The 512 PTEs of one range, in order (mm/khugepaged.c; the profile's rule)."""
        rule = COLLAPSE_RULE[self.kernel]
        k = self.kh_knobs
        max_none = k["max_ptes_none"] if khugepaged else HPAGE_PMD_NR
        max_shared = k["max_ptes_shared"] if khugepaged else HPAGE_PMD_NR
        none_or_zero = shared = referenced = writable = pages = 0

        def exceed(counter):
            if khugepaged and self.kernel == "6.18":    # the thp_scan_exceed_* events: 5.8+
                self.events[counter] += 1

        for e in pte_t.entries:
            if e == 0:
                none_or_zero += 1
                if none_or_zero > max_none:
                    exceed("thp_scan_exceed_none_pte")
                    return "exceed_none_pte"
                continue
            # no swap entries exist here (no swap; a PROT_NONE leaf lives in a skipped VMA)
            assert e & _PAGE_PRESENT, "non-present PTE in a collapsible VMA"
            pfn = _entry_pfn(e)
            if pfn == self.zero_pfn:
                if rule == "all_writable":
                    return "page_ro"          # 3.x: the zero page is a present read-only PTE
                none_or_zero += 1
                if none_or_zero > max_none:
                    exceed("thp_scan_exceed_none_pte")
                    return "exceed_none_pte"
                continue
            if e & _PAGE_RW:
                writable += 1
            elif rule == "all_writable":
                return "page_ro"
            folio, sub = self._folio_of(pfn)
            # the folio's flags decide the anon/LRU tests (a tail page's own flags are not read)
            if rule == "one_writable" and folio.order > 0:
                return "page_compound"        # 4.13: "teach khugepaged to collapse THP mapped with pte"
            # page_mapcount (6.18: folio_maybe_mapped_shared): the folio's PMD mappings count too
            if folio.page_mapcount_of(sub) > 1:
                if rule in ("all_writable", "one_writable"):
                    return "page_count"       # page_count() != 1 (max_ptes_shared came in 5.8)
                shared += 1
                if shared > max_shared:
                    exceed("thp_scan_exceed_share_pte")
                    return "exceed_shared_pte"
            if e & _PAGE_ACCESSED:            # pte_young (PG_referenced: never set on anon here)
                referenced += 1
            pages += 1
        if pages == 0:
            return "page_null"
        if rule == "one_writable" and not writable:
            return "page_ro"
        if khugepaged and not referenced:
            return "lack_referenced_page"
        return "succeed"

    def _collapse_huge_page(self, mm, vma, pmd_t, i, haddr, direct):
        """collapse_huge_page: a new order-9 folio (compaction if ``direct``), the pages copied in
        and the holes zeroed, the old pages unmapped (and freed when unmapped everywhere) in PTE
        order, the PMD installed, the emptied PTE table deposited, the range flushed."""
        pfn = self.buddy.alloc(HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
        if pfn < 0 and direct:
            pfn = self._compact_order9()
        if pfn < 0:
            self.events["thp_collapse_alloc_failed"] += 1
            return "alloc_fail"
        self.events["thp_collapse_alloc"] += 1
        pte_pfn = _entry_pfn(pmd_t.entries[i])
        pte_t = self.tables[pte_pfn]
        copied = 0
        written = [False] * HPAGE_PMD_NR
        for j in range(HPAGE_PMD_NR):
            e, pte_t.entries[j] = pte_t.entries[j], 0
            if e == 0 or _entry_pfn(e) == self.zero_pfn:
                continue
            copied += 1
            old, sub = self._folio_of(_entry_pfn(e))
            written[j] = old.written[sub]
            if old.order == 0:
                old.rmap.remove((mm, haddr + (j << PAGE_SHIFT)))
            if vma.flags & VM_LOCKED:
                self._munlock_folio(old)      # __folio_remove_rmap -> munlock_vma_folio
            self._remove_rmap_ptes(old, (sub,))   # folio_remove_rmap_pte, one PTE at a time
        self._cost += (copied * self.costs["copy_page_ps"]
                       + (HPAGE_PMD_NR - copied) * self.costs["clear_page_ps"])
        folio = Folio(pfn, HPAGE_PMD_ORDER, "anon")
        self.folios[pfn] = folio
        folio.entire_mapcount = 1
        folio.anon_root = mm.anon_root
        folio.written = written
        if vma.flags & VM_LOCKED:
            self._mlock_folio(folio)          # folio_add_lru_vma -> mlock_new_folio
        entry = (_PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_PSE
                 | self._prot_bits(vma) | (pfn << PAGE_SHIFT))
        if vma.flags & VM_WRITE:
            entry |= _PAGE_RW
        pmd_t.entries[i] = entry
        mm.deposits.setdefault(haddr >> 30, []).append(pte_pfn)   # pgtable_trans_huge_deposit
        mm.rss_anon += HPAGE_PMD_NR - copied
        self._queue_new_thp(folio)
        self._tlb_invalidate(mm, haddr, haddr + HPAGE_PMD_SIZE)
        self._cost += self.costs["tlb_flush_ps"]
        return "succeed"

    def _madvise_collapse(self, task, addr, length):
        """madvise(MADV_COLLAPSE) (6.18): VMA by VMA over the range, synchronously on the
        caller's clock; ENOMEM for a hole once the mapped parts are done."""
        if addr & ~PAGE_MASK or addr < 0 or length < 0:
            raise _rejected(EINVAL)
        end = addr + _page_align(length)
        if end > TASK_SIZE:
            raise _rejected(EINVAL)
        mm = task.mm
        start, hole = addr, False
        while start < end:
            vma = next((v for v in mm.vmas if v.end > start), None)
            if vma is None or vma.start >= end:
                hole = True
                break
            if vma.start > start:
                hole = True
            tmp = min(end, vma.end)
            err = self._collapse_vma(mm, vma, max(start, vma.start), tmp)
            if err:
                raise _oserror(err)
            start = tmp
        if hole:
            raise _oserror(ENOMEM)
        return 0

    def _collapse_vma(self, mm, vma, start, end):
        """madvise_collapse for one VMA's part: 0 or an errno (madvise_collapse_errno)."""
        if not self._collapse_allowed(mm, vma, khugepaged=False):
            return EINVAL
        vma_h = (vma.start + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
        if vma_h + HPAGE_PMD_SIZE > vma.end:
            return EINVAL                     # thp_vma_suitable_order(vm_end - HPAGE_PMD_SIZE)
        hstart = (start + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
        hend = end & ~(HPAGE_PMD_SIZE - 1)
        thps, last_fail = 0, "fail"
        for a in range(hstart, hend, HPAGE_PMD_SIZE):
            r = self._collapse_scan_pmd(mm, vma, a, False, True)
            if r in ("succeed", "pmd_mapped"):
                thps += 1
            else:
                last_fail = r
                if r not in MADV_COLLAPSE_GOES_ON:
                    break                     # outside madvise_collapse's whitelist
        if thps * HPAGE_PMD_SIZE == hend - hstart:
            return 0
        return {"alloc_fail": ENOMEM, "exceed_none_pte": EBUSY, "page_count": EAGAIN,
                "page_lru": EAGAIN}.get(last_fail, EINVAL)

    def clear_refs(self, pid, value=1):
        """/proc/PID/clear_refs: 1 (all) and 2 (anonymous) clear the accessed bit of every leaf
        (PG_referenced is never set on anonymous pages here), 3 (file) has nothing to do; the
        mm's TLB entries go. Costs syscall_ps + tlb_flush_ps + copy_pte_ps per leaf."""
        task = self._task(pid)
        if value not in (1, 2, 3):
            raise _oserror(EINVAL)

        def body():
            mm = task.mm
            leaves = 0
            if value != 3:
                for vma in mm.vmas:
                    if vma.special is not None:
                        continue
                    for pmd_t, i, m0 in list(self._iter_pmd_slots(mm, vma.start, vma.end)):
                        entry = pmd_t.entries[i]
                        if entry & _PAGE_PSE:
                            pmd_t.entries[i] = entry & ~_PAGE_ACCESSED
                            leaves += 1
                            continue
                        pte_t = self.tables[_entry_pfn(entry)]
                        for j in range(512):
                            va = m0 + (j << PAGE_SHIFT)
                            if vma.start <= va < vma.end and _present(pte_t.entries[j]):
                                pte_t.entries[j] &= ~_PAGE_ACCESSED
                                leaves += 1
            self._tlb_invalidate(mm, 0, 1 << 64)
            self._cost += self.costs["tlb_flush_ps"] + leaves * self.costs["copy_pte_ps"]
        self._run(task, body)

    def nanosleep(self, pid, ns):
        """The task sleeps ``ns``: khugepaged catches up with its clock (its CPU stays free)."""
        task = self._task(pid)
        self._run_timers(max(task.clock_ps, self.cpus[task.cpu].free_ps))
        task.clock_ps += ns * 1000
        self._run_timers(task.clock_ps)
        self._kswapd_catch_up(task.clock_ps)

    def advance(self, ns):
        """Machine.advance: every task idles until ``ns`` after the latest clock."""
        until = max([self.now_ps] + [t.clock_ps for t in self.tasks.values()]) + ns * 1000
        self._run_timers(until)
        for t in self.tasks.values():
            t.clock_ps = max(t.clock_ps, until)
        self._kswapd_catch_up(until)

    def khugepaged(self):
        return {"pages_collapsed": self.kh_pages_collapsed, "full_scans": self.kh_full_scans,
                "pages_scanned": self.kh_pages_scanned, "busy_ns": self.kh_busy_ps // 1000}

    # ------------------------------------------------------------------ observables
    def vmstat(self):
        d = dict(self.events)
        d["nr_free_pages"] = self.buddy.nr_free()
        anon = [f for f in self.folios.values() if f.kind == "anon"]
        d["nr_anon_pages"] = sum((1 << f.order) if f.entire_mapcount else
                                 sum(1 for c in f.page_mapcount if c) for f in anon)
        d["nr_anon_transparent_hugepages"] = sum(1 for f in anon if f.entire_mapcount)
        d["nr_page_table_pages"] = len(self.tables)
        d["nr_mlock"] = sum(1 << f.order for f in self.folios.values() if f.mlocked)  # L1
        return d

    def status(self, pid):
        mm = self._task(pid).mm
        thp = 1
        if self.kernel in ("4.13", "6.18") and mm.flags & (1 << MMF_DISABLE_THP_COMPLETELY):
            thp = 0
        rss_kb = mm.rss_anon * 4
        return {"VmRSS": rss_kb, "RssAnon": rss_kb, "RssFile": 0, "RssShmem": 0,
                "VmPTE": mm.nr_pgtables * 4, "VmSwap": 0, "VmLck": mm.locked_vm * 4, "THP_enabled": thp}

    def mm_flags(self, pid):
        return self._task(pid).mm.flags

    def vmas(self, pid):
        return [(v.start, v.end, v.flags) for v in self._task(pid).mm.vmas]

    def smaps(self, pid):
        mm = self._task(pid).mm
        out = []
        for v in mm.vmas:
            rss = anon_huge = referenced = lazyfree = pss = 0
            for va, entry, size_kb in self._leaves(mm, v.start, v.end):
                pfn = _entry_pfn(entry)
                if pfn in (self.zero_pfn, self.huge_zero_pfn):
                    continue
                rss += size_kb
                folio, sub = self._folio_of(pfn)
                for k in range(sub, sub + size_kb // 4):  # smaps_account, per 4 KiB page
                    pss += (PAGE_SIZE << PSS_SHIFT) // folio.page_mapcount_of(k)
                if size_kb == 2048:
                    anon_huge += size_kb
                if entry & _PAGE_ACCESSED:
                    referenced += size_kb
                if not entry & _PAGE_DIRTY:
                    folio, sub = self._folio_of(pfn)
                    lazyfree += 4 * sum(folio.lazyfree[sub:sub + size_kb // 4])
            out.append({"start": v.start, "end": v.end, "flags": v.flags,
                        "Size": (v.end - v.start) // 1024, "Rss": rss, "Anonymous": rss,
                        "AnonHugePages": anon_huge, "Referenced": referenced,
                        "LazyFree": lazyfree, "Pss": pss >> PSS_SHIFT >> 10,
                        "Locked": pss >> PSS_SHIFT >> 10 if v.flags & VM_LOCKED else 0})
        return out

    def _leaves(self, mm, start, end):
        """(va, entry, size_kB) of every present leaf in [start, end), ascending."""
        for pmd_t, i, m0 in self._iter_pmd_slots(mm, start, end):
            entry = pmd_t.entries[i]
            if entry & _PAGE_PSE:
                yield m0, entry, 2048
                continue
            pte_t = self.tables[_entry_pfn(entry)]
            for j, e in enumerate(pte_t.entries):
                va = m0 + (j << PAGE_SHIFT)
                if _present(e) and start <= va < end:
                    yield va, e, 4

    def page_table(self, pid):
        mm = self._task(pid).mm
        return {va: _signed64(e) for va, e, _ in self._leaves(mm, 0, USER_VA_LIMIT)}

    def buddyinfo(self):
        counts = [0] * NR_PAGE_ORDERS
        for order in self.buddy.free_order.values():
            counts[order] += 1
        counts[MAX_PAGE_ORDER] += (self.nr_pages - self.buddy.high_water) >> MAX_PAGE_ORDER
        return counts

    def free_lists(self):
        return {k: list(v) for k, v in self.buddy.lists.items()}, self.buddy.high_water

    @property
    def high_water(self):
        return self.buddy.high_water

    def pageblock_migratetypes(self):
        return list(self.buddy.pageblock_mt)

    def tlb_counters(self, pid):
        t = self._task(pid)
        return {"accesses": t.accesses, "dtlb_misses": t.dtlb_misses, "stlb_misses": t.stlb_misses,
                "walk_loads": t.walk_loads, "time_ps": t.clock_ps}

    def min_flt(self, pid):
        return self._task(pid).min_flt

    def frame_state(self):
        return {pfn: (f.order, f.mapcount()) for pfn, f in sorted(self.folios.items())}

    def page_table_frames(self):
        return {pfn: t.level for pfn, t in sorted(self.tables.items())}

    # ------------------------------------------------------------------ invariants
    def check_invariants(self):
        owner = self._check_frame_conservation()
        self._check_free_lists()
        # the deferred split queue (S1): the flagged folios, once each; partially mapped ones queued
        queued = {id(f) for f in self.deferred}
        assert len(queued) == len(self.deferred), "a THP queued twice"
        for f in self.folios.values():
            assert f.deferred == (id(f) in queued), f"queue flag of {f.pfn}"
            assert f.deferred or not f.partially_mapped, f"partially mapped {f.pfn} not queued"
            assert f.kind == "anon" or not any(f.written), f"written {f.kind} folio {f.pfn}"
        expected = {pfn: [0, [0] * (1 << f.order)] for pfn, f in self.folios.items()}
        rmaps = {pfn: [] for pfn in self.folios}
        mms = self._mms()
        for mm in mms.values():
            assert mm.users == sum(1 for t in self.tasks.values() if t.mm is mm), "MM_USERS"
            self._check_mm(mm, owner, expected, rmaps)
        for pfn, f in self.folios.items():
            if f.kind == "anon":
                assert [f.entire_mapcount, f.page_mapcount] == expected[pfn], f"mapcount of {pfn}"
                assert f.mapcount() > 0, f"unmapped anon folio {pfn} not freed"
                if f.order == 0:
                    key = lambda r: (r[0].id, r[1])  # noqa: E731
                    assert sorted(f.rmap, key=key) == sorted(rmaps[pfn], key=key), f"rmap of {pfn}"
            else:
                assert not any(f.lazyfree) and not any(f.exclusive) and not f.mlocked
            assert f.mlocked == (f.mlock_count > 0), f"folio {pfn}: PG_mlocked vs mlock_count"
            if f.kind == "anon" and f.order == 0:  # L1: an order-0 page counts its locked mappings
                locked = sum(1 for m, va in f.rmap if m.find_vma(va).flags & VM_LOCKED)
                if f.split_unlocked:   # mlocked lazily in Linux, when reclaim's rmap walk meets it
                    assert f.mlock_count <= locked, f"page {pfn}: mlock_count {f.mlock_count}, {locked} locked"
                else:
                    assert f.mlock_count == locked, f"page {pfn}: mlock_count {f.mlock_count}, {locked} locked"
            if f.kind == "anon":  # PageAnonExclusive: no other mapping of that page anywhere
                for sub, excl in enumerate(f.exclusive):
                    assert not excl or f.page_mapcount_of(sub) <= 1, f"exclusive page {pfn}+{sub}"
                if f.entire_mapcount:  # PMD-mapped: all 512 flags move together
                    assert len(set(f.exclusive)) == 1, f"PMD-mapped folio {pfn}: mixed exclusive"
        self._check_tlbs()

    def _check_frame_conservation(self):
        b = self.buddy
        owner = [None] * self.nr_pages
        for pfn, order in b.free_order.items():
            for p in range(pfn, pfn + (1 << order)):
                assert owner[p] is None, f"pfn {p} in two free blocks"
                owner[p] = "free"
        for p in range(b.high_water, self.nr_pages):
            owner[p] = "free"
        for pfn, f in self.folios.items():
            for p in range(pfn, pfn + (1 << f.order)):
                assert owner[p] is None, f"pfn {p} both {owner[p]} and a folio"
                owner[p] = ("folio", pfn)
        for pfn in self.tables:
            assert owner[pfn] is None, f"table pfn {pfn} also {owner[pfn]}"
            owner[pfn] = "table"
        assert None not in owner, f"pfn {owner.index(None)} unaccounted"
        assert b.nr_free() + sum(1 << f.order for f in self.folios.values()) + len(self.tables) == self.nr_pages
        return owner

    def _check_free_lists(self):
        b = self.buddy
        seen = {}
        for (order, mt), lst in b.lists.items():
            for pfn in lst:
                assert pfn not in seen, f"pfn {pfn} listed twice"
                seen[pfn] = (order, mt)
                assert pfn % (1 << order) == 0 and pfn + (1 << order) <= b.high_water
        assert seen == {p: (o, b.free_mt[p]) for p, o in b.free_order.items()}
        for pfn, order in b.free_order.items():
            if order < MAX_PAGE_ORDER:
                assert b.free_order.get(pfn ^ (1 << order)) != order, f"unmerged buddies at {pfn}"
        for pb in range(b.high_water >> PAGEBLOCK_ORDER, len(b.pageblock_mt)):
            assert b.pageblock_mt[pb] == MIGRATE_MOVABLE

    def _check_mm(self, mm, owner, expected, rmaps):
        tables = 0
        leaves = list(self._leaves(mm, 0, USER_VA_LIMIT))
        for va, entry, size_kb in leaves:
            pfn = _entry_pfn(entry)
            vma = mm.find_vma(va)
            assert vma is not None and va + size_kb * 1024 <= vma.end, f"leaf {va:#x} outside VMAs"
            # protection bits follow the VMA (mprotect keeps them in step)
            if vma.flags & VM_ACCESS_FLAGS:
                assert entry & _PAGE_PRESENT and not entry & _PAGE_PROTNONE, f"leaf {va:#x} P"
            else:
                assert not entry & _PAGE_PRESENT and entry & _PAGE_PROTNONE, f"leaf {va:#x} PROT_NONE"
            assert not entry & _PAGE_RW or vma.flags & VM_WRITE, f"leaf {va:#x} RW without VM_WRITE"
            assert bool(entry & _PAGE_NX) == (not vma.flags & VM_EXEC), f"leaf {va:#x} NX"
            if pfn == self.zero_pfn or pfn == self.huge_zero_pfn:
                assert entry & _PAGE_SPECIAL and not entry & _PAGE_RW
                continue
            assert 0 <= pfn < self.nr_pages and isinstance(owner[pfn], tuple), \
                f"leaf {va:#x} maps frame {pfn}, which is not an allocated folio"
            folio, sub = self._folio_of(pfn)
            assert folio.kind == "anon" and owner[pfn] == ("folio", folio.pfn)
            # every mm mapping an anonymous folio belongs to the anon tree it was faulted in
            assert folio.anon_root == mm.anon_root, f"leaf {va:#x}: folio of another anon tree"
            if size_kb == 2048:
                assert sub == 0
                expected[folio.pfn][0] += 1
            else:
                expected[folio.pfn][1][sub] += 1
                if folio.order == 0:
                    rmaps[folio.pfn].append((mm, va))
        for va, entry, size_kb in leaves:  # COW: a writable leaf maps an exclusive page
            pfn = _entry_pfn(entry)
            if entry & _PAGE_RW:
                folio, sub = self._folio_of(pfn)
                n = folio.mapcount() if size_kb == 2048 else folio.page_mapcount_of(sub)
                assert n == 1, f"writable leaf {va:#x} maps a page mapped {n} times"
                assert folio.exclusive[sub], f"writable leaf {va:#x} maps a non-exclusive page"
        assert mm.locked_vm == sum((v.end - v.start) >> PAGE_SHIFT for v in mm.vmas
                                   if v.flags & VM_LOCKED), "MM_LOCKED"
        assert all(v.flags & VM_LOCKED for v in mm.vmas if v.flags & VM_LOCKONFAULT)
        rss = sum(sz // 4 for va, e, sz in leaves
                  if _entry_pfn(e) not in (self.zero_pfn, self.huge_zero_pfn))
        assert rss == mm.rss_anon, f"rss {mm.rss_anon} but tables map {rss}"
        if mm.pgd is not None:
            tables = self._count_tables(self.tables[mm.pgd]) - 1
        huge_per_gib = {}
        for va, e, sz in leaves:
            if sz == 2048:
                huge_per_gib[va >> 30] = huge_per_gib.get(va >> 30, 0) + 1
        assert {k: len(v) for k, v in mm.deposits.items()} == huge_per_gib, "deposits per PMD table"
        assert all(pfn in self.tables for v in mm.deposits.values() for pfn in v)
        ndep = sum(len(v) for v in mm.deposits.values())
        assert tables + ndep == mm.nr_pgtables, "VmPTE counter"
        for a, b in zip(mm.vmas, mm.vmas[1:]):  # identical neighbours may exist after fork (X3)
            assert a.start < a.end <= b.start
        assert all(v.start < v.end and not (v.start | v.end) & ~PAGE_MASK for v in mm.vmas)

    def _count_tables(self, table):
        n = 1
        if table.level == PTE_LEVEL:
            return n
        for e in table.entries:
            if _present(e) and not (table.level == PMD_LEVEL and e & _PAGE_PSE):
                n += self._count_tables(self.tables[_entry_pfn(e)])
        return n

    def _check_tlbs(self):
        mms = self._mms()
        for cpu in self.cpus:
            for tlb in (cpu.l1_4k, cpu.l1_2m, cpu.stlb):
                for e in tlb.entries():
                    mm = mms.get(e.asid)
                    assert mm is not None, "TLB entry of a dead mm"
                    leaf = self._leaf(mm, e.vpn << e.shift)
                    assert leaf is not None, f"stale TLB entry {e}"
                    table, i, level = leaf
                    entry = table.entries[i]
                    assert (level == PMD_LEVEL) == (e.shift == HPAGE_PMD_SHIFT)
                    assert _entry_pfn(entry) == e.pfn, f"TLB entry {e} maps a stale pfn"
                    assert entry & _PAGE_PRESENT, f"TLB entry {e} for a non-present leaf"
                    assert not e.writable or entry & _PAGE_RW
                    assert not e.dirty or entry & _PAGE_DIRTY
            for cache, level in ((cpu.pde, PTE_LEVEL), (cpu.pdpte, PMD_LEVEL)):
                shift = 21 if level == PTE_LEVEL else 30
                for e in cache:
                    if e is None:
                        continue
                    mm = mms.get(e[0])
                    assert mm is not None
                    table = self._table_at(mm, e[1] << shift, level)
                    assert table is not None and table.pfn == e[2], "stale paging-structure cache"
