"""Overcommit accounting: VM_ACCOUNT, Committed_AS, CommitLimit and vm.overcommit_memory 0/1/2."""
import errno

import pytest

import mmcore
from mmcore.check import check_invariants
from mmcore.kernels import consts as K

MiB = 1 << 20
RO, RW = mmcore.PROT_READ, mmcore.PROT_READ | mmcore.PROT_WRITE
ANON = mmcore.MAP_PRIVATE | mmcore.MAP_ANONYMOUS


def machine(memory="1GiB", **kw):
    m = mmcore.Machine({"memory": memory, **kw})
    return m, m.spawn("app")


def committed(m):
    return m.meminfo()["Committed_AS"]


def errno_of(fn, *a, **kw):
    with pytest.raises(OSError) as e:
        fn(*a, **kw)
    return e.value.errno


def vma_flags(t, addr):
    return t.smaps(addr)["flags"]


def test_commit_limit_is_the_ratio_of_ram():
    m, t = machine()
    assert m.meminfo()["CommitLimit"] == 512 * 1024          # 1 GiB x 50 %, no swap
    t.write_sysctl("vm.overcommit_ratio", 80)
    assert m.meminfo()["CommitLimit"] == 1024 * 1024 * 80 // 100
    t.write_sysctl("vm.overcommit_kbytes", 100 * 1024)       # kbytes takes over, ratio cleared
    assert m.meminfo()["CommitLimit"] == 100 * 1024 and m.config.overcommit_ratio == 80
    t.write_sysctl("vm.overcommit_ratio", 30)                # and back: kbytes cleared
    assert m.config.overcommit_kbytes == 0 and m.meminfo()["CommitLimit"] == 1024 * 1024 * 30 // 100


def test_private_writable_mappings_are_charged_and_given_back():
    m, t = machine()
    a = t.mmap(64 * MiB)
    assert committed(m) == 64 * 1024 and vma_flags(t, a) & K.VM_ACCOUNT
    t.munmap(a + 16 * MiB, 16 * MiB)                         # the unmapped part is given back
    assert committed(m) == 48 * 1024
    b = t.mmap(8 * MiB, RO)                                  # read-only: not charged
    assert committed(m) == 48 * 1024 and not vma_flags(t, b) & K.VM_ACCOUNT
    t.mprotect(b, 4 * MiB, RW)                               # made writable: charged now
    assert committed(m) == 52 * 1024 and vma_flags(t, b) & K.VM_ACCOUNT
    t.mprotect(b, 4 * MiB, RO)                               # the charge stays (VM_ACCOUNT kept)
    assert committed(m) == 52 * 1024
    c = t.mmap(8 * MiB, RW, ANON | mmcore.MAP_NORESERVE)     # MAP_NORESERVE: not charged
    assert committed(m) == 52 * 1024 and vma_flags(t, c) & K.VM_NORESERVE
    t.munmap(a, 64 * MiB)
    t.munmap(b, 8 * MiB)
    assert committed(m) == 0
    check_invariants(m)


def test_shared_file_mappings_are_not_charged_private_ones_are():
    import os
    m, t = machine()
    m.mount("/d", "tmpfs", size="64MiB")
    fd = t.open("/d/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, 4 * MiB)
    t.mmap(4 * MiB, RW, mmcore.MAP_SHARED, fd=fd)
    assert committed(m) == 0
    t.mmap(4 * MiB, RW, mmcore.MAP_PRIVATE, fd=fd)
    assert committed(m) == 4 * 1024


def test_fork_charges_the_copies_and_exit_gives_them_back():
    m, t = machine()
    t.mmap(32 * MiB)
    c = t.fork()
    assert committed(m) == 64 * 1024
    c.exit()
    assert committed(m) == 32 * 1024
    check_invariants(m)


def test_brk_growth_is_charged():
    m, t = machine()
    start = t.brk(0)
    t.brk(start + 8 * MiB)
    assert committed(m) == 8 * 1024
    t.brk(start + 4 * MiB)
    assert committed(m) == 4 * 1024


def test_heuristic_mode_refuses_only_more_than_ram():
    """6.18 (as a 6.18 host does): a request larger than RAM + swap fails, one just under succeeds
    however little memory is free."""
    m, t = machine()
    t.mmap(1 << 30)                                          # all of RAM: fine
    assert errno_of(t.mmap, (1 << 30) + 4096) == errno.ENOMEM
    filler = t.mmap(900 * MiB)
    t.touch(filler, 900 * MiB)                               # little is free now
    t.mmap(1 << 30)                                          # still fine: no free-memory test
    assert committed(m) == (2048 + 900) * 1024


def test_old_heuristic_counts_free_memory():
    """3.10's heuristic: free + page cache + reclaimable slab, less the reserves, must cover it."""
    m, t = machine(kernel="3.10")
    filler = t.mmap(600 * MiB)
    t.touch(filler, 600 * MiB)
    assert errno_of(t.mmap, 600 * MiB) == errno.ENOMEM       # about 420 MiB free
    t.mmap(300 * MiB)
    m2, t2 = machine(kernel="6.18")
    f2 = t2.mmap(600 * MiB)
    t2.touch(f2, 600 * MiB)
    t2.mmap(600 * MiB)                                       # 6.18: fine


def test_always_mode_never_refuses():
    m, t = machine(overcommit_memory=1)
    t.mmap(64 << 30)
    assert committed(m) == 64 << 20


def test_strict_mode_keeps_committed_below_the_limit():
    m, t = machine(overcommit_memory=2)
    limit = m.meminfo()["CommitLimit"] // 4                  # pages
    admin = m.config.reserves_kbytes[0] // 4                 # 8 MiB: min(1 GiB / 32, 8 MiB)
    assert admin == 2048
    # allowed = limit - admin - min(total_vm / 32, user reserve); Committed_AS must stay below
    assert errno_of(t.mmap, (limit - admin) * 4096) == errno.ENOMEM
    a = t.mmap((limit - admin - 64) * 4096)
    assert errno_of(t.mmap, 1 * MiB) == errno.ENOMEM
    # MAP_NORESERVE is charged all the same in mode 2
    assert errno_of(t.mmap, MiB, RW, ANON | mmcore.MAP_NORESERVE) == errno.ENOMEM
    # a failed mprotect leaves the mapping as it was
    b = t.mmap(4 * MiB, RO)
    assert errno_of(t.mprotect, b, 4 * MiB, RW) == errno.ENOMEM
    assert not vma_flags(t, b) & K.VM_WRITE
    # fork cannot double the charge
    assert errno_of(t.fork) == errno.ENOMEM
    # brk fails quietly: the break stays
    start = t.brk(0)
    assert t.brk(start + 8 * MiB) == start
    t.munmap(a, (limit - admin - 64) * 4096)
    assert committed(m) == 0
    # root may use the admin reserve: what a user is refused, root gets
    assert errno_of(t.mmap, (limit - 64) * 4096) == errno.ENOMEM
    root = m.spawn("root", cap_sys_admin=True)
    root.mmap((limit - 64) * 4096)
    check_invariants(m)


def test_sysctl_bad_values():
    m, t = machine()
    assert errno_of(t.write_sysctl, "vm.overcommit_memory", 3) == errno.EINVAL
    assert errno_of(t.write_sysctl, "vm.overcommit_ratio", -1) == errno.EINVAL
    with pytest.raises(mmcore.ConfigError, match="overcommit_memory"):
        mmcore.Config(overcommit_memory=5)
