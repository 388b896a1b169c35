"""Hand-computed checks of the reference's khugepaged and MADV_COLLAPSE over page-cache ranges
(file_collapse.py, FILES.md 15), Linux's rules (no deviations), without the engine."""
import errno
import os

import pytest

from tests.reference.file_collapse import MADV_COLLAPSE, RefCollapse
from tests.reference.file_maps import MADV_HUGEPAGE, PMD
from tests.reference.file_model import LRU_INACTIVE_ANON, PAGE

MiB = 1 << 20
COSTS = {k: 1000 for k in ("syscall", "copy", "alloc", "clear", "mkwrite", "da_reserve", "unwritten_map",
                           "block_alloc", "unwritten_convert", "reclaim_page", "lookup_hit", "lookup_miss")}
CC = {"scan_pte": 10, "copy_page": 200, "clear_page": 100, "tlb_flush": 100}
BASE = 1 << 46                            # where the "engine" placed the mappings
SPECIALS = [(BASE + 64 * MiB, BASE + 64 * MiB + 0x8000)]
RW = 3


def machine(size=64 * MiB, huge="never", **kw):
    r = RefCollapse(1 << 30, COSTS, (100, 200, 300), thp_enabled="always",
                    khugepaged={"scan_sleep_millisecs": 100, **kw}, collapse_costs=CC,
                    specials=SPECIALS)
    r.mount("/t", "tmpfs", size, huge=huge)
    pid = r.spawn("t")
    fd = r.open(pid, "/t/f", os.O_CREAT | os.O_RDWR)
    return r, pid, fd


def test_enrolment_at_mmap_and_progress_one_range_per_visit():
    """huge=always: mmap enrols; pages_to_scan 1026 = two visits of 513: a wakeup scans two
    (empty: thp_scan_exceed_none_pte) ranges; the next one the third, then a visit past the last
    VMAs (1 + the vDSO's 1) completes the pass, and a new pass starts in the same wakeup (the
    cursor passed the list's head once) with the first range."""
    r, pid, fd = machine(huge="always", pages_to_scan=1026)
    r.ftruncate(pid, fd, 6 * MiB)
    r.mmap(pid, BASE, 6 * MiB, RW, True, fd, 0)
    assert r.kh_list == [pid] and r.kh_wake == r.tasks[pid].clock + COSTS["syscall"]
    r.advance(1)                           # the first wakeup, due at the mmap
    assert (r.kh_addr, r.kh_full_scans, r.vm["thp_scan_exceed_none_pte"]) == (BASE + 2 * PMD, 0, 2)
    assert r.kh_busy == 2 * 512 * CC["scan_pte"]
    r.advance(200_000_000)
    assert (r.kh_cur, r.kh_addr, r.kh_full_scans, r.vm["thp_scan_exceed_none_pte"]) == \
        (pid, BASE + PMD, 1, 4)


def test_collapse_of_small_pages_by_khugepaged_then_pmd_fault():
    r, pid, fd = machine(huge="advise")
    r.pwrite(pid, fd, 0, 2 * MiB)                      # 512 small pages
    r.mmap(pid, BASE, 2 * MiB, RW, True, fd, 0)
    r.touch(pid, BASE, 4 * PAGE, False)                # a PTE table mapping some of them
    assert r.kh_list == []                             # advise without VM_HUGEPAGE: not enrolled
    r.madvise(pid, BASE, 2 * MiB, MADV_HUGEPAGE)
    r.advance(1)
    ino = r.inodes[0]
    assert r.huge_folios(ino) == [0] and r.kh_collapsed == 1 and r.vm["thp_collapse_alloc"] == 1
    assert ino.pages[0].dirty and not ino.pages[0].referenced       # folio_mark_dirty (shmem)
    mm = r.mms[pid]
    assert not mm.pte and BASE not in mm.tables        # unmapped, table retracted
    assert r.kh_busy == 512 * CC["scan_pte"] + 512 * CC["copy_page"] + 2 * CC["tlb_flush"]
    r.touch(pid, BASE, 1, False)
    assert BASE in mm.pmd                              # the folio faults in by a PMD


def test_madv_collapse_empty_range_is_truncated():
    r, pid, fd = machine()
    r.ftruncate(pid, fd, 4 * MiB)
    r.mmap(pid, BASE, 4 * MiB, RW, True, fd, 0)
    r.touch(pid, BASE + PMD, 1, False)
    with pytest.raises(OSError) as e:
        r.madvise(pid, BASE, 4 * MiB, MADV_COLLAPSE)
    assert e.value.errno == errno.EINVAL
    # SCAN_TRUNCATED after allocating; the call ends there: the second range is left alone
    assert r.vm["thp_collapse_alloc"] == 1 and r.huge_folios(r.inodes[0]) == []


def test_madv_collapse_rolls_back_when_the_holes_do_not_fit():
    r, pid, fd = machine(size=400 * PAGE)
    r.ftruncate(pid, fd, 2 * MiB)
    for i in (2, 1, 0):
        r.pwrite(pid, fd, i * PAGE, PAGE)
    r.mmap(pid, BASE, 2 * MiB, RW, True, fd, 0)
    r.touch(pid, BASE, 3 * PAGE, False)
    assert r.lru[LRU_INACTIVE_ANON] == [(0, 0), (0, 1), (0, 2)]
    with pytest.raises(OSError) as e:
        r.madvise(pid, BASE, 2 * MiB, MADV_COLLAPSE)
    assert e.value.errno == errno.EINVAL and r.vm["thp_collapse_alloc"] == 1
    assert not r.mms[pid].pte                          # try_to_unmap happened before the charge
    assert r.lru[LRU_INACTIVE_ANON] == [(0, 2), (0, 1), (0, 0)]     # put back in index order
    assert r.mounts[0].free == 397


def test_retract_skips_private_vmas_with_an_anon_vma():
    r, pid, fd = machine()
    r.pwrite(pid, fd, 0, 4 * MiB)
    r.mmap(pid, BASE, 4 * MiB, RW, False, fd, 0)       # private
    r.touch(pid, BASE + PMD, 1, True)                  # a private copy: anon_vma
    r.touch(pid, BASE, 16 * PAGE, False)
    other = r.spawn("u")
    fd2 = r.open(other, "/t/f", os.O_RDWR)
    r.mmap(other, BASE + 8 * MiB, 2 * MiB, RW, True, fd2, 0)
    r.touch(other, BASE + 8 * MiB, 1, False)
    assert r.madvise(other, BASE + 8 * MiB, 2 * MiB, MADV_COLLAPSE) == 0
    mm = r.mms[pid]
    assert BASE in mm.tables and not any(a < BASE + PMD for a in mm.pte)   # emptied, kept
    assert BASE + 8 * MiB in r.mms[other].pmd
    r.touch(pid, BASE + 32 * PAGE, 1, False)
    assert BASE not in mm.pmd                          # a PTE table there: 4 KiB again
