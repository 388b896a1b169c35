"""Access-trace formats of other tools, and a compact one of our own.

Readers
    ``read_lackey``: Valgrind lackey ``--trace-mem=yes`` logs (parsed by ``kernels/lackey.py``).
    ``read_oracle_general``: libCacheSim's oracleGeneral binary traces.
    ``read_cachesim_csv``: libCacheSim csv traces.
    ``read_access_trace``: our ``.mmtr`` files; ``read_access_hdf5``: our HDF5 access columns.
Writers
    ``write_oracle_general``, ``write_access_trace``, ``export_ramulator``, ``export_access_hdf5``.

Every writer validates all of its input before it creates anything, writes a hidden temporary
file next to the destination and renames it into place when done: a bad input or an error leaves
no file behind, and a reader never sees half a file.

Addresses are int64 (byte addresses, >= 0 where the format says so); writes are int8 0/1 arrays
(``np.bool_`` input is accepted, a scalar applies to every access), the form ``Task.access``
takes.

oracleGeneral (libCacheSim)
    Packed little-endian records of 24 bytes, no header (libCacheSim's
    ``traceReader/customizedReader/oracle/oracleGeneralBin.h``)::

        uint32 clock_time; uint64 obj_id; uint32 obj_size; int64 next_access_vtime;

    ``next_access_vtime`` is the 1-based index of the next request to the same object, -1 if
    there is none (``bin/traceUtils/traceConvOracleGeneral.cpp``: "reference count starts with
    1"). libCacheSim skips requests whose ``obj_size`` is 0, so the writer refuses size 0.

.mmtr (ours, version 1)
    A 32-byte little-endian header, then the data::

        offset  0  8 bytes  magic b"\\x89MMTR\\r\\n\\x1a"  (binary-safe: a text-mode copy breaks it)
        offset  8  uint32   version = 1
        offset 12  uint32   flags = 0 (reserved)
        offset 16  uint64   count: number of accesses
        offset 24  uint64   reserved = 0
        offset 32  int64    address[count]
        then       uint8    is_write bits[ceil(count / 8)], access i in bit i % 8 of byte i // 8
                            (NumPy ``packbits(..., bitorder="little")``)

    The file is exactly ``32 + 8 * count + ceil(count / 8)`` bytes; anything else is an error.

Ramulator memory traces
    Ramulator's memory-trace-driven mode (``--mode=dram``) reads one request per line: "the
    hexadecimal address followed by 'R' or 'W' for read or write", e.g. ``0x12345680 R``
    (CMU-SAFARI/ramulator README.md, "Memory Trace Driven"). Its reader,
    ``Trace::get_dramtrace_request`` in ``src/Processor.cpp``, parses the address with
    ``std::stoul(line, &pos, 16)`` (so the ``0x`` prefix is accepted) and stops at the first
    ``getline`` that hits end of file, so every line, the last included, must end in a newline.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from typing import Any, Iterator

import h5py
import numpy as np

from .kernels import lackey as LK
from .kernels.jit import kernel

ORACLE_GENERAL_DTYPE = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"),
                                 ("next_access_vtime", "<i8")])
assert ORACLE_GENERAL_DTYPE.itemsize == 24

MMTR_MAGIC = b"\x89MMTR\r\n\x1a"
MMTR_VERSION = 1
MMTR_HEADER = np.dtype([("magic", "S8"), ("version", "<u4"), ("flags", "<u4"), ("count", "<u8"),
                        ("reserved", "<u8")])
assert MMTR_HEADER.itemsize == 32

ACCESS_HDF5_FORMAT = "mmcore-accesses"
ACCESS_HDF5_VERSION = 1

_U32_MAX = (1 << 32) - 1
_RAMULATOR_STEP = 1 << 20       # accesses formatted per kernel call (bounds the text buffer)


# ---- shared helpers ----------------------------------------------------------------------------

@contextlib.contextmanager
def _atomic(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, else delete it."""
    final = os.path.abspath(os.fspath(path))
    d = os.path.dirname(final)
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{final}: directory {d} does not exist")
    tmp = os.path.join(d, f".{os.path.basename(final)}.partial-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _int64_array(where: str, v: Any, *, lo: int | None = None, hi: int | None = None) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D array, got shape {a.shape}")
    if a.dtype.kind not in "iub":
        raise ValueError(f"{where}: expected integers, got dtype {a.dtype}")
    if a.size:
        mn, mx = int(a.min()), int(a.max())
        if mx > np.iinfo(np.int64).max:
            raise ValueError(f"{where}: value {mx} does not fit in int64")
        if lo is not None and mn < lo:
            raise ValueError(f"{where}: values must be >= {lo}, got {mn} at index {int(np.argmin(a))}")
        if hi is not None and mx > hi:
            raise ValueError(f"{where}: values must be <= {hi}, got {mx} at index {int(np.argmax(a))}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _writes(where: str, writes: Any, n: int) -> np.ndarray:
    """0/1 int8 per access from a bool/int scalar or an array of length ``n``."""
    w = np.asarray(writes)
    if w.ndim == 0:
        if w.dtype.kind not in "biu" or int(w) not in (0, 1):
            raise ValueError(f"{where}: expected a bool or 0/1 values, got {writes!r}")
        return np.full(n, int(w), np.int8)
    if w.shape != (n,):
        raise ValueError(f"{where}: expected a bool or an array of shape ({n},), got shape {w.shape}")
    if w.dtype.kind not in "biu":
        raise ValueError(f"{where}: expected bools or 0/1 integers, got dtype {w.dtype}")
    if n and (int(w.min()) < 0 or int(w.max()) > 1):
        bad = int(np.flatnonzero((w < 0) | (w > 1))[0])
        raise ValueError(f"{where}: expected 0/1 values, got {int(w[bad])} at index {bad}")
    return np.ascontiguousarray(w, dtype=np.int8)


# ---- Valgrind lackey -----------------------------------------------------------------------------

def read_lackey(path: str | os.PathLike, *, include_instructions: bool = False,
                chunk_bytes: int = 1 << 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a Valgrind lackey ``--trace-mem=yes`` log.

    The file is read ``chunk_bytes`` at a time (a line cut by a chunk's end is completed by the
    next) and parsed by ``kernels.lackey.parse_lackey``. ``==PID==``/``--PID--`` lines and blank
    lines are skipped; a modify (``M``) line gives a load then a store to the same address.

    Parameters
    ----------
    include_instructions : bool
        Keep instruction fetches (``I`` lines) as reads; by default only data accesses are kept.
    chunk_bytes : int
        Bytes read per step (any size >= 1); the parser's buffers take about 7 times this.

    Returns
    -------
    addresses : int64 array
    is_write : int8 array (0 load or fetch, 1 store)
    sizes : int32 array (bytes)

    Raises
    ------
    ValueError
        A malformed line: the message names the file, the line number and the line.
    """
    p = os.fspath(path)
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, (int, np.integer)) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes: expected a positive integer, got {chunk_bytes!r}")
    chunk_bytes = int(chunk_bytes)
    buf = np.empty(max(2 * chunk_bytes, 256), np.uint8)
    out_a = np.empty(0, np.int64)
    out_w = np.empty(0, np.int8)
    out_s = np.empty(0, np.int32)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    have = 0
    lines_before = 0
    with open(p, "rb") as f:
        while True:
            if have + chunk_bytes > buf.shape[0]:          # a line longer than the buffer: grow
                nb = np.empty(max(2 * buf.shape[0], have + chunk_bytes), np.uint8)
                nb[:have] = buf[:have]
                buf = nb
            got = f.readinto(memoryview(buf)[have:have + chunk_bytes])
            final = not got
            have += got or 0
            cap = have // 3 + 2
            if out_a.shape[0] < cap:
                out_a = np.empty(cap, np.int64)
                out_w = np.empty(cap, np.int8)
                out_s = np.empty(cap, np.int32)
            st, nrec, used, nlines, line_end = LK.parse_lackey(buf, have, final, include_instructions,
                                                               out_a, out_w, out_s)
            if st != LK.LK_OK:
                _lackey_error(p, st, buf, used, line_end, lines_before + nlines + 1)
            if nrec:
                parts.append((out_a[:nrec].copy(), out_w[:nrec].copy(), out_s[:nrec].copy()))
            lines_before += nlines
            if final:
                break
            rest = have - used
            if rest and used:
                buf[:rest] = buf[used:have].copy()
            have = rest
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.int32)
    return tuple(np.concatenate([q[i] for q in parts]) for i in range(3))


def _lackey_error(path: str, st: int, buf: np.ndarray, start: int, end: int, lineno: int) -> None:
    text = bytes(buf[start:end]).rstrip(b"\r").decode("utf-8", errors="replace")
    if len(text) > 200:
        text = text[:200] + "..."
    reason = LK.LK_REASONS[st] if 0 <= st < len(LK.LK_REASONS) else f"status {st}"
    raise ValueError(f"{path}:{lineno}: malformed lackey line ({reason}; a lackey line is "
                     f"'I|L|S|M <hex address>,<size>'): {text!r}")


# ---- libCacheSim oracleGeneral -------------------------------------------------------------------

@kernel
def _next_access_from_order(ids, order, out):
    """Given ``order``, a stable argsort of ``ids``, set ``out[i]`` to the 1-based index of the
    next request with ``ids[i]``, or -1."""
    n = order.shape[0]
    for k in range(n):
        i = order[k]
        if k + 1 < n and ids[order[k + 1]] == ids[i]:
            out[i] = order[k + 1] + 1
        else:
            out[i] = -1


def compute_next_access_vtime(obj_id: Any) -> np.ndarray:
    """libCacheSim's ``next_access_vtime`` of each request: the 1-based index of the next
    request to the same object, -1 if none (int64). ``obj_id``: int64 or uint64 (bits compared)."""
    ids = np.asarray(obj_id)
    ids = np.ascontiguousarray(ids).view(np.int64) if ids.dtype == np.uint64 else _int64_array("obj_id", ids)
    order = np.argsort(ids, kind="stable").astype(np.int64, copy=False)
    out = np.empty(ids.shape[0], np.int64)
    _next_access_from_order(ids, order, out)
    return out


def read_oracle_general(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a libCacheSim oracleGeneral trace.

    Returns a dict of int64 arrays: ``clock_time``, ``obj_id`` (the uint64 bits viewed as int64:
    ids >= 2**63 come out negative; ``.view(np.uint64)`` gives them back), ``obj_size`` and
    ``next_access_vtime`` (-1: never again).
    """
    p = os.fspath(path)
    size = os.path.getsize(p)
    if size % ORACLE_GENERAL_DTYPE.itemsize:
        raise ValueError(f"{p}: {size} bytes is not a multiple of the 24-byte oracleGeneral record "
                         f"({size // 24} records and {size % 24} bytes left over): truncated or not "
                         "an oracleGeneral trace")
    rec = np.fromfile(p, dtype=ORACLE_GENERAL_DTYPE)
    return {"clock_time": rec["clock_time"].astype(np.int64),
            "obj_id": np.ascontiguousarray(rec["obj_id"]).view(np.int64),
            "obj_size": rec["obj_size"].astype(np.int64),
            "next_access_vtime": np.ascontiguousarray(rec["next_access_vtime"])}


def write_oracle_general(path: str | os.PathLike, obj_id: Any, *, clock_time: Any = None,
                         obj_size: Any = None, next_access_vtime: Any = None) -> None:
    """Write a libCacheSim oracleGeneral trace.

    Parameters
    ----------
    obj_id : int array (int64 or uint64: written as the same 64 bits)
    clock_time : int array or int, default 0
        Seconds, 0 .. 2**32 - 1 (libCacheSim's clock, used by TTL and time-based analyses).
    obj_size : int array or int, default 1
        Bytes, 1 .. 2**32 - 1. With 1 everywhere, a libCacheSim cache size counts objects.
    next_access_vtime : int array, optional
        Computed when not given (``compute_next_access_vtime``). If given: -1, or a later 1-based
        request index holding the same object, or an index past the end (the trace was cut).
    """
    ids = np.asarray(obj_id)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"obj_id: expected a 1-D integer array, got shape {ids.shape} dtype {ids.dtype}")
    ids = np.ascontiguousarray(ids, dtype=np.uint64 if ids.dtype == np.uint64 else np.int64)
    n = ids.shape[0]
    ct = _broadcast("clock_time", 0 if clock_time is None else clock_time, n, 0, _U32_MAX)
    sz = _broadcast("obj_size", 1 if obj_size is None else obj_size, n, 1, _U32_MAX)
    if next_access_vtime is None:
        nxt = compute_next_access_vtime(ids)
    else:
        nxt = _int64_array("next_access_vtime", next_access_vtime, lo=-1)
        if nxt.shape != (n,):
            raise ValueError(f"next_access_vtime: expected shape ({n},), got {nxt.shape}")
        _check_next_access(nxt, ids.view(np.int64))
    rec = np.empty(n, ORACLE_GENERAL_DTYPE)
    rec["clock_time"] = ct
    rec["obj_id"] = ids.view(np.uint64)
    rec["obj_size"] = sz
    rec["next_access_vtime"] = nxt
    with _atomic(path) as tmp:
        rec.tofile(tmp)


def _check_next_access(nxt: np.ndarray, ids: np.ndarray) -> None:
    """Each value is -1, or a later 1-based index: one that holds the same object, or one past
    the end of the trace (the next access lies beyond a cut)."""
    n = nxt.shape[0]
    own = np.arange(1, n + 1)
    bad = np.flatnonzero((nxt != -1) & (nxt <= own))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"next_access_vtime[{i}]: expected -1 or a 1-based request index after "
                         f"{i + 1}, got {int(nxt[i])}")
    inside = np.flatnonzero((nxt != -1) & (nxt <= n))
    bad = inside[ids[nxt[inside] - 1] != ids[inside]]
    if bad.size:
        i = int(bad[0])
        j = int(nxt[i])
        raise ValueError(f"next_access_vtime[{i}]: request {j} (1-based) has obj_id {int(ids[j - 1])}, "
                         f"not {int(ids[i])}")


def _broadcast(where: str, v: Any, n: int, lo: int, hi: int) -> np.ndarray:
    if np.ndim(v) == 0:
        a = _int64_array(where, np.array([v]), lo=lo, hi=hi)
        return np.full(n, a[0], np.int64)
    a = _int64_array(where, v, lo=lo, hi=hi)
    if a.shape != (n,):
        raise ValueError(f"{where}: expected a scalar or shape ({n},), got {a.shape}")
    return a


def read_cachesim_csv(path: str | os.PathLike, *, obj_id_col: int, time_col: int | None = None,
                      obj_size_col: int | None = None, next_access_vtime_col: int | None = None,
                      delimiter: str = ",", has_header: bool | None = None,
                      obj_id_is_num: bool = True) -> dict[str, np.ndarray]:
    """Read a libCacheSim csv trace; columns are numbered from 1, as libCacheSim's
    ``obj-id-col``, ``time-col``, ``obj-size-col`` options number them.

    ``has_header=None`` detects a header: the first line's obj_id field is not an integer (with
    ``obj_id_is_num``) or the first line has a non-numeric field in another selected column.
    With ``obj_id_is_num=False`` ids are strings, returned as dense int64 codes (the index of
    each string among the sorted distinct ids). Returns a dict of int64 arrays with the keys of
    the selected columns: ``obj_id`` and any of ``clock_time``, ``obj_size``, ``next_access_vtime``.
    """
    p = os.fspath(path)
    cols = {"obj_id": obj_id_col, "clock_time": time_col, "obj_size": obj_size_col,
            "next_access_vtime": next_access_vtime_col}
    cols = {k: v for k, v in cols.items() if v is not None}
    for k, v in cols.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{k} column: expected a 1-based column number, got {v!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter: expected one character, got {delimiter!r}")
    with open(p, "r", encoding="utf-8", newline="") as f:
        first = f.readline()
    fields = first.rstrip("\r\n").split(delimiter)
    if first and max(cols.values()) > len(fields):
        raise ValueError(f"{p}:1: {len(fields)} columns, but column {max(cols.values())} was asked for")
    if has_header is None:
        numeric = [k for k in cols if k != "obj_id" or obj_id_is_num]
        has_header = bool(first) and not all(_is_int(fields[cols[k] - 1]) for k in numeric)
    skip = 1 if has_header else 0
    numeric = [k for k in cols if k != "obj_id" or obj_id_is_num]
    out: dict[str, np.ndarray] = {}
    try:
        if numeric:
            t = np.loadtxt(p, delimiter=delimiter, skiprows=skip, usecols=[cols[k] - 1 for k in numeric],
                           dtype=np.int64, ndmin=2, comments=None)
            for j, k in enumerate(numeric):
                out[k] = np.ascontiguousarray(t[:, j])
        if not obj_id_is_num:
            s = np.loadtxt(p, delimiter=delimiter, skiprows=skip, usecols=cols["obj_id"] - 1,
                           dtype=str, ndmin=1, comments=None)
            out["obj_id"] = np.unique(s, return_inverse=True)[1].astype(np.int64).reshape(-1)
    except ValueError as e:
        raise ValueError(f"{p}: columns {cols}: {e}") from None
    return {k: out[k] for k in cols}


def _is_int(s: str) -> bool:
    try:
        int(s.strip())
        return True
    except ValueError:
        return False


# ---- .mmtr ---------------------------------------------------------------------------------------

def write_access_trace(path: str | os.PathLike, addresses: Any, writes: Any = False) -> None:
    """Write an ``.mmtr`` access trace (format in the module docstring)."""
    a = _int64_array("addresses", addresses)
    w = _writes("writes", writes, a.shape[0])
    hdr = np.zeros(1, MMTR_HEADER)
    hdr["magic"] = MMTR_MAGIC
    hdr["version"] = MMTR_VERSION
    hdr["count"] = a.shape[0]
    with _atomic(path) as tmp, open(tmp, "wb") as f:
        f.write(hdr.tobytes())
        a.astype("<i8", copy=False).tofile(f)
        np.packbits(w, bitorder="little").tofile(f)


def read_access_trace(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an ``.mmtr`` access trace: (addresses int64, is_write int8)."""
    p = os.fspath(path)
    size = os.path.getsize(p)
    if size < MMTR_HEADER.itemsize:
        raise ValueError(f"{p}: {size} bytes, shorter than the 32-byte .mmtr header")
    hdr = np.fromfile(p, dtype=MMTR_HEADER, count=1)[0]
    if bytes(hdr["magic"]) != MMTR_MAGIC:
        raise ValueError(f"{p}: bad magic {bytes(hdr['magic'])!r}, expected {MMTR_MAGIC!r}: not an .mmtr file")
    if int(hdr["version"]) != MMTR_VERSION:
        raise ValueError(f"{p}: .mmtr version {int(hdr['version'])}; this mmcore reads version {MMTR_VERSION}")
    n = int(hdr["count"])
    want = MMTR_HEADER.itemsize + 8 * n + (n + 7) // 8
    if size != want:
        raise ValueError(f"{p}: {size} bytes, but a header count of {n} accesses needs {want}: "
                         "truncated or corrupt")
    a = np.fromfile(p, dtype="<i8", count=n, offset=MMTR_HEADER.itemsize).astype(np.int64, copy=False)
    bits = np.fromfile(p, dtype=np.uint8, count=(n + 7) // 8, offset=MMTR_HEADER.itemsize + 8 * n)
    w = np.unpackbits(bits, count=n, bitorder="little").astype(np.int8)
    return a, w


# ---- Ramulator -----------------------------------------------------------------------------------

@kernel
def _format_ramulator(addresses, writes, out):
    """``0x<lowercase hex> R|W\\n`` per access into ``out``; the number of bytes written."""
    o = 0
    for i in range(addresses.shape[0]):
        a = addresses[i]
        out[o] = 48                                   # '0'
        out[o + 1] = 120                              # 'x'
        o += 2
        nd = 1
        while nd < 16 and (a >> (4 * nd)) != 0:
            nd += 1
        for k in range(nd - 1, -1, -1):
            d = (a >> (4 * k)) & 15
            out[o] = d + 48 if d < 10 else d + 87
            o += 1
        out[o] = 32
        out[o + 1] = 87 if writes[i] else 82          # 'W' or 'R'
        out[o + 2] = 10
        o += 3
    return o


def export_ramulator(path: str | os.PathLike, addresses: Any, writes: Any = False) -> None:
    """Write a physical-address stream as a Ramulator memory trace (``0x<hex> R|W`` lines)."""
    a = _int64_array("addresses", addresses, lo=0)
    w = _writes("writes", writes, a.shape[0])
    step = _RAMULATOR_STEP
    out = np.empty(min(a.shape[0], step) * 23, np.uint8)     # "0x" + 16 digits + " W\n" each
    with _atomic(path) as tmp, open(tmp, "wb") as f:
        for i in range(0, a.shape[0], step):
            n = _format_ramulator(a[i:i + step], w[i:i + step], out)
            out[:n].tofile(f)


def export_access_hdf5(path: str | os.PathLike, addresses: Any, writes: Any = False, *,
                       compression: str | None = "lzf", attrs: dict[str, Any] | None = None) -> None:
    """Write an access stream as HDF5 columns: ``/address`` (int64, bytes) and ``/is_write``
    (int8, 0/1), with root attributes ``format="mmcore-accesses"``, ``version=1`` and ``attrs``."""
    if compression not in (None, "lzf", "gzip"):
        raise ValueError(f"compression: expected 'lzf', 'gzip' or None, got {compression!r}")
    a = _int64_array("addresses", addresses)
    w = _writes("writes", writes, a.shape[0])
    extra = dict(attrs or {})
    for k in extra:
        if k in ("format", "version"):
            raise ValueError(f"attrs: {k!r} is reserved")
    with _atomic(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = ACCESS_HDF5_FORMAT
        f.attrs["version"] = ACCESS_HDF5_VERSION
        for k, v in extra.items():
            f.attrs[k] = v
        chunks = (min(max(a.shape[0], 1), 1 << 18),)
        f.create_dataset("address", data=a, chunks=chunks, compression=compression).attrs["unit"] = "bytes"
        f.create_dataset("is_write", data=w, chunks=chunks, compression=compression)


def read_access_hdf5(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``export_access_hdf5``'s file: (addresses int64, is_write int8)."""
    p = os.fspath(path)
    if not h5py.is_hdf5(p):
        raise ValueError(f"{p}: not an HDF5 file")
    with h5py.File(p, "r") as f:
        fmt = f.attrs.get("format")
        if fmt != ACCESS_HDF5_FORMAT:
            raise ValueError(f"{p}: format attribute {fmt!r}, expected {ACCESS_HDF5_FORMAT!r}")
        if f.attrs.get("version") != ACCESS_HDF5_VERSION:
            raise ValueError(f"{p}: version {f.attrs.get('version')!r}, this mmcore reads {ACCESS_HDF5_VERSION}")
        for k in ("address", "is_write"):
            if not isinstance(f.get(k), h5py.Dataset):
                raise ValueError(f"{p}: missing dataset /{k}")
        a = f["address"][()].astype(np.int64, copy=False)
        w = f["is_write"][()].astype(np.int8, copy=False)
    if a.shape != w.shape:
        raise ValueError(f"{p}: /address has {a.shape[0]} rows, /is_write {w.shape[0]}")
    return a, w
