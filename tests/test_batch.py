"""One engine, two ways to drive it: a batch of interleaved op streams leaves the same state as
the same operations made call by call in the order the batch ran them; plus records and samples."""
import numpy as np
import pytest

import mmcore
from mmcore.kernels import consts as K

BASE = 0x7F0000000000
MiB = 1 << 20


def _ops(t, u, w):
    heap = 0x555555559000
    return [
        (t, "prctl", 41, 1, 0), (t, "mmap", BASE, 8 * MiB, 3, 0x32),
        (u, "mmap", 0, 4 * MiB, 3, 0x22 | 0x8000), (w, "mmap", BASE, 4 * MiB, 3, 0x32),
        (t, "touch", BASE, 8 * MiB, 4096, 1), (u, "madvise", 0x7FFFF7800000, MiB, 4),
        (w, "touch", BASE, 4 * MiB, 8192, 1), (t, "mprotect", BASE, 4096, 1),
        (t, "access", BASE, 1), (u, "brk", heap + 5000), (w, "madvise", BASE + MiB, 8192, 8),
        (t, "munmap", BASE + MiB, MiB), (w, "mlock", BASE, 3 * 4096),
        (u, "touch", heap, 5000, 64, 1), (w, "munlock", BASE, 3 * 4096),
        (w, "madvise", BASE + 2 * MiB, 4 * MiB, 23), (u, "munmap", 0x7FFFF7800000, 4 * MiB),
    ]


def _step(op):
    task, name, *args = op
    try:
        if name == "prctl":
            return 0, task.prctl(*args)
        if name == "mmap":
            return 0, task.mmap(args[1], args[2], args[3], args[0])
        if name == "touch":
            task.touch(args[0], args[1], args[2], bool(args[3]))
        elif name == "access":
            task.access([args[0]], bool(args[1]))
        elif name == "brk":
            return 0, task.brk(args[0])
        else:
            getattr(task, name)(*args)
        return 0, 0
    except mmcore.SegmentationFault:
        return K.SEGV, 0
    except OSError as e:
        return -e.errno, 0


@pytest.mark.boundscheck
@pytest.mark.parametrize("ncpus", [1, 2, 3])
def test_batch_equals_call_by_call(ncpus, checked):
    cfg = dict(memory="128MiB", ncpus=ncpus, record_faults=True, sample_interval_ns=50_000)
    m1 = mmcore.Machine(cfg)
    ops1 = _ops(m1.spawn(), m1.spawn(), m1.spawn())
    res = m1.run(ops1)
    m2 = mmcore.Machine(cfg)
    ops2 = _ops(m2.spawn(), m2.spawn(), m2.spawn())
    got = [None] * len(ops2)
    for k in np.argsort(res[2]):
        got[k] = _step(ops2[k])
    statuses = [g[0] for g in got]
    assert statuses == res[0].tolist()
    for k, (op, g) in enumerate(zip(ops2, got)):
        if res[0, k] != 0:
            continue
        if op[1] in ("prctl", "mmap", "brk"):
            assert g[1] == res[1, k], f"op {k} {op[1]}: value"
        elif op[1] == "touch":                 # the batch reports the accesses made
            assert res[1, k] == (op[3] + op[4] - 1) // op[4], f"op {k} touch: accesses"
        elif op[1] == "access":
            assert res[1, k] == 1
        else:
            assert res[1, k] == 0 == g[1], f"op {k} {op[1]}: value"
    for name, a, b in zip(m1.state._fields, m1.state, m2.state):
        assert np.array_equal(a, b), f"state array {name} differs"
    e1, e2 = m1.events(), m2.events()
    for key in e1:
        assert np.array_equal(e1[key], e2[key]), key
    checked(m1)
    assert K.SEGV in statuses and -12 in statuses          # the stream exercises errors too


def test_batch_interleaves_by_start_time():
    m = mmcore.Machine(dict(memory="64MiB", ncpus=2))
    a, b = m.spawn(), m.spawn()
    ops = [(a, "mmap", 0, MiB, 3, 0x22 | 0x8000), (a, "mmap", 0, 4096, 3, 0x22),
           (b, "mmap", 0, 4096, 3, 0x22), (b, "mmap", 0, 4096, 3, 0x22)]
    res = m.run(ops)
    # a's populating mmap takes long, so b's two cheap calls run before a's second
    assert res[2].tolist() == [0, 3, 1, 2]
    with pytest.raises(ValueError, match="unknown operation"):
        m.run([(a, "fly", 1)])
    with pytest.raises(ValueError, match="takes 2 arguments"):
        m.run([(a, "munmap", 1)])


def test_fault_records_and_samples():
    m = mmcore.Machine(dict(memory="256MiB", record_faults=True, sample_interval_ns=100_000))
    t = m.spawn()
    a = t.mmap(8 * MiB)
    t.touch(a, 4096, write=False)                  # the huge zero page
    t.touch(a + 2 * MiB, 6 * MiB)                  # three THPs
    u = m.spawn()
    u.prctl(41, 1)
    b = u.mmap(64 * MiB)
    u.touch(b, 64 * MiB)                           # 16384 4 KiB faults: the buffer flushes
    ev = m.events()
    kinds = np.bincount(ev["kind"], minlength=7)
    assert kinds[K.FK_HUGE_ZERO] == 1 and kinds[K.FK_THP] == 3 and kinds[K.FK_ANON] == 16384
    assert len(ev["time_ns"]) == m.vmstat()["pgfault"]
    assert np.all(np.diff(ev["time_ns"][ev["pid"] == u.pid]) >= 0)
    assert ev["latency_ns"][0] >= 512 * 100 // 1        # zeroing the huge zero page
    s = m.samples()
    assert np.all(np.diff(s["time_ns"]) == 100_000)
    assert s["pgfault"][-1] <= m.vmstat()["pgfault"] and s["nr_free_pages"][0] == 65536
