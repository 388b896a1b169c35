"""The slowdown check CI runs: a few benchmarks against the recorded run, with machine speed
taken out.

    python bench/check_slowdown.py                      # run SUBSET, compare with bench/recorded.json
    python bench/check_slowdown.py --results run.json   # compare a results file already written
    python bench/check_slowdown.py --threshold 1.5 --recorded bench/recorded.json

Each benchmark's headline figure (``mmcore.bench.headline``: its rate) is divided by the bare
reference loop's rate measured in the same run (``test_access[bare-random]``, the median of its 5
rounds; ``bench/bare_loop.py``). The recorded run (``bench/recorded.json``, written by
``mmcore bench --json``) is normalised the same way, and the slowdown of a benchmark is recorded
over current. A machine twice as fast speeds up the bare loop as much as the engine, so the
ratio holds across machines; what moves it is the engine. A benchmark whose slowdown is above the
threshold (1.5) is measured again once, with the bare loop, and the better of its two runs
counts: a slowdown has to show twice, so one burst of noise on a shared machine does not fail it.

Exit status: 0 when no benchmark is slower than the threshold, 1 when one is, 2 for bad input (a
benchmark or the bare loop missing from the recorded run, a bare loop of another version).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mmcore.bench import BenchError, find_suite, headline, load, run_suite

BENCH_DIR = Path(__file__).resolve().parent
RECORDED = BENCH_DIR / "recorded.json"
REFERENCE = "test_access[bare-random]"
THRESHOLD = 1.5
# node ids (relative to the repository root): the engine's main paths, each a few seconds
SUBSET = (
    "bench/test_bench_engine.py::test_access[bare-random]",
    "bench/test_bench_engine.py::test_access[engine-random]",
    "bench/test_bench_engine.py::test_access[engine-sequential]",
    "bench/test_bench_engine.py::test_fault_4k",
    "bench/test_bench_engine.py::test_fault_thp",
    "bench/test_bench_files.py::test_file_fault_pagecache_hit",
    "bench/test_bench_pagecache.py::test_replay_lru[mmcore]",
    "bench/test_bench_khugepaged.py::test_khugepaged_collapse",
    "bench/test_bench_oom.py::test_oom_badness_array[6.18]",
)


def _name(node: str) -> str:
    return node.rsplit("::", 1)[-1]


def _by_name(data: dict) -> dict[str, dict]:
    return {b["name"]: b for b in data["benchmarks"]}


def normalised(data: dict, name: str) -> tuple[float, float]:
    """(figure, figure normalised to the bare loop of the same run). A rate is divided by the
    bare loop's rate; a figure where less is better (seconds, bytes) is multiplied by it, so that
    for both a smaller normalised value is a slower engine."""
    b = _by_name(data)
    if REFERENCE not in b:
        raise BenchError(f"the run has no {REFERENCE} (the bare loop every figure is normalised "
                         "to)")
    if name not in b:
        raise BenchError(f"the run has no benchmark {name}")
    bare = headline(b[REFERENCE])[1]
    key, value, _ = headline(b[name])
    if key is not None and key.endswith("_per_s"):
        return value, value / bare
    return value, 1.0 / (value * bare)


def check_recorded(recorded: dict, names: list[str]) -> None:
    """Every benchmark of ``names`` and the bare loop are in the recorded run."""
    for name in [REFERENCE] + list(names):
        try:
            normalised(recorded, name)
        except BenchError as e:
            raise BenchError(f"recorded run: {e}; record the suite again (mmcore bench --json "
                             "bench/recorded.json)") from None


def compare(recorded: dict, current: dict, names: list[str],
            threshold: float = THRESHOLD) -> list[dict]:
    """One row per benchmark: figures, normalised figures, slowdown (recorded over current,
    normalised) and whether it passes."""
    rv = recorded["machine_info"].get("bare_loop")
    cv = current["machine_info"].get("bare_loop")
    if rv != cv:
        raise BenchError(f"the bare loop changed ({rv!r} recorded, {cv!r} now): record the suite "
                         "again (mmcore bench --json bench/recorded.json)")
    check_recorded(recorded, names)
    rows = []
    for name in names:
        if name == REFERENCE:
            continue
        r_fig, r_norm = normalised(recorded, name)
        c_fig, c_norm = normalised(current, name)
        slow = r_norm / c_norm
        rows.append({"name": name, "recorded": r_fig, "current": c_fig, "recorded_norm": r_norm,
                     "current_norm": c_norm, "slowdown": slow, "ok": slow <= threshold})
    return rows


def best_of(first: list[dict], second: list[dict], threshold: float = THRESHOLD) -> list[dict]:
    """The rows of ``first``, each replaced by its row in ``second`` where that one is faster."""
    again = {r["name"]: r for r in second}
    out = []
    for r in first:
        s = again.get(r["name"])
        out.append(s if s is not None and s["slowdown"] < r["slowdown"] else r)
    return [dict(r, ok=r["slowdown"] <= threshold) for r in out]


def report(rows: list[dict], current: dict, threshold: float) -> str:
    bare = headline(_by_name(current)[REFERENCE])[1]
    lines = [f"bare loop ({REFERENCE}): {bare / 1e6:.1f} M accesses/s in this run",
             f"{'benchmark':40} {'recorded':>10} {'now':>10} {'slowdown':>9}  (threshold {threshold}x)"]
    for r in rows:
        lines.append(f"{r['name']:40} {r['recorded_norm']:10.4g} {r['current_norm']:10.4g} "
                     f"{r['slowdown']:8.2f}x  {'ok' if r['ok'] else 'SLOWER'}")
    lines.append("(figures normalised to the bare loop of their own run)")
    return "\n".join(lines)


def run(nodes: list[str]) -> dict:
    """Run the given benchmarks (node ids) and load their results."""
    suite = find_suite(BENCH_DIR)
    with tempfile.TemporaryDirectory(prefix="mmcore-slowdown-") as d:
        out = Path(d) / "run.json"
        rc = run_suite(suite, None, out, nodes=nodes)
        if rc != 0 or not out.exists():
            raise RuntimeError(f"the benchmarks did not run (pytest exit status {rc})")
        return load(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recorded", default=str(RECORDED), help="the recorded run (default %(default)s)")
    p.add_argument("--results", help="compare this results file instead of running SUBSET")
    p.add_argument("--threshold", type=float, default=THRESHOLD,
                   help="the largest slowdown that passes (default %(default)s)")
    a = p.parse_args(argv)
    try:
        if not a.threshold >= 1.0:
            raise BenchError(f"--threshold {a.threshold}: expected a number >= 1")
        recorded = load(a.recorded, "--recorded ")
        if a.results is not None:
            current = load(a.results, "--results ")
            names = [b["name"] for b in current["benchmarks"]]
            rows = compare(recorded, current, names, a.threshold)
        else:
            names = [_name(n) for n in SUBSET]
            check_recorded(recorded, names)      # fail before running, not after
            current = run(list(SUBSET))
            rows = compare(recorded, current, names, a.threshold)
            slow = [r["name"] for r in rows if not r["ok"]]
            if slow:
                print(report(rows, current, a.threshold))
                print(f"\nslower than {a.threshold}x: {', '.join(slow)}; measuring them again")
                nodes = [SUBSET[0]] + [n for n in SUBSET if _name(n) in slow]
                current = run(nodes)
                rows = best_of(rows, compare(recorded, current, slow, a.threshold), a.threshold)
    except BenchError as e:
        print(f"check_slowdown: error: {e}", file=sys.stderr)
        return 2
    print(report(rows, current, a.threshold))
    slow = [r["name"] for r in rows if not r["ok"]]
    if slow:
        print(f"check_slowdown: slower than {a.threshold}x the recorded run (normalised to the "
              f"bare loop): {', '.join(slow)}", file=sys.stderr)
        return 1
    print(f"check_slowdown: ok ({len(rows)} benchmark{'' if len(rows) == 1 else 's'} within "
          f"{a.threshold}x of the recorded run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
