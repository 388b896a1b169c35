"""Plain-Python reference model of khugepaged and MADV_COLLAPSE over page-cache ranges
(tests/reference/FILES.md 15).

``RefCollapse`` extends ``RefFileMaps`` with khugepaged (its list of address spaces, its cursor,
its wakeups in simulated time, ``pages_collapsed`` and ``full_scans``) and madvise(MADV_COLLAPSE)
for file VMAs of a filesystem whose page cache can hold PMD-sized folios (mainline tmpfs; ramfs
under the "2013+mmap" model). Written from mm/khugepaged.c (``khugepaged_do_scan``,
``khugepaged_scan_mm_slot``, ``hpage_collapse_scan_file``, ``collapse_file``,
``retract_page_tables``, ``collapse_pte_mapped_thp``, ``madvise_collapse``) and
``__thp_vma_allowable_orders``/``shmem_allowable_huge_orders``, not from the engine's kernels.

Time: khugepaged's wakeups and busy time are modelled with the engine's cost parameters (512 PTE
scans per range, a page copy per page present, a page clear per hole, a TLB flush per mapping of
the range and per page table freed); a wakeup runs when some task's next operation would start
after it (or time is advanced), as the engine runs its timers. The one clock taken from the
engine is the time of a fault that wakes khugepaged for the first time (the fault's cost is the
engine's hardware model; see ``adopt_kh_wake``).

Where the engine departs from Linux the reference does what Linux does, and reproduces the
engine for each name in ``COLLAPSE_DEVIATIONS`` given in ``deviations``.
"""
from __future__ import annotations

import errno

from mmcore.kernels.consts import VM_HUGEPAGE, VM_NOHUGEPAGE, VM_READ, VM_SHARED, VM_WRITE

from .file_maps import MADV_HUGEPAGE, PMD, Pmd, RefFileMaps, Vma
from .file_model import DEVIATIONS, HPAGE_NR, NEVER, PAGE, OutOfRegime, Page, _err, _pages

MADV_COLLAPSE = 25
TASK_SIZE = (1 << 47) - PAGE
# SCAN_* results (mm/khugepaged.c's enum scan_result, the ones met here)
(SCAN_FAIL, SCAN_SUCCEED, SCAN_PMD_NULL, SCAN_PMD_MAPPED, SCAN_EXCEED_NONE_PTE, SCAN_VMA_CHECK,
 SCAN_ALLOC_HUGE_PAGE_FAIL, SCAN_TRUNCATED) = range(8)
# madvise_collapse goes on after these (its whitelist; the others end the call)
CONTINUE = frozenset({SCAN_PMD_NULL})
KH_DEFAULTS = {"pages_to_scan": 4096, "scan_sleep_millisecs": 10000,
               "alloc_sleep_millisecs": 60000, "defrag": 1, "max_ptes_none": 511,
               "max_ptes_swap": 64, "max_ptes_shared": 256}

# Where the engine departs from Linux here (FILES.md 15 gives each one's rule)
COLLAPSE_DEVIATIONS = {
    "khugepaged_enrols_on_fault": "an mm joins khugepaged at a file fault that may allocate a huge "
                                  "folio and at any MADV_HUGEPAGE, not at the mmap of a VMA "
                                  "khugepaged may collapse",
    "khugepaged_vma_check_per_range": "khugepaged scans each 2 MiB range of a VMA whose huge= "
                                      "setting refuses it (512 of progress each) instead of "
                                      "skipping the VMA",
    "collapse_fills_empty_range": "MADV_COLLAPSE of a range with no page cached zero-fills a new "
                                  "folio (Linux: SCAN_TRUNCATED after allocating it: EINVAL)",
    "collapse_charge_first": "a collapse whose holes the filesystem cannot hold fails before "
                             "allocating (Linux: allocates, unmaps the pages, then rolls back)",
    "collapse_ignores_own_pmd": "MADV_COLLAPSE counts a freshly collapsed range as done when it "
                                "could not PMD-map it (a PTE table mapping other pages; no PMD "
                                "table)",
    "madv_collapse_goes_on": "MADV_COLLAPSE goes on to the next ranges after a result "
                             "madvise_collapse stops at (SCAN_FAIL, SCAN_TRUNCATED, ...)",
    "retract_ignores_anon_vma": "after a collapse, empty PTE tables of private VMAs that have an "
                                "anon_vma are freed too",
    "collapse_clean_folio": "a collapsed tmpfs folio is clean (collapse_file marks it dirty)",
    "khugepaged_off_with_thp_never": "khugepaged sleeps whenever THP is enabled=never, though "
                                     "shmem_enabled turns it on for tmpfs (6.12+)",
}


def _roundup(a: int) -> int:
    return (a + PMD - 1) // PMD * PMD


class RefCollapse(RefFileMaps):
    """``RefFileMaps`` plus khugepaged and MADV_COLLAPSE over page-cache ranges (FILES.md 15).

    ``thp_enabled`` is /sys/kernel/mm/transparent_hugepage/enabled; ``khugepaged`` its
    khugepaged/* settings; ``collapse_costs`` the ps of ``scan_pte``, ``copy_page``,
    ``clear_page`` and ``tlb_flush``; ``specials`` the [start, end) of the mappings every address
    space has besides the files ([vvar], [vvar_vclock], [vdso]); ``madv_collapse`` whether the
    kernel has MADV_COLLAPSE (6.1+).
    """

    def __init__(self, *args, thp_enabled: str = "never", khugepaged=None, collapse_costs=None,
                 specials=(), madv_collapse: bool = True, deviations=(), **kw):
        unknown = set(deviations) - set(DEVIATIONS) - set(COLLAPSE_DEVIATIONS)
        if unknown:
            raise ValueError(f"deviations: unknown {sorted(unknown)}")
        super().__init__(*args, deviations=set(deviations) - set(COLLAPSE_DEVIATIONS), **kw)
        self.kh_dev = frozenset(deviations) & set(COLLAPSE_DEVIATIONS)
        self.thp_enabled = thp_enabled
        self.kh = dict(KH_DEFAULTS, **(khugepaged or {}))
        self.cc = dict({"scan_pte": 0, "copy_page": 0, "clear_page": 0, "tlb_flush": 0},
                       **(collapse_costs or {}))
        self.specials = list(specials)
        self.special_vmas: dict[int, list] = {}     # per pid: those of ``specials`` still mapped
        self.madv_collapse_ok = madv_collapse
        self.kh_list: list[int] = []          # enrolled address spaces (pids), in enrolment order
        self.kh_cur = None                    # the one being scanned (pid), or None: at the head
        self.kh_addr = 0
        self.kh_wake = NEVER
        self.kh_busy = 0                      # ps
        self.kh_collapsed = 0                 # pages_collapsed
        self.kh_full_scans = 0
        self.kh_adopt = False                 # a fault woke khugepaged: take its time from there
        self.vm.update(thp_collapse_alloc=0, thp_collapse_alloc_failed=0,
                       thp_scan_exceed_none_pte=0)

    def dev(self, name: str) -> bool:
        return name in self.kh_dev or super().dev(name)

    # ---- khugepaged's list -----------------------------------------------------------------------
    def _pid_of(self, mm) -> int:
        return next(p for p, m in self.mms.items() if m is mm)

    def _kh_enter(self, pid: int, now) -> None:
        """__khugepaged_enter: the mm joins the list (at its tail); khugepaged, asleep for want of
        work, wakes at ``now`` (None: the engine's clock of the fault, ``adopt_kh_wake``)."""
        if pid in self.kh_list:
            return
        self.kh_list.append(pid)
        if self.kh_wake == NEVER and self._kh_on():
            if now is None:
                self.kh_adopt = True
            else:
                self.kh_wake = now

    def adopt_kh_wake(self, wake: int) -> None:
        """The engine's wakeup time after a fault that woke khugepaged (its clock mid-access)."""
        if self.kh_adopt:
            self.kh_wake = wake
            self.kh_adopt = False

    def _kh_enter_vma(self, pid: int, v: Vma, flags: int, now: int) -> None:
        """khugepaged_enter_vma: only for a VMA khugepaged may collapse (hugepage_pmd_enabled: THP
        is on in the streams that run khugepaged)."""
        if not self._kh_on():
            return
        w = Vma(v.start, v.end, flags, v.ino, v.pgoff, v.anon_vma)
        if self._collapse_vma_ok(self.mms[pid], w, False):
            self._kh_enter(pid, now)

    def _huge_fault_wanted(self, mm) -> None:
        if self.dev("khugepaged_enrols_on_fault"):
            self._kh_enter(self._pid_of(mm), None)

    def _now_of(self, pid: int) -> int:
        """When an op of ``pid`` that enters the kernel is past its entry."""
        t = self.tasks[pid]
        return max(t.clock, self.cpu_free[t.cpu]) + self.c["syscall"]

    def spawn(self, comm: str) -> int:
        pid = super().spawn(comm)
        self.special_vmas[pid] = list(self.specials)
        return pid

    def munmap(self, pid: int, addr: int, length: int) -> None:
        super().munmap(pid, addr, length)
        end = addr + _pages(length) * PAGE
        out = []
        for s, e in self.special_vmas[pid]:
            out += [(a, b) for a, b in ((s, min(e, addr)), (max(s, end), e)) if a < b]
        self.special_vmas[pid] = out
        # free_pgtables: the PMD table goes with the last VMA of its 1 GiB (all the mappings here
        # share one)
        g = addr - addr % (1 << 30)
        mm = self.mms[pid]
        if not any(v.start < g + (1 << 30) and g < v.end for v in mm.vmas) and \
                not any(s < g + (1 << 30) and g < e for s, e in out):
            mm.pmdt = False

    def fork(self, pid: int, cpu: int) -> int:
        cpid = super().fork(pid, cpu)
        self.special_vmas[cpid] = list(self.special_vmas[pid])
        if pid in self.kh_list:                   # khugepaged_fork
            self._kh_enter(cpid, self._now_of(pid))
        return cpid

    def mmap(self, pid, addr, length, prot, shared, fd, offset):
        now = self._now_of(pid)
        out = super().mmap(pid, addr, length, prot, shared, fd, offset)
        if not self.dev("khugepaged_enrols_on_fault"):
            v = self.mms[pid].find(out)           # __mmap_new_vma / vma_merge_new_range
            self._kh_enter_vma(pid, v, v.flags, now)
        return out

    def madvise(self, pid: int, addr: int, length: int, advice: int) -> None:
        if advice == MADV_COLLAPSE and self.madv_collapse_ok:
            return self.madvise_collapse(pid, addr, length)
        if advice != MADV_HUGEPAGE or addr % PAGE or length <= 0:
            return super().madvise(pid, addr, length, advice)
        now = self._now_of(pid)
        end = addr + _pages(length) * PAGE
        seen = [Vma(v.start, v.end, v.flags, v.ino, v.pgoff, v.anon_vma)
                for v in self.mms[pid].vmas if v.start < end and addr < v.end]
        try:
            return super().madvise(pid, addr, length, advice)
        finally:
            if self.dev("khugepaged_enrols_on_fault"):
                self._kh_enter(pid, now)          # the engine: whatever the VMAs
            else:
                for v in seen:                    # hugepage_madvise, VMA by VMA, new flags
                    self._kh_enter_vma(pid, v, (v.flags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE, now)

    # ---- which VMAs ------------------------------------------------------------------------------
    def _collapse_vma_ok(self, mm, v: Vma, forced: bool) -> bool:
        """thp_vma_allowable_order for a file VMA, PMD order: a filesystem whose model coalesces,
        the file offset aligned with the address and an aligned 2 MiB range inside
        (thp_vma_suitable_order at vm_end - 2 MiB), not VM_NOHUGEPAGE nor the prctl;
        shmem_enabled=deny refuses all; khugepaged (not ``forced``) also asks the huge= setting
        (shmem_allowable_huge_orders at vm_pgoff), MADV_COLLAPSE does not."""
        ino = self.inodes[v.ino]
        if self.hpc == "2013" or not self.huge_capable(ino):
            return False
        if _roundup(v.start) + PMD > v.end or ((v.start >> 12) - v.pgoff) % HPAGE_NR:
            return False
        if not v.flags & (VM_READ | VM_WRITE) or v.flags & VM_NOHUGEPAGE or mm.thp_disabled:
            return False
        if self.hpc == "mainline" and self.shmem_enabled == "deny":
            return False
        if forced or self.hpc != "mainline" or self.dev("khugepaged_vma_check_per_range"):
            return True
        return self.huge_wanted(ino, v.pgoff, 0, "fault", v.flags, mm.thp_disabled)

    # ---- one 2 MiB range --------------------------------------------------------------------------
    def _collapse_range(self, pid: int, v: Vma, haddr: int, khugepaged: bool):
        """hpage_collapse_scan_file and collapse_file (or collapse_pte_mapped_thp when the range's
        folio is huge already) for the range at ``haddr`` of ``v``: (SCAN_*, cost in ps)."""
        mm = self.mms[pid]
        ino = self.inodes[v.ino]
        index = v.index(haddr)
        if khugepaged and self.dev("khugepaged_vma_check_per_range") and self.hpc == "mainline" \
                and not self.huge_wanted(ino, index, 0, "fault", v.flags, mm.thp_disabled):
            return SCAN_VMA_CHECK, 0
        cost = HPAGE_NR * self.cc["scan_pte"]
        if index + HPAGE_NR > _pages(ino.size):
            return SCAN_FAIL, cost                 # the range reaches past EOF
        present = [i for i in range(index, index + HPAGE_NR) if i in ino.pages]
        if any(ino.pages[i].huge >= 0 for i in present):
            # SCAN_PTE_MAPPED_HUGEPAGE: collapse_pte_mapped_thp; khugepaged counts a range a PMD
            # maps already as a success
            r, c = self._retract(mm, v, index, not khugepaged)
            if r == SCAN_PMD_MAPPED and khugepaged:
                r = SCAN_SUCCEED
            return r, cost + c
        none = HPAGE_NR - len(present)
        if khugepaged and none > self.kh["max_ptes_none"]:
            if self.kernel >= 508:
                self.vm["thp_scan_exceed_none_pte"] += 1
            return SCAN_EXCEED_NONE_PTE, cost
        m = self.mounts[ino.fs]
        if self.dev("collapse_charge_first") and m.free < none:
            return SCAN_FAIL, cost
        # alloc_charge_folio (the order-9 block is there in the regime)
        if self._free_pages() - HPAGE_NR < self.wmark_low:
            raise OutOfRegime("free memory would fall below the low watermark (kswapd)")
        self.vm["thp_collapse_alloc"] += 1
        self.vm["pgalloc_normal"] += HPAGE_NR
        if not present and not self.dev("collapse_fills_empty_range"):
            self.vm["pgfree"] += HPAGE_NR          # SCAN_TRUNCATED: nothing left to collapse
            return SCAN_TRUNCATED, cost
        # try_to_unmap every page of the range from every mapping
        for other in self.mms.values():
            for a in [a for a, p in other.pte.items()
                      if p.anon is None and p.ino == ino.ino and index <= p.index < index + HPAGE_NR]:
                del other.pte[a]
        if m.free < none:                          # shmem_charge fails: roll back
            self.vm["pgfree"] += HPAGE_NR
            for i in present:                      # folio_putback_lru, in index order
                key = (ino.ino, i)
                li = self._list_of(ino, ino.pages[i])
                self.lru[li].remove(key)
                self.lru[li].insert(0, key)
            return SCAN_FAIL, cost
        for i in present:
            self._remove_page(ino, i)
        page = Page(huge=index, nr=HPAGE_NR)
        page.dirty = self.fstype(ino) == "tmpfs" and not self.dev("collapse_clean_folio")
        for i in range(index, index + HPAGE_NR):
            ino.pages[i] = page
        self.lru[self._list_of(ino, page)].insert(0, (ino.ino, index))
        m.free -= HPAGE_NR
        cost += len(present) * self.cc["copy_page"] + none * self.cc["clear_page"]
        # flush every mapping of the range; retract_page_tables
        for opid, other in self.mms.items():
            if not other.pgd:
                continue
            for w in list(other.vmas):
                if w.ino != ino.ino:
                    continue
                va = w.start + ((index - w.pgoff) << 12)
                if max(va, w.start) < min(va + PMD, w.end):
                    cost += self.cc["tlb_flush"]
                # the engine installs the caller's PMD here and ignores how that went
                install = w is v and not khugepaged and self.dev("collapse_ignores_own_pmd")
                if w.anon_vma and not install and not self.dev("retract_ignores_anon_vma"):
                    continue                       # a private mapping written to: left alone
                cost += self._retract(other, w, index, install, only_table=not install)[1]
        if khugepaged or self.dev("collapse_ignores_own_pmd"):
            return SCAN_SUCCEED, cost
        r, c = self._retract(mm, v, index, True)   # MADV_COLLAPSE: collapse_pte_mapped_thp
        return r, cost + c

    def _retract(self, mm, v: Vma, index: int, install: bool, only_table: bool = False):
        """collapse_pte_mapped_thp of ``v``'s range of pages [index, index + 512) (a PMD-sized
        folio's): a PTE table that maps only that folio's pages at their places is cleared and
        freed, then (``install``) a PMD maps the folio (set_huge_pmd: thp_file_mapped). With
        ``only_table`` (retract_page_tables) only a present PTE table counts: (SCAN_*, cost)."""
        va = v.start + ((index - v.pgoff) << 12)
        if va < v.start or va + PMD > v.end or va % PMD:
            return SCAN_VMA_CHECK, 0
        if not mm.pmdt:
            return SCAN_PMD_NULL, 0
        if va in mm.pmd:
            return SCAN_PMD_MAPPED, 0
        cost = 0
        if va in mm.tables:
            mine = [a for a in mm.pte if va <= a < va + PMD]
            for a in mine:
                p = mm.pte[a]
                if p.anon is not None or p.ino != v.ino or p.index != index + ((a - va) >> 12):
                    return SCAN_FAIL, 0            # something else lives in the table
            for a in mine:
                del mm.pte[a]
            mm.tables.discard(va)
            cost += self.cc["tlb_flush"]
        elif only_table:
            return SCAN_PMD_NULL, 0
        if install:
            mm.pmd[va] = Pmd(v.ino, index, bool(v.flags & VM_SHARED and v.flags & VM_WRITE), False)
            self.vm["thp_file_mapped"] += 1
        return SCAN_SUCCEED, cost

    # ---- MADV_COLLAPSE ------------------------------------------------------------------------------
    def madvise_collapse(self, pid: int, addr: int, length: int) -> int:
        """madvise(MADV_COLLAPSE): every aligned 2 MiB range inside [addr, addr + length), VMA by
        VMA, on the caller's clock; a hole gives ENOMEM after the rest is done."""
        if addr % PAGE or length < 0:
            raise _err(errno.EINVAL, "madvise")
        end = addr + _pages(length) * PAGE
        if end > TASK_SIZE:
            raise _err(errno.EINVAL, "madvise")
        mm = self.mms[pid]
        now = self._begin(pid)
        vmas = sorted([(v.start, v.end, v) for v in mm.vmas]
                      + [(s, e, None) for s, e in self.special_vmas[pid]],
                      key=lambda x: x[0])
        a, hole, st = addr, False, 0
        while a < end:
            nxt = next((x for x in vmas if x[1] > a), None)
            if nxt is None or nxt[0] >= end:
                hole = True
                break
            s, e, v = nxt
            hole |= s > a
            e = min(end, e)
            if v is None:
                st = errno.EINVAL                  # [vvar]/[vdso]: never THP-eligible
            else:
                st, c = self._collapse_vma(pid, v, max(a, s), e)
                now += c
            if st:
                break
            a = e
        self._end(pid, now)
        if st == 0 and hole:
            st = errno.ENOMEM
        if st:
            raise _err(st, "madvise(MADV_COLLAPSE)")
        return 0

    def _collapse_vma(self, pid: int, v: Vma, start: int, end: int):
        """madvise_collapse on one VMA's part: (errno or 0, cost in ps)."""
        if not self._collapse_vma_ok(self.mms[pid], v, True):
            return errno.EINVAL, 0
        hstart, hend = _roundup(start), end - end % PMD
        thps, last, cost = 0, SCAN_FAIL, 0
        a = hstart
        while a < hend:
            r, c = self._collapse_range(pid, v, a, False)
            cost += c
            if r in (SCAN_SUCCEED, SCAN_PMD_MAPPED):
                thps += 1
            else:
                last = r
                if r not in CONTINUE and (r == SCAN_ALLOC_HUGE_PAGE_FAIL
                                          or not self.dev("madv_collapse_goes_on")):
                    break
            a += PMD
        if thps == (hend - hstart) >> 21:
            return 0, cost
        return {SCAN_ALLOC_HUGE_PAGE_FAIL: errno.ENOMEM,
                SCAN_EXCEED_NONE_PTE: errno.EBUSY}.get(last, errno.EINVAL), cost

    # ---- khugepaged -----------------------------------------------------------------------------------
    def _kh_on(self) -> bool:
        """hugepage_pmd_enabled: THP enabled for anonymous memory or (6.12+, "mm: shmem: fix
        khugepaged activation policy for shmem") shmem_enabled other than never/deny."""
        if self.thp_enabled != "never":
            return True
        return (self.hpc == "mainline" and self.kernel >= 612 and not self.dev("khugepaged_off_with_thp_never")
                and self.shmem_enabled in ("always", "within_size", "advise", "force"))

    def _kh_has_work(self) -> bool:
        return self._kh_on() and bool(self.kh_list)

    def kh_tick(self, pid: int) -> None:
        """The wakeups due before task ``pid``'s next operation can start."""
        t = self.tasks[pid]
        self.kh_run_until(max(t.clock, self.cpu_free[t.cpu]))

    def kh_run_until(self, until: int) -> None:
        """khugepaged's wakeups at or before ``until`` ps: each scans ``pages_to_scan``, then
        sleeps ``scan_sleep_millisecs`` after its busy time (for good with nothing listed)."""
        sleep = self.kh["scan_sleep_millisecs"] * 10**9
        while self.kh_wake <= until:
            t = self.kh_wake
            busy = self._kh_do_scan()
            self.kh_busy += busy
            nxt = t + busy + sleep if self._kh_has_work() else NEVER
            self.kh_wake = max(nxt, t + 1000)

    def _kh_do_scan(self) -> int:
        """khugepaged_do_scan: visits until ``pages_to_scan`` of progress or a second pass through
        the list's head. Returns the busy time (ps)."""
        pages = self.kh["pages_to_scan"]
        progress = passes = busy = 0
        while True:
            if self.kh_cur is None:
                passes += 1
            if self._kh_has_work() and passes < 2:
                n, c = self._kh_scan_mm_slot()
                progress += n
                busy += c
            else:
                progress = pages
            if progress >= pages:
                return busy

    def _kh_scan_mm_slot(self):
        """khugepaged_scan_mm_slot: from the saved address on, skip the VMAs it may not collapse
        (one of progress each), scan one 2 MiB range of a file VMA (512; the mmap lock is dropped
        for it, so the visit ends there); an mm with nothing left is done and the cursor moves to
        the next one (past the last: a full scan). Returns (progress, cost in ps)."""
        if self.kh_cur is None:
            self.kh_cur, self.kh_addr = self.kh_list[0], 0
        pid = self.kh_cur
        mm = self.mms[pid]
        progress, cost = 1, 0
        if not mm.thp_disabled:                    # hpage_collapse_test_exit_or_disable
            vmas = [v for v in mm.vmas if v.end > self.kh_addr]
            vmas += [None for s, e in self.special_vmas[pid] if e > self.kh_addr]
            for v in vmas:
                if v is None or not self._collapse_vma_ok(mm, v, False):
                    progress += 1
                    continue
                hstart, hend = _roundup(v.start), v.end - v.end % PMD
                if self.kh_addr > hend:
                    progress += 1
                    continue
                self.kh_addr = max(self.kh_addr, hstart)
                if self.kh_addr < hend:
                    r, c = self._collapse_range(pid, v, self.kh_addr, True)
                    cost += c
                    if r == SCAN_SUCCEED:
                        self.kh_collapsed += 1
                    self.kh_addr += PMD
                    return progress + HPAGE_NR, cost
        k = self.kh_list.index(pid)
        if k + 1 < len(self.kh_list):
            self.kh_cur, self.kh_addr = self.kh_list[k + 1], 0
        else:
            self.kh_cur = None
            self.kh_full_scans += 1
        return progress, cost

    # ---- time ----------------------------------------------------------------------------------------
    def nanosleep(self, pid: int, ns: int) -> None:
        super().nanosleep(pid, ns)
        self.kh_run_until(self.tasks[pid].clock)

    def advance(self, ns: int) -> None:
        """Machine.advance: every task idle for ``ns`` from the latest clock; khugepaged runs."""
        until = max([self.now] + [t.clock for t in self.tasks.values()]) + ns * 1000
        self.kh_run_until(until)
        for t in self.tasks.values():
            t.clock = max(t.clock, until)
        self._background(until)
        self.now = max(self.now, until)

    def khugepaged(self) -> dict:
        return {"pages_collapsed": self.kh_collapsed, "full_scans": self.kh_full_scans,
                "busy_ns": self.kh_busy // 1000}

    def check(self) -> None:
        super().check()
        assert len(set(self.kh_list)) == len(self.kh_list)
        assert self.kh_cur is None or self.kh_cur in self.kh_list
