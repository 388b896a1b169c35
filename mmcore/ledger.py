"""The fidelity ledger: what the engine models of each kernel mechanism, per kernel profile.

Each row is a mechanism, marked for every profile of ``mmcore.config.PROFILES``:

- ``exact``: the kernel's rules for that version, in everything observable (state, counters,
  errnos, ``/proc`` fields), as the reference model written from the kernel, the host kernel or
  the kernel's own numbers check it (the row's tests);
- ``approximate``: modelled, with the simplifications or departures the row's note states;
- ``absent``: not modelled;
- ``n/a``: that kernel version does not have the mechanism (the engine refuses it as the version
  does, or never runs it).

Simulated time is approximate everywhere (its own row): a mechanism marked exact does the
kernel's work in the kernel's order, and its costs come from ``Config.costs``.

``mmcore/LEDGER.md`` is generated from ``LEDGER`` (``python -m mmcore.ledger --write``), and the
README's "Fidelity" section holds ``summary_markdown()``; ``tests/test_ledger.py`` checks that
both are up to date, that every module of ``kernels/`` and every ``/proc/vmstat`` counter belongs
to some row, and that every test a row names exists.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .config import PROFILES

__all__ = ["Mechanism", "LEDGER", "INFRASTRUCTURE", "MARKS", "PROFILE_NAMES", "markdown",
           "summary_markdown", "LEDGER_PATH"]

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
MARKS = ("exact", "approximate", "absent", "n/a")
LEDGER_PATH = Path(__file__).resolve().parent / "LEDGER.md"


@dataclass(frozen=True)
class Mechanism:
    """One row: ``marks`` maps each profile to one of ``MARKS``; ``tests`` are pytest node ids
    (``tests/FILE.py::test_name``); ``kernels`` the modules of ``kernels/`` that implement it;
    ``counters`` the ``/proc/vmstat`` counters it moves (or, for an absent row, leaves at 0)."""
    name: str
    marks: dict[str, str]
    source: str
    tests: tuple[str, ...]
    kernels: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()
    note: str = ""

    def mark(self, profile: str) -> str:
        return self.marks[profile]


def marks(default: str, **per: str) -> dict[str, str]:
    """Marks for every profile: ``default``, except those given as ``v3_10="n/a"``."""
    out = {p: default for p in PROFILE_NAMES}
    for k, v in per.items():
        p = k.removeprefix("v").replace("_", ".")
        if p not in out:
            raise ValueError(f"marks: no kernel profile {p!r} (profiles: {PROFILE_NAMES})")
        out[p] = v
    return out


def _older(mark: str, *, but: str = "6.18", other: str = "exact") -> dict[str, str]:
    """``other`` on profile ``but``, ``mark`` on every other profile."""
    return {p: (other if p == but else mark) for p in PROFILE_NAMES}


_T = "tests/"
_REF = "tests/reference/test_reference_selfcheck.py::"

# Modules of kernels/ that are plumbing rather than a mechanism, and why.
INFRASTRUCTURE = {
    "__init__": "the package",
    "borrow": "borrowed array views for hot loops (reference-count traffic), no behaviour",
    "consts": "constants: the kernel's flag values, array layouts, counter names",
    "jit": "the one decorator and the kernel cache directory",
    "state": "the state NamedTuple (struct of arrays)",
    "lackey": "a trace-file parser (Valgrind lackey logs), not a kernel mechanism",
}

LEDGER: tuple[Mechanism, ...] = (
    # ---- physical memory and page tables ----------------------------------------------------
    Mechanism(
        "Buddy allocator: orders 0-10, migratetypes, pageblock stealing, lazy init",
        marks("approximate"),
        "mm/page_alloc.c `__rmqueue_smallest`, `__rmqueue_fallback`, `__free_one_page`",
        (_T + "test_engine.py::test_buddy_allocation_is_lazy_and_conserved",
         _REF + "test_buddyinfo_4mib_machine", _T + "test_differential.py::test_seeded_streams_agree"),
        ("page_alloc",), ("nr_free_pages", "pgalloc_normal", "pgfree"),
        "One node, one zone (Normal); no per-CPU page lists; fallback order and claiming "
        "simplified (tests/reference/SEMANTICS.md 1); frames above a high-water mark are free "
        "without being listed (deferred struct-page init)."),
    Mechanism(
        "Page tables: x86-64 entry bits, 4 or 5 levels, VmPTE",
        _older("approximate"),
        "arch/x86/include/asm/pgtable_types.h; `mm_pgtables_bytes` (4.15+)",
        (_T + "test_engine.py::test_vmpte_counts_pud_pmd_and_pte_tables",
         _T + "test_engine.py::test_five_level_paging_walks_one_level_more",
         _T + "test_validate.py::test_engine_page_table_growth"),
        ("pagetable",), ("nr_page_table_pages",),
        "VmPTE counts PUD, PMD and PTE tables as 4.15+ does on every profile; 3.x counted PTE "
        "tables only and 4.0-4.14 showed PMD tables apart (VmPMD). Tables are freed when no VMA "
        "reaches their range any more (a simplified `free_pgtables`)."),
    Mechanism(
        "VMAs: mmap/munmap placement, merging, the vDSO",
        _older("approximate"),
        "mm/mmap.c `vm_unmapped_area`, x86 `mmap_base()`; mm/vma.c `vma_merge`",
        (_T + "test_engine.py::test_mmap_placement_matches_linux_6_18",
         _T + "test_engine.py::test_adjacent_anonymous_mappings_merge",
         _T + "test_differential.py::test_vdso_placement_and_segfault",
         _T + "test_engine.py::test_mmap_munmap_errors_leave_state_unchanged"),
        ("mmap", "syscalls"), (),
        "ASLR off; placement checked against a 6.18 host; every profile gets 6.18's vDSO VMAs "
        "(`[vvar_vclock]` is 6.x's). A VMA records whether it has an `anon_vma` (khugepaged's "
        "and retract_page_tables' test), not which one: merges ignore anon_vma compatibility."),
    Mechanism(
        "THP-aligned anonymous mmap (2 MiB multiples)",
        marks("exact"),
        "mm/huge_memory.c `__thp_get_unmapped_area` (anonymous mappings from 6.8; 2 MiB multiples only from 6.12)",
        (_REF + "test_thp_alignment_only_on_6_18",
         _T + "test_engine.py::test_mmap_placement_matches_linux_6_18"),
        ("mmap",), (),
        "Only the 6.18 profile aligns; the older profiles place mappings unaligned, as those "
        "kernels did."),
    Mechanism(
        "Overcommit accounting: VM_ACCOUNT, Committed_AS, vm.overcommit_memory 0/1/2",
        _older("approximate"),
        "mm/util.c `__vm_enough_memory`, `vm_commit_limit`; mm/mmap.c `accountable_mapping`; "
        "the mode-0 rule became \"more than RAM + swap\" in 5.x",
        (_T + "test_overcommit.py::test_private_writable_mappings_are_charged_and_given_back",
         _T + "test_overcommit.py::test_heuristic_mode_refuses_only_more_than_ram",
         _T + "test_overcommit.py::test_old_heuristic_counts_free_memory",
         _T + "test_overcommit.py::test_strict_mode_keeps_committed_below_the_limit",
         _T + "test_overcommit.py::test_fork_charges_the_copies_and_exit_gives_them_back"),
        ("overcommit", "syscalls", "fork"), (),
        "6.18's heuristic as a 6.18 host showed it; the older profiles use the earlier "
        "free-memory heuristic (free pages, page cache less shmem, reclaimable slab, less the "
        "high watermark and the admin reserve, plus free swap), checked on hand-made cases "
        "only. Swap adds its pages to CommitLimit and to the 6.18 heuristic's bound."),
    Mechanism(
        "brk",
        marks("exact"),
        "mm/mmap.c `brk`",
        (_T + "test_lifecycle.py::test_brk_grows_and_shrinks_the_heap", _REF + "test_brk_grow_shrink"),
        ("syscalls",), (),
        "The heap starts at 0x555555559000 (a small PIE binary, ASLR off)."),
    # ---- faults ---------------------------------------------------------------------------
    Mechanism(
        "Anonymous 4 KiB faults and the 4 KiB zero page",
        marks("exact"),
        "mm/memory.c `handle_mm_fault`, `do_anonymous_page`",
        (_T + "test_engine.py::test_read_fault_maps_zero_pages_without_rss",
         _T + "test_differential.py::test_profiles_agree",
         _T + "test_validate.py::test_engine_reads_map_the_zero_pages_or_a_thp_per_use_zero_page",
         _T + "test_engine.py::test_segfault_outside_vmas_and_on_read_only"),
        ("memory",), ("pgfault", "nr_anon_pages"), ""),
    Mechanism(
        "THP faults: enabled always/madvise/never, fallback to 4 KiB",
        marks("exact"),
        "mm/huge_memory.c `do_huge_pmd_anonymous_page`, `thp_vma_allowable_order`",
        (_T + "test_engine.py::test_thp_write_fault_and_fallback_accounting",
         _T + "test_engine.py::test_enabled_madvise_needs_madv_hugepage",
         _T + "test_validate.py::test_engine_thp_fault_under_madv_hugepage"),
        ("huge_memory", "memory"),
        ("thp_fault_alloc", "thp_fault_fallback", "nr_anon_transparent_hugepages"),
        "PMD-sized THPs only (no mTHP orders: their own row)."),
    Mechanism(
        "Huge zero page: read faults, and what a write to it does",
        marks("exact"),
        "mm/huge_memory.c `do_huge_pmd_wp_page`: 3.x allocate a THP; 4.x split and copy 4 KiB; "
        "6.x `do_huge_zero_wp_pmd` allocates a THP",
        (_T + "test_engine.py::test_write_after_huge_zero_page_allocates_a_thp_on_6_18",
         _T + "test_engine.py::test_write_after_huge_zero_page_splits_on_4_13",
         _REF + "test_huge_zero_page_then_write_6_18_and_4_13"),
        ("huge_memory", "memory"), ("thp_zero_page_alloc", "thp_zero_page_alloc_failed"),
        "Profile field `zero_wp` (thp on 3.10, 3.12, 3.15 and 6.18; split on 4.13); "
        "`Config(zero_page_write=...)` overrides it."),
    Mechanism(
        "THP defrag modes at fault time (always, defer, defer+madvise, madvise, never)",
        marks("exact"),
        "mm/huge_memory.c `vma_thp_gfp_mask` (`alloc_hugepage_direct_gfpmask` before 5.x); "
        "`defer` 4.6, `defer+madvise` 4.11",
        (_T + "test_engine.py::test_defrag_madvise_does_not_compact_without_madv_hugepage",
         _T + "test_engine.py::test_defrag_always_compacts_movable_pageblocks",
         _T + "test_engine.py::test_sysfs_knobs"),
        ("compaction", "huge_memory"), (),
        "Which modes a profile offers and how much effort each asks for; the compaction it then "
        "runs is approximate (its own row)."),
    Mechanism(
        "PR_SET_THP_DISABLE semantics",
        marks("exact", v3_10="n/a", v3_12="n/a"),
        "3.15 `VM_NOHUGEPAGE` in `mm->def_flags` (a0715cc22601); 4.13 `MMF_DISABLE_THP` "
        "(1860033237d4); 6.18 `PR_THP_DISABLE_EXCEPT_ADVISED`",
        (_T + "test_engine.py::test_prctl_absent_on_3_10",
         _T + "test_engine.py::test_prctl_3_15_affects_only_new_vmas",
         _T + "test_engine.py::test_prctl_4_13_is_a_master_override",
         _T + "test_engine.py::test_prctl_6_18_precedence",
         _T + "test_engine.py::test_prctl_6_18_values_and_errors",
         _T + "test_validate.py::test_engine_nohugepage_and_prctl_give_no_huge_pages"),
        ("huge_memory", "syscalls"), (),
        "3.10 and 3.12 have no such prctl: EINVAL, as they return. Kept across fork and execve."),
    Mechanism(
        "File-mapping faults: read-around, fault-around, page_mkwrite, COW, SIGBUS",
        marks("approximate"),
        "mm/memory.c `do_read_fault`, `do_shared_fault`, `do_cow_fault`, `do_fault_around`; "
        "mm/filemap.c `filemap_fault`, `filemap_map_pages`",
        (_T + "test_file_mappings.py::test_read_faults_read_around_and_map_neighbours",
         _T + "test_file_mappings.py::test_shared_write_dirties_and_writeback_write_protects_again",
         _T + "test_file_mappings.py::test_private_mapping_copies_on_write",
         _T + "test_file_mappings.py::test_truncate_unmaps_and_access_beyond_eof_is_sigbus",
         _T + "test_hpc_differential.py::test_random_streams_agree"),
        ("file_fault", "filemap"), ("nr_mapped", "pgmajfault"),
        "State and counters agree with the reference model (tests/reference/FILES.md 14) op by "
        "op; the time faults take is the engine's own and is not compared."),
    # ---- TLB and time -----------------------------------------------------------------------
    Mechanism(
        "TLB: L1 dTLB (4 KiB, 2 MiB), unified STLB, paging-structure caches, flushes",
        marks("approximate"),
        "Intel SDM vol. 3, 4.10; geometry from Intel's optimization manual, table 2-15 "
        "(Skylake)",
        (_T + "test_engine.py::test_tlb_counts_follow_page_size",
         _REF + "test_l1_lru_eviction_and_stlb_hit",
         _T + "test_khugepaged.py::test_collapse_cuts_tlb_misses",
         _T + "test_tlbsim.py::test_one_pass_equals_a_machine_per_geometry"),
        ("tlb", "tlbmulti"), ("nr_tlb_local_flush_all", "nr_tlb_remote_flush"),
        "A hardware model, not a kernel mechanism: set-associative LRU, ASID-tagged (no flush on "
        "a task switch), walk cost by memory loads; no prefetch or speculative walks. Flushes "
        "invalidate and cost time, but nr_tlb_local_flush_all and nr_tlb_remote_flush stay 0. "
        "`mmcore.tlbsim` replays one load stream against many geometries in one pass, with the "
        "same counts as one machine per geometry."),
    Mechanism(
        "Simulated time: task clocks, CPUs, costs, the batch runner, background threads",
        marks("approximate"),
        "`Config.costs` (Intel optimization manual table 2-15; typical x86-64 server costs); "
        "tests/reference/SEMANTICS.md 8",
        (_T + "test_batch.py::test_batch_interleaves_by_start_time",
         _T + "test_batch.py::test_batch_equals_call_by_call",
         _REF + "test_write_touch_one_page_tables_pfns_and_time",
         _T + "test_khugepaged.py::test_khugepaged_paces_its_scans_in_simulated_time"),
        ("sched", "events", "kthreads"), (),
        "No scheduler: a task runs on CPU (spawn order mod ncpus) and an op starts when both are "
        "free; every cost is a parameter, the same for every profile. khugepaged, kcompactd, "
        "kswapd and the flusher run on their own clocks."),
    # ---- process life cycle -------------------------------------------------------------------
    Mechanism(
        "fork (copy-on-write), clone, execve, exit",
        _older("approximate"),
        "kernel/fork.c `dup_mmap`; mm/memory.c `copy_page_range`, `do_wp_page`; "
        "`PG_anon_exclusive` (5.19)",
        (_T + "test_lifecycle.py::test_fork_shares_pages_copy_on_write",
         _T + "test_lifecycle.py::test_fork_of_thp_and_split_on_cow",
         _T + "test_differential.py::test_anon_exclusive_fork_mprotect_and_reuse",
         _T + "test_lifecycle.py::test_exit_and_execve_free_everything"),
        ("fork", "memory", "syscalls"), (),
        "Copy-on-write reuse follows PageAnonExclusive (5.19+) on every profile; 3.x copied a "
        "whole THP on a COW fault where the engine splits the PMD and copies 4 KiB."),
    Mechanism(
        "mprotect, PROT_NONE",
        _older("approximate"),
        "mm/mprotect.c `change_pte_range`, `can_change_pte_writable`",
        (_T + "test_lifecycle.py::test_mprotect_rules", _T + "test_lifecycle.py::test_mprotect_errors",
         _REF + "test_mprotect_prot_none"),
        ("mprotect", "syscalls"), (),
        "Making an exclusive anonymous page writable at once is 6.x's rule, used on every "
        "profile (older kernels left it to the next write fault)."),
    Mechanism(
        "mlock, mlockall, Mlocked (the folio mlock_count)",
        _older("approximate"),
        "mm/mlock.c `mlock_fixup`, `mlock_pte_range`, `mlock_folio`, `munlock_folio` (5.18)",
        (_T + "test_lifecycle.py::test_mlock_populates_locks_and_counts",
         _T + "test_lifecycle.py::test_mlockall_future_and_errors",
         _T + "test_differential.py::test_mlocked_of_thps_partly_covered",
         _T + "test_mlock_cache.py::test_mlock_moves_file_pages_to_the_unevictable_list_and_back",
         _T + "test_mlock_cache.py::test_reclaim_never_takes_mlocked_file_pages",
         _T + "test_mlock_cache.py::test_two_lockers_keep_count",
         _T + "test_large_folios.py::test_mlock_locks_a_folio_its_ptes_map_whole",
         _T + "test_large_folios.py::test_a_locked_mapping_keeps_its_large_folios_from_reclaim",
         _T + "test_large_folios.py::test_mlock_locks_a_pmd_mapped_folio_and_munmap_unlocks_it"),
        ("mlock", "syscalls", "lru"),
        ("nr_mlock", "nr_unevictable", "unevictable_pgs_culled", "unevictable_pgs_scanned",
         "unevictable_pgs_rescued", "unevictable_pgs_mlocked", "unevictable_pgs_munlocked",
         "unevictable_pgs_cleared", "unevictable_pgs_stranded"),
        "5.18+'s mlock_count and folio batches on every profile. Mlocked page-cache folios leave "
        "their list for the unevictable one, keeping mlock_count there, so reclaim never meets "
        "them; the events match a 6.18 host's for order-0 folios. Anonymous pages sit on no LRU "
        "list: for them the unevictable list is a count (meminfo Unevictable, not memcg's "
        "memory.stat unevictable). A large page-cache folio mapped by PTEs is mlocked by "
        "mlock() where one run of PTEs maps all of it (allow_mlock_munlock) and munlocked at "
        "each unmap of a run; a fault mlocks order-0 folios only (__folio_add_file_rmap). "
        "mlock() mlocks a PMD-mapped page-cache folio too, and its unmap munlocks it."),
    Mechanism(
        "madvise: MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE",
        marks("exact"),
        "mm/madvise.c `madvise_dontneed_single_vma`; `hugepage_madvise`",
        (_T + "test_engine.py::test_madvise_errors_and_holes",
         _REF + "test_madvise_split_merge_dontneed_and_errors"),
        ("syscalls", "memory"), (), ""),
    Mechanism(
        "MADV_FREE (lazy free)",
        marks("approximate"),
        "mm/madvise.c `madvise_free_pte_range` (4.5)",
        (_T + "test_lifecycle.py::test_madv_free_marks_clean_exclusive_pages_lazy", _REF + "test_madv_free"),
        ("mlock", "syscalls"), (),
        "Pages are marked as Linux marks them (smaps LazyFree). Anonymous reclaim discards a "
        "clean one instead of writing it, but that reclaim runs only with a swap device (Linux "
        "frees lazy pages without swap too). The 3.x profiles accept it though those kernels "
        "returned EINVAL."),
    Mechanism(
        "MAP_POPULATE, MADV_POPULATE_READ/WRITE",
        _older("approximate"),
        "mm/gup.c `populate_vma_page_range`, mm/madvise.c `madvise_populate` (5.14)",
        (_REF + "test_madvise_populate", _REF + "test_map_populate",
         _T + "test_engine.py::test_map_fixed_noreplace_and_populate"),
        ("syscalls",), (),
        "MADV_POPULATE_* is accepted on the 3.x and 4.13 profiles, which had no such advice."),
    # ---- khugepaged, splits -------------------------------------------------------------------
    Mechanism(
        "khugepaged (anonymous): pacing, scan rules per profile, collapse",
        marks("approximate"),
        "mm/khugepaged.c `khugepaged_do_scan`, `hpage_collapse_scan_pmd`, `collapse_huge_page`; "
        "shared and compound pages allowed from 5.8",
        (_T + "test_differential.py::test_khugepaged_linux_rules",
         _T + "test_khugepaged.py::test_max_ptes_none_decides_a_sparse_range",
         _T + "test_khugepaged.py::test_read_only_range_per_kernel",
         _T + "test_khugepaged.py::test_zero_page_ptes_per_kernel",
         _T + "test_khugepaged.py::test_shared_pages_limit_after_fork",
         _T + "test_khugepaged.py::test_referenced_test_and_clear_refs"),
        ("khugepaged", "kthreads", "huge_memory"),
        ("thp_collapse_alloc", "thp_collapse_alloc_failed", "thp_scan_exceed_none_pte",
         "thp_scan_exceed_share_pte", "thp_scan_exceed_swap_pte"),
        "Writable rule per profile (3.x every PTE writable, 4.13 one, 6.18 none); "
        "thp_scan_exceed_* counted from 5.8 (6.18). A VMA without an anon_vma (never written to, "
        "nor faulted where a THP may come in) is passed over, as Linux does; "
        "a failed allocation ends the wakeup (Linux retries once), 6.18's "
        "`folio_maybe_mapped_shared` taken as 5.8-6.13's per-page mapcount; swap entries "
        "(at most max_ptes_swap) are read into the new THP during the collapse."),
    Mechanism(
        "MADV_COLLAPSE",
        marks("n/a", v6_18="approximate"),
        "mm/khugepaged.c `madvise_collapse` (6.1)",
        (_T + "test_khugepaged.py::test_madv_collapse_matches_the_host",
         _T + "test_khugepaged.py::test_madv_collapse_errors",
         _T + "test_khugepaged.py::test_madv_collapse_ignores_sysfs_and_limits_but_honours_the_prctl",
         _T + "test_khugepaged.py::test_a_vma_without_an_anon_vma_is_passed_over",
         _T + "test_validate.py::test_engine_collapse_scenario_per_profile",
         _REF + "test_madv_collapse_hand_computed"),
        ("khugepaged", "sched"), ("thp_collapse_alloc", "thp_collapse_alloc_failed"),
        "Errnos as Linux (ENOMEM, EBUSY, EAGAIN, EINVAL, the last also for a VMA without an "
        "anon_vma); khugepaged's simplifications apply. Older profiles: EINVAL at no cost, as "
        "kernels without the advice."),
    Mechanism(
        "THP splits: PMD splits, the deferred split queue and its shrinker",
        marks("approximate"),
        "mm/huge_memory.c `__split_huge_pmd`, `deferred_split_folio`, `deferred_split_scan`, "
        "`__split_huge_page`; mm/rmap.c `__folio_remove_rmap`; 3.x `split_huge_page`",
        (_T + "test_differential.py::test_split_linux_rules",
         _T + "test_khugepaged.py::test_partial_munmap_queues_the_thp_and_drop_slab_splits_it",
         _T + "test_khugepaged.py::test_3_10_splits_the_page_with_the_pmd",
         _T + "test_engine.py::test_munmap_partial_thp_splits_pmd",
         _T + "test_differential.py::test_kswapd_and_drop_slab_split_queued_thps"),
        ("huge_memory", "memory"),
        ("thp_split_pmd", "thp_split_page", "thp_deferred_split_page", "thp_split_page_failed"),
        "Known departures, each an xfail test (`SPLIT_DEPARTURES`): a page's last PTE unmap "
        "queues a folio a PMD still maps; zap removes PTEs one at a time; 3.x split only after "
        "a zap's or COW's PMD split. 4.13 uses 6.18's queueing rule. A THP that cannot split "
        "stays queued (thp_split_page_failed stays 0)."),
    Mechanism(
        "Underused-THP shrinker (zero-filled subpages mapped to the zero page on split)",
        marks("n/a", v6_18="approximate"),
        "mm/huge_memory.c `thp_underused`, `deferred_split_scan` (6.12); mm/migrate.c "
        "`try_to_map_unused_to_zeropage`; transparent_hugepage/shrink_underused",
        (_T + "test_thp_underused.py::test_drop_slab_splits_underused_thps_as_the_host_does",
         _T + "test_thp_underused.py::test_thps_the_shrinker_leaves_alone",
         _T + "test_thp_underused.py::test_split_of_a_partially_mapped_thp_maps_its_zero_pages_"
         "to_the_zero_page",
         _T + "test_thp_underused.py::test_memory_pressure_runs_the_underused_shrinker",
         _T + "test_thp_underused.py::test_memcg_reclaim_shrinks_the_cgroups_own_thps",
         _T + "test_thp_underused.py::test_one_reclaim_batch_splits_a_short_queue_whole",
         _T + "test_thp_underused.py::test_page_cache_goes_before_a_short_queue",
         _T + "test_differential.py::test_underused_shrinker_matches_reference"),
        ("rmap", "huge_memory", "memory"),
        ("thp_underused_split_page", "thp_split_page", "thp_split_pmd"),
        "Page contents are one bit per frame (PG_written): zero-filled until a store reaches "
        "it, copied with the page; a store is taken to write data other than zeros. Under "
        "reclaim (6.18) the shrinker runs after the LRUs with do_shrink_slab's share "
        "(freeable >> priority, nr_deferred, batches of 128) at each priority the pass went "
        "through, from 12 down to the one its LRU scans reached (0 when the LRUs did not give "
        "the batch), on each memcg's own queue; the engine's LRU pass is not a priority loop, "
        "so that last priority is read off the pages it scanned. 4.13: 32 THPs before the "
        "LRUs, not its nr_scanned arithmetic. drop_slab takes the whole queue."),
    # ---- compaction -----------------------------------------------------------------------------
    Mechanism(
        "Direct compaction, deferral, fragmentation index, vm.compact_memory",
        marks("approximate"),
        "mm/compaction.c `compact_zone`, `compaction_deferred`, `fragmentation_index`, "
        "`sysctl_compaction_handler`",
        (_T + "test_compaction.py::test_direct_compaction_is_deferred_after_failures",
         _T + "test_compaction.py::test_extfrag_threshold_decides_whether_to_compact",
         _T + "test_compaction.py::test_fragmentation_index_and_score_follow_the_kernel_formulas",
         _T + "test_compaction.py::test_compact_memory_sysctl",
         _REF + "test_direct_compaction_hand_computed",
         _T + "test_engine.py::test_defrag_fails_with_an_unmovable_page_in_every_pageblock"),
        ("compaction", "kthreads"),
        ("compact_stall", "compact_fail", "compact_success", "compact_migrate_scanned",
         "compact_free_scanned", "compact_isolated", "pgmigrate_success", "pgmigrate_fail"),
        "Pageblock-granular scanners; a block is a source only if every page in use in it is "
        "an order-0 anonymous page mapped at most once (no THP or page-cache migration); no "
        "async/sync modes; migration never fails (pgmigrate_fail stays 0)."),
    Mechanism(
        "kcompactd",
        marks("approximate", v3_10="n/a", v3_12="n/a", v3_15="n/a"),
        "mm/compaction.c `kcompactd`, `wakeup_kcompactd` (4.6)",
        (_T + "test_compaction.py::test_kcompactd_woken_by_a_failed_thp_fault",),
        ("kthreads", "compaction"),
        ("compact_daemon_wake", "compact_daemon_migrate_scanned", "compact_daemon_free_scanned"),
        "Woken by a failed order-9 allocation; compacts until an order-9 block is free, with "
        "direct compaction's deferral."),
    Mechanism(
        "Proactive compaction (vm.compaction_proactiveness)",
        marks("n/a", v6_18="approximate"),
        "mm/compaction.c `proactive_compact_node`, `fragmentation_score_node` (5.9)",
        (_T + "test_compaction.py::test_proactive_compaction_only_above_the_high_mark",
         _T + "test_compaction.py::test_compaction_sysctls"),
        ("kthreads", "compaction"), (),
        "Every 500 ms of simulated time above the score's high mark; the sysctl is ENOENT on "
        "older profiles."),
    # ---- OOM ----------------------------------------------------------------------------------
    Mechanism(
        "OOM badness and /proc/PID/oom_score arithmetic per version",
        marks("exact"),
        "mm/oom_kill.c `oom_badness`, fs/proc/base.c `proc_oom_score`: 3.10-3.13 root bonus in "
        "adj units, 3.14-4.16 3% of points, none from 4.17, unclamped from 5.9",
        (_T + "test_oom.py::test_known_values_and_the_kernel_quirks",
         _T + "test_oom.py::test_scalar_formulas_match_the_model",
         _T + "test_oom.py::test_snapshot_scores_equal_the_live_kernels",
         _T + "test_oom.py::test_victim_selection_ties",
         _T + "test_validate.py::test_engine_oom_uses_the_hosts_totalpages_and_its_own_accounting"),
        ("oom",), (),
        "The kernel's signed 64-bit arithmetic and C division; ties to the last task from 5.9, "
        "to the first before. The inputs are the caller's (the page-table term as that version "
        "counted it)."),
    Mechanism(
        "OOM killer path: global OOM, victim, dmesg lines, kill and restart",
        marks("approximate"),
        "mm/oom_kill.c `out_of_memory`, `select_bad_process`, `dump_tasks`, `oom_kill_process`, "
        "`oom_reaper` (4.6)",
        (_T + "test_oom.py::test_a_fault_that_finds_no_memory_kills_the_biggest_and_restarts",
         _T + "test_oom.py::test_oom_score_adj_steers_the_victim_and_minus_1000_protects",
         _T + "test_oom.py::test_the_allocating_task_itself_can_be_the_victim",
         _T + "test_oom.py::test_the_batch_runner_runs_the_oom_killer_too",
         _T + "test_oom.py::test_no_victim_panics",
         _T + "test_oom.py::test_before_5_1_a_child_is_sacrificed_for_its_parent"),
        ("oom",), ("oom_kill",),
        "Global and memcg OOMs (no cpuset or mempolicy constraint), after an order-0 allocation or "
        "charge finds nothing to reclaim; victims chosen by the select_bad_process kernel with "
        "each era's eligibility, abort and tie rules; dmesg lines in each version's format "
        "(4.5-4.18 headers as 4.19's); before 5.1 the chosen process's child with its own mm "
        "and the highest badness is killed instead (\"or sacrifice child\"). The victim's "
        "memory is freed at once unless it sleeps on a "
        "lock in a scenario run (then the oom_reaper, from 4.6). A machine's badness uses its "
        "VmPTE (4.15+ accounting)."),
    # ---- page cache, files, writeback, reclaim ------------------------------------------------
    Mechanism(
        "Page cache and LRU lists: active/inactive (or lru, clock, fifo), activation",
        marks("approximate"),
        "mm/filemap.c; mm/swap.c `folio_mark_accessed`; mm/vmscan.c `shrink_active_list`, "
        "`inactive_is_low`; writes stop marking pages in 4.7 (bbddabe2e436)",
        (_T + "test_files_differential.py::test_seeded_streams_agree",
         _T + "test_files_differential.py::test_kernel_3_10_agrees",
         _T + "test_files_differential.py::test_other_lru_policies_agree",
         _T + "test_pagecache.py::test_misses_equal_libcachesim",
         _T + "test_pagecache.py::test_linux_policy_protects_a_twice_used_set_from_a_scan"),
        ("filemap", "lru"),
        ("nr_file_pages", "nr_inactive_file", "nr_active_file", "nr_unevictable", "nr_shmem",
         "pgactivate", "pgdeactivate", "pgrefill"),
        "No per-CPU LRU batches (`lru_add_drain`); one lruvec; tmpfs pages on the anon lists, "
        "ramfs pages unevictable. The lru, clock and fifo policies give libCacheSim's miss "
        "counts exactly (`mmcore.pagecache.replay`)."),
    Mechanism(
        "Readahead: windows, PG_readahead marks, asynchronous windows, mmap read-around, "
        "posix_fadvise and MADV_RANDOM/SEQUENTIAL/WILLNEED",
        marks("approximate"),
        "mm/readahead.c `ondemand_readahead` (to 6.10), `page_cache_sync_ra`, "
        "`page_cache_async_ra` (6.11), `do_page_cache_ra`; mm/filemap.c "
        "`do_sync_mmap_readahead`, `do_async_mmap_readahead`, `filemap_map_pages`; "
        "mm/fadvise.c `generic_fadvise`; mm/madvise.c `madvise_willneed`",
        (_T + "test_readahead.py::test_mmap_read_around_and_async_windows_match_the_host",
         _T + "test_validate.py::test_engine_file_scenario_follows_the_windows",
         _T + "test_readahead.py::test_async_window_overlaps_the_reader_and_a_locked_page_is_waited_for",
         _T + "test_readahead.py::test_sequential_reads_ramp_up",
         _T + "test_readahead.py::test_fadvise_dontneed_drops_clean_unmapped_whole_pages",
         _T + "test_readahead.py::test_fadvise_willneed_reads_ahead_without_waiting",
         _T + "test_readahead.py::test_madvise_random_faults_a_page_at_a_time",
         _T + "test_file_mappings.py::test_read_faults_read_around_and_map_neighbours",
         _T + "test_files_differential.py::test_hypothesis_streams_agree"),
        ("readahead", "file_fault", "read_write"), ("pgpgin",),
        "Each era's window rules for order-0 folios, with context readahead and the marks; the "
        "mmap sequence of a cold file matches a 6.18 host's (`mmcore validate`, file group). "
        "A page under a pending read is waited for; an inode remembers its latest two requests "
        "(older ones count as done). "
        "Large reads and WILLNEED use the device's `io_pages` (`max_sectors_kb`, 4.10+). "
        "6.11+ windows carry a folio order that grows by 2 per async window (filled with large "
        "folios where the file has them: 6.18's ext4 and XFS; elsewhere back to 0). "
        "A MADV_HUGEPAGE read fault reads two PMD-sized folios from the aligned page (5.18+). "
        "Not modelled: `mmap_miss`, and fadvise on tmpfs (a no-op "
        "here). Mappings share one `file_ra_state` per inode; MADV_WILLNEED on anonymous "
        "memory does nothing (no swap cache). An async window's "
        "workingset refaults are not a memory stall."),
    Mechanism(
        "Writeback: flusher, background writeback, dirty throttling, a FIFO disk",
        marks("approximate"),
        "mm/page-writeback.c `balance_dirty_pages`, `global_dirty_limits`, `write_cache_pages`; "
        "fs/fs-writeback.c `wb_writeback`",
        (_T + "test_files.py::test_flusher_writes_expired_inodes_back",
         _T + "test_files.py::test_dirty_throttling_and_reclaim_under_pressure",
         _T + "test_file_mappings.py::test_shared_write_dirties_and_writeback_write_protects_again"),
        ("page_writeback",),
        ("nr_dirty", "nr_writeback", "nr_dirtied", "nr_written", "pgpgout", "pgrotated"),
        "A writer above the dirty threshold waits until Dirty + Writeback is under it (no "
        "bandwidth estimation or pause ramp); one FIFO queue per filesystem for a disk."),
    Mechanism(
        "Reclaim: kswapd, direct reclaim, zone watermarks",
        marks("approximate"),
        "mm/vmscan.c `shrink_node`, `kswapd`, `try_to_unmap`; mm/page_alloc.c "
        "`__setup_per_zone_wmarks`",
        (_T + "test_files.py::test_watermarks_follow_the_kernel",
         _T + "test_files.py::test_dirty_throttling_and_reclaim_under_pressure",
         _T + "test_file_mappings.py::test_reclaim_unmaps_mapped_file_pages_through_the_reverse_map",
         _T + "test_khugepaged.py::test_memory_pressure_splits_queued_thps"),
        ("vmscan", "lru"),
        ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgscan_file",
         "pgsteal_file", "pageoutrun", "allocstall_normal"),
        "Watermarks as the kernel computes them; anonymous faults and page-table allocations "
        "wake kswapd and reclaim directly below the min watermark, as page-cache allocations "
        "do; reclaim takes file pages, queued THPs and, with swap, anonymous pages (the swap "
        "row), SWAP_CLUSTER_MAX at a time."),
    Mechanism(
        "drop_caches and its dmesg line",
        marks("exact"),
        "fs/drop_caches.c `drop_caches_sysctl_handler`, `drop_pagecache_sb` (value 4 and the "
        "log line from 3.15)",
        (_T + "test_files.py::test_drop_caches_log_bit4_and_range",
         _T + "test_files.py::test_drop_caches_drops_only_clean_unmapped_droppable_pages",
         _T + "test_files.py::test_drop_caches_cron_scenario_shows_the_cost"),
        ("read_write",), ("drop_pagecache", "drop_slab"),
        "Drops every clean, unmapped page not under writeback; 3.10 and 3.12 take 1-3 and log "
        "nothing. The slab it drops is approximate (its own row)."),
    Mechanism(
        "Slab: dentries and inodes (SReclaimable)",
        marks("approximate"),
        "fs/dcache.c, fs/inode.c (`drop_slab`)",
        (_T + "test_files.py::test_drop_slab_makes_lookups_and_reads_slow",),
        ("read_write",), ("nr_slab_reclaimable",),
        "One cached 1288-byte unit (dentry and inode) per file; no other slab caches."),
    Mechanism(
        "Filesystems: ext4 and XFS (delalloc, unwritten extents), ext2, tmpfs, ramfs",
        marks("approximate"),
        "fs/ext4/inode.c `ext4_da_get_block_prep`, `ext4_end_io`; fs/xfs/xfs_iomap.c "
        "`xfs_buffered_write_iomap_begin`, fs/xfs/xfs_bmap_util.c `xfs_alloc_file_space`; "
        "fs/ext2; mm/shmem.c; fs/ramfs",
        (_T + "test_files.py::test_ext4_write_reserves_then_writeback_allocates",
         _T + "test_files.py::test_ext2_allocates_on_write_and_ext4_enospc",
         _T + "test_files.py::test_fallocate_unwritten_reads_zero_and_converts_at_writeback",
         _T + "test_files.py::test_first_write_costs_follow_the_block_state",
         _T + "test_xfs.py::test_xfs_write_reserves_delalloc_then_writeback_allocates",
         _T + "test_xfs.py::test_xfs_page_mkwrite_reserves_and_a_full_disk_is_sigbus",
         _T + "test_xfs.py::test_xfs_uses_ext4s_costs"),
        ("fs",), (),
        "Block states only: no journal, reserved blocks, extent-tree blocks or "
        "`ext4_nonda_switch`; file contents are not simulated. XFS is ext4's block model with "
        "ext4's costs; not modelled: its indirect-block reservation per delalloc extent, "
        "speculative preallocation beyond EOF, a buffered write's whole-extent reservation "
        "(ENOSPC where ext4 writes short), allocation groups (tests/reference/FILES.md 11)."),
    Mechanism(
        "File system calls: open, pread, pwrite, fsync, ftruncate, unlink, fallocate",
        marks("approximate"),
        "fs/read_write.c; mm/filemap.c `filemap_read`, `generic_perform_write`; fs/open.c "
        "`vfs_fallocate`",
        (_T + "test_files.py::test_fallocate_modes",
         _T + "test_files.py::test_unlink_frees_on_last_close_and_truncate_frees_blocks",
         _T + "test_files_differential.py::test_seeded_streams_agree",
         _T + "test_files_differential.py::test_seeded_xfs_streams_agree",
         _T + "test_files_differential.py::test_deviation_stream_against_linux",
         _T + "test_xfs.py::test_xfs_fallocate_reserves_the_whole_range_up_front",
         _T + "test_xfs.py::test_xfs_fallocate_beyond_one_extent_keeps_what_earlier_transactions_allocated",
         _T + "test_xfs.py::test_xfs_zero_range_punches_before_it_allocates",
         _T + "test_xfs.py::test_xfs_write_zeroes_is_eopnotsupp_in_6_18"),
        ("read_write",), (),
        "Compared with a reference model of Linux in a quiet regime (tests/reference/FILES.md "
        "0); the departure left (`efbig_small_fs`) has an xfail test. No directories, `dup`, "
        "COLLAPSE_RANGE or INSERT_RANGE (nor XFS's UNSHARE_RANGE). XFS's fallocate follows "
        "`xfs_alloc_file_space` (the range reserved up front, one extent per transaction; the "
        "size unchanged on ENOSPC) and has no WRITE_ZEROES (6.18), as on a 6.18 host; its "
        "PUNCH_HOLE and ZERO_RANGE keep ext4's page handling (no `xfs_flush_unmap_range` of "
        "the edge pages)."),
    Mechanism(
        "MADV_WILLWRITE (the 2013 RFC)",
        marks("approximate"),
        "Andy Lutomirski, \"[RFC] madvise: add MADV_WILLWRITE\", 5 Aug 2013 (never merged)",
        (_T + "test_file_mappings.py::test_madv_willwrite_rfc_return_values",
         _T + "test_file_mappings.py::test_madv_willwrite_reserves_without_dirtying",
         _T + "test_file_mappings.py::test_willwrite_story_moves_the_cost_out_of_the_time_sensitive_phase",
         _T + "test_xfs.py::test_madv_willwrite_returns_0_on_xfs"),
        ("willwrite", "syscalls"), (),
        "The RFC's semantics (no kernel ran it, so nothing to compare with); advice value 64, "
        "since mainline gave 18 to MADV_WIPEONFORK; the future-work options are config flags. "
        "Only ext4 has the hook (the RFC's), so XFS, like ext2, returns 0."),
    # ---- huge page cache -----------------------------------------------------------------------
    Mechanism(
        "tmpfs huge= and shmem_enabled (the mainline huge page cache)",
        marks("approximate", v3_10="n/a", v3_12="n/a", v3_15="n/a"),
        "mm/shmem.c `shmem_huge_global_enabled`, `shmem_alloc_and_add_folio` (4.8); "
        "mm/memory.c `do_set_pmd`; truncation splits a folio from 5.17",
        (_T + "test_huge_page_cache.py::test_huge_always_write_allocates_pmd_sized_folios",
         _T + "test_huge_page_cache.py::test_huge_never_and_within_size",
         _T + "test_huge_page_cache.py::test_shmem_enabled_deny_and_force_override_mounts",
         _T + "test_huge_page_cache.py::test_aligned_shared_mapping_faults_once_per_2mib",
         _T + "test_huge_page_cache.py::test_truncate_on_4_13_zeroes_the_partial_folio",
         _T + "test_hpc_differential.py::test_pmd_streams_agree"),
        ("shmem", "filemap", "file_fault", "read_write"),
        ("thp_file_alloc", "thp_file_fallback", "thp_file_mapped", "nr_shmem_hugepages",
         "nr_shmem_pmdmapped"),
        "PMD-sized folios only; accessed marks follow 4 KiB steps (`generic_perform_write` "
        "before 6.11, `shmem_file_read_iter` before 6.14); huge= is refused before 4.8."),
    Mechanism(
        "The 2013 huge page cache (ramfs) and its mmap extension",
        marks("approximate"),
        "Kirill Shutemov's 2013 series (v5, \"everything but mmap()\"; never merged)",
        (_T + "test_huge_page_cache.py::test_2013_ramfs_write_and_read_allocate_huge_pages",
         _T + "test_huge_page_cache.py::test_2013_fault_on_a_huge_page_splits_it",
         _T + "test_huge_page_cache.py::test_2013_last_writers_close_splits_the_last_huge_page",
         _T + "test_huge_page_cache.py::test_2013_mmap_model_maps_huge_pages_with_pmds",
         _T + "test_huge_page_cache.py::test_coalescing_is_what_2013_lacked"),
        ("shmem", "filemap", "read_write"),
        ("thp_write_alloc", "thp_write_alloc_failed", "thp_read_alloc", "thp_read_alloc_failed",
         "nr_file_hugepages", "nr_file_pmdmapped"),
        "A model of patches no kernel merged (`Config(huge_page_cache=\"2013\")` or "
        "`\"2013+mmap\"`), on any profile; nothing to compare with but the series' text."),
    Mechanism(
        "File THP collapse: khugepaged and MADV_COLLAPSE on tmpfs",
        marks("approximate", v3_10="n/a", v3_12="n/a", v3_15="n/a"),
        "mm/khugepaged.c `collapse_file`, `retract_page_tables`, `collapse_pte_mapped_thp`",
        (_T + "test_huge_page_cache.py::test_khugepaged_coalesces_small_tmpfs_pages",
         _T + "test_huge_page_cache.py::test_madvise_collapse_on_tmpfs_maps_a_pmd_at_once",
         _T + "test_huge_page_cache.py::test_khugepaged_respects_max_ptes_none_for_files",
         _T + "test_huge_page_cache.py::test_madvise_collapse_on_ext4_is_einval",
         _T + "test_huge_page_cache.py::test_khugepaged_runs_for_shmem_with_thp_never",
         _T + "test_hpc_differential.py::test_collapse_deviation_stream_against_linux"),
        ("khugepaged",), ("thp_collapse_alloc", "thp_file_mapped"),
        "Holes are zero-filled, old pages unmapped everywhere and empty PTE tables freed; "
        "MADV_COLLAPSE only on 6.18, stopping at a result outside madvise_collapse's whitelist. "
        "khugepaged asks the huge= setting once per VMA, at its first index; 6.12+ runs it for "
        "shmem THP with THP enabled=never. A collapse the filesystem cannot charge is rolled "
        "back after the unmap, as collapse_file does; MADV_COLLAPSE grows the page-cache index "
        "for the holes first. An mm enrols at the mmap of a file VMA khugepaged may collapse "
        "and at MADV_HUGEPAGE (khugepaged_enter_vma with the new flags). A private VMA with an "
        "anon_vma (a write fault made one) keeps its PTE tables, as retract_page_tables leaves "
        "it. The 2013+mmap model coalesces ramfs pages the same way."),
    # ---- observables ---------------------------------------------------------------------------
    Mechanism(
        "/proc and sysfs observables: vmstat, meminfo, buddyinfo, smaps, status, clear_refs",
        _older("approximate"),
        "fs/proc/task_mmu.c `show_smap`, `clear_refs_write`; fs/proc/meminfo.c; mm/vmstat.c",
        (_T + "test_validate.py::test_host_matches_engine",
         _T + "test_khugepaged.py::test_clear_refs_rejects_bad_values",
         _REF + "test_buddyinfo_after_touch_on_4mib_machine",
         _T + "test_engine.py::test_sysfs_knobs"),
        ("proc",), (),
        "The kernel's names and units, checked against a 6.18 host by `mmcore validate`. Every "
        "profile shows 6.18's field set: counters a version lacked (thp_split_pmd 4.5, "
        "compact_daemon_* 4.6, thp_file_* 4.8, ...) are shown and counted there too."),
    Mechanism(
        "pagemap, kpageflags and kpagecount",
        marks("approximate"),
        "fs/proc/task_mmu.c `pagemap_read`, `pte_to_pagemap_entry`, `pagemap_pmd_range`; "
        "fs/proc/page.c `stable_page_flags`, `kpagecount_read`",
        (_T + "test_pageflags.py::test_anonymous_pages_read_as_on_the_host",
         _T + "test_pageflags.py::test_kpagecount_sums_to_the_mappings",
         _T + "test_pageflags.py::test_swapped_pages_carry_their_swap_entry",
         _T + "test_pageflags.py::test_free_frames_page_tables_and_frames_past_the_end"),
        ("proc",), (),
        "Read from the state arrays in NumPy (mmcore/pageflags.py; the leaves from "
        "kernels/proc.py `dump_leaves`), as root reads them. An anonymous THP, a 4 KiB page "
        "and both zero pages give a 6.18 host's bits, except that "
        "a new 4 KiB anonymous page is on the LRU at once (the kernel holds it in a per-CPU "
        "batch first). IDLE, LOCKED, SLAB, KSM and the other states the engine does not keep "
        "stay 0; the exclusive bit is the precise mapcount's (CONFIG_PAGE_MAPCOUNT)."),
    # ---- not modelled ----------------------------------------------------------------------------
    Mechanism(
        "Memory cgroups: charging, hierarchy, limits, memcg reclaim, memory.high/low, events",
        marks("approximate"),
        "mm/memcontrol.c `try_charge`, `commit_charge`, `mem_cgroup_uncharge`, "
        "`memory_max_write`, `mem_cgroup_resize_max`; mm/page_counter.c; mm/vmscan.c "
        "`try_to_free_mem_cgroup_pages`, `shrink_node_memcgs`",
        (_T + "test_memcg.py::test_anon_pages_are_charged_to_the_cgroup_of_the_mm_and_uncharged_on_exit",
         _T + "test_memcg.py::test_page_cache_is_charged_and_reclaimed_before_any_oom",
         _T + "test_memcg.py::test_memory_high_reclaims_back_under_it_and_counts_high_events",
         _T + "test_memcg.py::test_lowering_memory_max_reclaims_then_kills",
         _T + "test_memcg.py::test_control_file_text_v2",
         _T + "test_memcg.py::test_control_file_text_v1",
         _T + "test_memcg_differential.py::test_seeded_streams_agree",
         _T + "test_memcg_differential.py::test_departure_linux_rule"),
        ("page_counter", "memcontrol"), ("thp_fault_fallback_charge", "thp_file_fallback_charge"),
        "Anonymous pages are charged to the mm owner's memcg, page cache to the current task's, "
        "hierarchically (memory.current, failcnt, peak); a charge past a limit reclaims the "
        "subtree's file pages and retries as try_charge does (MAX_RECLAIM_RETRIES), THPs fall "
        "back without an OOM. memory.high is reclaimed at once after the charge (no throttling "
        "sleep); memory.min keeps a memcg from reclaim; memory.low protects in the first pass only; "
        "the kernel's proportional "
        "per-memcg scan targets are replaced by one walk from a rotating cursor. Page tables "
        "and slab are not charged (no kmem accounting); charges never move with a task. The "
        "memcg reference model (tests/reference/memcg_model.py) finds one departure left: after "
        "a memcg OOM kill a write fault restarts and may now reuse the page the victim shared, "
        "where the kernel retries the charge for the copy it had decided on."),
    Mechanism(
        "Memcg OOM handling models (legacy, reliable 3.12, current 4.19+), locks, hung tasks",
        marks("approximate"),
        "mm/memcontrol.c `mem_cgroup_handle_oom` (3.10), `mem_cgroup_oom_synchronize` (3.12), "
        "`mem_cgroup_oom` (4.19+); mm/oom_kill.c `oom_reaper`; kernel/hung_task.c",
        (_T + "test_memcg.py::test_a_write_at_the_limit_fails_or_kills_as_the_oom_model_says",
         _T + "test_memcg.py::test_oom_kill_disable_makes_a_faulting_task_wait",
         _T + "test_memcg.py::test_hierarchical_limit_triggers_a_memcg_oom_that_kills_inside_the_subtree_only",
         _T + "test_oom_deadlocks.py::test_write_truncate_deadlock_by_model",
         _T + "test_oom_deadlocks.py::test_brk_handler_deadlock_by_model"),
        ("memcontrol",), ("oom_kill",),
        "Legacy kills (or, with oom_kill_disable, sleeps) in the charge path holding its locks; "
        "reliable fails syscall charges with ENOMEM and unwinds a user fault before killing or "
        "waiting; current kills in the charge path and defers only the oom_kill_disable wait. "
        "Locks (inode, mmap with fair rwsem queueing, per-VMA faults from 6.4) exist in "
        "scenario runs only, where an op sleeps at lock, OOM and slice boundaries; khungtaskd "
        "reports only once nothing can run."),
    Mechanism(
        "Swap: anonymous reclaim, swap entries, swap-in, MADV_PAGEOUT and MADV_COLD",
        marks("approximate"),
        "mm/swapfile.c `get_swap_pages`, `swap_duplicate`, `free_swap_and_cache`; mm/memory.c "
        "`do_swap_page`; mm/rmap.c `try_to_unmap_one`; mm/vmscan.c `get_scan_count`, "
        "`folio_check_references`; mm/memcontrol.c `__mem_cgroup_try_charge_swap`; "
        "arch/x86/include/asm/pgtable_64.h swap entry layout; mm/madvise.c "
        "`madvise_cold_or_pageout_pte_range` (5.4)",
        (_T + "test_swap.py::test_anonymous_memory_beyond_ram_goes_to_swap",
         _T + "test_swap.py::test_swap_in_is_a_major_fault_and_frees_the_slot",
         _T + "test_swap.py::test_fork_shares_swap_entries",
         _T + "test_swap.py::test_thp_is_split_before_swap_out",
         _T + "test_swap.py::test_memcg_v2_swap_max_limits_swap_then_oom",
         _T + "test_swap.py::test_memcg_v1_memsw_limit_counts_memory_and_swap",
         _T + "test_swap.py::test_madv_pageout_swaps_out_the_range",
         _T + "test_swap.py::test_madv_cold_pages_are_reclaimed_first",
         _T + "test_swap.py::test_khugepaged_collapse_swaps_pages_in",
         _T + "test_thp_underused.py::test_zero_filled_pages_go_to_the_swap_zeromap",
         _T + "test_swap_differential.py::test_swap_streams_agree"),
        ("swap", "rmap"),
        ("pswpin", "pswpout", "pgscan_anon", "pgsteal_anon", "thp_swpout_fallback",
         "nr_swapcached"),
        "One swap device (`Config.swap`; page 0 its header), x86-64 swap PTEs, slot counts "
        "shared along fork, VmSwap, smaps Swap/SwapPss, SwapTotal/SwapFree, memory.swap.current/"
        "max/events and v1 memsw, swap in CommitLimit and the OOM killer's totalpages. "
        "Departures: anonymous pages are not on LRU lists; anon reclaim is a CLOCK over the page "
        "tables (the accessed bit as the reference, address order rather than the inactive "
        "list's), balanced against file pages by swappiness only when the inactive file list "
        "is small (a stand-in for get_scan_count's cache trim mode and cost model); a THP is "
        "always split before swap-out (thp_swpout never counts); no swap cache (a swap-in "
        "frees its slot, a shared entry is mapped into every sharer at once) and no swap "
        "readahead (page-cluster); swap writes cost the reclaimer their transfer time. 6.18: "
        "zero-filled pages (no store since they were zeroed) go to the swap zeromap (no write, "
        "no read back). "
        "pgscan_anon/pgsteal_anon (5.8) and thp_swpout_fallback (4.13) are counted on every "
        "profile."),
    Mechanism(
        "Memory PSI: /proc/pressure/memory, memory.pressure",
        marks("approximate", v3_10="n/a", v3_12="n/a", v3_15="n/a", v4_13="n/a"),
        "kernel/sched/psi.c `psi_group_change`, `calc_avgs`, `psi_show`; `psi_memstall_enter` in "
        "mm/vmscan.c (direct reclaim, kswapd's `balance_pgdat`), mm/page_alloc.c (direct "
        "compaction), mm/memcontrol.c, mm/page_io.c (workingset swap-in), mm/readahead.c and "
        "mm/filemap.c (workingset page-cache refaults); include/linux/sched/loadavg.h "
        "`calc_load` (4.20)",
        (_T + "test_psi.py::test_calc_load_is_the_kernels_fixed_point_average",
         _T + "test_psi.py::test_samples_some_and_full_of_concurrent_tasks",
         _T + "test_psi.py::test_thrashing_drives_memory_pressure_up",
         _T + "test_psi.py::test_cgroup_memory_pressure_is_per_group_and_hierarchical",
         _T + "test_psi.py::test_no_psi_before_4_20",
         _T + "test_workingset.py::test_refault_thrashing_is_a_memory_stall",
         _T + "test_workingset.py::test_kswapd_stalls_count_in_the_root_group_only"),
        ("vmscan", "memcontrol", "compaction", "readahead"), (),
        "Stalls are direct reclaim (global, memcg, memory.high), direct compaction, kswapd's "
        "work (root group only, as a task of its own stalled throughout; its runs between two "
        "reads of the tracker merge into one interval), and reads that restore workingset "
        "pages: the disk wait of page-cache reads, and swap-ins (before 5.9, every swap-in of a "
        "page the anon CLOCK had found referenced). Each Task-API operation is an interval of "
        "its task's clock with its stall spread evenly over it; some/full are the expected union and intersection over "
        "the group's busy tasks (exact for one task). The kernel's averaging arithmetic per "
        "2 s period (exactly 2 s here; no idle-period skipping). Periods close at the least "
        "live task clock but at most 60 s behind the latest time (an idle task's clock lags), "
        "so a run keeps only its last minute of intervals. Batch op streams record no "
        "intervals."),
    Mechanism(
        "Workingset detection (shadow entries, refault distance)",
        marks("approximate", v3_10="n/a", v3_12="n/a"),
        "mm/workingset.c `workingset_eviction`, `workingset_test_recent`, `workingset_refault`, "
        "`workingset_activation` (3.15; the reclaim-root lruvec and anon in the workingset "
        "size, 5.8; restore, 4.20; anonymous pages, 5.9, commit aae466b0052e); mm/filemap.c "
        "`filemap_add_folio` (no refault for __GFP_WRITE); mm/readahead.c `read_pages` and "
        "`folio_wait_bit_common` (thrashing PSI)",
        (_T + "test_workingset.py::test_refault_of_a_long_evicted_page_is_counted_not_activated",
         _T + "test_workingset.py::test_hot_pages_pushed_out_briefly_come_back_active",
         _T + "test_workingset.py::test_truncation_drops_the_files_shadows",
         _T + "test_workingset.py::test_a_write_replaces_a_shadow_without_a_refault",
         _T + "test_workingset.py::test_counter_names_follow_the_kernel_version",
         _T + "test_workingset.py::test_memory_stat_counts_refaults_in_the_readers_cgroup",
         _T + "test_workingset.py::test_every_swap_in_is_an_anon_refault",
         _T + "test_workingset.py::test_a_cyclic_working_set_larger_than_memory_is_not_activated",
         _T + "test_workingset.py::test_a_hot_set_pushed_out_briefly_is_restored_and_stalls",
         _T + "test_workingset.py::test_no_anon_workingset_before_5_9"),
        ("workingset",),
        ("workingset_refault_file", "workingset_activate_file", "workingset_restore_file",
         "workingset_refault_anon", "workingset_activate_anon", "workingset_restore_anon"),
        "Anonymous pages (5.9+) keep their shadow in their swap slot; with no anon LRU lists, "
        "their workingset size counts every anonymous page (Linux: the active anon list) and "
        "an activation only ages the lruvec. File shadows live in a set-associative table of eight entries a frame "
        "(at most 2^22) that drops a set's oldest entry when full, standing in for the "
        "shadow-node shrinker; workingset_nodereclaim is not counted. Truncation, hole punching "
        "and unlink drop all of a file's shadows, also those below the new size. The workingset "
        "size counts anonymous pages from the memcg statistics (there are no anon LRU lists). "
        "Before 5.9 the file counters print as workingset_refault/_activate/_restore and there "
        "are no _anon ones."),
    Mechanism(
        "Page-cache large folios on ext4 and XFS",
        marks("n/a", v6_18="approximate"),
        "mm/filemap.c `__filemap_get_folio` with `fgf_set_order`, `generic_perform_write`'s "
        "chunk (`mapping_max_folio_size`), `filemap_add_folio`; fs/ext4/inode.c "
        "`ext4_set_inode_mapping_order` (ext4 6.16); fs/xfs/xfs_iops.c `xfs_setup_inode` "
        "(XFS 5.18)",
        (_T + "test_large_folios.py::test_a_write_makes_the_folios_its_order_asks_for",
         _T + "test_large_folios.py::test_no_large_folios_before_6_16_or_on_ext2",
         _T + "test_large_folios.py::test_dirtying_and_writeback_count_the_whole_folio",
         _T + "test_large_folios.py::test_a_truncation_that_cuts_a_folio_splits_it",
         _T + "test_large_folios.py::test_reclaim_evicts_whole_folios",
         _T + "test_large_folios.py::test_a_write_takes_a_smaller_folio_where_the_range_is_partly_cached",
         _T + "test_large_folios.py::test_a_read_fault_maps_a_pmd_sized_folio_by_its_pmd",
         _T + "test_large_folios.py::test_a_store_into_a_write_protected_pmd_maps_it_again_writable",
         _T + "test_large_folios.py::test_a_shared_write_fault_maps_a_cached_pmd_sized_folio_by_its_pmd",
         _T + "test_large_folios.py::test_reclaim_unmaps_pmd_mapped_folios_no_one_uses",
         _T + "test_large_folios.py::test_reclaim_unmaps_pte_mapped_folios_whole_from_every_mapping",
         _T + "test_large_folios.py::test_readahead_fills_windows_with_folios_of_growing_order",
         _T + "test_large_folios.py::test_a_cached_page_in_the_window_leaves_the_rest_to_order_0",
         _T + "test_large_folios.py::test_a_fault_reads_around_at_order_0_and_a_marked_folio_starts_order_2",
         _T + "test_large_folios.py::test_readahead_orders_match_a_6_18_hosts_tracepoints",
         _T + "test_large_folios.py::test_a_madv_hugepage_read_fault_reads_pmd_sized_folios_and_maps_them",
         _T + "test_large_folios.py::test_without_madv_hugepage_a_read_fault_reads_around_in_small_folios",
         _T + "test_huge_page_cache.py::test_madvise_collapse_on_ext4_is_einval",
         _T + "test_xfs.py::test_xfs_large_folios_on_6_18_not_before",
         _T + "test_xfs.py::test_large_folios_start_with_5_18_xfs_and_6_16_ext4",
         _T + "test_xfs.py::test_xfs_readahead_orders_match_a_6_18_hosts_tracepoints",
         _T + "test_validate.py::test_host_folio_values_are_the_kernels",
         _T + "test_validate.py::test_engine_folio_scenario_reads_its_own_pagemap"),
        ("filemap", "read_write", "readahead", "page_writeback", "vmscan", "mlock"),
        ("nr_file_hugepages", "nr_file_pmdmapped"),
        "ext4 and XFS on the 6.18 profile (the only one from XFS's 5.18 on) cache file data in "
        "large folios: each write step asks for "
        "the order its bytes left in the 2 MiB chunk and its page's alignment allow, falling to "
        "smaller orders where the range is partly cached, its blocks cannot all be reserved, the "
        "buddy allocator has no such block above the low watermark, or the memcg refuses it "
        "after one reclaim pass. The folio is the unit of dirtying, writeback, reclaim, "
        "drop_caches and truncation (a cut folio splits into order-0 pages, not 6.15+'s "
        "non-uniform split). A read fault maps a PMD-sized folio by its PMD, write-protected; a "
        "shared write fault maps it writable after page_mkwrite, and a store into a "
        "write-protected PMD zaps it and maps it again so (thp_split_pmd counts the zap); "
        "writeback write-protects it; reclaim clears such PMDs. `mmcore validate`'s ext4-folios group (folio "
        "sizes, FilePmdMapped) matches a 6.18 host's. Readahead fills its windows with folios "
        "of the window's order (`page_cache_ra_order`: 0 for a sync window or a fault's "
        "read-around, 2 more per async window, capped by the window's size and each index's "
        "alignment; a cached page in the way leaves the rest to order 0), the orders a 6.18 "
        "host's `page_cache_ra_order` tracepoint shows for 4 KiB reads. A MADV_HUGEPAGE read "
        "fault that misses reads two PMD-sized folios (one under MADV_RANDOM) and maps the first "
        "by its PMD; the marked second starts the next window when a fault reaches it (cached "
        "pages and FilePmdMapped after each fault as on a 6.18 host). Reclaim walks a mapped "
        "folio's mappings once. XFS's readahead orders match a 6.18 host's tracepoint on an "
        "XFS loop device. Not modelled: mTHP counters. ext2 caches 4 KiB pages."),
    Mechanism(
        "Anonymous multi-size THP (mTHP orders below PMD)",
        marks("n/a", v6_18="absent"),
        "mm/huge_memory.c `thp_vma_allowable_orders` (6.8)",
        (), (), (),
        "Faults are 4 KiB or 2 MiB; `mmcore validate` reports a host with other mTHP sizes on."),
    Mechanism(
        "NUMA, zones other than Normal, hugetlbfs, KSM, userfaultfd, memory hotplug",
        marks("absent"),
        "mm/mempolicy.c, mm/hugetlb.c, mm/ksm.c, fs/userfaultfd.c, mm/memory_hotplug.c",
        (), (), (), "One node, one zone."),
)


# ---- rendering ----------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def counts() -> dict[str, dict[str, int]]:
    """For each profile, how many rows carry each mark."""
    return {p: {m: sum(1 for r in LEDGER if r.marks[p] == m) for m in MARKS} for p in PROFILE_NAMES}


def summary_markdown() -> str:
    """The README's summary: rows per mark and profile."""
    c = counts()
    out = ["| mark | " + " | ".join(PROFILE_NAMES) + " |", "|---|" + "---|" * len(PROFILE_NAMES)]
    for m in MARKS:
        out.append(f"| {m} | " + " | ".join(str(c[p][m]) for p in PROFILE_NAMES) + " |")
    return "\n".join(out)


def markdown() -> str:
    """The whole ledger (``mmcore/LEDGER.md``)."""
    head = [
        "# Fidelity ledger",
        "",
        "Generated from `mmcore/ledger.py` (`python -m mmcore.ledger --write`); "
        "`tests/test_ledger.py` fails when this file is stale, when a module of `kernels/` or a "
        "`/proc/vmstat` counter has no row, or when a row names a test that does not exist.",
        "",
        "Marks, per kernel profile (`Config(kernel=...)`):",
        "",
        "- **exact**: the kernel's rules for that version in everything observable (state, "
        "counters, errnos, `/proc` fields), checked by the tests named against a reference model "
        "written from the kernel, the host kernel or the kernel's own numbers;",
        "- **approximate**: modelled, with the simplifications or departures the notes state;",
        "- **absent**: not modelled;",
        "- **n/a**: that kernel version does not have it (the engine refuses it as the version "
        "does, or never runs it).",
        "",
        "Simulated time is approximate throughout (its own row): a mechanism marked exact does "
        "the kernel's work in the kernel's order, at the costs `Config.costs` sets.",
        "",
        summary_markdown(),
        "",
        "| mechanism | " + " | ".join(PROFILE_NAMES) + " | source | shown by |",
        "|---|" + "---|" * len(PROFILE_NAMES) + "---|---|",
    ]
    for r in LEDGER:
        tests = "<br>".join(f"`{t}`" for t in r.tests) or "-"
        head.append(f"| {_cell(r.name)} | " + " | ".join(r.marks[p] for p in PROFILE_NAMES)
                    + f" | {_cell(r.source)} | {tests} |")
    head += ["", "## Notes", ""]
    for r in LEDGER:
        bits = []
        if r.note:
            bits.append(r.note)
        if r.kernels:
            bits.append("Code: " + ", ".join(f"`kernels/{k}.py`" for k in r.kernels) + ".")
        if r.counters:
            bits.append("vmstat: " + ", ".join(f"`{c}`" for c in r.counters) + ".")
        head.append(f"- **{r.name}.** " + " ".join(bits))
    head += ["", "Modules of `kernels/` with no row (plumbing, not a mechanism):", ""]
    head += [f"- `kernels/{k}.py`: {why}." for k, why in INFRASTRUCTURE.items()]
    return "\n".join(head) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m mmcore.ledger``: print the ledger; ``--write`` writes mmcore/LEDGER.md,
    ``--check`` exits 1 if that file is stale."""
    argv = sys.argv[1:] if argv is None else argv
    text = markdown()
    if argv == ["--write"]:
        LEDGER_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {LEDGER_PATH}")
        return 0
    if argv == ["--check"]:
        ok = LEDGER_PATH.is_file() and LEDGER_PATH.read_text(encoding="utf-8") == text
        print(f"{LEDGER_PATH}: {'up to date' if ok else 'stale: python -m mmcore.ledger --write'}")
        return 0 if ok else 1
    if argv:
        print("usage: python -m mmcore.ledger [--write | --check]", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
