"""fork, threads, execve, exit and mprotect: copy-on-write, inheritance and teardown."""
import errno

import pytest

import mmcore
from mmcore import (MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PR_GET_THP_DISABLE,
                    PR_SET_THP_DISABLE, PR_THP_DISABLE_EXCEPT_ADVISED, PROT_NONE, PROT_READ,
                    PROT_WRITE)
from mmcore.kernels import consts as K

MiB = 1 << 20
BASE = 0x7F0000000000
FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED


@pytest.mark.boundscheck
def test_fork_shares_pages_copy_on_write(machine, checked):
    m = machine()
    p = m.spawn("parent")
    p.prctl(PR_SET_THP_DISABLE, 1)
    a = p.mmap(16 * 4096, addr=BASE, flags=FIXED)
    p.touch(a, 16 * 4096)
    free_before = m.meminfo()["MemFree"]
    c = p.fork()
    checked(m)
    # parent and child map the same frames, read-only, the child's entries old (A clear)
    pp, cp = p.page_table(), c.page_table()
    assert pp.keys() == cp.keys()
    for va in pp:
        assert pp[va] & ~K._PAGE_ACCESSED == cp[va] & ~K._PAGE_ACCESSED
        assert not pp[va] & K._PAGE_RW and not cp[va] & K._PAGE_ACCESSED
    assert c.status()["RssAnon"] == p.status()["RssAnon"] == 64
    assert m.vmstat()["nr_anon_pages"] == 16          # each page counted once
    assert m.meminfo()["MemFree"] == free_before - 4 * 4   # child PGD, PUD, PMD, PTE table
    assert c.prctl(PR_GET_THP_DISABLE) == 1            # inherited
    c.touch(a, 4096)                                   # the child copies
    assert c.page_table()[a] != p.page_table()[a]
    assert m.vmstat()["nr_anon_pages"] == 17
    p.touch(a, 4096)                                   # the parent's page is now its own: reuse
    assert m.vmstat()["nr_anon_pages"] == 17
    assert p.page_table()[a] & K._PAGE_RW
    checked(m)


def test_fork_of_thp_and_split_on_cow(machine, checked):
    m = machine()
    p = m.spawn()
    a = p.mmap(2 * MiB)
    p.touch(a, 2 * MiB)
    c = p.fork()
    assert c.smaps(a)["AnonHugePages"] == 2048 and m.vmstat()["nr_anon_transparent_hugepages"] == 1
    assert c.status()["VmPTE"] == p.status()["VmPTE"]   # the child deposited a table too
    c.touch(a + 4096, 1)
    v = m.vmstat()
    assert v["thp_split_pmd"] == 1 and c.smaps(a)["AnonHugePages"] == 0
    assert p.smaps(a)["AnonHugePages"] == 2048
    checked(m)


def test_exit_and_execve_free_everything(machine, checked):
    m = machine()
    initial = m.buddyinfo()
    p = m.spawn()
    p.prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED)
    a = p.mmap(8 * MiB)
    p.touch(a, 8 * MiB, stride=64 * 1024)
    t = p.clone_thread()
    t.touch(a + 4096, 1)
    c = p.fork()
    p.execve("next")
    assert not t._alive_flag()                       # de_thread: the other thread exited
    assert p.prctl(PR_GET_THP_DISABLE) == 3          # kept across exec
    assert p.status()["VmRSS"] == 0 and c.status()["VmRSS"] > 0
    checked(m)
    c.exit()
    assert m.buddyinfo() == initial and m.meminfo()["PageTables"] == 0
    with pytest.raises(ProcessLookupError):
        c.touch(a, 1)
    checked(m)


@pytest.mark.boundscheck
def test_mprotect_rules(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(4 * MiB, addr=BASE, flags=FIXED)
    t.touch(a, 4 * MiB)
    t.mprotect(a + 4096, 8192, PROT_READ)              # inside a THP: the PMD splits first
    assert m.vmstat()["thp_split_pmd"] == 1
    assert [v[2] & 7 for v in t.vmas() if BASE <= v[0] < BASE + 4 * MiB] == [3, 1, 3, 3] or \
        [v[2] & 7 for v in t.vmas() if BASE <= v[0] < BASE + 4 * MiB] == [3, 1, 3]
    assert not t.page_table()[a + 4096] & K._PAGE_RW
    with pytest.raises(mmcore.SegmentationFault):
        t.touch(a + 4096, 1)
    t.mprotect(a, 4 * MiB, PROT_NONE)
    assert t.status()["RssAnon"] == 4096                 # still mapped
    with pytest.raises(mmcore.SegmentationFault):
        t.touch(a, 1, write=False)
    t.mprotect(a, 4 * MiB, PROT_READ | PROT_WRITE)
    faults = m.vmstat()["pgfault"]
    t.touch(a, 4 * MiB)                                  # exclusive pages got RW back: no faults
    assert m.vmstat()["pgfault"] == faults
    assert len([v for v in t.vmas() if BASE <= v[0] < BASE + 4 * MiB]) == 1   # merged again
    checked(m)


def test_mprotect_errors(machine):
    t = machine().spawn()
    a = t.mmap(3 * 4096)
    t.munmap(a + 4096, 4096)
    with pytest.raises(OSError) as e:
        t.mprotect(a, 3 * 4096, PROT_READ)
    assert e.value.errno == errno.ENOMEM
    assert t.vmas()[0][2] & 7 == PROT_READ or any(v[0] == a and v[2] & 7 == 1 for v in t.vmas())
    for args in ((a + 1, 4096, PROT_READ), (a, 4096, 0x100)):
        with pytest.raises(OSError) as e:
            t.mprotect(*args)
        assert e.value.errno == errno.EINVAL
    t.mprotect(a, 0, PROT_READ)


@pytest.mark.boundscheck
def test_mlock_populates_locks_and_counts(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(4 * MiB, addr=BASE, flags=FIXED)
    t.touch(a, 4 * MiB, stride=2 * MiB)                  # two THPs
    t.mlock(a + 4096, 8192)                              # inside a THP: the PMD splits first
    assert m.vmstat()["thp_split_pmd"] == 1
    assert t.status()["VmLck"] == 8
    assert m.meminfo()["Mlocked"] == 0                   # a THP partly in range is not mlocked
    assert t.smaps(a + 4096)["Locked"] == 8
    t.munlock(a, 4 * MiB)
    assert t.status()["VmLck"] == 0 and m.meminfo()["Mlocked"] == 0
    b = t.mmap(64 * 1024, addr=BASE + 8 * MiB, flags=FIXED)
    t.mlock(b + 5, 100)                                  # any address: page-rounded
    assert t.smaps(b)["Rss"] == 4 and t.status()["VmLck"] == 4
    checked(m)


def test_mlockall_future_and_errors(machine, checked):
    m = machine()
    t = m.spawn()
    for bad in (0, 4, 8, -1):
        with pytest.raises(OSError) as e:
            t.mlockall(bad)
        assert e.value.errno == errno.EINVAL
    t.mlockall(mmcore.MCL_CURRENT | mmcore.MCL_FUTURE)
    a = t.mmap(MiB)
    assert t.smaps(a)["Rss"] == 1024 and t.smaps(a)["Locked"] == 1024   # populated by mmap
    with pytest.raises(OSError) as e:
        t.madvise(a, 4096, mmcore.MADV_DONTNEED)
    assert e.value.errno == errno.EINVAL
    c = t.fork()                                          # VM_LOCKED is not inherited
    assert c.status()["VmLck"] == 0 and t.status()["VmLck"] == 1024
    t.munlockall()
    assert t.status()["VmLck"] == 0 and m.meminfo()["Mlocked"] == 0
    hole = t.mmap(3 * 4096)
    t.munmap(hole + 4096, 4096)
    with pytest.raises(OSError) as e:
        t.mlock(hole, 3 * 4096)
    assert e.value.errno == errno.ENOMEM
    checked(m)


def test_brk_grows_and_shrinks_the_heap(machine, checked):
    m = machine()
    t = m.spawn()
    start = t.brk(0)
    assert start == 0x555555559000
    assert t.brk(start - 4096) == start                  # below start_brk: unchanged
    assert t.brk(start + 10000) == start + 10000
    assert t.smaps(start)["Size"] == 12
    t.touch(start, 10000)
    assert t.brk(start + 100) == start + 100
    assert t.smaps(start)["Size"] == 4 and t.status()["RssAnon"] == 4
    blocker = t.mmap(4096, addr=start + 8192, flags=FIXED)
    assert t.brk(start + 5 * 4096) == start + 100        # the range is taken: old break
    assert blocker == start + 8192
    checked(m)


def test_madv_free_marks_clean_exclusive_pages_lazy(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(4 * 4096)
    t.touch(a, 4 * 4096)
    c = t.fork()
    t.touch(a, 4096)                                      # parent's own copy of page 0
    t.madvise(a, 4 * 4096, mmcore.MADV_FREE)
    assert t.smaps(a)["LazyFree"] == 4                    # only the page mapped once
    pte = t.page_table()[a]
    assert not pte & (K._PAGE_DIRTY | K._PAGE_ACCESSED)
    t.touch(a, 1)                                         # written again: no longer lazy
    assert t.smaps(a)["LazyFree"] == 0
    assert c.smaps(a)["Rss"] == 16
    checked(m)
