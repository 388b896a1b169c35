"""Run traces in HDF5: a machine's events, sampled counters, histograms and final observables.

Writing goes through ``TraceWriter`` (or ``write_machine_trace`` for a whole ``Machine``); reading
through ``mmcore.trace.open``, or any HDF5 reader: every array is a plain dataset and every name
is spelled out, so ``h5py`` alone can decode a file. No pickle anywhere.

A file appears at its final path only when it is complete. The writer fills a hidden temporary
file in the same directory (``.NAME.partial-PID-XXXXXXXX``); a clean ``close`` sets the root
attribute ``complete=True``, flushes, closes, fsyncs and ``os.replace``-s it onto the final path.
An exception inside the ``with`` block deletes the temporary file. A process killed at any moment
(SIGKILL included) leaves either no file at the final path or a complete one; at worst a hidden
``.partial-`` file stays behind, which may be deleted.

Schema (``schema_version`` 1)
-----------------------------
Every integer is a little-endian int64 (``<i8``); every column is a 1-D, chunked, resizable
dataset (``chunk`` elements per chunk, ``lzf``, ``gzip`` or no compression, no other filter).

``/`` root attributes
    ``schema_version`` (int, 1); ``complete`` (bool, True once closed cleanly);
    ``mmcore_version``, ``numba_version``, ``llvmlite_version``, ``numpy_version``,
    ``h5py_version`` (str); ``config`` (str: the JSON of ``Config.to_dict()``); ``seed`` (int);
    ``scenario_hash`` (str, empty when the run has none); plus any extra attributes given to the
    writer (``attrs=``: int, float, bool or str), which may not reuse these names.
``/events``
    One dataset per column, all of one length, in the order of ``Machine.events()``:
    ``time_ns`` (ns of simulated time at which the event completed), ``pid``, ``op`` (an index
    into the attribute ``names`` of ``/events/op``: ``kernels.consts.OP_NAMES`` at write time),
    ``address`` (virtual address in bytes; a syscall's first argument), ``result`` (0 or
    -errno), ``latency_ns`` (ns), ``kind`` (fault kind for ``op == "fault"``, an index into the
    attribute ``names`` of ``/events/kind``: the ``FK_*`` constants; 0 otherwise). Each column
    has attributes ``unit`` (``ns``, ``bytes`` or empty) and ``description``. The group's
    attribute ``columns`` lists the column names in order.
``/samples``
    The sampled time series (``Machine.samples()``: vmstat counters, meminfo fields, ...): a
    ``time_ns`` column (ns of simulated time) and one column per counter, all of one length; the
    group attribute ``columns`` lists them (``time_ns`` first). Empty when nothing was sampled.
``/hist/<name>``
    A group per histogram: ``counts`` (int64, k buckets) and ``bucket_edges_ns`` (int64, k + 1,
    strictly increasing, ns): bucket i counts values v with ``edges[i] <= v < edges[i + 1]``.
    ``log2_histogram`` makes the usual log-bucketed one (edges 0, 1, 2, 4, 8, ...).
``/final/<name>``
    A group per dict of final observables (``vmstat``, ``meminfo``, ``status.<pid>``,
    ``counters.<pid>``, ...), stored as the group's attributes: int values as int64 attributes,
    str values (such as ``status``'s ``Name``) as UTF-8 string attributes. Keys keep the
    kernel's field names.

Names of samples columns, histograms and final groups match ``[A-Za-z0-9_][A-Za-z0-9_.:+-]*``.

Speed: rows are staged one chunk per column; uncompressed columns are written as whole chunks
with HDF5's direct chunk write (no per-element work in HDF5), compressed ones through h5py's own
``lzf`` or ``gzip`` filter. ``bench/test_bench_formats.py`` measures events per second against
plain h5py.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import h5py
import numpy as np

from .kernels import consts as K

SCHEMA_VERSION = 1
EVENT_COLUMNS = ("time_ns", "pid", "op", "address", "result", "latency_ns", "kind")
EVENT_UNITS = {"time_ns": "ns", "pid": "", "op": "", "address": "bytes", "result": "",
               "latency_ns": "ns", "kind": ""}
EVENT_DESCRIPTIONS = {
    "time_ns": "simulated time at which the event completed",
    "pid": "pid of the task",
    "op": "operation: index into this dataset's attribute 'names'",
    "address": "faulting virtual address, or the syscall's first argument",
    "result": "0 or -errno",
    "latency_ns": "simulated time the event took",
    "kind": "fault kind for op 'fault' (index into this dataset's attribute 'names'), else 0",
}
COMPRESSIONS = (None, "lzf", "gzip")
GROUPS = ("events", "samples", "hist", "final")
_RESERVED_ATTRS = frozenset({
    "schema_version", "complete", "mmcore_version", "numba_version", "llvmlite_version",
    "numpy_version", "h5py_version", "config", "seed", "scenario_hash"})
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+\-]{0,254}$")
_I64 = np.dtype("<i8")
_I64_MAX = np.iinfo(np.int64).max


def _fault_kind_names() -> tuple[str, ...]:
    """``FK_*`` names by value (``FK_THP`` -> ``"thp"``), for the ``kind`` column's attribute."""
    codes = {getattr(K, n): n[3:].lower() for n in dir(K) if n.startswith("FK_")}
    return tuple(codes.get(i, "") for i in range(max(codes) + 1)) if codes else ()


FAULT_KIND_NAMES = _fault_kind_names()


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"{what}: expected a name matching [A-Za-z0-9_][A-Za-z0-9_.:+-]* "
                         f"(at most 255 characters), got {name!r}")
    return name


def _int_column(where: str, v: object) -> np.ndarray:
    """A 1-D integer array as a C-contiguous little-endian int64 array (a view when it already is)."""
    a = np.asarray(v)
    if a.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D array, got shape {a.shape}")
    if a.dtype.kind not in "iub":
        raise ValueError(f"{where}: expected integers, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.dtype.itemsize == 8 and a.size and int(a.max()) > _I64_MAX:
        raise ValueError(f"{where}: value {int(a.max())} does not fit in int64")
    return np.ascontiguousarray(a, dtype=_I64)


def _columns(where: str, data: object, expected: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """Validate a dict of equal-length integer columns (exactly ``expected`` when given)."""
    if not isinstance(data, Mapping):
        raise TypeError(f"{where}: expected a dict of arrays, got {type(data).__name__}")
    if expected is not None:
        missing = [c for c in expected if c not in data]
        unknown = [c for c in data if c not in expected]
        if missing or unknown:
            raise ValueError(f"{where}: expected columns {list(expected)}; missing {missing}, "
                             f"unknown {unknown}")
    out = {}
    for name in (expected if expected is not None else data):
        out[name] = _int_column(f"{where}[{name!r}]", data[name])
    lengths = {name: a.shape[0] for name, a in out.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: columns differ in length: {lengths}")
    return out


def _py(v: Any) -> Any:
    """An HDF5 attribute value as a plain Python value."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return [_py(x) for x in v.tolist()] if v.dtype.kind in "OSU" else v
    return v


def _versions() -> dict[str, str]:
    import llvmlite
    import numba

    from . import __version__
    return {"mmcore_version": __version__, "numba_version": numba.__version__,
            "llvmlite_version": llvmlite.__version__, "numpy_version": np.__version__,
            "h5py_version": h5py.__version__}


# ---- writing -----------------------------------------------------------------------------------

class _Table:
    """The columns of one group, written in whole chunks through a one-chunk staging buffer."""

    def __init__(self, writer: "TraceWriter", group: h5py.Group, columns: tuple[str, ...],
                 chunk: int, col_attrs: dict[str, dict] | None = None):
        self.w = writer
        self.group = group
        self.columns = columns
        self.chunk = chunk
        self.col_attrs = col_attrs or {}
        self.buf = np.empty((len(columns), chunk), _I64)
        self.nbuf = 0
        self.nrows = 0
        self.ds: list[h5py.Dataset] | None = None
        self.ds_chunk = chunk

    def _create(self, m: int) -> None:
        # a table closed with fewer rows than a chunk gets chunks of its own size: small files stay
        # small (an uncompressed chunk takes its full size on disk)
        self.ds_chunk = min(self.chunk, max(m, 1))
        comp = self.w.compression
        self.ds = []
        for name in self.columns:
            d = self.group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=_I64,
                                          chunks=(self.ds_chunk,), compression=comp)
            for k, v in self.col_attrs.get(name, {}).items():
                d.attrs[k] = v
            self.ds.append(d)

    def _write(self, cols: list[np.ndarray], m: int) -> None:
        """Rows [nrows, nrows + m): ``m`` is a multiple of the chunk, or the last rows."""
        if self.ds is None:
            self._create(m)
        start = self.nrows
        self.nrows += m
        for d in self.ds:
            d.resize((self.nrows,))
        if m == 0:
            return
        if self.w.compression is not None:     # h5py's own lzf or gzip filter
            for d, a in zip(self.ds, cols):
                d[start:start + m] = a
            return
        c = self.ds_chunk
        nck = -(-m // c)
        cb = c * 8
        if m % c:                          # the last, partial chunk: pad it to a whole one
            cols = [np.concatenate([a, np.zeros(nck * c - m, _I64)]) for a in cols]
        raws = [a.view(np.uint8) for a in cols]
        for d, raw in zip(self.ds, raws):
            for j in range(nck):
                d.id.write_direct_chunk((start + j * c,), raw[j * cb:(j + 1) * cb])

    def append(self, cols: list[np.ndarray]) -> None:
        n = cols[0].shape[0] if cols else 0
        ch = self.chunk
        i = 0
        if self.nbuf:
            take = min(ch - self.nbuf, n)
            for r, a in enumerate(cols):
                self.buf[r, self.nbuf:self.nbuf + take] = a[:take]
            self.nbuf += take
            i = take
            if self.nbuf == ch:
                self._write(list(self.buf), ch)
                self.nbuf = 0
        full = (n - i) // ch * ch
        if full:
            self._write([a[i:i + full] for a in cols], full)
            i += full
        if i < n:
            for r, a in enumerate(cols):
                self.buf[r, :n - i] = a[i:]
            self.nbuf = n - i

    def finish(self) -> None:
        if self.nbuf or self.ds is None:
            self._write([row[:self.nbuf] for row in self.buf], self.nbuf)
            self.nbuf = 0


class TraceWriter:
    """Write one run trace (see the module docstring for the schema); use it as a context manager.

    Parameters
    ----------
    path : str or os.PathLike
        The final path; an existing file there is replaced when this writer closes cleanly.
    compression : {"lzf", "gzip", None}
        Column compression. ``lzf`` is fast and read by h5py; ``gzip`` is read by any HDF5 tool.
    chunk : int
        Elements per HDF5 chunk of each column (and rows buffered per table before a write).
    config_json : str
        The machine configuration as JSON (``json.dumps(config.to_dict())``).
    seed : int
        The run's seed.
    scenario_hash : str
        Identifies the scenario that drove the run (empty when there is none).
    attrs : dict, optional
        Extra root attributes (int, float, bool or str values).
    fsync : bool
        fsync the file before it is renamed into place (and the directory after), so a complete
        trace also survives a power loss.
    """

    def __init__(self, path: str | os.PathLike, *, compression: str | None = "lzf", chunk: int = 1 << 16,
                 config_json: str, seed: int, scenario_hash: str, attrs: Mapping[str, Any] | None = None,
                 fsync: bool = True):
        self.path = os.path.abspath(os.fspath(path))
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression: expected one of {list(COMPRESSIONS)}, got {compression!r}")
        if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or not 1 <= chunk <= 1 << 24:
            raise ValueError(f"chunk: expected an integer in [1, {1 << 24}] (elements), got {chunk!r}")
        if not isinstance(config_json, str):
            raise TypeError(f"config_json: expected a JSON string, got {type(config_json).__name__}")
        try:
            json.loads(config_json)
        except json.JSONDecodeError as e:
            raise ValueError(f"config_json: not valid JSON: {e}") from None
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not \
                -(1 << 63) <= int(seed) <= _I64_MAX:
            raise ValueError(f"seed: expected an int64 integer, got {seed!r}")
        if not isinstance(scenario_hash, str):
            raise TypeError(f"scenario_hash: expected a str, got {type(scenario_hash).__name__}")
        extra = self._check_attrs(attrs or {})
        d = os.path.dirname(self.path)
        if not os.path.isdir(d):
            raise FileNotFoundError(f"{self.path}: directory {d} does not exist")
        self.compression = compression
        self.chunk = int(chunk)
        self.fsync = bool(fsync)
        self.tmp_path = os.path.join(
            d, f".{os.path.basename(self.path)}.partial-{os.getpid()}-{secrets.token_hex(4)}")
        self._closed = False
        self._f = h5py.File(self.tmp_path, "w")
        try:
            self._init_file(config_json, int(seed), scenario_hash, extra)
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _check_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in attrs.items():
            _check_name("attrs", k)
            if k in _RESERVED_ATTRS:
                raise ValueError(f"attrs: {k!r} is a reserved root attribute")
            if not isinstance(v, (int, float, str, bool, np.integer, np.floating)):
                raise TypeError(f"attrs[{k!r}]: expected an int, float, bool or str, got {type(v).__name__}")
            out[k] = v
        return out

    def _init_file(self, config_json: str, seed: int, scenario_hash: str, extra: dict) -> None:
        f = self._f
        a = f.attrs
        a["schema_version"] = SCHEMA_VERSION
        a["complete"] = False
        for k, v in _versions().items():
            a[k] = v
        a["config"] = config_json
        a["seed"] = seed
        a["scenario_hash"] = scenario_hash
        for k, v in extra.items():
            a[k] = v
        for g in GROUPS:
            f.create_group(g)
        ev = f["events"]
        ev.attrs["columns"] = list(EVENT_COLUMNS)
        col_attrs = {c: {"unit": EVENT_UNITS[c], "description": EVENT_DESCRIPTIONS[c]} for c in EVENT_COLUMNS}
        col_attrs["op"]["names"] = list(K.OP_NAMES)
        col_attrs["kind"]["names"] = list(FAULT_KIND_NAMES)
        self._events = _Table(self, ev, EVENT_COLUMNS, self.chunk, col_attrs)
        self._samples: _Table | None = None

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self.path}: the trace writer is closed")

    # ---- the data ------------------------------------------------------------------------------
    def append_events(self, events: Mapping[str, Any]) -> None:
        """Append events: a dict with exactly the ``EVENT_COLUMNS``, as ``Machine.events()``."""
        self._check_open()
        cols = _columns("append_events", events, EVENT_COLUMNS)
        self._events.append(list(cols.values()))

    def append_samples(self, samples: Mapping[str, Any]) -> None:
        """Append sampled rows: ``time_ns`` plus the same counter columns at every call."""
        self._check_open()
        if not isinstance(samples, Mapping):
            raise TypeError(f"append_samples: expected a dict of arrays, got {type(samples).__name__}")
        if self._samples is None:
            if "time_ns" not in samples:
                raise ValueError(f"append_samples: a 'time_ns' column is required, got {list(samples)}")
            names = ("time_ns",) + tuple(k for k in samples if k != "time_ns")
            for k in names:
                _check_name("append_samples column", k)
            cols = _columns("append_samples", samples, names)
            g = self._f["samples"]
            g.attrs["columns"] = list(names)
            self._samples = _Table(self, g, names, min(self.chunk, 1 << 12),
                                   {"time_ns": {"unit": "ns"}})
        else:
            cols = _columns("append_samples", samples, self._samples.columns)
        self._samples.append(list(cols.values()))

    def write_histogram(self, name: str, counts: Any, bucket_edges_ns: Any) -> None:
        """``/hist/<name>``: ``counts[i]`` values in [``bucket_edges_ns[i]``, ``bucket_edges_ns[i+1]``)."""
        self._check_open()
        _check_name("write_histogram name", name)
        c = _int_column(f"write_histogram({name!r}) counts", counts)
        e = _int_column(f"write_histogram({name!r}) bucket_edges_ns", bucket_edges_ns)
        if c.shape[0] == 0 or e.shape[0] != c.shape[0] + 1:
            raise ValueError(f"write_histogram({name!r}): expected k >= 1 counts and k + 1 edges, got "
                             f"{c.shape[0]} counts and {e.shape[0]} edges")
        if (c < 0).any():
            raise ValueError(f"write_histogram({name!r}): counts must be >= 0, got {int(c.min())}")
        if (np.diff(e) <= 0).any():
            raise ValueError(f"write_histogram({name!r}): bucket_edges_ns must be strictly increasing")
        hist = self._f["hist"]
        if name in hist:
            raise ValueError(f"write_histogram: {name!r} was already written")
        g = hist.create_group(name)
        g.create_dataset("counts", data=c)
        g.create_dataset("bucket_edges_ns", data=e).attrs["unit"] = "ns"

    def write_final(self, name: str, values: Mapping[str, Any]) -> None:
        """``/final/<name>``: a dict of final observables (int or str values) as attributes."""
        self._check_open()
        _check_name("write_final name", name)
        if not isinstance(values, Mapping):
            raise TypeError(f"write_final({name!r}): expected a dict, got {type(values).__name__}")
        clean: dict[str, Any] = {}
        for k, v in values.items():
            if not isinstance(k, str) or not k:
                raise ValueError(f"write_final({name!r}): keys must be non-empty strings, got {k!r}")
            if isinstance(v, str):
                clean[k] = v
            elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
                if not -(1 << 63) <= int(v) <= _I64_MAX:
                    raise ValueError(f"write_final({name!r})[{k!r}]: {v} does not fit in int64")
                clean[k] = np.int64(v)
            else:
                raise TypeError(f"write_final({name!r})[{k!r}]: expected an int or a str, "
                                f"got {type(v).__name__} {v!r}")
        final = self._f["final"]
        if name in final:
            raise ValueError(f"write_final: {name!r} was already written")
        g = final.create_group(name)
        for k, v in clean.items():
            g.attrs[k] = v

    # ---- ending ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the file and move it to its final path (only now does ``path`` appear)."""
        if self._closed:
            return
        try:
            self._events.finish()
            if self._samples is not None:
                self._samples.finish()
            self._f.attrs["complete"] = True
            self._f.flush()
            self._f.close()
            if self.fsync:
                fd = os.open(self.tmp_path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        if self.fsync:
            fd = os.open(os.path.dirname(self.path), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def abort(self) -> None:
        """Drop the file: nothing appears at the final path."""
        self._closed = True
        try:
            self._f.close()
        except Exception:
            pass
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def log2_histogram(values_ns: Any) -> tuple[np.ndarray, np.ndarray]:
    """Log-bucketed counts of non-negative integer values (ns): edges 0, 1, 2, 4, 8, ..., 2**b
    with 2**b above the largest value; bucket 0 holds the zeros. Returns (counts, bucket_edges_ns)."""
    v = _int_column("log2_histogram values_ns", values_ns)
    if v.size and int(v.min()) < 0:
        raise ValueError(f"log2_histogram: values must be >= 0, got {int(v.min())}")
    top = int(v.max()).bit_length() if v.size else 0
    if top > 62:
        raise ValueError(f"log2_histogram: values must be below 2**62, got {int(v.max())}")
    edges = np.concatenate([[0], np.left_shift(1, np.arange(top + 1, dtype=np.int64))]).astype(np.int64)
    idx = np.searchsorted(edges, v, side="right") - 1
    return np.bincount(idx, minlength=edges.shape[0] - 1).astype(np.int64), edges


def write_machine_records(w: "TraceWriter", machine: Any) -> None:
    """A machine's run records into an open writer: its events, samples, a latency histogram per
    op that has events, and the in-kernel page-fault latency histogram."""
    ev = machine.events()
    w.append_events(ev)
    smp = machine.samples()
    if len(smp.get("time_ns", ())):
        w.append_samples(smp)
    op = np.asarray(ev["op"])
    for code in np.unique(op).tolist():
        name = K.OP_NAMES[code] if 0 <= code < len(K.OP_NAMES) else f"op{code}"
        w.write_histogram(f"{name}_latency_ns", *log2_histogram(np.asarray(ev["latency_ns"])[op == code]))
    w.write_histogram("kernel.fault_latency_ns", *machine.fault_latency_histogram())


def write_machine_trace(path: str | os.PathLike, machine: Any, *, scenario_hash: str = "",
                        compression: str | None = "lzf", chunk: int = 1 << 16, fsync: bool = True,
                        **attrs: Any) -> None:
    """Dump a ``Machine``'s run into one trace file.

    Writes ``machine.events()`` to ``/events``, ``machine.samples()`` to ``/samples``, a
    ``log2_histogram`` of the latency of each op that has events to ``/hist/<op>_latency_ns``,
    and to ``/final``: ``vmstat``, ``meminfo`` and, for each live task, ``status.<pid>`` and
    ``counters.<pid>``. Extra keyword arguments become root attributes.
    """
    config_json = json.dumps(machine.config.to_dict(), sort_keys=True)
    with TraceWriter(path, compression=compression, chunk=chunk, config_json=config_json,
                     seed=machine.seed, scenario_hash=scenario_hash, attrs=attrs, fsync=fsync) as w:
        write_machine_records(w, machine)
        w.write_final("vmstat", machine.vmstat())
        w.write_final("meminfo", machine.meminfo())
        for t in machine.tasks():
            w.write_final(f"status.{t.pid}", t.status())
            w.write_final(f"counters.{t.pid}", t.counters())


# ---- reading -----------------------------------------------------------------------------------

class Histogram(NamedTuple):
    counts: np.ndarray
    bucket_edges_ns: np.ndarray


class Columns(Mapping):
    """Columns of one group as NumPy arrays, read on first access."""

    def __init__(self, group: h5py.Group, names: tuple[str, ...]):
        self._group = group
        self._names = names
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(f"{name!r}: not a column; the columns are {list(self._names)}")
        if name not in self._cache:
            self._cache[name] = self._group[name][()]
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"<Columns {list(self._names)}>"


class Trace:
    """A complete trace file, read only (make one with ``mmcore.trace.open``).

    Attributes
    ----------
    attrs : dict
        Root attributes as Python values; ``config`` is also parsed into ``config`` (a dict).
    events, samples : Columns
        ``{column: int64 array}``, read lazily.
    hist : dict[str, Histogram]
    final : dict[str, dict]
    op_names, kind_names : tuple[str, ...]
        Names of ``events["op"]`` and ``events["kind"]`` codes, as written.
    """

    def __init__(self, path: str, f: h5py.File):
        self.path = path
        self._f = f
        self.attrs = {k: _py(v) for k, v in f.attrs.items()}
        self.config = json.loads(self.attrs["config"])
        self.events = Columns(f["events"], EVENT_COLUMNS)
        self.samples = Columns(f["samples"], tuple(_py(f["samples"].attrs.get("columns", []))))
        self.hist = {name: Histogram(g["counts"][()], g["bucket_edges_ns"][()]) for name, g in f["hist"].items()}
        self.final = {name: {k: _py(v) for k, v in g.attrs.items()} for name, g in f["final"].items()}
        self.op_names = tuple(_py(f["events/op"].attrs.get("names", [])))
        self.kind_names = tuple(_py(f["events/kind"].attrs.get("names", [])))

    @property
    def n_events(self) -> int:
        return int(self._f["events/time_ns"].shape[0])

    def events_frame(self):
        """The events as a pandas DataFrame, with ``op_name`` decoded (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Trace.events_frame() needs pandas (pip install pandas); without it, "
                              "Trace.events gives the same columns as NumPy arrays") from e
        df = pd.DataFrame({c: self.events[c] for c in EVENT_COLUMNS})
        op = self.events["op"]
        if len(self.op_names) and (op.size == 0 or (op.min() >= 0 and op.max() < len(self.op_names))):
            df["op_name"] = pd.Categorical.from_codes(op, categories=list(self.op_names))
        return df

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Trace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mmcore Trace {self.path}: {self.n_events} events>"


def _validate(p: str, f: h5py.File) -> None:
    a = f.attrs
    if "complete" not in a or not bool(a["complete"]):
        raise ValueError(f"{p}: incomplete trace: the root attribute complete=True is missing "
                         "(the writer did not close it)")
    if "schema_version" not in a:
        raise ValueError(f"{p}: no schema_version root attribute: not an mmcore trace")
    v = _py(a["schema_version"])
    if v != SCHEMA_VERSION:
        raise ValueError(f"{p}: schema_version {v!r}; this mmcore reads schema_version {SCHEMA_VERSION}")
    for k in ("config", "seed", "scenario_hash"):
        if k not in a:
            raise ValueError(f"{p}: missing root attribute {k!r}")
    for g in GROUPS:
        if not isinstance(f.get(g), h5py.Group):
            raise ValueError(f"{p}: missing group /{g}")
    for g, names in (("events", EVENT_COLUMNS), ("samples", tuple(_py(f["samples"].attrs.get("columns", []))))):
        lengths = set()
        for c in names:
            d = f[g].get(c)
            if not isinstance(d, h5py.Dataset) or d.ndim != 1 or d.dtype.kind != "i":
                raise ValueError(f"{p}: /{g}/{c} is missing or not a 1-D integer dataset")
            lengths.add(d.shape[0])
        if len(lengths) > 1:
            raise ValueError(f"{p}: the /{g} columns differ in length: {sorted(lengths)}")
    for name, g in f["hist"].items():
        if not isinstance(g, h5py.Group) or "counts" not in g or "bucket_edges_ns" not in g:
            raise ValueError(f"{p}: /hist/{name} lacks counts or bucket_edges_ns")


def open(path: str | os.PathLike) -> Trace:
    """Open a complete trace for reading; ValueError (naming the path) for anything else."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no such file")
    if not h5py.is_hdf5(p):
        raise ValueError(f"{p}: not an HDF5 file")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise ValueError(f"{p}: cannot be read as HDF5: {e}") from None
    try:
        _validate(p, f)
        return Trace(p, f)
    except BaseException:
        f.close()
        raise
