"""Machine snapshots: copies that branch independently, and save/load through HDF5."""
import os

import h5py
import numpy as np
import pytest

import mmcore
from mmcore.check import check_files, check_invariants

MiB = 1 << 20


def warmed():
    m = mmcore.Machine(mmcore.Config(memory="256MiB", thp_enabled="madvise",
                                     sample_interval_ns=1_000_000))
    m.mount("/d", "ext4", size="64MiB")
    t = m.spawn("app")
    a = t.mmap(16 * MiB)
    t.touch(a, 16 * MiB)
    fd = t.open("/d/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, 2 * MiB)
    t.madvise(a, 16 * MiB, mmcore.MADV_HUGEPAGE)        # khugepaged has work pending
    return m, t, a, fd


def workload(m, a, fd):
    t = m.tasks()[0]
    rng = np.random.default_rng(3)
    t.access(a + rng.integers(0, 16 * MiB, 50_000))
    t.pwrite(fd, MiB, MiB)
    t.fsync(fd)
    m.advance(20_000_000_000)
    return t


def observe(m):
    t = m.tasks()[0]
    return (m.vmstat(), m.meminfo(), t.counters(), t.smaps_rollup(), m.khugepaged(),
            m.fs_stats("/d"), t.time_ns)


def test_branches_from_a_snapshot_are_independent_and_identical():
    m, t, a, fd = warmed()
    snap = m.snapshot()
    b1, b2 = mmcore.Machine.restore(snap), mmcore.Machine.restore(snap)
    workload(b1, a, fd)
    workload(b2, a, fd)
    assert observe(b1) == observe(b2)                 # same state, same inputs, same bits
    workload(m, a, fd)
    assert observe(m) == observe(b1)                  # and the same as the original going on
    for x in (m, b1, b2):
        check_invariants(x)
        check_files(x)
    b3 = mmcore.Machine.restore(snap)                 # the snapshot itself never moved
    assert b3.tasks()[0].time_ns < b1.tasks()[0].time_ns
    assert b3.khugepaged()["pages_collapsed"] == 0 < b1.khugepaged()["pages_collapsed"]


def test_save_and_load(tmp_path):
    m, t, a, fd = warmed()
    p = tmp_path / "m.h5"
    m.save(p)
    with h5py.File(p) as f:                           # plain h5py reads the state arrays
        assert f.attrs["complete"] and f["state/fr_flags"].shape == m.state.fr_flags.shape
    m2 = mmcore.Machine.load(p)
    assert observe(m2) == observe(m)
    workload(m, a, fd)
    workload(m2, a, fd)
    assert observe(m2) == observe(m)
    check_invariants(m2)
    check_files(m2)


def test_load_refuses_bad_files(tmp_path):
    p = tmp_path / "half.h5"
    with h5py.File(p, "w") as f:
        f.attrs["complete"] = False
    with pytest.raises(ValueError, match="not a complete machine file"):
        mmcore.Machine.load(p)
    m, *_ = warmed()
    q = tmp_path / "m.h5"
    m.save(q)
    with h5py.File(q, "a") as f:
        f.attrs["layout"] = "0" * 16
    with pytest.raises(ValueError, match="another state layout"):
        mmcore.Machine.load(q)
    with pytest.raises(TypeError, match="MachineSnapshot"):
        mmcore.Machine.restore(m)
