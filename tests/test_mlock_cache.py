"""mlock of page-cache pages: the unevictable list, mlock_count and the unevictable_pgs_* events.

The expected event counts are those a 6.18 host printed for the same steps on order-0 folios
(tmpfs-backed and ext4 files, 2048 pages mlocked then munlocked: culled 2048, mlocked 2048,
rescued 2048, munlocked 2048; an anonymous mlock counts the same events)."""
import os

import pytest

import mmcore
from mmcore.check import check_files, check_invariants

MiB = 1 << 20
RW_ = os.O_CREAT | os.O_RDWR
UNEV = ("nr_unevictable", "unevictable_pgs_culled", "unevictable_pgs_rescued",
        "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared")


def setup(memory="64MiB", fstype="ext4", size=16 * MiB, **kw):
    m = mmcore.Machine({"memory": memory, **kw})
    m.mount("/d", fstype, size=None if fstype == "ramfs" else "1GiB")
    t = m.spawn("app")
    fd = t.open("/d/f", RW_)
    # a page per write: order-0 folios (6.18's ext4 caches longer writes in large folios, which
    # mlock treats apart: tests/test_large_folios.py)
    for off in range(0, size, 4096):
        t.pwrite(fd, off, 4096)
    if fstype in ("ext4", "ext2"):
        t.fsync(fd)
    return m, t, fd


def unev(m):
    v = m.vmstat()
    return {k: v[k] for k in UNEV}


def checked(m):
    check_invariants(m)
    check_files(m)


def test_mlock_moves_file_pages_to_the_unevictable_list_and_back():
    m, t, fd = setup()
    a = t.mmap(16 * MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.mlock(a, 8 * MiB)
    mi = m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 8192
    assert mi["Inactive(file)"] + mi["Active(file)"] == 8192          # the other half
    assert unev(m) == {"nr_unevictable": 2048, "unevictable_pgs_culled": 2048,
                       "unevictable_pgs_rescued": 0, "unevictable_pgs_mlocked": 2048,
                       "unevictable_pgs_munlocked": 0, "unevictable_pgs_cleared": 0}
    checked(m)
    t.munlock(a, 8 * MiB)
    mi = m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 0
    assert mi["Inactive(file)"] + mi["Active(file)"] == 16384
    assert unev(m) == {"nr_unevictable": 0, "unevictable_pgs_culled": 2048,
                       "unevictable_pgs_rescued": 2048, "unevictable_pgs_mlocked": 2048,
                       "unevictable_pgs_munlocked": 2048, "unevictable_pgs_cleared": 0}
    checked(m)


def test_reclaim_never_takes_mlocked_file_pages():
    m, t, fd = setup()
    a = t.mmap(16 * MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.mlock(a, 8 * MiB)
    hog = m.spawn("hog")
    b = hog.mmap(48 * MiB)
    hog.touch(b, 48 * MiB)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] > 0                # reclaim ran
    assert t.smaps(a)["Rss"] == t.smaps(a)["Locked"] >= 8192            # the locked half stayed
    assert m.meminfo()["Mlocked"] == 8192
    checked(m)
    # unlocked, the same pages are reclaimable again
    t.munlock(a, 16 * MiB)
    hog2 = m.spawn("hog2")
    c = hog2.mmap(8 * MiB)
    hog2.touch(c, 8 * MiB)
    assert t.smaps(a)["Rss"] < 8192
    checked(m)


def test_two_lockers_keep_count():
    """mlock_count: the page stays mlocked until the last locked mapping goes."""
    m, t, fd = setup(size=MiB)
    u = m.spawn("other")
    fd2 = u.open("/d/f", os.O_RDWR)
    a = t.mmap(MiB, flags=mmcore.MAP_SHARED, fd=fd)
    b = u.mmap(MiB, flags=mmcore.MAP_SHARED, fd=fd2)
    t.mlock(a, MiB)
    u.mlock(b, MiB)
    assert m.meminfo()["Mlocked"] == 1024
    assert unev(m)["unevictable_pgs_mlocked"] == 256 and unev(m)["unevictable_pgs_culled"] == 256
    checked(m)
    t.munlock(a, MiB)
    assert m.meminfo()["Mlocked"] == 1024 and unev(m)["unevictable_pgs_munlocked"] == 0
    checked(m)
    u.exit()                                              # exit_mmap munlocks as a zap does
    assert m.meminfo()["Mlocked"] == 0 and m.meminfo()["Unevictable"] == 0
    assert unev(m)["unevictable_pgs_rescued"] == 256
    checked(m)


def test_locked_vma_mlocks_at_fault_and_fault_around():
    """A page mapped into a VM_LOCKED VMA is mlocked there (folio_add_file_rmap_ptes):
    with MLOCK_ONFAULT one read fault maps its cached neighbours too, and all are mlocked."""
    m, t, fd = setup(size=MiB)
    a = t.mmap(MiB, flags=mmcore.MAP_SHARED | mmcore.MAP_FIXED, fd=fd, addr=1 << 32)
    t.mlock(a, MiB, onfault=True)
    assert m.meminfo()["Mlocked"] == 0
    t.touch(a + 5 * 4096, 1, write=False)
    mapped = t.smaps(a)["Rss"]
    assert mapped == 64                                   # fault_around_bytes
    assert m.meminfo()["Mlocked"] == m.meminfo()["Unevictable"] == mapped
    t.touch(a, MiB, write=True)                           # write faults: page_mkwrite, mlocked
    assert m.meminfo()["Mlocked"] == 1024
    checked(m)


def test_private_copy_in_a_locked_vma():
    """A write to a page-cache page mapped privately in a locked VMA: the copy is mlocked, the
    page-cache page leaves the locked VMA and is rescued."""
    m, t, fd = setup(size=MiB)
    a = t.mmap(MiB, prot=mmcore.PROT_READ | mmcore.PROT_WRITE, flags=mmcore.MAP_PRIVATE, fd=fd)
    t.mlock(a, MiB, onfault=True)
    t.touch(a, MiB, write=False)                          # read faults map the cache
    assert m.meminfo()["Mlocked"] == 1024
    before = unev(m)
    t.touch(a, 4096, write=True)
    after = unev(m)
    assert m.meminfo()["Mlocked"] == 1024                 # 255 cached + 1 anonymous copy
    assert after["unevictable_pgs_mlocked"] - before["unevictable_pgs_mlocked"] == 1
    assert after["unevictable_pgs_rescued"] - before["unevictable_pgs_rescued"] == 1
    assert m.meminfo()["AnonPages"] == 4
    checked(m)


def test_truncate_munlocks_what_it_unmaps():
    m, t, fd = setup(size=MiB)
    a = t.mmap(MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.mlock(a, MiB)
    t.ftruncate(fd, MiB // 2)
    assert m.meminfo()["Mlocked"] == 512
    assert unev(m)["unevictable_pgs_munlocked"] == 128
    assert unev(m)["unevictable_pgs_cleared"] == 0        # munlocked before they were freed
    checked(m)
    t.munmap(a, MiB)
    assert m.meminfo()["Mlocked"] == 0
    checked(m)


@pytest.mark.parametrize("fstype", ["ramfs", "tmpfs"])
def test_memory_filesystems(fstype):
    """ramfs pages are unevictable from the start (culled when added) and stay so after
    munlock; tmpfs pages leave the anon lists while mlocked and come back."""
    m, t, fd = setup(fstype=fstype, size=MiB)
    culled0 = unev(m)["unevictable_pgs_culled"]
    assert culled0 == (256 if fstype == "ramfs" else 0)
    a = t.mmap(MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.mlock(a, MiB)
    assert m.meminfo()["Mlocked"] == 1024 and m.meminfo()["Unevictable"] == 1024
    assert unev(m)["unevictable_pgs_culled"] == 256       # ramfs: already there, counted once
    checked(m)
    t.munlock(a, MiB)
    assert m.meminfo()["Mlocked"] == 0
    assert m.meminfo()["Unevictable"] == (1024 if fstype == "ramfs" else 0)
    assert unev(m)["unevictable_pgs_rescued"] == (0 if fstype == "ramfs" else 256)
    assert m.meminfo()["Shmem"] == (1024 if fstype == "tmpfs" else 0)
    checked(m)


def test_anonymous_mlock_counts_as_unevictable():
    m = mmcore.Machine({"memory": "64MiB"})
    t = m.spawn()
    a = t.mmap(8 * MiB)
    t.madvise(a, 8 * MiB, mmcore.MADV_NOHUGEPAGE)
    t.mlock(a, 8 * MiB)
    assert m.meminfo()["Unevictable"] == m.meminfo()["Mlocked"] == 8192
    assert unev(m)["unevictable_pgs_culled"] == unev(m)["unevictable_pgs_mlocked"] == 2048
    check_invariants(m)
    t.munlock(a, 8 * MiB)
    assert m.meminfo()["Unevictable"] == 0
    assert unev(m)["unevictable_pgs_rescued"] == unev(m)["unevictable_pgs_munlocked"] == 2048
    check_invariants(m)
