"""Run the benchmark suite and print every benchmark's extra_info (rates, ratios, sizes).

    python bench/run_bench.py                      # runs: python -m pytest bench --benchmark-only -q
    python bench/run_bench.py -k access            # extra arguments go to pytest
    python bench/run_bench.py --show results.json  # print a saved --benchmark-json file

The suite alone is ``python -m pytest bench --benchmark-only -q`` (from the repository root); its
table has the timings but not the extra_info, which is only in the ``--benchmark-json`` output.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def show(path: str) -> None:
    data = json.loads(Path(path).read_text())
    mi = data.get("machine_info", {})
    print("versions: " + ", ".join(f"{k} {mi[k]}" for k in
                                   ("python_version", "mmcore", "numba", "llvmlite", "numpy",
                                    "bare_loop") if k in mi))
    for b in sorted(data["benchmarks"], key=lambda b: (b["group"] or "", b["name"])):
        print(f"\n[{b['group']}] {b['name']}: median {b['stats']['median']:.4g} s "
              f"over {b['stats']['rounds']} rounds")
        for k, v in b["extra_info"].items():
            if isinstance(v, dict):
                v = ", ".join(f"{kk}={_fmt(vv)}" for kk, vv in v.items())
            print(f"    {k:<48} {_fmt(v)}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--show"]:
        show(argv[1])
        return 0
    with tempfile.TemporaryDirectory() as d:
        out = str(Path(d) / "bench.json")
        rc = subprocess.call([sys.executable, "-m", "pytest", "bench", "--benchmark-only", "-q",
                              f"--benchmark-json={out}", *argv], cwd=ROOT)
        if Path(out).exists():
            show(out)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
