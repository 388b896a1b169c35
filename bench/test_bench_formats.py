"""Trace I/O benchmarks: HDF5 event writing (uncompressed and lzf) and lackey log parsing.

Each is measured side by side with a plain peer on the same data: event writing against h5py's
own slice assignment and lzf filter (same chunking, same columns), lackey parsing against a
line-by-line Python parser. Files go to ``/dev/shm`` when it exists (tmpfs: the rates are the
library's, not the disk's; the directory is recorded in ``extra_info["target_dir"]``), and traces
are written with ``fsync=False`` so the device's flush time is not counted either.

Every timed benchmark uses ``benchmark.pedantic`` with fixed rounds after one untimed call (Numba
kernels load from the cache or compile there).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from mmcore import formats as F
from mmcore import trace as T

SEED = 20240601
N_EVENTS = 1 << 23                      # 8.4 M events, 470 MB uncompressed
WRITE_ROUNDS = 3
CHUNK = 1 << 16
LACKEY_LINES = 5_000_000
LACKEY_ROUNDS = 5
PY_LACKEY_LINES = 200_000


@pytest.fixture(scope="module")
def out_dir():
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="mmcore-bench-formats-", dir=base)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def fault_events(n: int) -> dict[str, np.ndarray]:
    """Events shaped like a fault trace: rising times, a few pids, page-aligned addresses."""
    rng = np.random.default_rng(SEED)
    return {"time_ns": np.cumsum(rng.integers(0, 2000, n)), "pid": rng.integers(1, 9, n),
            "op": np.zeros(n, np.int64),
            "address": (0x7F0000000000 + rng.integers(0, 1 << 32, n)) & ~np.int64(4095),
            "result": np.zeros(n, np.int64), "latency_ns": rng.integers(100, 3000, n),
            "kind": rng.integers(0, 5, n)}


@pytest.fixture(scope="module")
def events():
    return fault_events(N_EVENTS)


def write_mmcore(path: Path, ev: dict, compression: str | None) -> None:
    with T.TraceWriter(path, compression=compression, chunk=CHUNK, config_json="{}", seed=SEED,
                       scenario_hash="bench", fsync=False) as w:
        w.append_events(ev)


def write_h5py(path: Path, ev: dict, compression: str | None) -> None:
    """The plain way: one resizable chunked dataset per column, slice assignment, h5py's filter."""
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        for c, a in ev.items():
            d = g.create_dataset(c, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(CHUNK,),
                                 compression=compression)
            d.resize((a.shape[0],))
            d[:] = a


# ---- group "trace-write" --------------------------------------------------------------------------

@pytest.mark.benchmark(group="trace-write")
@pytest.mark.parametrize("compression", [None, "lzf"], ids=["none", "lzf"])
@pytest.mark.parametrize("side", ["mmcore", "h5py"])
def test_write_events(benchmark, rates, out_dir, events, side, compression):
    """8.4 M fault-shaped events, 7 int64 columns: ``TraceWriter`` against plain h5py."""
    path = out_dir / f"{side}-{compression}.h5"
    write = write_mmcore if side == "mmcore" else write_h5py
    write(path, events, compression)                         # warm-up, untimed

    def fresh():
        """Delete the previous round's file, untimed: each round writes a new file into free
        memory instead of replacing (and freeing) a 470 MB one inside the timed call."""
        path.unlink(missing_ok=True)
        return (path, events, compression), {}

    benchmark.pedantic(write, setup=fresh, rounds=WRITE_ROUNDS, iterations=1)
    if side == "mmcore":
        with T.open(path) as t:
            assert t.n_events == N_EVENTS
            np.testing.assert_array_equal(t.events["time_ns"][-1000:], events["time_ns"][-1000:])
    key = f"write-{side}-{compression}"
    rates.record(benchmark, key, N_EVENTS, "events_per_s")
    rates.ratio("mmcore_over_h5py", f"write-mmcore-{compression}", f"write-h5py-{compression}")
    benchmark.extra_info["bytes_per_event"] = path.stat().st_size / N_EVENTS
    benchmark.extra_info["target_dir"] = str(out_dir.parent)
    path.unlink()


# ---- group "lackey" --------------------------------------------------------------------------------

def lackey_text(n_lines: int) -> bytes:
    """Lackey output: instruction fetches, loads, stores and modifies in lackey's proportions
    of a typical run (about 0.6 data accesses per instruction), repeated from a 100,000-line block."""
    rng = np.random.default_rng(SEED)
    block = 100_000
    kinds = rng.choice(np.array(["I ", " L", " S", " M"]), block, p=[0.62, 0.24, 0.1, 0.04])
    addrs = np.where(kinds == "I ", 0x400000 + rng.integers(0, 1 << 16, block),
                     0x1FFEFF0000 + rng.integers(0, 1 << 20, block))
    sizes = rng.choice([1, 2, 4, 8], block)
    lines = [f"{k} {a:08X},{s}\n" for k, a, s in zip(kinds.tolist(), addrs.tolist(), sizes.tolist())]
    text = "".join(lines).encode()
    reps = -(-n_lines // block)
    head = b"==4242== Lackey, an example Valgrind tool\n"
    return head + text * reps


@pytest.fixture(scope="module")
def lackey_file(out_dir):
    p = out_dir / "lackey.log"
    p.write_bytes(lackey_text(LACKEY_LINES))
    n_lines = p.read_bytes().count(b"\n")
    yield p, n_lines
    p.unlink()


def read_lackey_python(path: Path):
    """The plain way: a Python loop over lines."""
    addrs, writes = [], []
    with open(path) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("=="):
                continue
            k, rest = s.split(None, 1)
            a = int(rest.split(",", 1)[0], 16)
            if k == "M":
                addrs += [a, a]
                writes += [0, 1]
            elif k != "I":
                addrs.append(a)
                writes.append(1 if k == "S" else 0)
    return np.array(addrs, np.int64), np.array(writes, np.int8)


@pytest.mark.benchmark(group="lackey")
def test_read_lackey(benchmark, rates, lackey_file):
    """``read_lackey`` on a 5 M-line log (default chunk size): lines per second."""
    path, n_lines = lackey_file
    a, w, _ = F.read_lackey(path)                            # warm-up, untimed
    benchmark.pedantic(F.read_lackey, args=(path,), rounds=LACKEY_ROUNDS, iterations=1)
    rates.record(benchmark, "lackey-mmcore", n_lines, "lines_per_s")
    rates.ratio("mmcore_over_python", "lackey-mmcore", "lackey-python")
    benchmark.extra_info["lines"] = n_lines
    benchmark.extra_info["records"] = int(a.shape[0])
    benchmark.extra_info["bytes_per_s"] = path.stat().st_size / benchmark.stats.stats.median


@pytest.mark.benchmark(group="lackey")
def test_read_lackey_python(benchmark, rates, out_dir):
    """A Python line loop on the first 200,000 lines of the same log, for the ratio."""
    p = out_dir / "lackey-small.log"
    p.write_bytes(lackey_text(PY_LACKEY_LINES))
    n_lines = p.read_bytes().count(b"\n")
    pa, pw = read_lackey_python(p)
    a, w, _ = F.read_lackey(p)
    np.testing.assert_array_equal(pa, a)
    np.testing.assert_array_equal(pw, w)
    benchmark.pedantic(read_lackey_python, args=(p,), rounds=2, iterations=1)
    rates.record(benchmark, "lackey-python", n_lines, "lines_per_s")
    rates.ratio("mmcore_over_python", "lackey-mmcore", "lackey-python")
    p.unlink()


# ---- group "trace-record" -------------------------------------------------------------------------

def fault_scenario(record: bool) -> dict:
    """One task faults in 512 MiB of 4 KiB pages (131,072 faults) and reads it at random; the
    run's trace is written either way, with or without one event per fault."""
    return {
        "scenario": {"name": "record-faults", "seed": 0},
        "machine": {"memory": "1GiB", "thp_enabled": "never"},
        "task": [{"name": "app"}],
        "phase": [{"name": "run", "ops": [
            {"task": "app", "op": "mmap", "map": "heap", "length": "512MiB"},
            {"task": "app", "op": "touch", "map": "heap"},
            {"task": "app", "op": "access", "map": "heap", "pattern": "uniform",
             "count": 2_000_000}]}],
        "record": {"record_faults": record},
    }


@pytest.mark.benchmark(group="trace-record")
@pytest.mark.parametrize("faults", ["without", "with"])
def test_run_recording_faults(benchmark, rates, out_dir, faults):
    """A whole run with its HDF5 trace (``run_scenario(..., trace=...)``, lzf), recording a fault
    event per fault or not: ``without_over_with`` is how much longer recording makes the run."""
    from mmcore.scenario import load_scenario, run_scenario
    sc = load_scenario(fault_scenario(faults == "with"))
    path = out_dir / f"run-{faults}.h5"
    run_scenario(sc, trace=path)                             # warm-up, untimed

    def fresh():
        path.unlink(missing_ok=True)
        return (sc,), {"trace": path}

    benchmark.pedantic(run_scenario, setup=fresh, rounds=5, iterations=1)
    with T.open(path) as t:
        assert t.n_events == (131_072 if faults == "with" else 0)
    rates.record(benchmark, f"record-{faults}", 1, "runs_per_s")
    rates.ratio("without_over_with", "record-without", "record-with")
    path.unlink()
