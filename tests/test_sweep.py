"""Parameter sweeps (mmcore.sweep): points, seeds, backends, the results file, resuming."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import mmcore.sweep as S
from mmcore.cli import main

ROOT = Path(__file__).resolve().parent.parent
BLOAT = str(ROOT / "data" / "thp_bloat.toml")
SMALL = {"heap": "16MiB", "reads": 2000}
GRID = {"every": ["32KiB", "64KiB"], "machine.thp_enabled": ["always", "never"]}


@pytest.fixture(scope="module", autouse=True)
def warm():
    from mmcore.scenarios import warmup
    warmup()


def cols(path):
    return S.load(path, frame=False)


def same(a, b, skip=("wall_s",)):
    assert list(a) == list(b)
    for k in a:
        if k not in skip:
            assert np.array_equal(a[k], b[k]) or (a[k].dtype.kind == "f" and
                                                  np.array_equal(a[k], b[k], equal_nan=True)), k


# ---- points and seeds ----------------------------------------------------------------------------

def test_points_grid_then_explicit_and_seeds():
    sw = S.Sweep(BLOAT, GRID, [{"every": "128KiB"}], seeds=2, params=SMALL)
    assert sw.points == [{"every": "32KiB", "machine.thp_enabled": "always"},
                         {"every": "32KiB", "machine.thp_enabled": "never"},
                         {"every": "64KiB", "machine.thp_enabled": "always"},
                         {"every": "64KiB", "machine.thp_enabled": "never"},
                         {"every": "128KiB"}]
    assert len(sw.runs) == 10
    assert sw.value(4, "machine.thp_enabled") == "always"      # the scenario's own value
    seeds = [r.seed for r in sw.runs]
    assert len(set(seeds)) == 10 and all(0 <= s < 1 << 63 for s in seeds)
    # a point's seeds depend on the sweep seed, the point and the replicate only
    other = S.Sweep(BLOAT, {"machine.thp_enabled": ["never", "always"], "every": ["64KiB", "32KiB"]},
                    seeds=2, params=SMALL)
    by_key = {r.id: r.seed for r in sw.runs}
    for r in other.runs:
        assert by_key[r.id] == r.seed
    assert S.derive_seed(0, {"a": 1, "b": 2}, 0) == S.derive_seed(0, {"b": 2, "a": 1}, 0)
    assert S.derive_seed(1, {"a": 1}, 0) != S.derive_seed(0, {"a": 1}, 0)
    assert S.derive_seed(0, {"a": 1}, 1) != S.derive_seed(0, {"a": 1}, 0)


def test_derive_seed_is_fixed():
    # the same bits on any machine: a change here breaks every stored sweep's seeds
    import hashlib
    text = 'mmcore-sweep\0' + '7\0{"every":"32KiB"}\0' + '2'
    want = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1
    assert S.derive_seed(7, {"every": "32KiB"}, 2) == want


def test_cli_value_parsing():
    assert S.parse_values("every=8,16,32KiB") == ("every", [8, 16, "32KiB"])
    assert S.parse_values('x=[1, 2],"a,b",true') == ("x", [[1, 2], "a,b", True])
    assert S.parse_point("every=8,machine.memory=2GiB") == {"every": 8, "machine.memory": "2GiB"}
    with pytest.raises(S.SweepError, match="KEY=V1,V2"):
        S.parse_values("every")
    with pytest.raises(S.SweepError, match="given twice"):
        S.parse_point("a=1,a=2")


@pytest.mark.parametrize("grid, points, match", [
    ({"evry": [1]}, None, r"evry: not a param of scenario 'thp_bloat' \(params: enabled, every"),
    ({"every": ["abc"]}, None, r"every='abc': .*phase\[0\]\.ops\[2\]\.stride: expected a size"),
    ({"machine.thp_enabled": ["always", "sometimes"]}, None,
     r"machine.thp_enabled='sometimes': .*expected one of .*'always'.*got 'sometimes'"),
    ({"machine.bogus": [1]}, None, r"machine.bogus=1: .*unknown key"),
    ({"tasks.redis": [1]}, None, r"tasks.redis: not a key a sweep can set"),
    ({"scenario.seed": [1]}, None, "the run seeds are the sweep's"),
    ({"every": []}, None, "every: no values"),
    ({"every": ["32KiB", "32KiB"]}, None, "listed twice"),
    ({"every": ["32KiB"]}, [{"every": "32KiB"}], "is point 0 again"),
    (None, [{"reads": 1.5}], r"reads=1.5: .*count: expected an integer"),
    (None, [{"every": object()}], "expected a TOML value"),
])
def test_bad_input_names_key_value_and_expectation(grid, points, match, tmp_path):
    out = tmp_path / "s.h5"
    with pytest.raises(S.SweepError, match=match):
        S.run_sweep(BLOAT, grid, points, params=SMALL, out=out)
    assert not os.listdir(tmp_path)                         # nothing ran, nothing written


def test_bad_options(tmp_path):
    with pytest.raises(S.SweepError, match="seeds=0"):
        S.Sweep(BLOAT, GRID, seeds=0)
    with pytest.raises(S.SweepError, match="backend='ray'"):
        S.run_sweep(BLOAT, GRID, params=SMALL, backend="ray")
    with pytest.raises(S.SweepError, match="resume needs out="):
        S.run_sweep(BLOAT, GRID, params=SMALL, resume=True)
    with pytest.raises(S.SweepError, match="not an argument of mmcore.scenarios.thp_bloat"):
        S.Sweep("mmcore.scenarios.thp_bloat", {"machine.memory": ["1GiB"]})
    with pytest.raises(S.SweepError, match=r"every='8': expected an integer like the default 8"):
        S.Sweep("mmcore.scenarios.thp_bloat", {"every": ["8"]})


# ---- running -------------------------------------------------------------------------------------

def test_deterministic_and_worker_count_independent(tmp_path):
    a = S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=tmp_path / "a.h5", progress=False)
    S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=tmp_path / "b.h5", progress=False)
    S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=tmp_path / "c.h5", workers=2, progress=False)
    ca, cb, cc = cols(tmp_path / "a.h5"), cols(tmp_path / "b.h5"), cols(tmp_path / "c.h5")
    same(ca, cb)
    same(ca, cc)
    assert list(a.columns) == list(ca)                       # the returned frame is the file's
    assert (ca["status"] == "ok").all() and (ca["wall_s"] > 0).all()
    assert ca["point"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert ca["replicate"].tolist() == [0, 1] * 4
    assert ca["every"].tolist() == ["32KiB"] * 4 + ["64KiB"] * 4
    # the summary, flattened
    rss = ca["tasks.redis_nothp.smaps_rollup.Rss"]
    assert rss.dtype == np.int64 and rss.tolist() == [2048] * 4 + [1024] * 4
    assert ca["tasks.redis.smaps_rollup.AnonHugePages"].tolist() == [16384] * 8
    for k in ("vmstat.thp_fault_alloc", "phases.populate.sim_time_ns",
              "phases.random reads.ops.redis.access.p99_ns", "meminfo.MemFree", "sim_time_ns"):
        assert k in ca
    # the replicates differ (seeded reads), the file says how it was made
    assert ca["phases.random reads.sim_time_ns"][0] != ca["phases.random reads.sim_time_ns"][1]
    attrs = S.read_attrs(tmp_path / "a.h5")
    assert attrs["complete"] and attrs["schema"] == "mmcore-sweep" and attrs["seeds"] == 2
    assert attrs["grid"] == GRID and attrs["n_runs"] == 8
    # a run equals run_scenario with the derived seed
    from mmcore.scenario import load_scenario, override, run_scenario
    sw = S.Sweep(BLOAT, GRID, params=SMALL, seeds=2)
    r = sw.runs[5]
    summ = run_scenario(override(load_scenario(BLOAT), {**SMALL, **sw.points[r.point]}), seed=r.seed)
    assert summ["sim_time_ns"] == ca["sim_time_ns"][5]
    assert ca["seed"][5] == r.seed
    assert not os.path.exists(S.journal_path(tmp_path / "a.h5"))


def test_hdf5_layout_is_plain(tmp_path):
    out = tmp_path / "s.h5"
    S.run_sweep(BLOAT, {"every": ["32KiB"]}, params={**SMALL, "reads": 100}, out=out, progress=False,
                trace_dir=tmp_path / "tr")
    with h5py.File(out, "r") as f:
        assert f.attrs["complete"]
        names = [n.decode() if isinstance(n, bytes) else n for n in f["rows"].attrs["columns"]]
        assert names[:8] == ["point", "every", "replicate", "seed", "status", "error", "wall_s", "trace"]
        assert f["rows/status"].asstr()[()].tolist() == ["ok"]
        assert f["rows/every"].attrs["kind"] == "param"
        assert f["rows/phases.random reads.sim_time_ns"].dtype == np.int64
    trace = cols(out)["trace"][0]
    from mmcore import trace as T
    with T.open(tmp_path / "tr" / trace) as tr:
        assert tr.attrs["seed"] == cols(out)["seed"][0]


def test_errors_are_rows(tmp_path):
    # a point whose run fails (the heap does not fit): its row says why; the others run
    out = tmp_path / "s.h5"
    pts = [{"heap": "16MiB"}, {"heap": "1GiB", "machine.memory": "256MiB"}]
    df = S.run_sweep(BLOAT, points=pts, params={"reads": 100}, out=out, progress=False, frame=False)
    assert df["status"].tolist() == ["ok", "error"]
    assert df["error"][1] and df["error"][0] == ""
    assert np.isnan(df["tasks.redis.smaps_rollup.Rss"][1])
    with h5py.File(out, "r") as f:
        assert f["rows/tasks.redis.smaps_rollup.Rss"].attrs["int"]


def test_function_target(tmp_path):
    df = S.run_sweep("mmcore.scenarios.thp_bloat",
                     {"size": ["64MiB"], "every": [8, 16], "max_ptes_none": [[511]]},
                     out=tmp_path / "f.h5", progress=False, frame=False)
    assert df["every"].tolist() == [8, 16]
    assert df["never.Rss_MiB"].tolist() == [8, 4]
    assert df["always.Rss_MiB"].tolist() == [64, 64]


# ---- interruption, resuming, atomicity -----------------------------------------------------------

class Boom(KeyboardInterrupt):
    pass


def test_interrupted_sweep_leaves_no_file_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "s.h5"
    calls = []
    real = S._execute

    def flaky(*a):
        if len(calls) == 3:
            raise Boom()
        calls.append(a)
        return real(*a)
    monkeypatch.setattr(S, "_execute", flaky)
    with pytest.raises(Boom):
        S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=out, progress=False)
    assert not out.exists()                                  # atomic: no results file
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p]
    jp = S.journal_path(out)
    assert len(open(jp).read().splitlines()) == 1 + 3         # header + 3 finished runs
    # a fresh run refuses to throw the finished runs away
    with pytest.raises(S.SweepError, match="--resume"):
        S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=out, progress=False)
    # a SIGKILL mid-line leaves a torn last line: ignored
    with open(jp, "ab") as f:
        f.write(b'{"key": "{\\"every')
    monkeypatch.setattr(S, "_execute", real)
    ran = []
    monkeypatch.setattr(S, "_execute", lambda *a: ran.append(a) or real(*a))
    S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=out, resume=True, progress=False)
    assert len(ran) == 5                                      # only the rest
    assert not os.path.exists(jp)
    ref = tmp_path / "ref.h5"
    monkeypatch.setattr(S, "_execute", real)
    S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=ref, progress=False)
    same(cols(out), cols(ref))
    # resuming a complete file with more seeds runs only the new replicates
    ran.clear()
    monkeypatch.setattr(S, "_execute", lambda *a: ran.append(a) or real(*a))
    S.run_sweep(BLOAT, GRID, params=SMALL, seeds=3, out=out, resume=True, progress=False)
    assert len(ran) == 4
    c = cols(out)
    assert len(c["point"]) == 12
    # another sweep seed is another sweep
    with pytest.raises(S.SweepError, match="another sweep"):
        S.run_sweep(BLOAT, GRID, params=SMALL, seeds=3, seed=1, out=out, resume=True, progress=False)


def test_sigkill_mid_sweep_then_resume(tmp_path):
    out = tmp_path / "k.h5"
    jp = S.journal_path(out)
    cmd = [sys.executable, "-m", "mmcore", "sweep", BLOAT, "--set", "heap=16MiB", "--set",
           "reads=200000", "--grid", "every=32KiB,64KiB,128KiB,256KiB", "--seeds", "10", "--out",
           str(out), "--quiet"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(jp) and len(open(jp, "rb").read().splitlines()) >= 4:
                break
            if p.poll() is not None:
                pytest.fail(f"the sweep ended early: {p.stderr.read().decode()}")
            time.sleep(0.02)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    assert not out.exists()
    _, rows, _ = S._read_journal(jp)
    assert 3 <= len(rows) < 40
    assert main(cmd[3:] + ["--resume"]) == 0
    c = cols(out)
    assert len(c["point"]) == 40 and (c["status"] == "ok").all()


# ---- dask ----------------------------------------------------------------------------------------

def test_dask_local_cluster_equals_local(tmp_path):
    pytest.importorskip("distributed")
    a = S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=tmp_path / "a.h5", progress=False)
    d = S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, out=tmp_path / "d.h5", backend="dask",
                    workers=2, processes=False, progress=False)
    same(cols(tmp_path / "a.h5"), cols(tmp_path / "d.h5"))
    assert list(a.columns) == list(d.columns)


# ---- the command line ----------------------------------------------------------------------------

def test_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "c.h5"
    args = ["sweep", BLOAT, "--set", "heap=16MiB", "--set", "reads=2000", "--grid", "every=32KiB,64KiB",
            "--grid", "machine.thp_enabled=always,never", "--seeds", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert "8 runs (4 points x 2 seeds), 0 failed" in capsys.readouterr().out
    same(cols(out), S.load(out, frame=False))
    ref = S.run_sweep(BLOAT, GRID, params=SMALL, seeds=2, frame=False, progress=False)
    same(cols(out), ref)
    png = tmp_path / "p.png"
    assert main(["sweep", "--show", str(out), "--plot", "x=every", "y=tasks.redis_nothp.smaps_rollup.Rss",
                 "--plot-out", str(png)]) == 0
    shown = capsys.readouterr().out
    assert "tasks.redis_nothp.smaps_rollup.Rss" in shown and "32KiB" in shown
    assert png.stat().st_size > 1000
    assert main(["sweep", "--show", str(out), "--columns", "vmstat.thp_fault_*"]) == 0
    assert "vmstat.thp_fault_alloc" in capsys.readouterr().out
    # bad input: exit 2, the message names key and value, nothing written
    assert main(["sweep", BLOAT, "--grid", "every=abc", "--out", str(tmp_path / "x.h5")]) == 2
    assert "every='abc'" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    assert main(["sweep", BLOAT, "--grid", "every=32KiB"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["sweep", "--show", str(tmp_path / "nope.h5")]) == 2
    # failed runs: exit 3
    assert main(["sweep", BLOAT, "--set", "reads=10", "--point", "heap=1GiB,machine.memory=256MiB",
                 "--out", str(tmp_path / "f.h5"), "--quiet"]) == 3
    assert "1 of 1 runs failed" in capsys.readouterr().err
    assert S.read_attrs(tmp_path / "f.h5")["points"] == [{"heap": "1GiB", "machine.memory": "256MiB"}]
