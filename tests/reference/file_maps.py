"""Plain-Python reference model of file mappings over the page cache, for the transparent huge
page cache (tests/reference/FILES.md 13 and 14).

``RefFileMaps`` extends ``RefFiles`` with address spaces: file VMAs (shared or private), their page
tables as dicts (4 KiB leaves, PMD leaves, and which 2 MiB slots hold a PTE table), faults from
loads and stores, mmap/munmap/mprotect/madvise/prctl/fork, private copies, and the observables
that follow from them: nr_mapped, the PMD-mapped counts, RSS per kind, smaps per VMA. Written
from Linux's rules for file faults (do_read_fault with fault-around, do_shared_fault,
do_cow_fault, wp_page_shared, do_set_pmd, shmem_fault's huge folio, the 2013 series' split on
fault) and from FILES.md, not from the engine's kernels.

What the model does not do: time. Faults, TLB misses and the mapping calls' own costs are the
engine's hardware model; a differential test adopts the engine's clocks after each mapping call
and compares the clocks of file system calls only (FILES.md 14). Page tables are not memory
here: a test adds the engine's page-table pages to the reference's free pages.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field

from mmcore.kernels.consts import (
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
)

from .file_model import HPAGE_NR, MEMFS, PAGE, Inode, RefFiles, _err, _pages

PMD = HPAGE_NR * PAGE                       # 2 MiB
VM_MASK = VM_READ | VM_WRITE | VM_SHARED | VM_HUGEPAGE | VM_NOHUGEPAGE
PROT_READ, PROT_WRITE = 1, 2
MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 4, 14, 15


class SigBus(Exception):
    def __init__(self, va):
        super().__init__(f"SIGBUS at {va:#x}")
        self.va = va


class SegFault(Exception):
    def __init__(self, va):
        super().__init__(f"SIGSEGV at {va:#x}")
        self.va = va


@dataclass
class Vma:
    start: int
    end: int
    flags: int                  # VM_READ | VM_WRITE | VM_SHARED | VM_HUGEPAGE | VM_NOHUGEPAGE
    ino: int
    pgoff: int
    anon_vma: bool = False      # a private copy was made in it (anon_vma_prepare), kept by splits

    def index(self, va: int) -> int:
        return self.pgoff + ((va - self.start) >> 12)


@dataclass
class Anon:
    """A private copy (an anonymous page of a private file mapping)."""
    mapcount: int = 1
    exclusive: bool = True      # PageAnonExclusive


@dataclass
class Pte:
    ino: int                    # file page (ino, index), or -1 with ``anon``
    index: int
    rw: bool
    dirty: bool                 # the hardware dirty bit
    anon: Anon | None = None


@dataclass
class Pmd:
    ino: int
    base: int                   # the folio's first index
    rw: bool
    dirty: bool


@dataclass
class Mm:
    vmas: list = field(default_factory=list)        # sorted by start
    pte: dict = field(default_factory=dict)         # va -> Pte
    pmd: dict = field(default_factory=dict)         # 2 MiB-aligned va -> Pmd
    tables: set = field(default_factory=set)        # 2 MiB slots that hold a PTE table
    thp_disabled: bool = False                      # prctl(PR_SET_THP_DISABLE): MMF flag (6.x)
    pgd: bool = False                               # upper page tables exist (a fault made them)
    pmdt: bool = False                              # the PMD table over the mappings exists

    def find(self, va: int):
        for v in self.vmas:
            if v.start <= va < v.end:
                return v
        return None


class RefFileMaps(RefFiles):
    """``RefFiles`` plus address spaces (FILES.md 14). ``fault_around_pages`` is
    ``fault_around_bytes / 4096``."""

    def __init__(self, *args, fault_around_pages: int = 16, **kw):
        super().__init__(*args, **kw)
        self.fa = max(1, fault_around_pages)
        self.mms: dict[int, Mm] = {}

    def spawn(self, comm: str) -> int:
        pid = super().spawn(comm)
        self.mms[pid] = Mm()
        return pid

    # ---- hooks of RefFiles --------------------------------------------------------------------------
    def _releasable(self, ino: Inode) -> bool:
        return not any(v.ino == ino.ino for mm in self.mms.values() for v in mm.vmas)

    def _unmapped_check(self, ino: Inode, first: int, last: int) -> None:
        for mm in self.mms.values():
            for p in mm.pte.values():
                assert not (p.ino == ino.ino and first <= p.index < last), "removing a mapped page"
            for p in mm.pmd.values():
                assert not (p.ino == ino.ino and first <= p.base < last), "removing a mapped folio"

    def _pmd_mapped(self, ino: Inode, base: int) -> bool:
        return any(p.ino == ino.ino and p.base == base for mm in self.mms.values() for p in mm.pmd.values())

    def _pte_mapped(self, ino: Inode, index: int) -> bool:
        return any(p.ino == ino.ino and p.index == index and p.anon is None
                   for mm in self.mms.values() for p in mm.pte.values())

    def _unmap_pages(self, ino: Inode, first: int, last: int, even_cows: bool = True) -> None:
        """unmap_mapping_pages over file pages [first, last) in every address space; with
        ``even_cows`` the private copies of those pages go too (truncation; FILES.md 14)."""
        if self.dev("punch_zaps_cows"):
            even_cows = True
        for mm in self.mms.values():
            for v in list(mm.vmas):
                if v.ino != ino.ino:
                    continue
                lo = max(v.start, v.start + ((first - v.pgoff) << 12))
                hi = min(v.end, v.start + ((last - v.pgoff) << 12))
                if lo < hi:
                    self._zap(mm, lo, hi, cows=even_cows)

    # ---- page-table primitives ----------------------------------------------------------------------
    def _zap(self, mm: Mm, start: int, end: int, cows: bool = True) -> None:
        """unmap_page_range over [start, end): a PMD leaf the range covers whole goes; one it covers
        in part is cleared as a split (``thp_split_pmd``); PTEs go (private copies only with
        ``cows``), the page tables stay."""
        for h in [h for h in mm.pmd if h < end and h + PMD > start]:
            if not (start <= h and h + PMD <= end):
                self.vm["thp_split_pmd"] += 1
            del mm.pmd[h]
        for va in [va for va in mm.pte if start <= va < end]:
            p = mm.pte[va]
            if p.anon is not None:
                if not cows:
                    continue
                self._anon_put(p.anon)
            del mm.pte[va]

    def _anon_put(self, a: Anon) -> None:
        a.mapcount -= 1
        if a.mapcount == 0:
            self.anon_pages -= 1
            self.vm["pgfree"] += 1

    def _new_anon(self) -> Anon:
        if self._free_pages() - 1 < self.wmark_low:
            from .file_model import OutOfRegime
            raise OutOfRegime("free memory would fall below the low watermark (kswapd)")
        self.anon_pages += 1
        self.vm["pgalloc_normal"] += 1
        return Anon()

    def _split_pmd_at(self, mm: Mm, va: int) -> None:
        """vma_adjust_trans_huge: a VMA boundary inside a PMD leaf clears that PMD (a split)."""
        h = va - va % PMD
        if va % PMD and h in mm.pmd:
            del mm.pmd[h]
            self.vm["thp_split_pmd"] += 1

    def _split_vma(self, mm: Mm, va: int) -> None:
        for k, v in enumerate(mm.vmas):
            if v.start < va < v.end:
                mm.vmas.insert(k + 1, Vma(va, v.end, v.flags, v.ino, v.index(va), v.anon_vma))
                v.end = va
                return

    def _merge(self, mm: Mm) -> None:
        """vma_merge: neighbours with the same flags, file and contiguous offsets become one."""
        k = 0
        while k + 1 < len(mm.vmas):
            a, b = mm.vmas[k], mm.vmas[k + 1]
            if a.end == b.start and a.flags == b.flags and a.ino == b.ino and a.index(a.end) == b.pgoff:
                a.end = b.end
                a.anon_vma |= b.anon_vma
                del mm.vmas[k + 1]
            else:
                k += 1

    # ---- system calls -----------------------------------------------------------------------------------
    def mmap(self, pid: int, addr: int, length: int, prot: int, shared: bool, fd: int, offset: int) -> int:
        """mmap of file ``fd`` at ``addr`` (where the engine placed it: placement is not modelled;
        FILES.md 14). Checks as Task.mmap and do_mmap for these arguments."""
        of = self._fd(pid, fd, "mmap")
        if offset % PAGE:
            raise _err(errno.EINVAL, "mmap")
        acc = of.flags & 3
        if acc == 1 or (shared and prot & PROT_WRITE and (acc != 2 or of.flags & 0o2000)):
            raise _err(errno.EACCES, "mmap")
        if length <= 0:
            raise _err(errno.EINVAL, "mmap")
        mm = self.mms[pid]
        ln = _pages(length) * PAGE
        assert not any(v.start < addr + ln and addr < v.end for v in mm.vmas), "placement overlaps"
        flags = (VM_READ if prot & PROT_READ else 0) | (VM_WRITE if prot & PROT_WRITE else 0)
        if shared:
            flags |= VM_SHARED
        mm.vmas.append(Vma(addr, addr + ln, flags, of.ino, offset >> 12))
        mm.vmas.sort(key=lambda v: v.start)
        self._merge(mm)
        return addr

    def munmap(self, pid: int, addr: int, length: int) -> None:
        if addr % PAGE or length <= 0:
            raise _err(errno.EINVAL, "munmap")
        mm = self.mms[pid]
        end = addr + _pages(length) * PAGE
        self._split_vma(mm, addr)
        self._split_vma(mm, end)
        gone = [v for v in mm.vmas if addr <= v.start and v.end <= end]
        for v in gone:
            self._zap(mm, v.start, v.end)
            mm.vmas.remove(v)
        # free_pgtables: PTE tables of 2 MiB slots no VMA reaches any more
        h = addr - addr % PMD
        while h < end:
            if not any(v.start < h + PMD and h < v.end for v in mm.vmas):
                mm.tables.discard(h)
            h += PMD
        self._reap()

    def _reap(self) -> None:
        for ino in self.inodes:
            if ino.alive and ino.refs == 0 and ino.nlink == 0 and self._releasable(ino):
                self._release(ino)

    def _modify(self, mm: Mm, start: int, end: int, change, stop_at_hole: bool) -> bool:
        """vma_modify_flags over [start, end): VMAs whose flags change are split at the range's
        ends (a PMD leaf a boundary falls in is split first), changed and merged. Returns whether
        the range had no hole."""
        full = True
        va = start
        while va < end:
            v = next((v for v in mm.vmas if v.end > va), None)
            if v is None or v.start >= end:
                return False
            if v.start > va:
                full = False
                if stop_at_hole:
                    return False
                va = v.start
            new = change(v.flags)
            if new == v.flags:
                va = v.end
                continue
            if v.start < va:
                self._split_pmd_at(mm, va)
                self._split_vma(mm, va)
                v = mm.find(va)
            if v.end > end:
                self._split_pmd_at(mm, end)
                self._split_vma(mm, end)
            v.flags = new
            e0 = v.end
            if not new & VM_WRITE:                 # change_protection: leaves lose write access
                for h, p in mm.pmd.items():
                    if v.start <= h < v.end:
                        p.rw = False
                for a, p in mm.pte.items():
                    if v.start <= a < v.end:
                        p.rw = False
            self._merge(mm)
            va = e0
        return full

    def mprotect_read(self, pid: int, addr: int, length: int) -> None:
        """mprotect(PROT_READ) (the only protection change the streams make)."""
        mm = self.mms[pid]
        if addr % PAGE or length < 0:
            raise _err(errno.EINVAL, "mprotect")
        if mm.find(addr) is None:
            raise _err(errno.ENOMEM, "mprotect")
        end = addr + _pages(length) * PAGE
        if not self._modify(mm, addr, end, lambda f: f & ~VM_WRITE, True):
            raise _err(errno.ENOMEM, "mprotect")

    def madvise(self, pid: int, addr: int, length: int, advice: int) -> None:
        mm = self.mms[pid]
        if addr % PAGE or length < 0 or advice not in (MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE):
            raise _err(errno.EINVAL, "madvise")
        end = addr + _pages(length) * PAGE
        if advice == MADV_HUGEPAGE:
            full = self._modify(mm, addr, end, lambda f: (f | VM_HUGEPAGE) & ~VM_NOHUGEPAGE, False)
        elif advice == MADV_NOHUGEPAGE:
            full = self._modify(mm, addr, end, lambda f: (f | VM_NOHUGEPAGE) & ~VM_HUGEPAGE, False)
        else:
            full, va = True, addr
            for v in list(mm.vmas):
                if v.end <= addr or v.start >= end:
                    continue
                s, e = max(v.start, addr), min(v.end, end)
                full &= s <= va
                self._zap(mm, s, e)
                va = e
            full &= va >= end
        if not full:
            raise _err(errno.ENOMEM, "madvise")

    def prctl_thp_disable(self, pid: int) -> int:
        self.mms[pid].thp_disabled = True
        return 0

    def fork(self, pid: int, cpu: int) -> int:
        """fork: VMAs copied; shared file mappings and file PMDs are not (faulted in again);
        private mappings' PTEs are, private copies becoming shared and read-only."""
        parent, t = self.mms[pid], self.tasks[pid]
        cpid = super().spawn(t.comm)
        self.tasks[cpid].cpu = cpu
        child = self.mms[cpid] = Mm(thp_disabled=parent.thp_disabled, pgd=parent.pgd)
        child.vmas = [Vma(v.start, v.end, v.flags, v.ino, v.pgoff, v.anon_vma) for v in parent.vmas]
        for v in parent.vmas:
            if v.flags & VM_SHARED:
                continue
            for va in sorted(a for a in parent.pte if v.start <= a < v.end):
                p = parent.pte[va]
                if p.anon is not None:
                    p.rw = False
                    p.anon.mapcount += 1
                    p.anon.exclusive = False
                child.pte[va] = Pte(p.ino, p.index, p.rw, p.dirty, p.anon)
                child.tables.add(va - va % PMD)
        child.pmdt = bool(child.tables)             # copy_page_range made the child's tables
        self.tasks[cpid].fds = dict(t.fds)
        for of in t.fds.values():
            self.inodes[of.ino].refs += 1
        return cpid

    # ---- faults -------------------------------------------------------------------------------------------
    def touch(self, pid: int, addr: int, length: int, write: bool) -> None:
        """One byte at each 4 KiB step of [addr, addr + length), in order; raises SegFault or
        SigBus at the access that gets the signal (the earlier ones stay done)."""
        mm = self.mms[pid]
        for k in range(-(-length // PAGE)):
            self._access(mm, addr + k * PAGE, write)

    def _access(self, mm: Mm, va: int, write: bool) -> None:
        va -= va % PAGE
        v = mm.find(va)
        if v is None or not v.flags & (VM_WRITE if write else VM_READ):
            raise SegFault(va)
        mm.pgd = mm.pmdt = True                    # a fault walks (and makes) the upper tables
        h = va - va % PMD
        p = mm.pmd.get(h)
        if p is not None:
            if not write or p.rw:
                p.dirty |= write                   # the hardware sets the dirty bit
                return
            del mm.pmd[h]                          # wp_huge_pmd: split; COW or notify at PTE level
            self.vm["thp_split_pmd"] += 1
        else:
            q = mm.pte.get(va)
            if q is not None and (not write or q.rw):
                q.dirty |= write
                return
        if self._huge_fault(mm, v, va, write):
            return
        mm.tables.add(h)
        q = mm.pte.get(va)
        if q is None:
            self._pte_fault(mm, v, va, write)
        elif q.anon is not None:
            if q.anon.exclusive or q.anon.mapcount == 1:   # do_wp_page: reuse
                q.anon.exclusive, q.rw, q.dirty = True, True, True
            else:
                self._anon_put(q.anon)
                mm.pte[va] = Pte(-1, 0, True, True, self._new_anon())
                v.anon_vma = True
        elif v.flags & VM_SHARED:                  # wp_page_shared
            self._mkwrite(self.inodes[q.ino], q.index)
            q.rw = q.dirty = True
        else:                                      # a private copy of the file page
            mm.pte[va] = Pte(-1, 0, True, True, self._new_anon())
            v.anon_vma = True

    def _huge_fault_wanted(self, mm: Mm) -> None:
        """Hook: a fault where a huge folio may come in (khugepaged's enrolment in the engine)."""

    def _mkwrite(self, ino: Inode, index: int) -> None:
        """page_mkwrite for a store through a shared mapping: the folio is written and dirty."""
        page = ino.pages[index]
        page.mapped, page.falloc = True, False
        self._dirty(ino, page, self.now)

    def _huge_fault(self, mm: Mm, v: Vma, va: int, write: bool) -> bool:
        """A fault with no PMD leaf on a file that can hold PMD-sized folios (mainline and
        2013+mmap): allocate the folio where the model allows it, and map it with one PMD where
        the VMA is suitable, the slot holds no PTE table, the fault is not a private write and THP
        is not refused (do_set_pmd). Returns True when a PMD now maps it."""
        ino = self.inodes[v.ino]
        if self.hpc == "2013" or not self.huge_capable(ino):
            return False
        h = va - va % PMD
        if h < v.start or h + PMD > v.end or ((v.start >> 12) - v.pgoff) % HPAGE_NR:
            return False                           # thp_vma_suitable_order
        index = v.index(va)
        if index >= _pages(ino.size):
            return False                           # SIGBUS at the PTE level
        if self.huge_wanted(ino, index, 0, "fault", v.flags, mm.thp_disabled):
            self._huge_fault_wanted(mm)
        page = ino.pages.get(index)
        refused = bool(v.flags & VM_NOHUGEPAGE) or mm.thp_disabled
        if page is None:
            if not self.huge_wanted(ino, index, 0, "fault", v.flags, mm.thp_disabled):
                return False
            page, _ = self._alloc_huge(ino, index, "fault", self.now)
            if page is None:
                return False
        shared = bool(v.flags & VM_SHARED)
        if h in mm.tables or page.nr != HPAGE_NR or (write and not shared) or refused:
            return False
        if not self.dev("fault_ignores_falloc"):
            page.falloc = False                    # shmem_fault: a fallocated folio is zeroed
        if write:
            self._dirty(ino, page, self.now)
        mm.pmd[h] = Pmd(ino.ino, page.huge, shared and bool(v.flags & VM_WRITE), write)
        self.vm["thp_file_mapped"] += 1
        return True

    def _pte_fault(self, mm: Mm, v: Vma, va: int, write: bool) -> None:
        """do_read_fault / do_shared_fault / do_cow_fault on a missing PTE."""
        ino = self.inodes[v.ino]
        index = v.index(va)
        eof = _pages(ino.size)
        if index >= eof:
            raise SigBus(va)
        page = ino.pages.get(index)
        if page is None and self.hpc == "2013" and \
                self.huge_wanted(ino, index, 0, "fault", v.flags, mm.thp_disabled):
            page, _ = self._alloc_huge(ino, index, "fault", self.now)
        if page is not None and page.huge >= 0 and self.hpc == "2013":
            self._split_folio(ino, page.huge)      # the 2013 series maps no huge page
        if page is None:
            self._fault_in(ino, index, eof, va)
        elif self.fstype(ino) not in MEMFS:
            self._ra_hit(ino, ino.mra, index, max(1, self.ra_max), self.now,   # async_mmap_readahead
                         by_folio=False)
        page = ino.pages[index]
        if not self.dev("fault_ignores_falloc"):
            page.falloc = False                    # shmem_fault: a fallocated page is zeroed
        if write and not v.flags & VM_SHARED:      # do_cow_fault
            mm.pte[va] = Pte(-1, 0, True, True, self._new_anon())
            v.anon_vma = True
            return
        mm.pte[va] = Pte(ino.ino, index, write, write)
        if write:
            self._mkwrite(ino, index)
            return
        # do_fault_around: the cached neighbours, read-only, within the aligned window, the VMA,
        # the PTE table and the file
        win = self.fa * PAGE
        lo = max(va - va % win, v.start, va - va % PMD)
        hi = min(va - va % win + win, v.end, va - va % PMD + PMD)
        for q in range(lo, hi, PAGE):
            if q == va or q in mm.pte:
                continue
            j = v.index(q)
            if j >= eof:
                break
            p = ino.pages.get(j)
            # filemap_map_pages skips marked and locked folios
            if p is not None and (not p.falloc or self.dev("fault_ignores_falloc")) \
                    and not p.readahead and self._ra_wait(ino, j, self.now) == self.now:
                mm.pte[q] = Pte(ino.ino, j, False, False)

    def _fault_in(self, ino: Inode, index: int, eof: int, va: int) -> None:
        """A fault on a hole of a memory filesystem: shmem_fault allocates the one page (ENOSPC is
        SIGBUS); ramfs's filemap_fault adds one page without readahead, a major fault. The
        engine's departure reads around it (FILES.md 12)."""
        if self.dev("memfs_fault_readaround") or self.fstype(ino) not in MEMFS:
            # do_sync_mmap_readahead's read-around, a quarter of it marked async (FILES.md 4)
            mx = max(1, self.ra_max)
            ra = ino.mra
            ra.start, ra.size, ra.async_size, ra.order = max(0, index - mx // 2), mx, mx // 4, 0
            self._ra_order(ino, ra, self.now)
            if index not in ino.pages:
                self._read_pages(ino, index, index + 1, self.now)
            self.vm["pgmajfault"] += 1
            return
        if self.fstype(ino) == "tmpfs":
            if self.mounts[ino.fs].free <= 0:
                raise SigBus(va)
        else:
            self.vm["pgmajfault"] += 1
        self._alloc_page(ino, index)

    # ---- observables ----------------------------------------------------------------------------------------
    def _mapcounts(self):
        """Per (ino, index): PTE mappings; per (ino, base): PMD mappings."""
        pte, pmd = {}, {}
        for mm in self.mms.values():
            for p in mm.pte.values():
                if p.anon is None:
                    pte[(p.ino, p.index)] = pte.get((p.ino, p.index), 0) + 1
            for p in mm.pmd.values():
                pmd[(p.ino, p.base)] = pmd.get((p.ino, p.base), 0) + 1
        return pte, pmd

    def _nr_mapped(self) -> int:
        pte, pmd = self._mapcounts()
        n = 0
        for i in self.inodes:
            for x, p in i.pages.items():
                if (i.ino, x) in pte or (p.huge >= 0 and (i.ino, p.huge) in pmd):
                    n += 1
        return n

    def _pmd_mapped_counts(self) -> dict:
        _, pmd = self._mapcounts()
        out = {"nr_shmem_pmdmapped": 0, "nr_file_pmdmapped": 0}
        for (ii, _b) in pmd:
            out["nr_shmem_pmdmapped" if self.fstype(self.inodes[ii]) == "tmpfs"
                else "nr_file_pmdmapped"] += 1
        return out

    def rss(self, pid: int) -> dict:
        """/proc/PID/status RssAnon, RssFile, RssShmem (kB)."""
        mm = self.mms[pid]
        out = {"RssAnon": 0, "RssFile": 0, "RssShmem": 0}
        for p in list(mm.pte.values()) + list(mm.pmd.values()):
            n = HPAGE_NR if isinstance(p, Pmd) else 1
            if isinstance(p, Pte) and p.anon is not None:
                out["RssAnon"] += 4
            else:
                t = self.fstype(self.inodes[p.ino])
                shmem = t == "tmpfs" or (t == "ramfs" and self.dev("ramfs_rss_shmem"))
                out["RssShmem" if shmem else "RssFile"] += 4 * n
        return out

    def vmas(self, pid: int) -> list:
        return [(v.start, v.end, v.flags, v.ino, v.pgoff) for v in self.mms[pid].vmas]

    def smaps(self, pid: int) -> list:
        """Per VMA: Rss, Pss, Pss_Dirty, Shared/Private Clean/Dirty, Anonymous (kB),
        ShmemPmdMapped, FilePmdMapped. A page's mapcount is its PTE mappings plus its folio's PMD
        mappings; it is dirty if its leaf or (a file page) its folio is; Pss is 4096 / mapcount
        bytes per page, summed, then in kB."""
        mm = self.mms[pid]
        pte, pmd = self._mapcounts()
        out = []
        for v in mm.vmas:
            d = dict.fromkeys(("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty",
                               "Private_Clean", "Private_Dirty", "Anonymous", "ShmemPmdMapped",
                               "FilePmdMapped"), 0)
            pss = pss_dirty = 0

            def account(mc, dirty, anon):
                nonlocal pss, pss_dirty
                d["Rss"] += 4
                d["Anonymous"] += 4 if anon else 0
                pss += PAGE // max(mc, 1)
                pss_dirty += PAGE // max(mc, 1) if dirty else 0
                kind = ("Shared_" if mc >= 2 else "Private_") + ("Dirty" if dirty else "Clean")
                d[kind] += 4

            for h, p in sorted(mm.pmd.items()):
                if not v.start <= h < v.end:
                    continue
                ino = self.inodes[p.ino]
                folio = ino.pages[p.base]
                for k in range(HPAGE_NR):
                    account(pmd[(p.ino, p.base)] + pte.get((p.ino, p.base + k), 0),
                            p.dirty or folio.dirty, False)
                d["ShmemPmdMapped" if self.fstype(ino) == "tmpfs" else "FilePmdMapped"] += 4 * HPAGE_NR
            for va, p in sorted(mm.pte.items()):
                if not v.start <= va < v.end:
                    continue
                if p.anon is not None:
                    account(p.anon.mapcount, p.dirty, True)
                    continue
                page = self.inodes[p.ino].pages[p.index]
                mc = pte[(p.ino, p.index)] + (pmd.get((p.ino, page.huge), 0) if page.huge >= 0 else 0)
                account(mc, p.dirty or page.dirty, False)
            d["Pss"] = pss >> 10
            d["Pss_Dirty"] = pss_dirty >> 10
            out.append(d)
        return out

    def check(self) -> None:
        super().check()
        for mm in self.mms.values():
            for p in mm.pmd.values():
                page = self.inodes[p.ino].pages[p.base]
                assert page.huge == p.base
            for va, p in mm.pte.items():
                assert (va - va % PMD) not in mm.pmd and (va - va % PMD) in mm.tables
                if p.anon is None:
                    assert p.index in self.inodes[p.ino].pages
        anon = {id(p.anon): p.anon for mm in self.mms.values() for p in mm.pte.values() if p.anon}
        assert len(anon) == self.anon_pages
        for a in anon.values():
            assert a.mapcount == sum(p.anon is a for mm in self.mms.values() for p in mm.pte.values())
