"""The ``mmcore`` command.

``mmcore run`` runs the built-in THP story; ``mmcore run SCENARIO.toml`` runs a scenario file
(``mmcore.scenario``) and prints its summary, optionally writing an HDF5 trace;
``mmcore report TRACE.h5`` turns a trace into plots and a summary table; ``mmcore validate
SCENARIO.toml`` checks a scenario without running it; ``mmcore validate`` (or ``mmcore validate
--host``) runs small scenarios on the host Linux and in the engine and prints a table comparing
what the kernel shows with what the engine computes (``mmcore.validate``); ``mmcore bench``
runs the benchmark suite of the source tree and prints each figure and the ratios measured in
the same run (``mmcore.bench``). Exit status: 0 on
success, 2 for bad input (the message says what and where; nothing is written), 1 for an
internal error, and 1 when a host check does not match the engine (``EXIT_MISMATCH``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import tomllib
import traceback
from typing import Any

from . import __version__

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2
EXIT_MISMATCH = 1                 # mmcore validate --host: a check that ran did not match


class InputError(Exception):
    """Bad input found by the command line itself (exit status 2)."""


# ---- tables ------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[Any]], markdown: bool = False) -> str:
    """Rows under headers: aligned text columns, or a markdown table."""
    cells = [[_cell(v) for v in r] for r in rows]
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in cells]
        return "\n".join(out)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(list(headers))] + [line(r) for r in cells])


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.3f}"
    return str(v)


def _ms(ns: int | float) -> float:
    return ns / 1e6


def _us(ns: int | float) -> float:
    return ns / 1e3


def summary_tables(s: dict, markdown: bool = False) -> str:
    """The summary of a scenario run (``run_scenario``'s dict) as tables."""
    parts = []
    rows = []
    for ph in s["phases"]:
        first = True
        for key, st in ph["ops"].items():
            rows.append([ph["name"] if first else "", _ms(ph["sim_time_ns"]) if first else "", key,
                         st["count"], st["errors"], _us(st["p50_ns"]), _us(st["p99_ns"]),
                         _us(st["max_ns"]), _ms(st["total_ns"])])
            first = False
        if first:
            rows.append([ph["name"], _ms(ph["sim_time_ns"]), "-", 0, 0, "", "", "", ""])
    parts.append(table(["phase", "sim ms", "task.op", "count", "errors", "p50 us", "p99 us",
                        "max us", "total ms"], rows, markdown))
    rows = []
    for name, t in s["tasks"].items():
        if not t.get("alive", True) or "status" not in t:
            rows.append([name, t["pid"], t["comm"], "exited", "", "", "", "", ""])
            continue
        st, c, sr = t["status"], t["counters"], t["smaps_rollup"]
        rows.append([name, t["pid"], t["comm"], st["VmRSS"], sr.get("AnonHugePages", 0), st["VmPTE"],
                     c["min_flt"], c["dtlb_misses"], _ms(c["time_ns"])])
    parts.append(table(["task", "pid", "comm", "VmRSS kB", "AnonHugePages kB", "VmPTE kB", "faults",
                        "dTLB misses", "clock ms"], rows, markdown))
    mi = s["meminfo"]
    keys = ["MemFree", "MemAvailable", "Cached", "Dirty", "AnonPages", "AnonHugePages", "PageTables"]
    # the huge page cache and overcommit, where the run used them
    keys += [k for k in ("ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped")
             if mi.get(k)]
    keys += ["Committed_AS"] if mi.get("Committed_AS") else []
    parts.append(table(["meminfo"] + keys, [["kB"] + [mi.get(k, 0) for k in keys]], markdown))
    vs = s["vmstat"]
    keys = ["pgfault", "thp_fault_alloc", "thp_fault_fallback", "pgpgin", "pgpgout", "drop_pagecache",
            "pgscan_kswapd", "pgsteal_direct"]
    parts.append(table(["vmstat"] + keys, [[""] + [vs.get(k, 0) for k in keys]], markdown))
    if s.get("filesystems"):
        rows = [[p, f["fstype"], f["bytes_read"], f["bytes_written"], f["free_blocks"]]
                for p, f in s["filesystems"].items()]
        parts.append(table(["mount", "fstype", "bytes read", "bytes written", "free blocks"], rows, markdown))
    if s.get("cgroups"):
        rows = [[p, c["current"] // 1024, c["peak"] // 1024, c.get("swap", 0) // 1024,
                 c["events"].get("max", 0), c["events"].get("oom", 0),
                 c["events"].get("oom_kill", 0), len(c["procs"])]
                for p, c in s["cgroups"].items()]
        parts.append(table(["cgroup", "current kB", "peak kB", "swap kB", "max events", "oom",
                            "oom_kill", "procs"], rows, markdown))
    if s.get("userspace_kills"):
        rows = [[k["by"], f"{k['time_ns'] / 1e6:.3f}", k["signal"], k["pid"], k["comm"],
                 k.get("cgroup", ""), k.get("rule", "memory and swap low")]
                for k in s["userspace_kills"]]
        parts.append(table(["killed by", "at ms", "signal", "pid", "comm", "cgroup", "why"], rows,
                           markdown))
    if s.get("outcome") == "hung":
        rows = [[h["task"], h["pid"], h["state"], h["waiting_for"],
                 "yes" if h.get("reported") else "no"] for h in s.get("hung_tasks", [])]
        parts.append("the run HUNG: no task could run again\n\n" +
                     table(["task", "pid", "state", "waiting for", "hung-task report"], rows,
                           markdown))
    dm = s.get("dmesg", [])
    if dm:
        shown = dm if len(dm) <= 5 else dm[:2] + [f"... ({len(dm) - 4} more)"] + dm[-2:]
        parts.append(("dmesg:\n" if not markdown else "dmesg:\n\n") +
                     "\n".join(("    " if markdown else "  ") + line for line in shown))
    return "\n\n".join(parts)


# ---- run -----------------------------------------------------------------------------------------

def _thp_story(args: argparse.Namespace) -> int:
    from .scenarios import thp_story
    if args.trace is not None or args.set:
        raise InputError("--trace and --set need a scenario file (mmcore run SCENARIO.toml); the "
                         "built-in THP story takes --memory, --size, --accesses and --seed")
    memory = args.memory or "4GiB"
    size = args.size or "512MiB"
    accesses = 2_000_000 if args.accesses is None else args.accesses
    seed = 0 if args.seed is None else args.seed
    t0 = time.perf_counter()
    try:
        rows = thp_story(memory=memory, size=size, accesses=accesses, seed=seed)
    except (ValueError, TypeError) as e:
        raise InputError(str(e)) from None
    print(f"mmcore {__version__}: the THP story, kernel 6.18 profile, {size} touched then "
          f"{accesses:,} random reads (seed {seed})\n")
    hdr = ("enabled", "prctl", "Rss kB", "AnonHugePages kB", "VmPTE kB", "faults",
           "dTLB misses", "STLB misses", "sim time ms")
    print("  ".join(f"{h:>16}" for h in hdr))
    for r in rows:
        print("  ".join(f"{v:>16}" if isinstance(v, str) else f"{v:>16,}" for v in (
            r["enabled"], r["prctl"], r["Rss"], r["AnonHugePages"], r["VmPTE"], r["faults"],
            r["dtlb_misses"], r["stlb_misses"], r["time_ns"] // 1_000_000)))
    print(f"\n(wall time {time.perf_counter() - t0:.1f} s)")
    return EXIT_OK


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; a value is read as TOML (``16``, ``true``, ``"x"``) or else
    taken as a string (``16MiB``, ``never``); so is a number whose text a float would not give
    back (``3.10``: a kernel version)."""
    out = {}
    for item in items or []:
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InputError(f"--set {item!r}: expected key=value, e.g. --set reads=1000 or "
                             "--set machine.memory=2GiB")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        if isinstance(value, float) and repr(value) != text.strip():
            value = text.strip()          # kernel=3.10 is a version, not the number 3.1
        out[key] = value
    return out


def _progress_bar(desc: str):
    """A tqdm bar on a terminal (nothing when stderr is not one) and its callback."""
    from tqdm import tqdm
    bar = tqdm(total=None, desc=desc, unit="op", leave=False, dynamic_ncols=True,
               disable=not sys.stderr.isatty(), mininterval=0.5)

    def update(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)
    return bar, update


def _run_scenario(args: argparse.Namespace) -> int:
    from .scenario import load_scenario, override, run_scenario
    for opt in ("memory", "size", "accesses"):
        if getattr(args, opt) is not None:
            raise InputError(f"--{opt} is an option of the built-in THP story; for a scenario use "
                             f"--set (e.g. --set machine.memory=2GiB)")
    sc = load_scenario(args.scenario)
    sets = parse_sets(args.set)
    if sets:
        sc = override(sc, sets)
    if args.trace is not None:
        d = os.path.dirname(os.path.abspath(args.trace))
        if not os.path.isdir(d):
            raise InputError(f"--trace {args.trace}: directory {d} does not exist")
    t0 = time.perf_counter()
    bar, update = _progress_bar(sc.name)
    try:
        summary = run_scenario(sc, seed=args.seed, trace=args.trace, progress=update)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
        return EXIT_OK
    print(f"mmcore {__version__}: scenario {sc.name} ({args.scenario}), hash {sc.hash[:12]}, "
          f"seed {summary['seed']}")
    if sc.description:
        print(f"  {sc.description}")
    if sc.params:
        print("  params: " + ", ".join(f"{k}={v}" for k, v in sc.params.items()))
    print()
    print(summary_tables(summary))
    if args.trace is not None:
        print(f"\ntrace: {args.trace}")
    print(f"\n(simulated {summary['sim_time_ns'] / 1e9:.3f} s, wall time {time.perf_counter() - t0:.1f} s)")
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    if args.host or args.scenario is None:
        return _validate_host(args)
    if args.json is not None or args.markdown:
        raise InputError("--json and --markdown go with the host check (mmcore validate --host); "
                         "a scenario file is checked without them")
    from .scenario import Repeat, load_scenario, override
    sc = load_scenario(args.scenario)
    sets = parse_sets(args.set)
    if sets:
        sc = override(sc, sets)

    def count(ops: tuple) -> int:
        return sum(count(o.ops) if isinstance(o, Repeat) else 1 for o in ops)
    nops = sum(count(ph.ops) for ph in sc.phases)
    print(f"{args.scenario}: ok: scenario {sc.name}, {len(sc.tasks)} tasks, {len(sc.phases)} phases, "
          f"{nops} ops, hash {sc.hash}")
    return EXIT_OK


def _validate_host(args: argparse.Namespace) -> int:
    """The host fidelity check: the table, optionally a JSON file; EXIT_MISMATCH on a mismatch."""
    from . import validate as V
    if args.scenario is not None:
        raise InputError(f"--host runs the host check and takes no scenario file (got "
                         f"{args.scenario}); to check the file: mmcore validate {args.scenario}")
    if args.set:
        raise InputError("--set goes with a scenario file: mmcore validate SCENARIO.toml --set KEY=VALUE")
    if args.json is not None:
        d = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(d):
            raise InputError(f"--json {args.json}: directory {d} does not exist")
    t0 = time.perf_counter()
    report = V.run()
    print(f"mmcore {__version__}: host fidelity check ({time.perf_counter() - t0:.1f} s)\n")
    print(report.format(markdown=args.markdown))
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_dict(), f, indent=1)
            f.write("\n")
        print(f"\njson: {args.json}")
    if not report.ok:
        print("mmcore: the host and the engine differ (MISMATCH rows above)", file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


# ---- report --------------------------------------------------------------------------------------

_MEMORY_SERIES = (   # label, vmstat columns summed, pages per unit of the counter
    ("RSS, all tasks (anon + mapped file)", ("nr_anon_pages", "nr_mapped"), 1),
    ("AnonHugePages", ("nr_anon_transparent_hugepages",), 512),
    ("Cached", ("nr_file_pages",), 1),
    ("Dirty", ("nr_dirty",), 1),
    ("MemFree", ("nr_free_pages",), 1),
)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _event_groups(tr) -> dict[str, "Any"]:
    """Event latencies (ns) per op, faults split by kind: {"fault:thp": array, "mmap": ...}."""
    import numpy as np
    ev = tr.events
    op, lat, kind = ev["op"], ev["latency_ns"], ev["kind"]
    out = {}
    for code in np.unique(op).tolist():
        name = tr.op_names[code] if 0 <= code < len(tr.op_names) else f"op{code}"
        sel = op == code
        if name == "fault":
            for k in np.unique(kind[sel]).tolist():
                kn = tr.kind_names[k] if 0 <= k < len(tr.kind_names) and tr.kind_names[k] else f"kind{k}"
                out[f"fault:{kn}"] = lat[sel & (kind == k)]
        else:
            out[name] = lat[sel]
    return out


def _finish(plt, fig, ax, path: str, xlabel: str, ylabel: str, title: str | None = None,
            grid: str | None = "major", legend: int = 8) -> None:
    """Label, grid, legend, save and close one report figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if grid is not None:
        ax.grid(True, which=grid, alpha=0.3)
    ax.legend(fontsize=legend)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_event_cdfs(plt, groups: dict, path: str) -> None:
    import numpy as np
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, v in sorted(groups.items()):
        x = np.sort(np.maximum(v, 1))
        ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=f"{name} ({x.size:,})")
    ax.set_xscale("log")
    _finish(plt, fig, ax, path, "latency (ns of simulated time; 0 shown as 1)", "fraction of events",
            "Latency CDF of recorded faults and system calls", grid="both")


def _plot_hist_cdfs(plt, hists: dict, path: str) -> None:
    """CDFs of the scenario ops' latencies from their log2 histograms (bucket upper edges)."""
    import numpy as np
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, h in sorted(hists.items()):
        c = np.cumsum(h.counts)
        if c[-1] == 0:
            continue
        ax.step(np.maximum(h.bucket_edges_ns[1:], 1), c / c[-1], where="post",
                label=f"{name.removesuffix('_latency_ns')} ({int(c[-1]):,})")
    ax.set_xscale("log")
    _finish(plt, fig, ax, path, "latency (ns of simulated time, log2 buckets: upper edge)",
            "fraction of ops", "Latency CDF of the scenario's ops, per phase, task and op",
            grid="both", legend=7)


def _plot_memory(plt, smp, path: str) -> bool:
    import numpy as np
    t = np.asarray(smp["time_ns"]) / 1e6
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = False
    for label, cols, scale in _MEMORY_SERIES:
        if all(c in smp for c in cols):
            pages = sum(np.asarray(smp[c], dtype=np.int64) for c in cols) * scale
            ax.plot(t, pages / 256.0, label=label)          # 256 pages of 4 KiB per MiB
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
    _finish(plt, fig, ax, path, "simulated time (ms)", "MiB", "Memory over time (sampled vmstat)")
    return True


def _plot_fault_rate(plt, tr, path: str) -> bool:
    """Faults per second of simulated time: from fault events, else from sampled pgfault."""
    import numpy as np
    fig, ax = plt.subplots(figsize=(8, 5))
    ev = tr.events
    fault = tr.op_names.index("fault") if "fault" in tr.op_names else -1
    sel = ev["op"] == fault if tr.n_events else np.zeros(0, bool)
    if sel.any():
        t, kind = ev["time_ns"][sel], ev["kind"][sel]
        smp_t = tr.samples["time_ns"] if "time_ns" in tr.samples else np.zeros(0, np.int64)
        end = max(int(ev["time_ns"].max()), int(smp_t.max()) if smp_t.size else 0, 1)
        edges = np.linspace(0, end, min(200, max(10, int(sel.sum()) // 50)) + 1)
        width_s = (edges[1] - edges[0]) / 1e9
        for k in np.unique(kind).tolist():
            counts, _ = np.histogram(t[kind == k], edges)
            kn = tr.kind_names[k] if 0 <= k < len(tr.kind_names) and tr.kind_names[k] else f"kind{k}"
            ax.step(edges[:-1] / 1e6, counts / width_s, where="post", label=f"fault:{kn}")
        ax.set_title("Page faults per second (recorded fault events)")
    elif "pgfault" in tr.samples and len(tr.samples["time_ns"]) > 1:
        t = np.asarray(tr.samples["time_ns"], dtype=np.float64)
        pf = np.asarray(tr.samples["pgfault"], dtype=np.float64)
        dt = np.diff(t) / 1e9
        ok = dt > 0
        ax.step(t[1:][ok] / 1e6, np.diff(pf)[ok] / dt[ok], where="pre", label="pgfault")
        ax.set_title("Page faults per second (sampled pgfault)")
    else:
        plt.close(fig)
        return False
    _finish(plt, fig, ax, path, "simulated time (ms)", "faults / s")
    return True


def _plot_oom(plt, tr, path: str) -> bool:
    """OOM kills over time, only when the trace has OOM events."""
    import numpy as np
    codes = [i for i, n in enumerate(tr.op_names) if "oom" in n]
    if not codes or not tr.n_events:
        return False
    ev = tr.events
    sel = np.isin(ev["op"], codes)
    if not sel.any():
        return False
    fig, ax = plt.subplots(figsize=(8, 3))
    for c in codes:
        s = ev["op"] == c
        if s.any():
            ax.scatter(ev["time_ns"][s] / 1e6, ev["pid"][s], marker="x", label=tr.op_names[c])
    _finish(plt, fig, ax, path, "simulated time (ms)", "pid", "OOM events", grid=None)
    return True


def _event_table(groups: dict) -> str:
    import numpy as np
    rows = []
    for name, v in sorted(groups.items()):
        q = (lambda p: int(np.percentile(v, p, method="nearest"))) if v.size else (lambda p: 0)
        rows.append([name, int(v.size), _us(q(50)), _us(q(90)), _us(q(99)), _us(int(v.max()) if v.size else 0)])
    return table(["event", "count", "p50 us", "p90 us", "p99 us", "max us"], rows, markdown=True)


def _report_markdown(tr, groups: dict, plots: list[str]) -> str:
    a = tr.attrs
    cfg = tr.config
    title = a.get("scenario_name") or "run"
    lines = [f"# mmcore run report: {title}", "",
             f"- trace: `{os.path.basename(tr.path)}`, {tr.n_events:,} events, "
             f"{len(tr.samples['time_ns']) if 'time_ns' in tr.samples else 0:,} samples",
             f"- seed {a.get('seed')}, scenario hash `{a.get('scenario_hash') or '-'}`",
             f"- mmcore {a.get('mmcore_version')}, numba {a.get('numba_version')}, "
             f"numpy {a.get('numpy_version')}, h5py {a.get('h5py_version')}",
             "- machine: " + ", ".join(f"{k}={cfg.get(k)}" for k in (
                 "memory", "kernel", "ncpus", "thp_enabled", "thp_defrag", "lru_policy",
                 "record_faults", "record_syscalls", "sample_interval_ns") if k in cfg), ""]
    summary = json.loads(a["summary"]) if isinstance(a.get("summary"), str) else None
    if summary is not None:
        lines += ["## Scenario summary", "", summary_tables(summary, markdown=True), ""]
    else:
        for name in ("meminfo", "vmstat"):
            if name in tr.final:
                d = tr.final[name]
                lines += [f"## {name}", "", table(["field", "value"], [[k, v] for k, v in d.items()],
                                                  markdown=True), ""]
    if groups:
        lines += ["## Recorded events", "", _event_table(groups), ""]
    if plots:
        lines += ["## Plots", ""] + [f"![{os.path.splitext(p)[0]}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def write_report(tr, out: str) -> list[str]:
    """Plots (PNG) and ``summary.md`` for an open trace, into directory ``out``; the paths."""
    plt = _plt()
    os.makedirs(out, exist_ok=True)
    plots: list[str] = []
    groups = _event_groups(tr) if tr.n_events else {}
    if groups:
        _plot_event_cdfs(plt, groups, os.path.join(out, "latency_cdf.png"))
        plots.append("latency_cdf.png")
    # the scenario ops' histograms with enough ops for a distribution (sleeps take what they ask)
    hists = {k: h for k, h in tr.hist.items() if k.startswith("phase") and int(h.counts.sum()) >= 10
             and not k.endswith(".sleep_latency_ns")}
    if hists:
        _plot_hist_cdfs(plt, hists, os.path.join(out, "op_latency_cdf.png"))
        plots.append("op_latency_cdf.png")
    smp = tr.samples
    if "time_ns" in smp and len(smp["time_ns"]) and _plot_memory(plt, smp, os.path.join(out, "memory.png")):
        plots.append("memory.png")
    if _plot_fault_rate(plt, tr, os.path.join(out, "fault_rate.png")):
        plots.append("fault_rate.png")
    if _plot_oom(plt, tr, os.path.join(out, "oom_timeline.png")):
        plots.append("oom_timeline.png")
    md = os.path.join(out, "summary.md")
    with open(md, "w", encoding="utf-8") as f:
        f.write(_report_markdown(tr, groups, plots))
    return [os.path.join(out, p) for p in plots] + [md]


# ---- the report command --------------------------------------------------------------------------------------

def _report(args: argparse.Namespace) -> int:
    from . import trace as T
    path = args.trace
    try:
        tr = T.open(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError) as e:
        raise InputError(str(e)) from None
    out = args.out or os.path.splitext(path)[0] + "-report"
    if os.path.exists(out) and not os.path.isdir(out):
        tr.close()
        raise InputError(f"--out {out}: exists and is not a directory")
    with tr:
        files = write_report(tr, out)
    print(f"report of {path} in {out}/: " + ", ".join(os.path.basename(f) for f in files))
    return EXIT_OK


# ---- sweep ----------------------------------------------------------------------------------------

EXIT_RUNS_FAILED = 3


def _sweep(args: argparse.Namespace) -> int:
    from . import sweep as S
    try:
        if args.show is not None:
            return _sweep_show(args, S)
        return _sweep_run(args, S)
    except S.SweepError as e:
        raise InputError(str(e)) from None


def _sweep_show(args: argparse.Namespace, S: Any) -> int:
    if args.scenario is not None:
        raise InputError("--show reads a results file: mmcore sweep --show SWEEP.h5 (no scenario)")
    cols = [c for item in args.columns for c in item.split(",") if c]
    print(S.format_table(args.show, cols or None, max_rows=args.max_rows))
    if args.plot:
        spec = {}
        for item in args.plot:
            k, eq, v = item.partition("=")
            if not eq or k not in ("x", "y") or not v:
                raise InputError(f"--plot {item!r}: expected x=COLUMN y=COLUMN[,COLUMN...]")
            spec[k] = v
        if set(spec) != {"x", "y"}:
            raise InputError("--plot: expected both x=COLUMN and y=COLUMN, e.g. --plot x=every "
                             "y=tasks.redis.smaps_rollup.Rss")
        out = args.plot_out or os.path.splitext(args.show)[0] + "-plot.png"
        print(f"\nplot: {S.plot(args.show, spec['x'], spec['y'].split(','), out)}")
    return EXIT_OK


def _key_values(S: Any, items: list[str], flag: str) -> dict[str, list]:
    """``--grid``/``--batch`` items (KEY=V1,V2,...) as {key: values}, each key once."""
    out: dict[str, list] = {}
    for item in items:
        k, vals = S.parse_values(item)
        if k in out:
            raise InputError(f"--{flag} {item!r}: {k} is already a {flag} key; list all its values once")
        out[k] = vals
    return out


def _sweep_run(args: argparse.Namespace, S: Any) -> int:
    if args.scenario is None:
        raise InputError("a scenario file (or a function such as mmcore.scenarios.thp_bloat) is "
                         "needed: mmcore sweep SCENARIO.toml --grid KEY=V1,V2 --out SWEEP.h5; or "
                         "mmcore sweep --show SWEEP.h5")
    if args.out is None:
        raise InputError("--out SWEEP.h5 is needed: where the results go")
    if args.plot:
        raise InputError("--plot goes with --show SWEEP.h5")
    grid = _key_values(S, args.grid, "grid")
    points = [S.parse_point(p) for p in args.point]
    batch = _key_values(S, args.batch, "batch")
    sets = parse_sets(args.set)
    if args.scheduler is not None and args.backend != "dask":
        raise InputError("--scheduler goes with --backend dask")
    jp = S.journal_path(args.out)
    t0 = time.perf_counter()
    try:
        rows = S.run_sweep(args.scenario, grid, points, seeds=args.seeds, seed=args.seed,
                           params=sets or None, out=args.out, workers=args.workers,
                           backend=args.backend, scheduler=args.scheduler, resume=args.resume,
                           trace_dir=args.trace_dir, progress=False if args.quiet else None,
                           frame=False, batch=batch or None)
    except KeyboardInterrupt:
        if os.path.exists(jp):
            print(f"mmcore: the finished runs are kept in {jp}; rerun with --resume to finish",
                  file=sys.stderr)
        raise
    wall = time.perf_counter() - t0
    n = len(rows["status"])
    failed = int((rows["status"] != "ok").sum())
    print(f"{args.out}: {n} runs ({len(set(rows['point'].tolist()))} points x {args.seeds} seeds), "
          f"{failed} failed, {wall:.1f} s")
    if failed:
        first = next(i for i in range(n) if rows["status"][i] != "ok")
        print(f"mmcore: {failed} of {n} runs failed; the first (point {rows['point'][first]}, "
              f"replicate {rows['replicate'][first]}): {rows['error'][first]}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return EXIT_OK


# ---- bench ----------------------------------------------------------------------------------------

def _bench(args: argparse.Namespace) -> int:
    from . import bench as B
    try:
        return B.main(k=args.k, json_out=args.json, markdown=args.markdown, quick=args.quick,
                      show=args.show, suite=args.suite)
    except B.BenchError as e:
        raise InputError(str(e)) from None


# ---- the rest --------------------------------------------------------------------------------------

def _info() -> int:
    import llvmlite
    import numba
    import numpy

    from .config import PROFILES
    from .kernels.jit import CACHE_DIR
    cached = sum(f.endswith(".nbi") for _, _, files in os.walk(CACHE_DIR) for f in files)
    print(f"mmcore {__version__}  numba {numba.__version__}  llvmlite {llvmlite.__version__}  "
          f"numpy {numpy.__version__}")
    print(f"kernel cache: {CACHE_DIR} ({cached} cached kernel index files)")
    print("kernel profiles (Config.kernel): THP defrag default, defrag modes")
    for name, p in PROFILES.items():
        print(f"  {name:5}  {p.thp_defrag_default:8}  {', '.join(p.defrag_modes)}")
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmcore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"mmcore {__version__}")
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run a scenario file, or the built-in THP story")
    r.add_argument("scenario", nargs="?", help="a scenario TOML file (see data/README.md); "
                   "without one, the built-in THP story runs")
    r.add_argument("--trace", metavar="OUT.h5", help="write an HDF5 run trace (scenario files)")
    r.add_argument("--seed", type=int, help="the run's seed (default: the scenario's, or 0)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="override a param (reads=1000) or a table key (machine.memory=2GiB); repeatable")
    r.add_argument("--json", action="store_true", help="print the summary as JSON instead of tables")
    story = r.add_argument_group("the built-in THP story")
    story.add_argument("--memory", help="machine memory (default 4GiB)")
    story.add_argument("--size", help="region touched and read (default 512MiB)")
    story.add_argument("--accesses", type=int, help="random reads (default 2,000,000)")
    v = sub.add_parser(
        "validate", help="check a scenario file without running it; without a file, compare the "
        "engine with the host kernel",
        description="With a scenario file: check it without running it. Without one (or with "
        "--host): run small scenarios on the host Linux (THP faults under MADV_HUGEPAGE, "
        "MADV_NOHUGEPAGE and PR_SET_THP_DISABLE, zero-page reads, page-table growth, the "
        "underused-THP shrinker, the oom_score of stopped children) and the same in the engine with the closest kernel "
        "profile and the host's THP settings, and print a table of host value, engine value and "
        "match. Scenarios the host cannot run (not Linux, no /proc, THP off, a missing "
        "capability or prctl) are shown as skipped, with the reason. Exit status: 0 when every "
        "check that ran matched, 1 on a mismatch (or an internal error), 2 for bad input.")
    v.add_argument("scenario", nargs="?", help="a scenario TOML file to check; without one, the "
                   "host check runs")
    v.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="with a scenario file: override a param or a table key; repeatable")
    v.add_argument("--host", action="store_true", help="run the host check (the default without "
                   "a scenario file)")
    v.add_argument("--json", metavar="PATH", help="host check: also write the checks as JSON")
    v.add_argument("--markdown", action="store_true", help="host check: print a markdown table")
    rep = sub.add_parser("report", help="plots and a summary table from an HDF5 run trace")
    rep.add_argument("trace", metavar="FILE.h5")
    rep.add_argument("--out", metavar="DIR", help="output directory (default: FILE-report)")
    sw = sub.add_parser(
        "sweep", help="run a scenario over a grid of params and seeds; or show its results",
        description="Run a scenario at every point of a grid (and any --point) with --seeds "
        "replicates each, into one HDF5 results file (mmcore.sweep); or show one. Exit status: 0, "
        "2 for bad input (nothing runs), 3 when some runs failed (their rows say why), 1 for an "
        "internal error or an interruption (finished runs are kept for --resume).",
        epilog="examples:\n"
        "  mmcore sweep data/thp_bloat.toml --set heap=64MiB --grid every=32KiB,64KiB \\\n"
        "      --grid machine.thp_enabled=always,never --seeds 3 --workers 2 --out sweep.h5\n"
        "  mmcore sweep data/thp_bloat.toml --grid machine.thp_enabled=always,never \\\n"
        "      --batch machine.tlb.stlb_entries=512,1024,1536,2048 --out tlb.h5\n"
        "  mmcore sweep --show sweep.h5 --plot x=every y=tasks.redis.smaps_rollup.Rss",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("scenario", nargs="?", help="a scenario TOML file, or a scenario function's "
                    "dotted name (mmcore.scenarios.thp_bloat)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="a key (a param, or machine.KEY / record.KEY) and its values; repeatable: "
                    "the points are the cartesian product")
    sw.add_argument("--batch", action="append", default=[], metavar="machine.tlb.KEY=V1,V2,...",
                    help="TLB geometries replayed inside every run instead of swept (one pass "
                    "for all; columns tlb_geometries.KEY=V.*); repeatable: their product")
    sw.add_argument("--point", action="append", default=[], metavar="K=V,K=V",
                    help="an explicit point, run after the grid's; repeatable")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed override for every point (as for mmcore run); repeatable")
    sw.add_argument("--seeds", type=int, default=1, help="replicates per point (default 1)")
    sw.add_argument("--seed", type=int, default=0, help="the sweep seed the runs' seeds derive from "
                    "(default 0)")
    sw.add_argument("--workers", type=int, default=1, help="worker processes (default 1: in this process)")
    sw.add_argument("--out", metavar="SWEEP.h5", help="the results file (written when the sweep ends)")
    sw.add_argument("--backend", choices=("local", "dask"), default="local")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler (tcp://host:8786); "
                    "default: a LocalCluster of --workers workers")
    sw.add_argument("--resume", action="store_true", help="reuse the finished runs of an "
                    "interrupted (or smaller) sweep with the same --out")
    sw.add_argument("--trace-dir", metavar="DIR", help="write each run's HDF5 trace there")
    sw.add_argument("--quiet", action="store_true", help="no progress bar")
    sw.add_argument("--show", metavar="SWEEP.h5", help="print a results file as a table")
    sw.add_argument("--columns", action="append", default=[], metavar="PATTERNS",
                    help="with --show: the result columns, comma-separated names or patterns "
                    "(vmstat.thp_*)")
    sw.add_argument("--max-rows", type=int, metavar="N", help="with --show: at most N rows")
    sw.add_argument("--plot", nargs="+", metavar="x=COL y=COL", help="with --show: a PNG of y "
                    "against x (mean over seeds, min-max bars), a line per other swept key")
    sw.add_argument("--plot-out", metavar="PNG", help="where --plot writes (default SWEEP-plot.png)")
    b = sub.add_parser(
        "bench", help="run the benchmark suite (bench/) and print each figure and the ratios",
        description=textwrap.fill(
            "Run the pytest-benchmark suite of the source tree (bench/; bench/README.md "
            "describes each benchmark) in a subprocess, showing pytest's progress on stderr, then "
            "print a table: each benchmark's headline figure (the rate in its extra_info, or its "
            "median round), the ratios measured side by side in the same run, and the machine. "
            "The whole suite takes 5-10 minutes on 2 cores. Exit status: 0, 1 when a benchmark "
            "failed (the table shows what finished) or on an internal error, 2 for bad input.", 79),
        epilog="examples:\n"
        "  mmcore bench --json results.json             # the whole suite\n"
        "  mmcore bench -k 'access or fault' --quick\n"
        "  mmcore bench --show bench/recorded.json --markdown   # the README's table",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("-k", metavar="EXPR", help="select benchmarks by a pytest -k expression "
                   "(names such as test_access, test_fault_thp, test_replay_lru)")
    b.add_argument("--json", metavar="PATH", help="also write the results (pytest-benchmark's "
                   "JSON, with the selection) to PATH")
    b.add_argument("--markdown", action="store_true", help="print the table as markdown (the "
                   "README's Performance section)")
    b.add_argument("--quick", action="store_true", help="leave out the compile group (a cold "
                   "compile) and the memory group; the rest runs at full size, and the output "
                   "says what was left out")
    b.add_argument("--show", metavar="PATH", help="print a saved results file instead of running")
    b.add_argument("--suite", metavar="DIR", help="the suite's directory (default: bench/ of the "
                   "source tree mmcore runs from)")
    sub.add_parser("warmup", help="compile and cache every kernel (an empty cache is filled by "
                   "two processes where there are two CPUs)")
    sub.add_parser("info", help="versions, the kernel cache, the kernel profiles")
    return p


def main(argv: list[str] | None = None) -> int:
    from .config import ConfigError
    from .scenario import ScenarioError
    p = _parser()
    args = p.parse_args(argv)
    try:
        if args.cmd is None:
            return _thp_story(p.parse_args(["run"]))
        if args.cmd == "run":
            return _run_scenario(args) if args.scenario else _thp_story(args)
        if args.cmd == "validate":
            return _validate(args)
        if args.cmd == "report":
            return _report(args)
        if args.cmd == "sweep":
            return _sweep(args)
        if args.cmd == "bench":
            return _bench(args)
        if args.cmd == "info":
            return _info()
        if args.cmd == "warmup":
            from .scenarios import warmup
            warmup(parallel=True)
            print("kernels compiled and cached")
            return EXIT_OK
    except (InputError, ScenarioError, ConfigError) as e:
        print(f"mmcore: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("mmcore: interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as e:                        # a bug: say so, with the traceback
        traceback.print_exc()
        print(f"mmcore: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
