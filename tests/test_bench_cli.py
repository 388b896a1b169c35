"""``mmcore bench``, the recorded run behind the README's Performance table, and the slowdown check
CI runs (``bench/check_slowdown.py``)."""
from __future__ import annotations

import ast
import contextlib
import copy
import io
import json
import re
from pathlib import Path

import pytest

from bench import check_slowdown as S
from mmcore import bench as B
from mmcore import cli

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "bench" / "recorded.json"
BARE = "test_access[bare-random]"


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    return code, out.getvalue(), err.getvalue()


def bench_entry(name: str, group: str, extra: dict, median: float = 0.5, rounds: int = 5) -> dict:
    return {"group": group, "name": name, "fullname": f"bench/x.py::{name}", "params": None,
            "extra_info": extra, "stats": {"median": median, "rounds": rounds}}


def results(*benchmarks: dict, bare_loop: str = "bare-loop-1") -> dict:
    return {"machine_info": {"machine": "x86_64", "system": "Linux", "release": "6.1",
                             "python_version": "3.11.7", "numba": "0.68.1", "mmcore": "0.1.0",
                             "bare_loop": bare_loop,
                             "cpu": {"brand_raw": "Test CPU", "count": 2,
                                     "hz_advertised_friendly": "3.0000 GHz"}},
            "commit_info": {"id": "0123456789abcdef", "dirty": False},
            "datetime": "2026-01-02T03:04:05", "benchmarks": list(benchmarks)}


# ---- the README table and the recorded run ----------------------------------------------------

def readme_block(tag: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- {tag}:begin -->\n(.*?)\n<!-- {tag}:end -->", text, re.S)
    assert m, f"README.md has no <!-- {tag}:begin --> ... <!-- {tag}:end --> block"
    return m.group(1)


def test_readme_table_is_the_markdown_of_the_recorded_run():
    data = B.load(RECORDED)
    assert readme_block("bench") == B.format_markdown(data), (
        "the README's Performance table is not `mmcore bench --show bench/recorded.json "
        "--markdown`: paste that output between the bench markers")


def test_cli_show_markdown_prints_the_readme_table():
    code, out, err = run_cli(["bench", "--show", str(RECORDED), "--markdown"])
    assert code == 0, err
    assert out.rstrip("\n") == readme_block("bench")


def test_recorded_run_is_a_whole_suite_run():
    """Full sizes, nothing left out or failed, and every benchmark function of bench/ in it."""
    data = B.load(RECORDED)
    info = data["mmcore_bench"]
    assert info["quick"] is False and info["select"] is None and info["pytest_status"] == 0
    assert info["selected"] == len(data["benchmarks"])
    recorded = {b["name"].split("[")[0] for b in data["benchmarks"]}
    defined = set()
    for path in sorted((ROOT / "bench").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        defined |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    assert defined - recorded == set(), (
        f"benchmarks missing from bench/recorded.json: {sorted(defined - recorded)}; record the "
        "suite again: mmcore bench --json bench/recorded.json")
    for b in data["benchmarks"]:
        assert b["stats"]["median"] > 0
    mi = data["machine_info"]
    assert {"mmcore", "numba", "llvmlite", "numpy", "bare_loop", "cpu"} <= set(mi)
    # every ratio the README shows was measured on both sides in this run
    for r in B.ratios(data):
        assert len(r["benchmarks"]) == 2, r


# ---- formatting -------------------------------------------------------------------------------

def sample() -> dict:
    return results(
        bench_entry("test_access[engine-random]", "access",
                    {"accesses_per_round": 10, "accesses_per_s": 14.4e6, "bare_over_engine": 1.5}),
        bench_entry("test_access[bare-random]", "access",
                    {"accesses_per_s": 21.6e6, "bare_over_engine": 1.5}),
        bench_entry("test_compile_cold", "compile",
                    {"cold_compile_s": 41.0, "runs_per_s": 0.024, "cold_over_warm": 35.0}, 41.0, 1),
        bench_entry("test_start_warm", "compile",
                    {"warm_start_s": 1.17, "runs_per_s": 0.85, "cold_over_warm": 35.0}, 1.17),
        bench_entry("test_memory_per_frame", "memory",
                    {"build_s": 0.01, "frame_metadata_bytes_per_frame": 31.0,
                     "rss_after_fault_bytes_per_frame": 37.5}, 4.8, 1),
        bench_entry("test_willwrite_story[plain]", "willwrite", {"p99_us": 2.65}, 0.25, 1),
    )


def test_headline_figures_and_units():
    rows = {r["name"]: r for r in B.figures(sample())}
    assert (rows["test_access[engine-random]"]["key"], rows["test_access[engine-random]"]["unit"]) == \
        ("accesses_per_s", "accesses/s")
    assert rows["test_compile_cold"]["key"] == "cold_compile_s" and rows["test_compile_cold"]["value"] == 41.0
    assert rows["test_start_warm"]["key"] == "warm_start_s"
    assert rows["test_memory_per_frame"]["key"] == "rss_after_fault_bytes_per_frame"
    ww = rows["test_willwrite_story[plain]"]
    assert ww["key"] is None and ww["value"] == 0.25 and "wall" in ww["unit"]
    assert [r["group"] for r in B.figures(sample())] == sorted(r["group"] for r in B.figures(sample()))


def test_ratios_listed_once_with_both_sides():
    rat = {r["name"]: r for r in B.ratios(sample())}
    assert set(rat) == {"bare_over_engine", "cold_over_warm"}
    assert rat["bare_over_engine"]["value"] == 1.5
    assert rat["bare_over_engine"]["benchmarks"] == ["test_access[bare-random]", "test_access[engine-random]"]


def test_markdown_and_text_show_figures_ratios_machine_and_the_quick_label():
    data = sample()
    md = B.format_markdown(data)
    assert md.startswith("Measured on Test CPU, 2 cores at 3.0000 GHz; Linux 6.1 x86_64; Python 3.11.7;")
    assert "commit 0123456789ab" in md and "2026-01-02" in md
    assert "| access | `test_access[engine-random]` | 14.4 M accesses/s | 500 ms x 5 |" in md
    assert "| `bare_over_engine` | 1.50 | `test_access[bare-random]`, `test_access[engine-random]` |" in md
    assert "| compile | `test_compile_cold` | 41 s, cold compile | 41 s x 1 |" in md
    assert "quick" not in md.lower()
    data["mmcore_bench"] = {"quick": True, "select": None}
    assert "**Quick run: the compile and memory groups were left out" in B.format_markdown(data)
    text = B.format_text(data)
    assert "NOTE: quick run" in text and "14.4 M" in text and "bare_over_engine" in text
    assert B.fmt_value(1.666e9) == "1.67 G" and B.fmt_value(0.394) == "0.394"


def test_select_expression():
    assert B.select_expr(None, False) is None
    assert B.select_expr("access", False) == "(access)"
    q = B.select_expr("access", True)
    assert q.startswith("(access) and not (") and all(n in q for n in B.QUICK_SKIPPED)


# ---- the command ------------------------------------------------------------------------------

def test_bad_inputs_exit_2_and_name_the_option(tmp_path):
    (tmp_path / "bad.json").write_text('{"benchmarks": 3}')
    (tmp_path / "notjson.json").write_text("{")
    cases = [
        (["bench", "--show", str(tmp_path / "missing.json")], "--show", "no such file"),
        (["bench", "--show", str(tmp_path / "bad.json")], "--show", "not a benchmark results file"),
        (["bench", "--show", str(tmp_path / "notjson.json")], "--show", "JSON"),
        (["bench", "--json", str(tmp_path / "no" / "dir.json")], "--json", "does not exist"),
        (["bench", "--show", str(RECORDED), "-k", "access"], "--show", "-k"),
        (["bench", "--suite", str(tmp_path)], "--suite", "conftest.py"),
    ]
    for args, option, words in cases:
        code, out, err = run_cli(args)
        assert code == 2, (args, err)
        assert option in err and words in err, (args, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "notjson.json"]


FAKE_CONFTEST = '''
def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["bare_loop"] = "fake"
'''
FAKE_SUITE = '''
import pytest

@pytest.mark.benchmark(group="fake")
def test_widgets(benchmark):
    benchmark.pedantic(lambda: sum(range(1000)), rounds=3, iterations=1)
    benchmark.extra_info["widgets_per_s"] = 1000 / benchmark.stats.stats.median
    benchmark.extra_info["fast_over_slow"] = 2.0

@pytest.mark.benchmark(group="fake")
def test_gadgets(benchmark):
    benchmark.pedantic(lambda: None, rounds=3, iterations=1)
    benchmark.extra_info["fast_over_slow"] = 2.0

@pytest.mark.benchmark(group="fake")
def test_broken(benchmark):
    benchmark.pedantic(lambda: None, rounds=2, iterations=1)
    assert False, "a broken benchmark"
'''


@pytest.fixture(scope="module")
def fake_suite(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake") / "suite"
    d.mkdir()
    (d / "conftest.py").write_text(FAKE_CONFTEST)
    (d / "test_fake.py").write_text(FAKE_SUITE)
    return d


def test_run_writes_json_and_prints_the_table(fake_suite, tmp_path):
    out_json = tmp_path / "r.json"
    code, out, err = run_cli(["bench", "--suite", str(fake_suite), "-k", "widgets or gadgets",
                              "--json", str(out_json)])
    assert code == 0, err
    assert "2 benchmarks" in err and "test_widgets PASSED" in err           # pytest's progress
    assert "widgets/s" in out and "fast_over_slow" in out and f"json: {out_json}" in out
    data = json.loads(out_json.read_text())
    assert data["mmcore_bench"]["select"] == "widgets or gadgets"
    assert data["mmcore_bench"]["pytest_status"] == 0
    assert set(data["mmcore_bench"]["loadavg"]) == {"median", "max"}
    assert "load average during the run" in B.format_markdown(data)
    assert sorted(b["name"] for b in data["benchmarks"]) == ["test_gadgets", "test_widgets"]
    assert B.ratios(data)[0]["benchmarks"] == ["test_gadgets", "test_widgets"]


def test_a_failing_benchmark_exits_1_and_a_bad_selection_exits_2(fake_suite):
    code, out, err = run_cli(["bench", "--suite", str(fake_suite), "-k", "broken or widgets"])
    assert code == 1 and "a benchmark failed" in err and "test_widgets" in out
    code, _, err = run_cli(["bench", "--suite", str(fake_suite), "-k", "nothing_matches"])
    assert code == 2 and "-k 'nothing_matches': selects no benchmark" in err
    code, _, err = run_cli(["bench", "--suite", str(fake_suite), "-k", "widgets and ("])
    assert code == 2 and "-k 'widgets and ('" in err and "expression" in err


# ---- the slowdown check -------------------------------------------------------------------------

def rate_run(bare: float, rates: dict[str, float], bare_loop: str = "bare-loop-1") -> dict:
    entries = [bench_entry(BARE, "access", {"accesses_per_s": bare})]
    entries += [bench_entry(n, "x", {"things_per_s": v}) for n, v in rates.items()]
    return results(*entries, bare_loop=bare_loop)


def test_slowdown_is_normalised_to_the_bare_loop():
    rec = rate_run(20e6, {"test_a": 10e6, "test_b": 4e6})
    # a machine twice as slow: every figure halves, nothing is slower once normalised
    rows = S.compare(rec, rate_run(10e6, {"test_a": 5e6, "test_b": 2e6}), ["test_a", "test_b"])
    assert [round(r["slowdown"], 6) for r in rows] == [1.0, 1.0] and all(r["ok"] for r in rows)
    # the same machine, test_b twice as slow: it fails, test_a passes at 1.4x
    rows = S.compare(rec, rate_run(20e6, {"test_a": 10e6 / 1.4, "test_b": 2e6}), ["test_a", "test_b"])
    assert [(r["name"], r["ok"]) for r in rows] == [("test_a", True), ("test_b", False)]
    assert rows[1]["slowdown"] == pytest.approx(2.0)
    # a figure where less is better (seconds) counts the other way round
    rec_s = results(bench_entry(BARE, "access", {"accesses_per_s": 20e6}),
                    bench_entry("test_compile_cold", "compile", {"cold_compile_s": 40.0}))
    cur_s = copy.deepcopy(rec_s)
    cur_s["benchmarks"][1]["extra_info"]["cold_compile_s"] = 80.0
    assert S.compare(rec_s, cur_s, ["test_compile_cold"])[0]["slowdown"] == pytest.approx(2.0)


def test_slowdown_best_of_two_runs():
    rec = rate_run(20e6, {"test_a": 10e6})
    first = S.compare(rec, rate_run(20e6, {"test_a": 4e6}), ["test_a"])
    second = S.compare(rec, rate_run(20e6, {"test_a": 9e6}), ["test_a"])
    assert not first[0]["ok"] and S.best_of(first, second)[0]["ok"]
    third = S.compare(rec, rate_run(20e6, {"test_a": 3e6}), ["test_a"])
    assert S.best_of(first, third)[0]["slowdown"] == first[0]["slowdown"]


def test_slowdown_bad_inputs():
    rec = rate_run(20e6, {"test_a": 10e6})
    with pytest.raises(B.BenchError, match="bare loop changed"):
        S.compare(rec, rate_run(20e6, {"test_a": 10e6}, bare_loop="bare-loop-2"), ["test_a"])
    with pytest.raises(B.BenchError, match="recorded run: the run has no benchmark test_z"):
        S.compare(rec, rate_run(20e6, {"test_z": 1.0}), ["test_z"])
    no_bare = results(bench_entry("test_a", "x", {"things_per_s": 1.0}))
    with pytest.raises(B.BenchError, match=r"recorded run: the run has no test_access\[bare-random\]"):
        S.compare(no_bare, rec, ["test_a"])


def test_slowdown_main_exit_status(tmp_path, capsys):
    rec, ok, slow = tmp_path / "rec.json", tmp_path / "ok.json", tmp_path / "slow.json"
    rec.write_text(json.dumps(rate_run(20e6, {"test_a": 10e6})))
    ok.write_text(json.dumps(rate_run(10e6, {"test_a": 5.1e6})))
    slow.write_text(json.dumps(rate_run(20e6, {"test_a": 5e6})))
    assert S.main(["--recorded", str(rec), "--results", str(ok)]) == 0
    assert "ok (1 benchmark within 1.5x" in capsys.readouterr().out
    assert S.main(["--recorded", str(rec), "--results", str(slow)]) == 1
    assert "slower than 1.5x the recorded run" in capsys.readouterr().err
    assert S.main(["--recorded", str(rec), "--results", str(slow), "--threshold", "2.5"]) == 0
    assert S.main(["--recorded", str(rec), "--results", str(slow), "--threshold", "0.5"]) == 2
    assert S.main(["--recorded", str(tmp_path / "none.json"), "--results", str(ok)]) == 2
    assert "--recorded" in capsys.readouterr().err


def test_slowdown_subset_is_in_the_recorded_run():
    """The benchmarks CI compares exist in bench/ and in the recorded run, with the bare loop."""
    data = B.load(RECORDED)
    names = [S._name(n) for n in S.SUBSET]
    assert S.REFERENCE in names
    S.check_recorded(data, names)
    for node in S.SUBSET:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), node
