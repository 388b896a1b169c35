"""HDF5 run traces: round trips, the on-disk schema as plain h5py sees it, validation on both
sides, and the guarantee that a killed writer never leaves a complete-looking file behind."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import mmcore
from mmcore import trace as T
from mmcore.kernels import consts as K

CONFIG = json.dumps({"memory": "64MiB"})


def events(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"time_ns": np.cumsum(rng.integers(0, 5000, n)), "pid": rng.integers(1, 9, n),
            "op": rng.integers(0, len(K.OP_NAMES), n),
            "address": (0x7F0000000000 + rng.integers(0, 1 << 30, n)) & ~np.int64(4095),
            "result": -rng.integers(0, 2, n) * 12, "latency_ns": rng.integers(0, 1 << 20, n),
            "kind": rng.integers(0, len(T.FAULT_KIND_NAMES), n)}


def writer(path, **kw) -> T.TraceWriter:
    kw.setdefault("config_json", CONFIG)
    kw.setdefault("seed", 7)
    kw.setdefault("scenario_hash", "abc123")
    return T.TraceWriter(path, **kw)


def leftovers(d) -> list[str]:
    return sorted(os.listdir(d))


# ---- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("compression", [None, "lzf", "gzip"])
@pytest.mark.parametrize("chunk", [1, 16, 1 << 16])
def test_events_round_trip(tmp_path, compression, chunk):
    """Appends of every size against the chunk (empty, partial, exact, several chunks) read back
    exactly, in order."""
    parts = [events(n, seed=n) for n in (0, 1, 15, 16, 17, 50, 3, 200)]
    p = tmp_path / "run.h5"
    with writer(p, compression=compression, chunk=chunk) as w:
        for e in parts:
            w.append_events(e)
    with T.open(p) as t:
        assert t.n_events == sum(len(e["pid"]) for e in parts)
        for c in T.EVENT_COLUMNS:
            got = t.events[c]
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, np.concatenate([e[c] for e in parts]))
    assert leftovers(tmp_path) == ["run.h5"]


@pytest.mark.parametrize("chunk", [16, 1 << 12])
def test_lzf_incompressible_and_compressible_chunks(tmp_path, chunk):
    """Random 64-bit values do not shrink under LZF; constant and small values do. Both must
    read back through h5py's lzf filter."""
    rng = np.random.default_rng(3)
    n = 5 * chunk + 3
    ev = {c: rng.integers(-(1 << 63), (1 << 63) - 1, n, dtype=np.int64) for c in T.EVENT_COLUMNS}
    ev["result"] = np.zeros(n, np.int64)
    ev["pid"] = np.arange(n, dtype=np.int64) % 4
    p = tmp_path / "lzf.h5"
    with writer(p, compression="lzf", chunk=chunk) as w:
        w.append_events(ev)
    with h5py.File(p, "r") as f:
        for c in T.EVENT_COLUMNS:
            assert f["events"][c].compression == "lzf"
            np.testing.assert_array_equal(f["events"][c][()], ev[c])
        if chunk >= 1 << 12:
            # the zeros column really is compressed: its chunks are far smaller than raw
            stored = f["events/result"].id.get_storage_size()
            assert stored < n * 8 // 10


def test_lzf_encoder_on_patterns(tmp_path):
    """lzf columns read back equal on data built to hit LZF's corner cases: long runs (match
    length cap), short repeats, literal runs of 32, offsets at the 8 KiB limit."""
    rng = np.random.default_rng(11)
    pieces = [np.zeros(70000, np.uint8), rng.integers(0, 256, 9000, dtype=np.uint8),
              np.tile(rng.integers(0, 256, 8191, dtype=np.uint8), 3),
              np.tile(np.arange(7, dtype=np.uint8), 5000), rng.integers(0, 3, 40000, dtype=np.uint8)]
    data = np.concatenate(pieces)
    data = data[: data.shape[0] // 8 * 8]
    ev = {c: np.roll(data.view(np.int64), 97 * i) for i, c in enumerate(T.EVENT_COLUMNS)}
    p = tmp_path / "pat.h5"
    with writer(p, compression="lzf", chunk=1 << 13) as w:
        w.append_events(ev)
    with h5py.File(p, "r") as f:
        for c in T.EVENT_COLUMNS:
            np.testing.assert_array_equal(f["events"][c][()], ev[c])
        assert f["events/time_ns"].id.get_storage_size() < data.nbytes


def test_samples_hist_final_round_trip(tmp_path):
    p = tmp_path / "s.h5"
    smp1 = {"time_ns": np.arange(0, 50, 10), "nr_free_pages": np.arange(5) * 3, "pgfault": np.arange(5)}
    smp2 = {"pgfault": np.arange(5, 8), "time_ns": np.arange(50, 80, 10), "nr_free_pages": np.arange(3)}
    counts, edges = T.log2_histogram(np.array([0, 1, 3, 4, 4, 1000]))
    with writer(p, compression="lzf", chunk=2) as w:
        w.append_samples(smp1)
        w.append_samples(smp2)
        w.write_histogram("fault_latency_ns", counts, edges)
        w.write_final("vmstat", {"pgfault": 12, "thp_fault_alloc": 0})
        w.write_final("status.1", {"Name": "app", "VmRSS": 4096, "THP_enabled": 1})
    with T.open(p) as t:
        assert list(t.samples) == ["time_ns", "nr_free_pages", "pgfault"]
        for c in smp1:
            np.testing.assert_array_equal(t.samples[c], np.concatenate([smp1[c], smp2[c]]))
        h = t.hist["fault_latency_ns"]
        np.testing.assert_array_equal(h.counts, counts)
        np.testing.assert_array_equal(h.bucket_edges_ns, edges)
        assert t.final == {"vmstat": {"pgfault": 12, "thp_fault_alloc": 0},
                           "status.1": {"Name": "app", "VmRSS": 4096, "THP_enabled": 1}}
        assert t.attrs["seed"] == 7 and t.attrs["scenario_hash"] == "abc123"
        assert t.config == {"memory": "64MiB"}
        assert t.n_events == 0


def test_log2_histogram_buckets():
    v = np.array([0, 1, 2, 3, 4, 7, 8, 1023, 1024])
    counts, edges = T.log2_histogram(v)
    np.testing.assert_array_equal(edges, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048])
    # [0,1):0  [1,2):1  [2,4):2,3  [4,8):4,7  [8,16):8  ...  [512,1024):1023  [1024,2048):1024
    np.testing.assert_array_equal(counts, [1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 1, 1])
    assert counts.sum() == v.size
    with pytest.raises(ValueError, match=">= 0"):
        T.log2_histogram(np.array([3, -1]))


def test_identical_inputs_give_identical_files(tmp_path):
    digests = []
    for name in ("a.h5", "b.h5"):
        with writer(tmp_path / name, chunk=64) as w:
            w.append_events(events(1000))
            w.append_samples({"time_ns": np.arange(3), "pgfault": np.arange(3)})
            w.write_final("vmstat", {"pgfault": 3})
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


# ---- the schema, read with plain h5py -------------------------------------------------------------

def test_plain_h5py_reads_the_schema(tmp_path):
    p = tmp_path / "plain.h5"
    ev = events(100)
    with writer(p, compression="lzf", chunk=32, attrs={"sweep": "thp", "point": 3}) as w:
        w.append_events(ev)
        w.append_samples({"time_ns": np.arange(4), "pgfault": np.arange(4)})
        w.write_histogram("h", [2, 1], [0, 1, 2])
        w.write_final("vmstat", {"pgfault": 5})
    with h5py.File(p, "r") as f:
        a = f.attrs
        assert bool(a["complete"]) is True and int(a["schema_version"]) == T.SCHEMA_VERSION
        assert json.loads(a["config"]) == {"memory": "64MiB"}
        assert a["mmcore_version"] == mmcore.__version__
        for k in ("numba_version", "llvmlite_version", "numpy_version", "h5py_version"):
            assert isinstance(a[k], str) and a[k]
        assert a["sweep"] == "thp" and int(a["point"]) == 3
        assert list(f["events"].attrs["columns"]) == list(T.EVENT_COLUMNS)
        for c in T.EVENT_COLUMNS:
            d = f["events"][c]
            assert d.dtype == np.dtype("<i8") and d.ndim == 1 and d.maxshape == (None,)
            np.testing.assert_array_equal(d[()], ev[c])
        names = list(f["events/op"].attrs["names"])
        assert names == list(K.OP_NAMES)
        decoded = [names[i] for i in f["events/op"][:5]]
        assert decoded == [K.OP_NAMES[i] for i in ev["op"][:5]]
        assert f["events/kind"].attrs["names"][K.FK_THP] == "thp"
        assert f["events/time_ns"].attrs["unit"] == "ns"
        np.testing.assert_array_equal(f["samples/pgfault"][()], np.arange(4))
        np.testing.assert_array_equal(f["hist/h/counts"][()], [2, 1])
        np.testing.assert_array_equal(f["hist/h/bucket_edges_ns"][()], [0, 1, 2])
        assert int(f["final/vmstat"].attrs["pgfault"]) == 5


def test_events_frame(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "f.h5"
    ev = events(20)
    with writer(p) as w:
        w.append_events(ev)
    with T.open(p) as t:
        df = t.events_frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 20
    np.testing.assert_array_equal(df["address"].to_numpy(), ev["address"])
    assert list(df["op_name"].astype(str)) == [K.OP_NAMES[i] for i in ev["op"]]


def test_events_frame_without_pandas(tmp_path, monkeypatch):
    p = tmp_path / "f.h5"
    with writer(p) as w:
        w.append_events(events(3))
    monkeypatch.setitem(sys.modules, "pandas", None)
    with T.open(p) as t:
        with pytest.raises(ImportError, match="pandas"):
            t.events_frame()
        assert t.events["pid"].shape == (3,)          # the arrays need no pandas


def test_write_machine_trace(tmp_path):
    m = mmcore.Machine(mmcore.Config(memory="64MiB", record_faults=True, sample_interval_ns=20_000))
    t1, t2 = m.spawn("a"), m.spawn("b")
    a = t1.mmap(8 << 20)
    t1.touch(a, 8 << 20)
    b = t2.mmap(1 << 20)
    t2.touch(b, 1 << 20)
    p = tmp_path / "machine.h5"
    T.write_machine_trace(p, m, scenario_hash="s1", sweep_point=4)
    ev, smp = m.events(), m.samples()
    assert ev["pid"].size > 0 and smp["time_ns"].size > 0
    with T.open(p) as t:
        for c in T.EVENT_COLUMNS:
            np.testing.assert_array_equal(t.events[c], ev[c])
        assert list(t.samples) == list(smp)
        for c in smp:
            np.testing.assert_array_equal(t.samples[c], smp[c])
        assert t.final["vmstat"] == m.vmstat()
        assert t.final["meminfo"] == m.meminfo()
        for task in (t1, t2):
            assert t.final[f"status.{task.pid}"] == task.status()
            assert t.final[f"counters.{task.pid}"] == task.counters()
        h = t.hist["fault_latency_ns"]
        assert h.counts.sum() == np.count_nonzero(ev["op"] == K.OP_FAULT)
        assert t.attrs["seed"] == m.seed and t.attrs["scenario_hash"] == "s1"
        assert t.attrs["sweep_point"] == 4
        assert mmcore.Config.from_dict(t.config) == m.config


# ---- validation: writer side --------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ({c: np.arange(3) for c in T.EVENT_COLUMNS if c != "kind"}, r"missing \['kind'\]"),
    ({**{c: np.arange(3) for c in T.EVENT_COLUMNS}, "extra": np.arange(3)}, r"unknown \['extra'\]"),
    ({**{c: np.arange(3) for c in T.EVENT_COLUMNS}, "pid": np.arange(4)}, "differ in length"),
    ({**{c: np.arange(3) for c in T.EVENT_COLUMNS}, "time_ns": np.arange(3.0)}, "time_ns.*integers"),
    ({**{c: np.arange(3) for c in T.EVENT_COLUMNS}, "address": np.full(3, 1 << 63, np.uint64)},
     "does not fit in int64"),
    ({**{c: np.arange(3) for c in T.EVENT_COLUMNS}, "op": np.zeros((3, 1), np.int64)}, "1-D"),
])
def test_bad_events_leave_no_file(tmp_path, bad, match):
    p = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match=match):
        with writer(p) as w:
            w.append_events(events(10))
            w.append_events(bad)
    assert leftovers(tmp_path) == []


def test_exception_in_block_leaves_no_file_and_keeps_an_old_one(tmp_path):
    p = tmp_path / "keep.h5"
    with writer(p) as w:
        w.append_events(events(5))
    before = p.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with writer(p) as w:
            w.append_events(events(50))
            raise RuntimeError("boom")
    assert leftovers(tmp_path) == ["keep.h5"]
    assert p.read_bytes() == before


@pytest.mark.parametrize("kw, exc, match", [
    ({"compression": "zstd"}, ValueError, "compression"),
    ({"chunk": 0}, ValueError, "chunk"),
    ({"config_json": "{not json"}, ValueError, "config_json"),
    ({"seed": 1.5}, ValueError, "seed"),
    ({"scenario_hash": 5}, TypeError, "scenario_hash"),
    ({"attrs": {"complete": 1}}, ValueError, "reserved"),
    ({"attrs": {"x": [1, 2]}}, TypeError, r"attrs\['x'\]"),
])
def test_bad_writer_arguments(tmp_path, kw, exc, match):
    with pytest.raises(exc, match=match):
        writer(tmp_path / "x.h5", **kw)
    assert leftovers(tmp_path) == []


def test_bad_hist_final_samples(tmp_path):
    p = tmp_path / "x.h5"
    with writer(p) as w:
        with pytest.raises(ValueError, match="k >= 1 counts and k \\+ 1 edges"):
            w.write_histogram("h", [1, 2], [0, 1])
        with pytest.raises(ValueError, match="strictly increasing"):
            w.write_histogram("h", [1, 2], [0, 2, 2])
        with pytest.raises(ValueError, match=">= 0"):
            w.write_histogram("h", [1, -2], [0, 1, 2])
        with pytest.raises(ValueError, match="name matching"):
            w.write_histogram("a/b", [1], [0, 1])
        with pytest.raises(TypeError, match=r"write_final\('f'\)\['x'\].*float"):
            w.write_final("f", {"x": 1.5})
        w.write_final("f", {"x": 1})
        with pytest.raises(ValueError, match="already written"):
            w.write_final("f", {"x": 2})
        with pytest.raises(ValueError, match="time_ns"):
            w.append_samples({"pgfault": np.arange(3)})
        w.append_samples({"time_ns": np.arange(3), "pgfault": np.arange(3)})
        with pytest.raises(ValueError, match=r"missing \['pgfault'\]"):
            w.append_samples({"time_ns": np.arange(3)})
    with T.open(p) as t:                      # the errors above did not spoil the file
        assert t.final == {"f": {"x": 1}} and t.samples["pgfault"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="closed"):
        w.append_events(events(1))


# ---- validation: reader side --------------------------------------------------------------------

def _good(tmp_path):
    p = tmp_path / "good.h5"
    with writer(p) as w:
        w.append_events(events(10))
    return p


@pytest.mark.parametrize("damage, match", [
    (lambda f: f.attrs.__setitem__("complete", False), "incomplete trace"),
    (lambda f: f.attrs.__delitem__("complete"), "incomplete trace"),
    (lambda f: f.attrs.__setitem__("schema_version", 99), "schema_version 99"),
    (lambda f: f.attrs.__delitem__("schema_version"), "no schema_version"),
    (lambda f: f.__delitem__("final"), "missing group /final"),
    (lambda f: f.__delitem__("events/kind"), "/events/kind is missing"),
    (lambda f: f["events/pid"].resize((3,)), "differ in length"),
])
def test_open_rejects(tmp_path, damage, match):
    p = _good(tmp_path)
    with h5py.File(p, "r+") as f:
        damage(f)
    with pytest.raises(ValueError, match=match) as e:
        T.open(p)
    assert str(p) in str(e.value)


def test_open_rejects_non_hdf5(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not a trace\n")
    with pytest.raises(ValueError, match="not an HDF5 file") as e:
        T.open(p)
    assert str(p) in str(e.value)
    with pytest.raises(FileNotFoundError):
        T.open(tmp_path / "absent.h5")


def test_open_rejects_truncated(tmp_path):
    p = _good(tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(p).replace("\\", "\\\\")):
        T.open(p)


# ---- SIGKILL --------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from mmcore import trace as T
    path, mode = sys.argv[1], sys.argv[2]
    ev = {c: np.arange(4096, dtype=np.int64) for c in T.EVENT_COLUMNS}
    if mode == "before_replace":
        def stall(src, dst):
            print("replacing", flush=True)
            time.sleep(120)
        T.os.replace = stall
    with T.TraceWriter(path, compression=None, chunk=1024, config_json="{}", seed=0,
                       scenario_hash="", fsync=False) as w:
        w.append_events(ev)
        print("writing", flush=True)
        if mode == "append":
            while True:
                w.append_events(ev)
                time.sleep(0.001)
""")


def _spawn(path, mode):
    return subprocess.Popen([sys.executable, "-c", _CHILD, str(path), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("mode, signal_after", [("append", "writing"), ("before_replace", "replacing")])
def test_sigkill_never_leaves_a_complete_looking_file(tmp_path, mode, signal_after):
    p = tmp_path / "killed.h5"
    child = _spawn(p, mode)
    try:
        while True:
            line = child.stdout.readline().decode().strip()
            assert line, f"child ended early: {child.stderr.read().decode()}"
            if line == signal_after:
                break
        if mode == "append":
            child.stdout.close()
            time.sleep(0.2)                      # mid-stream: chunks are being written
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not p.exists()
    partial = [n for n in leftovers(tmp_path) if n.startswith(".killed.h5.partial-")]
    assert len(partial) == 1
    if mode == "before_replace":
        # killed after the file was finished: the temporary copy is complete, the final path empty
        with h5py.File(tmp_path / partial[0], "r") as f:
            assert bool(f.attrs["complete"]) is True


def test_child_that_finishes_writes_the_file(tmp_path):
    """The same child, left alone, produces a readable trace: the kill tests can fail."""
    p = tmp_path / "done.h5"
    child = _spawn(p, "clean")
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    with T.open(p) as t:
        assert t.n_events == 4096
    assert leftovers(tmp_path) == ["done.h5"]


def test_in_kernel_fault_histogram_matches_the_event_log(tmp_path):
    """The fault-latency histogram the kernels keep equals the one built from recorded fault
    events, and it goes into the trace."""
    import mmcore
    from mmcore.trace import log2_histogram
    m = mmcore.Machine(mmcore.Config(memory="256MiB", record_faults=True, thp_enabled="madvise"))
    t = m.spawn()
    a = t.mmap(32 << 20)
    t.touch(a, 32 << 20, write=False)
    t.touch(a, 32 << 20)
    t.madvise(a, 8 << 20, 23)                              # MADV_POPULATE_WRITE: no new faults
    ev = m.events()
    faults = np.asarray(ev["latency_ns"])[np.asarray(ev["op"]) == 0]
    want, wedges = log2_histogram(faults)
    got, edges = m.fault_latency_histogram()
    assert got.sum() == faults.size == t.counters()["min_flt"]
    k = want.shape[0]
    assert np.array_equal(got[:k], want) and not got[k:].any()
    assert np.array_equal(edges[:k + 1], wedges)
    p = m.fault_latency_percentiles((50, 99))
    assert p["p50"] <= p["p99"] and p["p99"] >= np.percentile(faults, 99)
    path = tmp_path / "r.h5"
    from mmcore.trace import write_machine_trace
    write_machine_trace(path, m)
    import h5py
    with h5py.File(path) as f:
        assert f["hist/kernel.fault_latency_ns/counts"][()].sum() == faults.size
