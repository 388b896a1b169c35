"""``mmcore bench``: run the benchmark suite and tabulate its figures and ratios.

The suite is ``bench/`` of the source tree (pytest-benchmark; ``bench/README.md`` describes every
benchmark). It runs in a subprocess::

    python -m pytest bench --benchmark-only --benchmark-json=PATH -v

and this module reads the JSON it writes. Each benchmark's headline figure is the first rate in
its ``extra_info`` (a key ending in ``_per_s``) or one of the few figures that are not rates
(``cold_compile_s``, ``warm_start_s``, ``rss_after_fault_bytes_per_frame``); a benchmark with
neither is shown by its median round in seconds. Ratios are the ``extra_info`` keys with
``_over_`` in their name or ending in ``_speedup``: both sides were measured in the same run, and
both benchmarks of a pair carry the ratio, so it is listed once with the two.

``--quick`` leaves out the ``compile`` group (a cold compile takes from 40 s to several minutes)
and the ``memory`` group (a 256 GiB machine in a subprocess); what does run runs at full size,
and the output says which groups were left out.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["BenchError", "find_suite", "run_suite", "load", "figures", "ratios", "machine",
           "format_text", "format_markdown", "QUICK_SKIPPED"]

# the benchmarks --quick leaves out: the compile group and the memory group
QUICK_SKIPPED = ("test_compile_cold", "test_start_warm", "test_memory_per_frame")
QUICK_NOTE = ("quick run: the compile and memory groups were left out "
              "(the figures shown are full-size)")

# figures that are not rates, with their unit (checked before the rates, in extra_info order)
_SCALARS = {"cold_compile_s": "s, cold compile", "warm_start_s": "s, warm start",
            "rss_after_fault_bytes_per_frame": "host bytes/frame (struct page: 64)"}
_RATIO = re.compile(r"_over_|_speedup$")


class BenchError(ValueError):
    """Bad input to ``mmcore bench`` (an option's value); the message names the option."""


# ---- running the suite ----------------------------------------------------------------------

def find_suite(suite: str | os.PathLike | None = None) -> Path:
    """The ``bench/`` directory: ``suite`` if given, else the one beside the ``mmcore`` package
    (a source checkout, installed editable), else ``./bench``."""
    if suite is not None:
        p = Path(suite)
        if not (p.is_dir() and (p / "conftest.py").is_file()):
            raise BenchError(f"--suite {suite}: expected the benchmark suite's directory (bench/ of "
                             "the mmcore source tree, holding conftest.py)")
        return p.resolve()
    for p in (Path(__file__).resolve().parent.parent / "bench", Path.cwd() / "bench"):
        if (p / "conftest.py").is_file() and (p / "bare_loop.py").is_file():
            return p
    raise BenchError("the benchmark suite (bench/) comes with the source tree, not with the "
                     "installed package: run from a checkout of mmcore or give --suite DIR")


def _check_tools() -> None:
    import importlib.util
    for mod, pkg in (("pytest", "pytest"), ("pytest_benchmark", "pytest-benchmark")):
        if importlib.util.find_spec(mod) is None:
            raise BenchError(f"{pkg} is not installed; the suite needs it: "
                             "pip install -e '.[bench]'")


def select_expr(k: str | None, quick: bool) -> str | None:
    """The ``-k`` expression pytest gets: the user's, and ``--quick``'s exclusions."""
    parts = []
    if k is not None:
        parts.append(f"({k})")
    if quick:
        parts.append("not (" + " or ".join(QUICK_SKIPPED) + ")")
    return " and ".join(parts) or None


def _pytest(suite: Path, args: Sequence[str], targets: Sequence[str] | None = None) -> list[str]:
    return [sys.executable, "-m", "pytest", *(targets or [str(suite)]), "-p", "no:cacheprovider",
            "-p", "pytest_benchmark.plugin", *args]


def _env() -> dict[str, str]:
    """The suite needs one plugin, loaded explicitly; others (hypothesis, xdist, ...) stay out of
    the timed process and out of its start-up time. A caller that is itself an xdist worker (the
    test suite under ``-n``) must not pass that on: pytest-benchmark would see xdist and turn
    benchmarks off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_XDIST") and k != "PYTEST_CURRENT_TEST"}
    return dict(env, PYTHONUNBUFFERED="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")


def collect(suite: Path, expr: str | None, k: str | None) -> list[str]:
    """The node ids the selection picks (``pytest --collect-only``); a bad or empty ``-k`` is a
    BenchError naming the option and the value."""
    args = ["--collect-only", "-q", "--benchmark-only"] + (["-k", expr] if expr else [])
    p = subprocess.run(_pytest(suite, args), cwd=suite.parent, capture_output=True, text=True,
                       env=_env())
    lines = p.stdout.splitlines()
    if p.returncode == 4 or (p.returncode != 0 and "Wrong expression" in p.stdout + p.stderr):
        why = next((ln.strip() for ln in (p.stdout + p.stderr).splitlines()
                    if "expression" in ln.lower()), "pytest could not parse it")
        raise BenchError(f"-k {k!r}: expected a pytest -k expression of benchmark names (e.g. "
                         f"'access and not thp'); {why}")
    if p.returncode == 5 or (p.returncode == 0 and not any("::" in ln for ln in lines)):
        raise BenchError(f"-k {k!r}: selects no benchmark; names look like test_access, "
                         "test_fault_thp, test_replay_lru (bench/README.md lists them)")
    if p.returncode != 0:
        raise RuntimeError(f"collecting the benchmark suite failed (pytest exit status "
                           f"{p.returncode}):\n{p.stdout[-4000:]}{p.stderr[-4000:]}")
    return [ln.strip() for ln in lines if "::" in ln]


class _LoadSampler:
    """The host's 1-minute load average every few seconds while the suite runs: the figures of a
    run on a shared machine mean more with it (the suite itself adds about 1)."""

    def __init__(self, every_s: float = 5.0):
        import threading
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._every = every_s
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.samples.append(os.getloadavg()[0])
            except OSError:                       # no load average on this platform
                return
            if self._stop.wait(self._every):
                return

    def __enter__(self) -> "_LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float] | None:
        if not self.samples:
            return None
        v = sorted(self.samples)
        return {"median": round(v[len(v) // 2], 2), "max": round(v[-1], 2)}


def _forward(proc: subprocess.Popen, out) -> None:
    """Copy the child's output to ``out`` as it comes (pytest's progress)."""
    fd = proc.stdout.fileno()
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        out.write(chunk.decode(errors="replace"))
        out.flush()


def run_suite(suite: Path, expr: str | None, json_path: Path, out=None,
              nodes: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks (the suite, or the node ids ``nodes``), writing
    pytest-benchmark's JSON to ``json_path``; pytest's progress (one line per benchmark) goes to
    ``out`` (default stderr). pytest's exit status."""
    out = sys.stderr if out is None else out
    args = ["--benchmark-only", "--benchmark-quiet", f"--benchmark-json={json_path}", "-v",
            "--no-header"] + (["-k", expr] if expr else [])
    proc = subprocess.Popen(_pytest(suite, args, nodes), cwd=suite.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=_env())
    try:
        _forward(proc, out)
    finally:
        rc = proc.wait()
    return rc


# ---- reading results ------------------------------------------------------------------------

def load(path: str | os.PathLike, option: str = "") -> dict:
    """A results file (``--benchmark-json`` or ``mmcore bench --json``), checked for shape;
    ``option`` prefixes error messages (``"--show "``)."""
    where = f"{option}{path}"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BenchError(f"{where}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BenchError(f"{where}: not a benchmark results file (JSON: {e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list) \
            or not isinstance(data.get("machine_info"), dict):
        raise BenchError(f"{where}: not a benchmark results file (expected pytest-benchmark's "
                         "JSON with 'machine_info' and 'benchmarks')")
    for b in data["benchmarks"]:
        if not (isinstance(b, dict) and isinstance(b.get("name"), str)
                and isinstance(b.get("stats"), dict) and "median" in b["stats"]):
            raise BenchError(f"{where}: a benchmark entry without a name or stats: {str(b)[:200]}")
    return data


def _unit(key: str) -> str:
    if key in _SCALARS:
        return _SCALARS[key]
    return key[:-len("_per_s")].replace("_", " ") + "/s"


def headline(b: dict) -> tuple[str | None, float, str]:
    """(extra_info key or None, value, unit) of a benchmark's headline figure."""
    for k, v in b.get("extra_info", {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                k in _SCALARS or k.endswith("_per_s")):
            return k, float(v), _unit(k)
    return None, float(b["stats"]["median"]), "s/run (wall)"


def _order(benchmarks: list[dict]) -> list[dict]:
    return sorted(benchmarks, key=lambda b: (b.get("group") or "", b["name"]))


def figures(data: dict) -> list[dict]:
    """One row per benchmark: group, name, key, value, unit, median_s, rounds."""
    rows = []
    for b in _order(data["benchmarks"]):
        key, value, unit = headline(b)
        rows.append({"group": b.get("group") or "", "name": b["name"], "key": key, "value": value,
                     "unit": unit, "median_s": float(b["stats"]["median"]),
                     "rounds": int(b["stats"]["rounds"])})
    return rows


def ratios(data: dict) -> list[dict]:
    """Each ratio once: name, value, and the benchmarks carrying it (both sides of the pair)."""
    seen: dict[tuple[str, float], list[str]] = {}
    for b in _order(data["benchmarks"]):
        for k, v in b.get("extra_info", {}).items():
            if _RATIO.search(k) and isinstance(v, (int, float)) and not isinstance(v, bool):
                seen.setdefault((k, float(v)), []).append(b["name"])
    return [{"name": k, "value": v, "benchmarks": names} for (k, v), names in seen.items()]


def machine(data: dict) -> dict[str, str]:
    """What the run was measured on, from pytest-benchmark's machine_info and commit_info."""
    mi = data["machine_info"]
    cpu = mi.get("cpu", {}) if isinstance(mi.get("cpu"), dict) else {}
    ci = data.get("commit_info") or {}
    commit = str(ci.get("id") or "")[:12]
    if commit and ci.get("dirty"):
        commit += " (with uncommitted changes)"
    hz = cpu.get("hz_advertised_friendly") or cpu.get("hz_actual_friendly") or ""
    return {
        "cpu": str(cpu.get("brand_raw") or mi.get("processor") or "unknown CPU"),
        "cores": str(cpu.get("count", "?")),
        "clock": str(hz),
        "os": f"{mi.get('system', '?')} {mi.get('release', '')}".strip(),
        "arch": str(mi.get("machine", "")),
        "python": str(mi.get("python_version", "?")),
        "versions": ", ".join(f"{name} {mi[k]}" for name, k in (
            ("mmcore", "mmcore"), ("numba", "numba"), ("llvmlite", "llvmlite"), ("NumPy", "numpy"))
            if k in mi),
        "bare_loop": str(mi.get("bare_loop", "")),
        "commit": commit,
        "date": str(data.get("datetime", ""))[:10],
    }


# ---- formatting -----------------------------------------------------------------------------

def fmt_value(v: float) -> str:
    """Three significant digits, with k/M/G for large values."""
    if not math.isfinite(v):
        return str(v)
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def fmt_ratio(v: float) -> str:
    return f"{v:.2f}" if abs(v) < 10 else f"{v:.3g}"


def _fmt_seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def machine_line(data: dict) -> str:
    m = machine(data)
    parts = [f"{m['cpu']}, {m['cores']} cores" + (f" at {m['clock']}" if m["clock"] else ""),
             f"{m['os']} {m['arch']}".strip(), f"Python {m['python']}"]
    if m["versions"]:
        parts.append(m["versions"])
    if m["commit"]:
        parts.append(f"commit {m['commit']}")
    if m["date"]:
        parts.append(m["date"])
    load = (data.get("mmcore_bench") or {}).get("loadavg")
    if load:
        parts.append(f"load average during the run {load['median']:.1f} (max {load['max']:.1f}; "
                     "the suite itself adds about 1)")
    return "; ".join(parts)


def _notes(data: dict) -> list[str]:
    info = data.get("mmcore_bench") or {}
    notes = []
    if info.get("quick"):
        notes.append(QUICK_NOTE)
    if info.get("select"):
        notes.append(f"selection: -k {info['select']!r}")
    return notes


def _table(headers: list[str], rows: list[list[Any]], right: set[int]) -> str:
    """Aligned columns: text to the left, the columns in ``right`` to the right."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    return "\n".join([line(headers)] + [line(r) for r in cells])


def format_text(data: dict) -> str:
    fig = figures(data)
    rows = [[r["group"], r["name"], fmt_value(r["value"]), r["unit"], _fmt_seconds(r["median_s"]),
             r["rounds"]] for r in fig]
    out = [f"measured on: {machine_line(data)}"]
    out += [f"NOTE: {n}" for n in _notes(data)]
    out += ["", _table(["group", "benchmark", "figure", "unit", "median round", "rounds"], rows,
                       {2, 4, 5})]
    rat = ratios(data)
    if rat:
        out += ["", "ratios measured side by side in the same run:",
                _table(["ratio", "value", "benchmarks"],
                       [[r["name"], fmt_ratio(r["value"]), ", ".join(r["benchmarks"])] for r in rat],
                       {1})]
    return "\n".join(out)


def format_markdown(data: dict) -> str:
    """The README's table: the machine, each figure, then the ratios."""
    out = [f"Measured on {machine_line(data)}."]
    out += [f"**{n[0].upper() + n[1:]}.**" for n in _notes(data)]
    out += ["", "| group | benchmark | figure | median round |", "|---|---|---|---|"]
    for r in figures(data):
        out.append(f"| {r['group']} | `{r['name']}` | {fmt_value(r['value'])} {r['unit']} | "
                   f"{_fmt_seconds(r['median_s'])} x {r['rounds']} |")
    rat = ratios(data)
    if rat:
        out += ["", "| ratio (same run) | value | between |", "|---|---|---|"]
        for r in rat:
            out.append(f"| `{r['name']}` | {fmt_ratio(r['value'])} | "
                       + ", ".join(f"`{n}`" for n in r["benchmarks"]) + " |")
    return "\n".join(out)


# ---- the command ----------------------------------------------------------------------------

def main(k: str | None = None, json_out: str | None = None, markdown: bool = False,
         quick: bool = False, show: str | None = None, suite: str | None = None,
         out: Callable[[str], None] = print) -> int:
    """``mmcore bench``: 0 when every selected benchmark ran, 1 when some failed."""
    if json_out is not None:
        d = os.path.dirname(os.path.abspath(json_out))
        if not os.path.isdir(d):
            raise BenchError(f"--json {json_out}: directory {d} does not exist")
    if show is not None:
        if k is not None or quick or suite is not None:
            raise BenchError("--show prints a saved results file; -k, --quick and --suite go with "
                             "a run (mmcore bench -k EXPR)")
        data = load(show, "--show ")
        failed = False
    else:
        _check_tools()
        s = find_suite(suite)
        expr = select_expr(k, quick)
        nodes = collect(s, expr, k)
        print(f"mmcore bench: {len(nodes)} benchmark{'' if len(nodes) == 1 else 's'} from {s}"
              + (" (quick: compile and memory groups left out)" if quick else ""), file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="mmcore-bench-") as tmp:
            jp = Path(tmp) / "bench.json"
            t0 = time.perf_counter()
            with _LoadSampler() as sampler:
                rc = run_suite(s, expr, jp)
            wall = time.perf_counter() - t0
            if not jp.exists():
                if rc == 2:
                    raise KeyboardInterrupt
                raise RuntimeError(f"the suite wrote no results (pytest exit status {rc}; its "
                                   "output is above)")
            data = load(jp)
        data["mmcore_bench"] = {"quick": quick, "select": k, "wall_s": round(wall, 1),
                                "selected": len(nodes), "pytest_status": rc,
                                "loadavg": sampler.summary(), "cpus": os.cpu_count()}
        if rc == 2:
            raise KeyboardInterrupt
        failed = rc != 0
    if json_out is not None:
        tmp_out = json_out + ".tmp"
        with open(tmp_out, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp_out, json_out)
    out(format_markdown(data) if markdown else format_text(data))
    if json_out is not None:
        out(f"\njson: {json_out}")
    if failed:
        done = len(data["benchmarks"])
        print(f"mmcore bench: pytest exit status {data['mmcore_bench']['pytest_status']}: "
              f"{done} of {data['mmcore_bench']['selected']} benchmarks recorded; a benchmark failed "
              "(pytest's output above says which)", file=sys.stderr)
        return 1
    return 0
