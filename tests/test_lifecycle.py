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
