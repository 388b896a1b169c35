"""The ``mmcore`` command as a user runs it: a subprocess, its exit status, its files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmcore import cli
from mmcore import trace as T

DATA = Path(__file__).parent.parent / "data"


def mmcore(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmcore", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))


@pytest.fixture(scope="module")
def combined_trace(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    r = mmcore("run", DATA / "combined.toml", "--trace", "out.h5", "--seed", "3", cwd=d)
    return d, r


def test_run_scenario_writes_a_complete_trace(combined_trace):
    d, r = combined_trace
    assert r.returncode == 0, r.stderr
    assert "scenario combined" in r.stdout and "seed 3" in r.stdout
    for word in ("task.op", "service.pread", "AnonHugePages kB", "drop_caches: 3"):
        assert word in r.stdout
    assert r.stderr == ""                              # no progress bar without a terminal
    with T.open(d / "out.h5") as t:
        assert t.attrs["complete"] is True and t.attrs["seed"] == 3
        assert t.attrs["scenario_name"] == "combined" and len(t.attrs["scenario_hash"]) == 64
        assert t.n_events > 0 and len(t.samples["time_ns"]) > 0
    assert sorted(os.listdir(d)) == ["out.h5"]


def test_report_makes_plots_and_a_summary(combined_trace):
    d, _ = combined_trace
    r = mmcore("report", "out.h5", "--out", "rep", cwd=d)
    assert r.returncode == 0, r.stderr
    files = sorted(os.listdir(d / "rep"))
    assert {"latency_cdf.png", "memory.png", "fault_rate.png", "op_latency_cdf.png", "summary.md"} <= set(files)
    assert "oom_timeline.png" not in files             # no OOM events, no OOM plot
    for f in files:
        if f.endswith(".png"):
            assert (d / "rep" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (d / "rep" / "summary.md").read_text()
    assert "# mmcore run report: combined" in md and "| fault:thp |" in md and "service.pread" in md


def test_malformed_toml_exits_2_and_writes_nothing(tmp_path):
    (tmp_path / "bad.toml").write_text('[machine]\nmemory = 4GiB\n')
    r = mmcore("run", "bad.toml", "--trace", "out.h5", cwd=tmp_path)
    assert r.returncode == 2
    assert "bad.toml:2" in r.stderr and "'4GiB'" in r.stderr and "quoted" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]


def test_bad_inputs_exit_2(tmp_path):
    (tmp_path / "s.toml").write_text((DATA / "thp_mixed.toml").read_text())
    cases = [
        (["run", "s.toml", "--set", "readz=5"], "not a param"),
        (["run", "s.toml", "--set", "reads"], "key=value"),
        (["run", "s.toml", "--memory", "1GiB"], "--set"),
        (["run", "--trace", "x.h5"], "scenario file"),
        (["run", "nothere.toml"], "no such file"),
        (["run", "s.toml", "--trace", "no/such/dir/x.h5"], "does not exist"),
        (["report", "s.toml"], "not an HDF5 file"),
        (["report", "missing.h5"], "no such file"),
        (["validate", "s.toml", "--set", "machine.memory=3MiB"], "machine.memory"),
    ]
    for args, words in cases:
        r = cli_run(args, tmp_path)
        assert r[0] == 2, (args, r)
        assert words in r[1], (args, r[1])
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]


def cli_run(args: list[str], cwd: Path) -> tuple[int, str]:
    """``cli.main`` in this process (quick), with its exit status and stderr."""
    import contextlib
    import io
    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(args)
    finally:
        os.chdir(old)
    return code, err.getvalue()


def test_validate_and_set(tmp_path):
    r = mmcore("validate", DATA / "drop_caches_cron.toml", "--set", "reads=10", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ok: scenario drop_caches_cron" in r.stdout


def test_run_failure_exits_2_and_internal_error_exits_1(tmp_path, monkeypatch):
    (tmp_path / "s.toml").write_text(
        '[machine]\nmemory = "64MiB"\n[[task]]\nname = "a"\n[[phase]]\ntask = "a"\nops = [\n'
        '  {op = "mmap", map = "m", length = "1MiB"},\n  {op = "munmap", map = "m", length = 4096},\n'
        '  {op = "touch", map = "m"},\n]\n')
    code, err = cli_run(["run", "s.toml", "--trace", "t.h5"], tmp_path)
    assert code == 2 and "phase[0].ops[2]" in err and "SIGSEGV" in err
    assert not (tmp_path / "t.h5").exists()

    def broken(*a, **k):
        raise RuntimeError("a bug")
    monkeypatch.setattr("mmcore.scenario.run_scenario", broken)
    code, err = cli_run(["run", "s.toml"], tmp_path)
    assert code == 1 and "internal error: RuntimeError: a bug" in err


def test_run_without_a_scenario_is_the_thp_story(tmp_path):
    r = mmcore("run", "--memory", "64MiB", "--size", "8MiB", "--accesses", "1000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "the THP story" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines() if line.strip().startswith(("always", "madvise", "never"))]
    assert len(rows) == 6
    assert rows[0][:2] == ["always", "-"] and rows[0][3] == "8,192"       # AnonHugePages kB
    assert rows[1][:2] == ["always", "THP_DISABLE"] and rows[1][3] == "0"
