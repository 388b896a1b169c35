"""Parameter sweeps: one scenario, many points, many seeds, on one machine or a Dask cluster.

A sweep runs one scenario (a TOML file, a ``Scenario``, or a built-in scenario function such
as ``mmcore.scenarios.thp_bloat``) at every point of a grid (the cartesian product of a list of
values per key) plus any explicit points, each with ``seeds`` replicates::

    from mmcore.sweep import run_sweep, load

    df = run_sweep("data/thp_bloat.toml",
                   grid={"every": ["32KiB", "64KiB"], "machine.thp_enabled": ["always", "never"]},
                   params={"heap": "64MiB"}, seeds=3, workers=2, out="sweep.h5")
    df = load("sweep.h5")          # a pandas DataFrame (a dict of NumPy columns without pandas)

Keys are those ``mmcore run --set`` accepts: a param of the scenario (``every``, ``reads``) or a
dotted key of its ``[machine]`` or ``[record]`` table (``machine.memory``,
``machine.tlb.stlb_entries``); for a function, its keyword arguments. Every point is validated
before anything runs (``load_scenario`` with the point's values must succeed); a ``SweepError``
names the key, the value and what was expected.

Seeds. Run ``r`` of a point has the seed ``derive_seed(seed, point, r)``: the first 63 bits of
the SHA-256 of the sweep seed, the point's canonical JSON (sorted keys) and ``r``. It does not
depend on the order of the points, the number of workers or the machine, so a sweep gives the
same numbers wherever and however it runs (only ``wall_s`` differs).

Backends. ``backend="local"`` runs ``workers`` processes (``concurrent.futures``, spawned; one
worker runs in this process); ``backend="dask"`` submits to ``dask.distributed`` (``scheduler``:
an address for ``Client``, or a ``Client``; else a ``LocalCluster`` of ``workers`` workers).
Each worker process loads the compiled kernels once (``mmcore.scenarios.warmup``) before its
first run, from the Numba cache: local workers and a ``LocalCluster`` share this process's cache
directory (``NUMBA_CACHE_DIR`` is set for them); remote Dask workers should set
``NUMBA_CACHE_DIR`` to a shared directory, or each compiles once.

Results. One row per (point, replicate), in sweep order (points as listed, replicates 0 ..
seeds-1): ``point`` (its index), one column per swept key, ``replicate``, ``seed``, ``status``
(``"ok"`` or ``"error"``), ``error`` (the message, or ``""``), ``wall_s`` (seconds the run took),
then the run's summary flattened into numeric columns named by their path:
``sim_time_ns``, ``scenario_hash``, ``phases.<phase>.sim_time_ns``,
``phases.<phase>.ops.<task>.<label>.p99_ns``, ``tasks.<task>.smaps_rollup.Rss``,
``tasks.<task>.counters.dtlb_misses``, ``meminfo.MemFree``, ``vmstat.thp_fault_alloc``, ...
(a function's result: its dicts' numbers; a list of rows is keyed by each row's first string,
e.g. ``never.Rss_MiB``, or by its index when those are not unique). A swept key that is also
a result column's name is written ``param.<key>``. A value missing from a row (an error row, an
observable that only some points have) is NaN (``""`` for text); integer columns with gaps are
stored as float64 with the attribute ``int = True``.

Files. ``out`` is an HDF5 file: group ``/rows`` holds one dataset per column (int64, float64,
bool or UTF-8 strings), each with attributes ``name`` (the column's name; ``/`` and ``%`` in the
dataset's own name are written ``%2F`` and ``%25``) and ``kind`` (``meta``, ``param`` or
``value``); ``/rows`` has the attribute ``columns`` (the names, in order). Root attributes:
``schema`` (``"mmcore-sweep"``), ``schema_version`` (1), ``complete`` (True), ``target``,
``identity`` (the scenario's hash before the sweep's values, or the function's name),
``sweep_seed``, ``seeds``, ``grid`` and ``points`` (JSON), ``mmcore_version``. The file is
written to a hidden temporary file in the same directory and renamed onto ``out`` at the end: a
sweep that fails or is interrupted leaves no file at ``out`` (an older one stays as it was).

Resuming. While a sweep runs, every finished run is appended to the journal ``out +
".journal.jsonl"`` (one JSON line per run, flushed and fsynced; a line cut short by a kill is
ignored). The journal is deleted once ``out`` is complete. ``resume=True`` reuses the runs in
the journal and in an existing ``out`` of the same scenario and sweep seed, and runs only the
rest (the grid or the number of seeds may have grown). Without ``resume`` a journal left by an
interrupted sweep is an error, so finished work is never thrown away by accident. Error rows
are results too (the same seed fails the same way): delete the journal or ``out`` to run them
again.

Batched TLB geometries. A sweep over TLB geometries alone would run the same accesses again
and again with only the TLB changed. ``batch={"machine.tlb.stlb_entries": [512, 1024, 2048]}``
(``--batch`` on the command line) instead has every run replay its accesses against all the
geometries of the batch (the product of its lists) in one kernel pass per access call
(``Machine.shadow_tlbs``), and adds their counts to its row:
``tlb_geometries.stlb_entries=512.dtlb_misses``, ``....stlb_misses``, ``....accesses``. Batch keys
combine with grid keys (a replay per geometry at every point), and the root attribute ``batch``
records them. The run keeps the scenario's own TLB, so its other columns are those of that
machine; a replayed geometry counts what a machine with it would count over the same accesses,
short of stores through clean entries, faults' walks and flushes (``mmcore.tlbsim.TLBShadow``).

Traces. ``trace_dir`` writes each run's HDF5 trace (``mmcore.trace``) as
``p<point>-r<replicate>-<digest>.h5`` there; the column ``trace`` names it.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import importlib
import inspect
import itertools
import json
import math
import multiprocessing
import os
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["Sweep", "SweepError", "Run", "run_sweep", "load", "read_attrs", "derive_seed",
           "canonical", "flatten", "parse_values", "parse_point", "parse_value", "format_table",
           "plot", "journal_path", "META_COLUMNS"]

SCHEMA = "mmcore-sweep"
SCHEMA_VERSION = 1
META_COLUMNS = ("point", "replicate", "seed", "status", "error", "wall_s")
JOURNAL_SUFFIX = ".journal.jsonl"
_SKIP_SUMMARY = ("scenario", "description", "file", "hash", "seed", "params", "config", "dmesg",
                 "observables", "phases", "tasks")


class SweepError(ValueError):
    """A sweep is malformed (a key, a value, a point, a file): the message says which and what
    was expected. Nothing has run when it is raised by ``Sweep`` or ``run_sweep``'s checks."""


# ---- values and points -------------------------------------------------------------------------

def _plain(v: Any, where: str) -> Any:
    """``v`` as a JSON value (NumPy scalars to Python, tuples to lists), or SweepError."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            raise SweepError(f"{where}: expected a finite number, got {f!r}")
        return f
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)):
        return [_plain(x, where) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _plain(x, where) for k, x in v.items()}
    raise SweepError(f"{where}: expected a TOML value (string, number, boolean, list or table), "
                     f"got {type(v).__name__} {v!r}")


def canonical(point: Mapping[str, Any]) -> str:
    """A point's canonical description: its JSON with sorted keys and no spaces."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_seed(sweep_seed: int, point: Mapping[str, Any], replicate: int) -> int:
    """The seed of run ``replicate`` of ``point``: 63 bits of SHA-256(sweep seed, canonical
    point, replicate). The same on any machine, in any order, with any number of workers."""
    text = f"mmcore-sweep\0{int(sweep_seed)}\0{canonical(point)}\0{int(replicate)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def parse_value(text: str) -> Any:
    """One value from the command line: read as TOML (``16``, ``true``, ``"x"``, ``[1, 2]``),
    or else taken as a string (``16MiB``, ``never``), as ``--set`` does."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def _split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at ``sep`` outside quotes, [] and {}."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_values(item: str) -> tuple[str, list]:
    """``--grid KEY=V1,V2,...``: the key and its values (each as ``parse_value`` reads it;
    commas inside quotes, [] or {} do not split)."""
    key, eq, text = item.partition("=")
    key = key.strip()
    if not eq or not key:
        raise SweepError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. --grid every=32KiB,64KiB "
                         "or --grid machine.thp_enabled=always,never")
    vals = [s.strip() for s in _split_top(text)]
    if any(not v for v in vals):
        raise SweepError(f"--grid {item!r}: an empty value; expected KEY=V1,V2,... with no empty item")
    return key, [parse_value(v) for v in vals]


def parse_point(item: str) -> dict[str, Any]:
    """``--point K1=V1,K2=V2``: one explicit point (a comma starts a new pair only before
    ``KEY=``, so a value may not hold a comma unless quoted or in [] or {})."""
    out: dict[str, Any] = {}
    for part in _split_top(item):
        key, eq, text = part.partition("=")
        key = key.strip()
        if not eq or not key or not text.strip():
            raise SweepError(f"--point {item!r}: expected KEY=VALUE,KEY=VALUE,..., e.g. "
                             "--point every=32KiB,machine.memory=4GiB")
        if key in out:
            raise SweepError(f"--point {item!r}: {key} given twice")
        out[key] = parse_value(text.strip())
    return out


@dataclass(frozen=True)
class Run:
    """One run of a sweep: ``point`` (index) at ``replicate``, with its derived ``seed``."""
    index: int
    point: int
    replicate: int
    seed: int
    key: str                 # the point's canonical JSON

    @property
    def id(self) -> tuple[str, int]:
        return (self.key, self.replicate)


# ---- targets: what a run runs ------------------------------------------------------------------

class _ScenarioTarget:
    """A scenario (validated ``Scenario``); a point is applied with ``scenario.override``."""
    kind = "scenario"

    def __init__(self, sc: Any, label: str):
        self.base = sc
        self.label = label
        self.identity = sc.hash

    def check(self, point: Mapping[str, Any]) -> Any:
        from .scenario import override
        return override(self.base, point)

    def check_key(self, key: str) -> None:
        if key in ("scenario.seed", "seed"):
            if key == "seed" and "seed" in (self.base.params or {}):
                return
            raise SweepError(f"{key}: the run seeds are the sweep's (seed= and seeds=, or --seed "
                             "and --seeds), not a key to sweep")
        if "." in key and key.split(".", 1)[0] not in ("machine", "record", "scenario"):
            raise SweepError(f"{key}: not a key a sweep can set: expected a param of the scenario "
                             f"({', '.join(sorted(self.base.params)) or 'none'}) or a dotted key "
                             "of [machine] or [record] (machine.memory, record.sample_interval_ns)")
        if "." not in key and key not in self.base.params:
            raise SweepError(f"{key}: not a param of scenario {self.base.name!r} (params: "
                             f"{', '.join(sorted(self.base.params)) or 'none'}); a machine "
                             "setting is written machine.KEY, e.g. machine.memory")

    def default(self, sc: Any, key: str) -> Any:
        """The value ``key`` has in ``sc`` (for points that do not set it)."""
        if "." not in key:
            return sc.params.get(key)
        parts = key.split(".")
        node: Any = sc.config().to_dict() if parts[0] == "machine" else sc.doc.get(parts[0], {})
        for p in parts[1:]:
            if not isinstance(node, Mapping) or p not in node:
                return None
            node = node[p]
        return node if isinstance(node, (bool, int, float, str)) else None

    def run(self, point: Mapping[str, Any], seed: int, trace: str | None) -> dict:
        from .scenario import override, run_scenario
        sc = override(self.base, point) if point else self.base
        return flatten_summary(run_scenario(sc, seed=seed, trace=trace))


class _FunctionTarget:
    """A scenario function: keyword arguments are the keys; ``seed`` is passed if it takes one."""
    kind = "function"

    def __init__(self, fn: Callable, name: str):
        self.fn = fn
        self.label = name
        self.identity = "function:" + name
        self.sig = inspect.signature(fn)
        self.takes_seed = "seed" in self.sig.parameters

    def __getstate__(self) -> dict:
        return {"label": self.label}

    def __setstate__(self, st: dict) -> None:
        self.__init__(_import_function(st["label"]), st["label"])

    def _params(self) -> dict:
        return {k: p for k, p in self.sig.parameters.items()
                if k != "seed" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def check_key(self, key: str) -> None:
        params = self._params()
        if key == "seed" and self.takes_seed:
            raise SweepError("seed: the run seeds are the sweep's (seed= and seeds=, or --seed and "
                             "--seeds), not a key to sweep")
        if key not in params:
            extra = (" (machine settings apply to scenario files; a function takes its own "
                     "arguments)" if "." in key else "")
            raise SweepError(f"{key}: not an argument of {self.label} (arguments: "
                             f"{', '.join(params) or 'none'}){extra}")

    def check(self, point: Mapping[str, Any]) -> None:
        params = self._params()
        for k, v in point.items():
            self.check_key(k)
            d = params[k].default
            if d is inspect.Parameter.empty or d is None:
                continue
            ok = (isinstance(v, bool) if isinstance(d, bool) else
                  isinstance(v, int) and not isinstance(v, bool) if isinstance(d, int) else
                  isinstance(v, (int, float)) and not isinstance(v, bool) if isinstance(d, float) else
                  isinstance(v, str) if isinstance(d, str) else
                  isinstance(v, list) if isinstance(d, (list, tuple)) else True)
            if not ok:
                raise SweepError(f"{k}={v!r}: expected {_kind_of(d)} like the default {d!r} of "
                                 f"{self.label}")
        return None

    def default(self, sc: Any, key: str) -> Any:
        d = self._params()[key].default
        return d if isinstance(d, (bool, int, float, str)) else None

    def run(self, point: Mapping[str, Any], seed: int, trace: str | None) -> dict:
        params = self._params()
        kw = {k: (tuple(v) if isinstance(v, list) and isinstance(params[k].default, tuple) else v)
              for k, v in point.items()}
        if self.takes_seed:
            kw["seed"] = seed
        return flatten(self.fn(**kw))


def _kind_of(d: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        type(d), "a list")


def _import_function(name: str) -> Callable:
    mod, _, attr = name.rpartition(".")
    if not mod:
        raise SweepError(f"{name!r}: expected a scenario file or a function's dotted name, e.g. "
                         "mmcore.scenarios.thp_bloat")
    try:
        fn = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise SweepError(f"{name!r}: no such file, and not an importable function ({e})") from None
    if not callable(fn):
        raise SweepError(f"{name!r}: not a function")
    return fn


def _target(scenario: Any, params: Mapping[str, Any] | None) -> Any:
    from .scenario import Scenario, ScenarioError, load_scenario, override
    if callable(scenario) and not isinstance(scenario, Scenario):
        name = f"{scenario.__module__}.{scenario.__qualname__}"
        t = _FunctionTarget(scenario, name)
        if params:
            raise SweepError("params= applies to scenario files; pass a function's fixed "
                             "arguments as one-value grid entries")
        return t
    if isinstance(scenario, (str, os.PathLike)) and not os.path.exists(scenario) and \
            not os.fspath(scenario).endswith(".toml") and "." in os.fspath(scenario):
        if params:
            raise SweepError("params= applies to scenario files; pass a function's fixed "
                             "arguments as one-value grid entries")
        return _FunctionTarget(_import_function(os.fspath(scenario)), os.fspath(scenario))
    try:
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if params:
            sc = override(sc, dict(params))
    except ScenarioError as e:
        raise SweepError(str(e)) from None
    label = sc.file or sc.name
    return _ScenarioTarget(sc, label)


# ---- the sweep ---------------------------------------------------------------------------------

class Sweep:
    """A validated sweep: ``points`` (dicts, grid product first, then the explicit ones), and
    ``runs`` (each point ``seeds`` times, with derived seeds), in that order.

    Parameters
    ----------
    scenario : path, dict, ``Scenario``, function or a function's dotted name
    grid : {key: [values]}, optional
        The cartesian product of the lists (a single value stands for a one-value list); keys in
        the order given, the last varying fastest.
    points : [{key: value}], optional
        Explicit points, after the grid's.
    seeds : int
        Replicates per point (default 1).
    seed : int
        The sweep seed (default 0): the runs' seeds derive from it.
    params : {key: value}, optional
        Fixed overrides applied to the scenario before the sweep's values (not columns).
    batch : {key: [values]}, optional
        TLB settings (``machine.tlb.<field>`` keys) batched rather than swept: every run replays
        its accesses against each geometry of the product of these lists (``[record]
        tlb_geometries``), in one pass, and its row gets their counts as columns
        ``tlb_geometries.<geometry>.dtlb_misses`` (and ``stlb_misses``, ``accesses``), where
        ``<geometry>`` is written ``stlb_entries=512`` (fields joined by commas). The run itself
        uses the scenario's own TLB; what a replay leaves out is in ``mmcore.tlbsim.TLBShadow``.

    Raises ``SweepError`` (a ``ValueError``) for a bad key or value, naming both.
    """

    def __init__(self, scenario: Any, grid: Mapping[str, Any] | None = None,
                 points: Sequence[Mapping[str, Any]] | None = None, *, seeds: int = 1, seed: int = 0,
                 params: Mapping[str, Any] | None = None, batch: Mapping[str, Any] | None = None):
        if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
            raise SweepError(f"seeds={seeds!r}: expected a positive number of replicates per point")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 1 << 63:
            raise SweepError(f"seed={seed!r}: expected a non-negative integer below 2**63")
        self.seeds, self.seed = int(seeds), int(seed)
        self.batch = _batch(batch or {})
        if self.batch:
            if callable(scenario) or (isinstance(scenario, (str, os.PathLike)) and
                                      not os.fspath(scenario).endswith(".toml") and
                                      not os.path.exists(scenario)):
                raise SweepError("batch: batched TLB geometries apply to scenario files, not "
                                 "to functions")
            base = _target(scenario, params).base.machine.get("tlb", {})
            geos = batch_geometries(self.batch)
            for g in geos:
                _check_geometry(base, g)
            params = {**(params or {}), "record.tlb_geometries": geos}
        self.target = _target(scenario, params)
        self.grid = self._grid(grid or {})
        for k in self.batch:
            if k in self.grid:
                raise SweepError(f"{k}: both a grid key and a batch key; list its values once")
        explicit = [self._point(p, i) for i, p in enumerate(points or [])]
        keys = list(self.grid)
        combos = itertools.product(*self.grid.values()) if self.grid else iter(())
        self.points: list[dict] = [dict(zip(keys, c)) for c in combos] + explicit
        if not self.points:
            if grid or points:
                raise SweepError("the grid is empty: every key needs at least one value")
            self.points = [{}]
        for p in explicit:
            for k in p:
                if k not in keys:
                    keys.append(k)
        self.keys: list[str] = keys
        seen: dict[str, int] = {}
        for i, p in enumerate(self.points):
            c = canonical(p)
            if c in seen:
                raise SweepError(f"point {i} {c} is point {seen[c]} again: each point once "
                                 "(replicates come from seeds=)")
            seen[c] = i
        self._validate()
        self.runs: list[Run] = []
        for i, p in enumerate(self.points):
            c = canonical(p)
            for r in range(self.seeds):
                self.runs.append(Run(len(self.runs), i, r, derive_seed(self.seed, p, r), c))

    def _grid(self, grid: Mapping[str, Any]) -> dict[str, list]:
        out = {}
        if not isinstance(grid, Mapping):
            raise SweepError(f"grid: expected a mapping of key to a list of values, got {grid!r}")
        for k, vals in grid.items():
            if not isinstance(k, str) or not k:
                raise SweepError(f"grid: key {k!r}: expected a param name or a dotted key")
            self.target.check_key(k)
            if isinstance(vals, (list, tuple, np.ndarray, range)):
                vals = [_plain(v, f"grid {k}") for v in vals]
            else:
                vals = [_plain(vals, f"grid {k}")]
            if not vals:
                raise SweepError(f"grid {k}: no values; expected a list of at least one value")
            dup = [v for i, v in enumerate(vals) if v in vals[:i] and
                   type(v) is type(vals[vals.index(v)])]
            if dup:
                raise SweepError(f"grid {k}: the value {dup[0]!r} is listed twice")
            out[k] = vals
        return out

    def _point(self, p: Any, i: int) -> dict:
        if not isinstance(p, Mapping):
            raise SweepError(f"points[{i}]: expected a mapping of key to value, got {p!r}")
        out = {}
        for k, v in p.items():
            if not isinstance(k, str) or not k:
                raise SweepError(f"points[{i}]: key {k!r}: expected a param name or a dotted key")
            self.target.check_key(k)
            out[k] = _plain(v, f"points[{i}] {k}")
        return out

    def _validate(self) -> None:
        """Each whole point: the scenario with it must load. A point that does not is blamed on
        the (key, value) pair that fails the same way alone, if one does (values that only go
        together, such as a TLB's entries and ways, are checked together)."""
        from .config import ConfigError
        from .scenario import ScenarioError
        self._defaults: list[dict] = []
        for i, p in enumerate(self.points):
            try:
                sc = self.target.check(p)
            except (ScenarioError, ConfigError) as e:
                for k, v in p.items():
                    try:
                        self.target.check({k: v})
                    except (ScenarioError, ConfigError) as e1:
                        if _reason(e1) == _reason(e):          # the same fault, alone
                            raise SweepError(f"{k}={v!r}: {_reason(e1)}") from None
                raise SweepError(f"point {i} {canonical(p)}: {_reason(e)}") from None
            self._defaults.append({k: self.target.default(sc, k) for k in self.keys if k not in p})

    @property
    def identity(self) -> str:
        """What resuming checks: the scenario (its hash before the sweep's values, or the
        function's name) and the sweep seed."""
        return hashlib.sha256(f"{self.target.identity}\0{self.seed}".encode()).hexdigest()

    def value(self, point: int, key: str) -> Any:
        """The value of ``key`` at point ``point``: set by the point, or the scenario's own."""
        p = self.points[point]
        return p[key] if key in p else self._defaults[point].get(key)

    def __repr__(self) -> str:
        return (f"Sweep({self.target.label!r}, {len(self.points)} points x {self.seeds} seeds, "
                f"keys {self.keys})")


def _batch(batch: Mapping[str, Any]) -> dict[str, list]:
    """The batch keys (``machine.tlb.<field>``) and their values, checked."""
    from .config import TLBConfig
    if not isinstance(batch, Mapping):
        raise SweepError(f"batch: expected a mapping of machine.tlb.KEY to a list of values, got "
                         f"{batch!r}")
    fields = [f.name for f in dataclasses.fields(TLBConfig)]
    out = {}
    for k, vals in batch.items():
        if not isinstance(k, str) or not k.startswith("machine.tlb.") or \
                k.removeprefix("machine.tlb.") not in fields:
            raise SweepError(f"batch {k!r}: expected a TLB setting machine.tlb.KEY, KEY one of "
                             f"{', '.join(fields)}")
        vals = list(vals) if isinstance(vals, (list, tuple, np.ndarray, range)) else [vals]
        if not vals:
            raise SweepError(f"batch {k}: no values; expected a list of at least one integer")
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SweepError(f"batch {k}: {v!r}: expected an integer")
        vals = [int(v) for v in vals]
        dup = [v for i, v in enumerate(vals) if v in vals[:i]]
        if dup:
            raise SweepError(f"batch {k}: the value {dup[0]!r} is listed twice")
        out[k] = vals
    return out


def _check_geometry(base: Mapping[str, Any], g: Mapping[str, int]) -> None:
    from .config import Config, ConfigError, TLBConfig
    try:
        Config(tlb=TLBConfig(**{**base, **g})).validate()
    except ConfigError as e:
        point = ", ".join(f"machine.tlb.{k}={v}" for k, v in g.items())
        raise SweepError(f"batch {point}: {e} (the scenario's other TLB settings: "
                         f"{dict(base) or 'the defaults'})") from None


def batch_geometries(batch: Mapping[str, list]) -> list[dict]:
    """The geometries of a batch: the product of its lists, as ``[record] tlb_geometries``
    tables (the last key varying fastest)."""
    fields = [k.removeprefix("machine.tlb.") for k in batch]
    return [dict(zip(fields, c)) for c in itertools.product(*batch.values())]


def _reason(e: Exception) -> str:
    return str(e)


# ---- flattening results ------------------------------------------------------------------------

def _leaves(prefix: str, v: Any, out: dict) -> None:
    if isinstance(v, Mapping):
        for k, x in v.items():
            _leaves(f"{prefix}.{k}" if prefix else str(k), x, out)
    elif isinstance(v, (list, tuple)):
        labels = _row_labels(v)
        for lab, x in zip(labels, v):
            _leaves(f"{prefix}.{lab}" if prefix else lab, x, out)
    elif isinstance(v, (bool, np.bool_)):
        out[prefix] = bool(v)
    elif isinstance(v, (int, np.integer)):
        out[prefix] = int(v)
    elif isinstance(v, (float, np.floating)):
        out[prefix] = float(v)


def _row_labels(v: Sequence) -> list[str]:
    """Dicts keyed by their first string value when those are unique; else indexes."""
    labels = []
    for x in v:
        s = next((y for y in x.values() if isinstance(y, str)), None) if isinstance(x, Mapping) else None
        labels.append(s)
    if all(s is not None for s in labels) and len(set(labels)) == len(labels):
        return labels
    return [str(i) for i in range(len(v))]


def flatten(result: Any) -> dict:
    """A result's numbers as ``{"a.b.c": value}`` (ints, floats, bools; strings dropped)."""
    out: dict = {}
    _leaves("", result, out)
    return out


def flatten_summary(s: Mapping[str, Any]) -> dict:
    """``run_scenario``'s summary flattened: ``scenario_hash``, ``sim_time_ns``,
    ``phases.<name>.*`` (by index when names repeat), ``tasks.<name>.*``, ``meminfo.*``,
    ``vmstat.*``, ``filesystems.<mount>.*`` and the other observables' numbers."""
    out: dict = {"scenario_hash": s.get("hash", "")}
    if "sim_time_ns" in s:
        out["sim_time_ns"] = int(s["sim_time_ns"])
    phases = s.get("phases", [])
    names = [ph.get("name", "") for ph in phases]
    unique = len(set(names)) == len(names) and all(names)
    for i, ph in enumerate(phases):
        _leaves(f"phases.{names[i] if unique else i}", {k: v for k, v in ph.items() if k != "name"}, out)
    for name, t in s.get("tasks", {}).items():
        _leaves(f"tasks.{name}", {k: v for k, v in t.items() if k not in ("comm",)}, out)
    for k, v in s.items():
        if k not in _SKIP_SUMMARY and k != "sim_time_ns":
            _leaves(k, v, out)
    return out


# ---- running one (point, seed): in a worker ----------------------------------------------------

_ready = False
_ready_lock = threading.Lock()


def _ensure_ready() -> str:
    """Load (or compile) the kernels once per process; returns the cache directory."""
    global _ready
    from .kernels.jit import CACHE_DIR
    if not _ready:
        with _ready_lock:
            if not _ready:
                from .scenarios import warmup
                warmup()
                _ready = True
    return CACHE_DIR


def _init_worker() -> None:
    _ensure_ready()


def _execute(target: Any, point: Mapping[str, Any], seed: int, trace: str | None) -> dict:
    """One run: ``{"status", "error", "wall_s", "values"}``; an exception becomes an error row."""
    _ensure_ready()
    t0 = time.perf_counter()
    try:
        values = target.run(point, seed, trace)
        status, error = "ok", ""
    except Exception as e:                         # recorded in the row; the sweep goes on
        values, status, error = {}, "error", f"{type(e).__name__}: {e}"
    return {"status": status, "error": error, "wall_s": time.perf_counter() - t0, "values": values}


# ---- the journal ---------------------------------------------------------------------------------

def journal_path(out: str | os.PathLike) -> str:
    """Where a sweep writing ``out`` keeps its finished runs until ``out`` is complete."""
    return os.fspath(out) + JOURNAL_SUFFIX


def _read_journal(path: str) -> tuple[dict | None, list[dict], int]:
    """(header, rows, length of the good prefix in bytes). A last line cut short is dropped."""
    with open(path, "rb") as f:
        data = f.read()
    header, rows, good = None, [], 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break                                   # cut short by a kill: not a finished run
        line = data[pos:nl]
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            lineno = data[:pos].count(b"\n") + 1
            raise SweepError(f"{path}: line {lineno} is not a journal record; the journal is "
                             "damaged (delete it to start again)") from None
        if header is None:
            if not isinstance(rec, dict) or rec.get("journal") != SCHEMA:
                raise SweepError(f"{path}: not a sweep journal")
            header = rec
        else:
            rows.append(rec)
        pos = good = nl + 1
    return header, rows, good


class _Journal:
    def __init__(self, path: str, header: dict, good: int | None):
        self.path = path
        if good is None:
            self.f = open(path, "wb")
            self._write(header)
        else:
            self.f = open(path, "r+b")
            self.f.truncate(good)
            self.f.seek(good)

    def _write(self, rec: dict) -> None:
        self.f.write(json.dumps(rec, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def append(self, run: Run, row: dict) -> None:
        self._write({"key": run.key, "replicate": run.replicate, "seed": run.seed, **row})

    def close(self) -> None:
        self.f.close()


# ---- running the sweep ---------------------------------------------------------------------------

def run_sweep(scenario: Any, grid: Mapping[str, Any] | None = None,
              points: Sequence[Mapping[str, Any]] | None = None, *, seeds: int = 1, seed: int = 0,
              params: Mapping[str, Any] | None = None, out: str | os.PathLike | None = None,
              workers: int = 1, backend: str = "local", scheduler: Any = None,
              processes: bool = True, resume: bool = False, trace_dir: str | os.PathLike | None = None,
              progress: bool | None = None, frame: bool | None = None,
              batch: Mapping[str, Any] | None = None) -> Any:
    """Run a sweep (see ``Sweep`` and the module's documentation) and return its rows.

    Parameters
    ----------
    out : path, optional
        The HDF5 results file (written at the end, atomically; the journal beside it while the
        sweep runs). Needed for ``resume``.
    workers : int
        Local processes (1: in this process), or the workers of a Dask ``LocalCluster``.
    backend : "local" or "dask"
    scheduler : address or ``distributed.Client``, optional
        The Dask scheduler to use (backend "dask"); without one a ``LocalCluster`` is started.
    processes : bool
        ``LocalCluster(processes=...)``: False runs the Dask workers as threads here.
    resume : bool
        Reuse the finished runs of the journal and of an existing ``out``; run only the rest.
    trace_dir : path, optional
        A directory (created if needed) for each run's HDF5 trace (scenario files only).
    progress : bool, optional
        A tqdm bar over the runs: True, False, or None (default: only on a terminal).
    frame : bool, optional
        Return a pandas DataFrame (default when pandas is installed), else a dict of columns.
    batch : {machine.tlb.KEY: [values]}, optional
        TLB geometries replayed within each run instead of swept (see ``Sweep``).
    """
    if multiprocessing.parent_process() is not None and \
            getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SweepError(_MAIN_GUARD)
    sw = Sweep(scenario, grid, points, seeds=seeds, seed=seed, params=params, batch=batch)
    if backend not in ("local", "dask"):
        raise SweepError(f"backend={backend!r}: expected 'local' or 'dask'")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise SweepError(f"workers={workers!r}: expected a positive number of workers")
    if resume and out is None:
        raise SweepError("resume needs out= (the results file whose journal holds the finished runs)")
    if trace_dir is not None and sw.target.kind != "scenario":
        raise SweepError("trace_dir: traces are written for scenario files, not for functions")
    if backend == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise SweepError("backend 'dask' needs dask.distributed: pip install 'mmcore[sweep]'") from None
    out_path = os.fspath(out) if out is not None else None
    if out_path is not None:
        d = os.path.dirname(os.path.abspath(out_path))
        if not os.path.isdir(d):
            raise SweepError(f"out {out_path}: directory {d} does not exist")
    tdir = os.fspath(trace_dir) if trace_dir is not None else None
    if tdir is not None:
        os.makedirs(tdir, exist_ok=True)

    done: dict[tuple[str, int], dict] = {}
    journal = None
    header = {"journal": SCHEMA, "version": SCHEMA_VERSION, "identity": sw.identity,
              "target": sw.target.label, "sweep_seed": sw.seed}
    if out_path is not None:
        jp = journal_path(out_path)
        good = None
        if os.path.exists(jp):
            if not resume:
                raise SweepError(f"{jp} holds the finished runs of an interrupted sweep: resume it "
                                 "(--resume, resume=True) or delete the file to start again")
            jh, rows, good = _read_journal(jp)
            if jh is None:
                good = None
            elif jh.get("identity") != sw.identity:
                raise SweepError(f"{jp}: its runs are of another sweep (scenario {jh.get('target')!r}, "
                                 f"sweep seed {jh.get('sweep_seed')}); this one is "
                                 f"{sw.target.label!r}, sweep seed {sw.seed}: delete it or write "
                                 "elsewhere")
            for r in rows:
                done[(r["key"], r["replicate"])] = r
        if resume and os.path.exists(out_path):
            for r in _rows_of_file(out_path, sw):
                done.setdefault((r["key"], r["replicate"]), r)
        journal = _Journal(jp, header, good)
    wanted = {run.id for run in sw.runs}
    done = {k: v for k, v in done.items() if k in wanted}
    todo = [run for run in sw.runs if run.id not in done]
    try:
        for run, row in _execute_all(sw, todo, tdir, workers, backend, scheduler, processes,
                                     progress, len(done)):
            done[run.id] = row
            if journal is not None:
                journal.append(run, row)
    finally:
        if journal is not None:
            journal.close()
    cols = _columns(sw, done, tdir is not None)
    if out_path is not None:
        _write_h5(out_path, cols, _attrs(sw))
        os.unlink(journal_path(out_path))
    return _as_frame(cols, _attrs(sw), frame)


_MAIN_GUARD = ("Worker processes are spawned and import the main module: a script that runs a "
               "sweep with workers > 1 must do so under if __name__ == \"__main__\":")


def _trace_name(run: Run) -> str:
    return f"p{run.point:05d}-r{run.replicate:03d}-{hashlib.sha256(run.key.encode()).hexdigest()[:8]}.h5"


def _execute_all(sw: Sweep, todo: list[Run], tdir: str | None, workers: int, backend: str,
                 scheduler: Any, processes: bool, progress: bool | None, initial: int):
    """Yield (run, row) as runs finish, with a progress bar."""
    from tqdm import tqdm
    bar = tqdm(total=len(sw.runs), initial=initial, desc=os.path.basename(sw.target.label),
               unit="run", disable=(not progress) if progress is not None else None,
               dynamic_ncols=True, mininterval=0.5)

    def args(run: Run) -> tuple:
        trace = os.path.join(tdir, _trace_name(run)) if tdir is not None else None
        return (sw.points[run.point], run.seed, trace)
    try:
        if not todo:
            return
        if backend == "dask":
            it = _dask(sw, todo, args, workers, scheduler, processes)
        elif workers == 1:
            it = ((run, _execute(sw.target, *args(run))) for run in todo)
        else:
            it = _local_pool(sw, todo, args, workers)
        for run, row in it:
            bar.update(1)
            yield run, row
    finally:
        bar.close()


def _share_cache() -> None:
    """Workers started from here use this process's kernel cache."""
    from .kernels.jit import CACHE_DIR
    os.environ.setdefault("NUMBA_CACHE_DIR", CACHE_DIR)


def _local_pool(sw: Sweep, todo: list[Run], args: Callable, workers: int):
    _share_cache()
    pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                  mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker)
    ok = False
    try:
        pending = iter(todo)
        inflight: dict[cf.Future, Run] = {}

        def fill() -> None:
            while len(inflight) < 2 * workers:
                run = next(pending, None)
                if run is None:
                    return
                inflight[pool.submit(_execute, sw.target, *args(run))] = run
        fill()
        while inflight:
            finished, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: inflight[f].index):
                run = inflight.pop(fut)
                try:
                    row = fut.result()
                except cf.process.BrokenProcessPool as e:
                    raise SweepError(f"a worker process died ({e}); the finished runs are kept: "
                                     f"rerun with resume. {_MAIN_GUARD}") from None
                yield run, row
            fill()
        ok = True
    finally:
        if ok:
            pool.shutdown(wait=True)
        else:                                       # interrupted: stop the workers now
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(5)


def _dask(sw: Sweep, todo: list[Run], args: Callable, workers: int, scheduler: Any, processes: bool):
    from distributed import Client, LocalCluster, as_completed
    cluster = None
    own_client = not isinstance(scheduler, Client)
    if scheduler is None:
        _share_cache()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                               dashboard_address=None)
        client = Client(cluster)
    elif isinstance(scheduler, Client):
        client = scheduler
    else:
        client = Client(scheduler)
    try:
        client.run(_ensure_ready)                    # every worker loads the kernels first
        target = client.scatter(sw.target, broadcast=True)
        pending = iter(todo)
        inflight: dict[Any, Run] = {}
        ac = as_completed()
        window = 2 * max(workers, len(client.scheduler_info().get("workers", {})) or 1)

        def fill() -> None:
            while len(inflight) < window:
                run = next(pending, None)
                if run is None:
                    return
                fut = client.submit(_execute, target, *args(run), pure=False,
                                    key=f"mmcore-sweep-{run.index}-{secrets.token_hex(4)}")
                inflight[fut] = run
                ac.add(fut)
        fill()
        for fut in ac:
            run = inflight.pop(fut)
            try:
                row = fut.result()
            except Exception as e:
                raise SweepError(f"dask could not run point {run.point} replicate {run.replicate}: "
                                 f"{type(e).__name__}: {e}; the finished runs are kept: rerun "
                                 "with resume") from None
            fut.release()
            yield run, row
            fill()
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


# ---- the table -----------------------------------------------------------------------------------

def _column(values: list, missing: list[bool]) -> tuple[np.ndarray, bool]:
    """A column from Python values: (array, int-with-gaps)."""
    present = [v for v, m in zip(values, missing) if not m]
    if present and all(isinstance(v, bool) for v in present) and not any(missing):
        return np.array(values, dtype=bool), False
    if all(isinstance(v, (int, float)) and not isinstance(v, str) for v in present):
        if all(isinstance(v, int) and not isinstance(v, bool) or isinstance(v, bool) for v in present) \
                and all(-(1 << 63) <= int(v) < 1 << 63 for v in present):
            if not any(missing):
                return np.array([int(v) for v in values], dtype=np.int64), False
            return np.array([math.nan if m else float(v) for v, m in zip(values, missing)]), bool(present)
        return np.array([math.nan if m else float(v) for v, m in zip(values, missing)]), False
    out = np.empty(len(values), dtype=object)
    for i, (v, m) in enumerate(zip(values, missing)):
        out[i] = "" if m else (v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
    return out, False


class _Cols(dict):
    """name -> array, with ``kind`` and ``int_gaps`` per column."""

    def __init__(self) -> None:
        super().__init__()
        self.kind: dict[str, str] = {}
        self.int_gaps: dict[str, bool] = {}

    def add(self, name: str, arr: np.ndarray, kind: str, gaps: bool = False) -> None:
        self[name] = arr
        self.kind[name] = kind
        self.int_gaps[name] = gaps


def _columns(sw: Sweep, done: Mapping[tuple[str, int], dict], traces: bool) -> _Cols:
    runs = sw.runs
    rows = [done[r.id] for r in runs]
    value_names: dict[str, None] = {}
    for row in rows:
        for k in row.get("values", {}):
            value_names.setdefault(k, None)
    cols = _Cols()
    n = len(runs)
    cols.add("point", np.array([r.point for r in runs], dtype=np.int64), "meta")
    used = set(META_COLUMNS) | {"trace"}
    for k in sw.keys:
        name = f"param.{k}" if k in used or k in value_names else k
        vals = [sw.value(r.point, k) for r in runs]
        arr, gaps = _column(vals, [v is None for v in vals])
        cols.add(name, arr, "param", gaps)
        used.add(name)
    cols.add("replicate", np.array([r.replicate for r in runs], dtype=np.int64), "meta")
    cols.add("seed", np.array([r.seed for r in runs], dtype=np.int64), "meta")
    cols.add("status", _column([row["status"] for row in rows], [False] * n)[0], "meta")
    cols.add("error", _column([row["error"] for row in rows], [False] * n)[0], "meta")
    cols.add("wall_s", np.array([float(row["wall_s"]) for row in rows], dtype=np.float64), "meta")
    if traces:
        cols.add("trace", _column([_trace_name(r) if row["status"] == "ok" else "" for r, row in
                                   zip(runs, rows)], [False] * n)[0], "meta")
    for k in value_names:
        vals = [row.get("values", {}).get(k) for row in rows]
        arr, gaps = _column(vals, [v is None for v in vals])
        cols.add(f"result.{k}" if k in used else k, arr, "value", gaps)
    return cols


def _attrs(sw: Sweep) -> dict:
    from . import __version__
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "target": sw.target.label,
            "target_kind": sw.target.kind, "identity": sw.identity, "sweep_seed": sw.seed,
            "seeds": sw.seeds, "n_points": len(sw.points), "n_runs": len(sw.runs),
            "keys": json.dumps(sw.keys), "grid": json.dumps(sw.grid, ensure_ascii=False),
            "points": json.dumps(sw.points, ensure_ascii=False),
            "batch": json.dumps(sw.batch), "mmcore_version": __version__}


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace("/", "%2F")


def _write_h5(path: str, cols: _Cols, attrs: Mapping[str, Any]) -> None:
    """Write the table to a hidden temporary file beside ``path``, then rename it onto ``path``."""
    import h5py
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, f".{os.path.basename(path)}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with h5py.File(tmp, "w") as f:
            for k, v in attrs.items():
                f.attrs[k] = v
            f.attrs["complete"] = False
            g = f.create_group("rows")
            g.attrs["columns"] = np.array(list(cols), dtype=h5py.string_dtype("utf-8"))
            for name, arr in cols.items():
                if arr.dtype == object:
                    ds = g.create_dataset(_escape(name), data=arr, dtype=h5py.string_dtype("utf-8"))
                else:
                    ds = g.create_dataset(_escape(name), data=arr)
                ds.attrs["name"] = name
                ds.attrs["kind"] = cols.kind[name]
                if cols.int_gaps[name]:
                    ds.attrs["int"] = True
            f.attrs["complete"] = True
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        try:
            dfd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _as_frame(cols: Mapping[str, np.ndarray], attrs: Mapping[str, Any], frame: bool | None) -> Any:
    if frame is False:
        return dict(cols)
    try:
        import pandas as pd
    except ImportError:
        if frame:
            raise SweepError("frame=True needs pandas (pip install pandas)") from None
        return dict(cols)
    df = pd.DataFrame(dict(cols))
    df.attrs.update({k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()})
    return df


# ---- reading -------------------------------------------------------------------------------------

def _open(path: str):
    import h5py
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise SweepError(f"{path}: no such file") from None
    except OSError as e:
        raise SweepError(f"{path}: not an HDF5 file ({e})") from None
    if f.attrs.get("schema") != SCHEMA or "rows" not in f:
        f.close()
        raise SweepError(f"{path}: not a sweep results file (no schema {SCHEMA!r})")
    if not bool(f.attrs.get("complete", False)):
        f.close()
        raise SweepError(f"{path}: incomplete (the attribute complete is not set)")
    return f


def _read_columns(f) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, bool]]:
    g = f["rows"]
    cols, kinds, ints = {}, {}, {}
    for name in g.attrs["columns"]:
        name = name.decode() if isinstance(name, bytes) else str(name)
        ds = g[_escape(name)]
        if ds.dtype.kind == "O" or h5py_is_string(ds):
            cols[name] = np.array(ds.asstr()[()], dtype=object)
        else:
            cols[name] = ds[()]
        kinds[name] = str(ds.attrs.get("kind", "value"))
        ints[name] = bool(ds.attrs.get("int", False))
    return cols, kinds, ints


def h5py_is_string(ds: Any) -> bool:
    import h5py
    return h5py.check_string_dtype(ds.dtype) is not None


def read_attrs(path: str | os.PathLike) -> dict:
    """A results file's root attributes (``grid``, ``points`` and ``keys`` decoded from JSON)."""
    with _open(os.fspath(path)) as f:
        a = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    for k in ("grid", "points", "keys", "batch"):
        if isinstance(a.get(k), str):
            a[k] = json.loads(a[k])
    return a


def load(path: str | os.PathLike, *, frame: bool | None = None) -> Any:
    """A sweep's results: a pandas DataFrame (its ``attrs`` hold the file's attributes) when
    pandas is installed, else (or with ``frame=False``) a dict of NumPy columns in order."""
    with _open(os.fspath(path)) as f:
        cols, _, _ = _read_columns(f)
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
    return _as_frame(cols, attrs, frame)


def _rows_of_file(path: str, sw: Sweep) -> list[dict]:
    """The runs stored in a complete results file of the same sweep, as journal rows."""
    with _open(path) as f:
        if f.attrs.get("identity") != sw.identity:
            raise SweepError(f"{path}: its runs are of another sweep (scenario "
                             f"{f.attrs.get('target')!r}, sweep seed {f.attrs.get('sweep_seed')}); "
                             f"this one is {sw.target.label!r}, sweep seed {sw.seed}: write elsewhere")
        points = json.loads(f.attrs["points"])
        cols, kinds, ints = _read_columns(f)
    values = [k for k in cols if kinds[k] == "value"]
    rows = []
    for i in range(len(cols["point"])):
        v = {}
        for k in values:
            x = cols[k][i]
            if isinstance(x, str):
                if x != "":
                    v[k] = x
            elif isinstance(x, (float, np.floating)) and math.isnan(x):
                continue
            else:
                x = x.item() if isinstance(x, np.generic) else x
                v[k.removeprefix("result.") if k.startswith("result.") else k] = \
                    int(x) if ints[k] else x
        rows.append({"key": canonical(points[int(cols["point"][i])]),
                     "replicate": int(cols["replicate"][i]), "seed": int(cols["seed"][i]),
                     "status": str(cols["status"][i]), "error": str(cols["error"][i]),
                     "wall_s": float(cols["wall_s"][i]), "values": v})
    return rows


# ---- showing -------------------------------------------------------------------------------------

_DEFAULT_SHOW = ("sim_time_ns", "tasks.*.smaps_rollup.Rss", "tasks.*.smaps_rollup.AnonHugePages")


def _select(names: list[str], patterns: Iterable[str]) -> list[str]:
    import fnmatch
    out: list[str] = []
    for p in patterns:
        hit = [n for n in names if fnmatch.fnmatchcase(n, p)]
        if not hit and not any(ch in p for ch in "*?["):
            raise SweepError(f"column {p!r}: no such column (columns: {', '.join(names[:12])}"
                             f"{', ...' if len(names) > 12 else ''})")
        out += [n for n in hit if n not in out]
    return out


def format_table(path: str | os.PathLike, columns: Sequence[str] | None = None,
                 max_rows: int | None = None) -> str:
    """A results file as a text table: the swept keys, replicate, status, wall time and, by
    default, simulated time, each task's Rss and AnonHugePages and the phases' times (or the
    ``columns`` given: names or shell patterns such as ``vmstat.thp_*``)."""
    from .cli import table
    with _open(os.fspath(path)) as f:
        cols, kinds, _ = _read_columns(f)
        attrs = dict(f.attrs)
    names = list(cols)
    head = ["point"] + [n for n in names if kinds[n] == "param"] + ["replicate", "status", "wall_s"]
    values = [n for n in names if kinds[n] == "value"]
    import fnmatch
    shown = _select(values, columns) if columns else (
        [v for v in values if any(fnmatch.fnmatchcase(v, p) for p in _DEFAULT_SHOW)] or
                                                      [v for v in values if cols[v].dtype != object][:6])
    hdr = head + shown
    n = len(cols["point"])
    idx = range(n) if max_rows is None else range(min(n, max_rows))
    rows = []
    for i in idx:
        r = []
        for c in hdr:
            x = cols[c][i]
            x = x.item() if isinstance(x, np.generic) else x
            if isinstance(x, float) and math.isnan(x):
                x = ""
            r.append(x)
        rows.append(r)
    nerr = int(np.count_nonzero(cols["status"] != "ok"))
    out = [f"{path}: {attrs.get('target')}, {attrs.get('n_points')} points x {attrs.get('seeds')} "
           f"seeds, sweep seed {attrs.get('sweep_seed')}, {n} runs, {nerr} failed", "",
           table(hdr, rows)]
    if max_rows is not None and n > max_rows:
        out.append(f"... ({n - max_rows} more rows)")
    errs = [(i, cols["error"][i]) for i in range(n) if cols["status"][i] != "ok"]
    if errs:
        out += ["", "errors:"] + [f"  row {i} (point {cols['point'][i]}, replicate "
                                  f"{cols['replicate'][i]}): {e}" for i, e in errs[:20]]
        if len(errs) > 20:
            out.append(f"  ... ({len(errs) - 20} more)")
    return "\n".join(out)


def plot(path: str | os.PathLike, x: str, y: str | Sequence[str], out: str | os.PathLike) -> str:
    """A PNG of ``y`` against ``x`` (a swept key or any column): the mean over replicates with
    min-max bars, one line per combination of the other swept keys. Returns ``out``."""
    from .cli import _plt
    with _open(os.fspath(path)) as f:
        cols, kinds, _ = _read_columns(f)
    ys = [y] if isinstance(y, str) else list(y)
    for c in [x] + ys:
        if c not in cols:
            raise SweepError(f"--plot: no column {c!r} (swept keys: "
                             f"{', '.join(n for n in cols if kinds[n] == 'param') or 'none'})")
    for c in ys:
        if cols[c].dtype.kind not in "iufb":
            raise SweepError(f"--plot y={c}: not a numeric column")
    ok = cols["status"] == "ok"
    others = [n for n in cols if kinds[n] == "param" and n != x and len(set(cols[n].tolist())) > 1]
    xv = cols[x]
    numeric_x = xv.dtype.kind in "iuf"
    xs = sorted(set(xv[ok].tolist())) if numeric_x else list(dict.fromkeys(xv[ok].tolist()))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5))
    groups = list(dict.fromkeys(zip(*[cols[o][ok].tolist() for o in others]))) if others else [()]
    for yc in ys:
        yv = cols[yc].astype(np.float64)
        for g in groups:
            sel = ok.copy()
            for o, val in zip(others, g):
                sel &= cols[o] == val
            px, mean, lo, hi = [], [], [], []
            for i, xx in enumerate(xs):
                s = sel & (xv == xx)
                if s.any():
                    v = yv[s]
                    px.append(xx if numeric_x else i)
                    mean.append(v.mean())
                    lo.append(v.mean() - v.min())
                    hi.append(v.max() - v.mean())
            if not px:
                continue
            label = ", ".join([f"{o}={val}" for o, val in zip(others, g)])
            if len(ys) > 1:
                label = f"{yc} " + label if label else yc
            ax.errorbar(px, mean, yerr=[lo, hi], marker="o", capsize=3, label=label or yc)
    if not numeric_x:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(ys[0] if len(ys) == 1 else "value")
    ax.set_title(f"{', '.join(ys)} against {x} (mean over replicates; bars: min to max)", fontsize=9)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.fspath(out), dpi=110)
    plt.close(fig)
    return os.fspath(out)
