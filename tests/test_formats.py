"""Access-trace formats: Valgrind lackey logs, libCacheSim oracleGeneral and csv, our .mmtr,
Ramulator memory traces and HDF5 access columns."""
from __future__ import annotations

import os
import struct

import h5py
import numpy as np
import pytest

from mmcore import formats as F
from mmcore.kernels import lackey as LK


def files(d) -> list[str]:
    return sorted(os.listdir(d))


# ---- lackey ---------------------------------------------------------------------------------------

def ref_lackey(text: str, include_instructions: bool = False):
    """A plain reading of the format, line by line: the parser's specification."""
    addrs, writes, sizes = [], [], []
    for line in text.split("\n"):
        s = line.rstrip("\r").strip(" \t")
        if not s or s.startswith("==") or s.startswith("--"):
            continue
        kind, rest = s[0], s[1:].strip(" \t")
        a, n = rest.split(",")
        a, n = int(a, 16), int(n)
        if kind == "M":
            addrs += [a, a]
            writes += [0, 1]
            sizes += [n, n]
        elif kind != "I" or include_instructions:
            addrs.append(a)
            writes.append(1 if kind == "S" else 0)
            sizes.append(n)
    return addrs, writes, sizes


def random_lackey(n_lines: int, seed: int) -> str:
    """Lackey output with every variation the parser must accept."""
    rng = np.random.default_rng(seed)
    out = ["==4242== Lackey, an example Valgrind tool", "==4242== Command: ./a.out", "==4242== "]
    for i in range(n_lines):
        r = rng.random()
        a = int(rng.integers(0, 1 << 47))
        size = int(rng.choice([1, 2, 4, 8, 16, 32]))
        digits = f"{a:08X}" if rng.random() < 0.8 else f"{a:x}"
        if r < 0.45:
            line = f"I  {digits},{size}"
        else:
            line = f" {'LSM'[int(rng.integers(0, 3))]} {digits},{size}"
        if rng.random() < 0.02:
            line = line.replace(" ", "\t", 1) + "  "
        if rng.random() < 0.05:
            line += "\r"
        out.append(line)
        if rng.random() < 0.01:
            out.append("--4242-- a verbose message" if rng.random() < 0.5 else "")
    out.append("==4242== ")
    out.append("==4242== ERROR SUMMARY: 0 errors")          # no newline after the last line
    return "\n".join(out)


SAMPLE = """==1234== Lackey, an example Valgrind tool
==1234== Copyright (C) 2002-2024, and GNU GPL'd, by Nicholas Nethercote et al.
I  0023C790,2
 S BE80199C,4
I  0025242B,3
 L 0022E500,4
 M 0421BD10,4
I  0025242E,2
 L BE801950,8
==1234==
"""


def test_lackey_sample(tmp_path):
    p = tmp_path / "sample.log"
    p.write_text(SAMPLE)
    a, w, s = F.read_lackey(p)
    assert a.dtype == np.int64 and w.dtype == np.int8 and s.dtype == np.int32
    assert a.tolist() == [0xBE80199C, 0x0022E500, 0x0421BD10, 0x0421BD10, 0xBE801950]
    assert w.tolist() == [1, 0, 0, 1, 0]                       # M: a load, then a store
    assert s.tolist() == [4, 4, 4, 4, 8]
    a, w, s = F.read_lackey(p, include_instructions=True)
    assert a.tolist()[:3] == [0x0023C790, 0xBE80199C, 0x0025242B]
    assert w.tolist()[:3] == [0, 1, 0] and s.tolist()[:3] == [2, 4, 3]
    assert a.size == 8


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 7, 13, 64, 1000, 1 << 24])
@pytest.mark.parametrize("include_instructions", [False, True])
def test_lackey_any_chunk_size(tmp_path, chunk_bytes, include_instructions):
    """Chunk boundaries fall inside lines, inside numbers, between CR and LF: the result is
    always the line-by-line reading."""
    text = random_lackey(3000 if chunk_bytes > 2 else 400, seed=chunk_bytes)
    p = tmp_path / "t.log"
    p.write_bytes(text.encode())
    a, w, s = F.read_lackey(p, include_instructions=include_instructions, chunk_bytes=chunk_bytes)
    ra, rw, rs = ref_lackey(text, include_instructions)
    assert a.tolist() == ra and w.tolist() == rw and s.tolist() == rs


def test_lackey_line_longer_than_chunk(tmp_path):
    text = "I  0023C790,2\n" + " " * 5000 + "L 7FFF0000,8" + " " * 3000 + "\n S 10,1"
    p = tmp_path / "long.log"
    p.write_text(text)
    for cb in (1, 16, 4096):
        a, w, s = F.read_lackey(p, chunk_bytes=cb)
        assert a.tolist() == [0x7FFF0000, 0x10] and w.tolist() == [0, 1] and s.tolist() == [8, 1]


def test_lackey_empty_and_banner_only(tmp_path):
    for text in ("", "==1== only a banner\n", "\n\n\r\n"):
        p = tmp_path / "e.log"
        p.write_text(text)
        a, w, s = F.read_lackey(p)
        assert a.shape == w.shape == s.shape == (0,)
        assert (a.dtype, w.dtype, s.dtype) == (np.int64, np.int8, np.int32)


def test_lackey_largest_address(tmp_path):
    p = tmp_path / "big.log"
    p.write_text(" L 7fffffffffffffff,8\n S 0000000000000000,1\n")
    a, w, _ = F.read_lackey(p)
    assert a.tolist() == [(1 << 63) - 1, 0]


@pytest.mark.parametrize("line, reason", [
    ("X 0023C790,2", LK.LK_REASONS[LK.LK_BAD_OP]),
    ("I0023C790,2", LK.LK_REASONS[LK.LK_NO_SPACE]),
    (" L ,4", LK.LK_REASONS[LK.LK_BAD_ADDRESS]),
    (" L 0022E5G0,4", LK.LK_REASONS[LK.LK_NO_COMMA]),
    (" L 0022E500", LK.LK_REASONS[LK.LK_NO_COMMA]),
    (" L 0022E500 4", LK.LK_REASONS[LK.LK_NO_COMMA]),
    (" L 0022E500,", LK.LK_REASONS[LK.LK_BAD_SIZE]),
    (" L 0022E500,1234567890", LK.LK_REASONS[LK.LK_BAD_SIZE]),
    (" L 0022E500,4 x", LK.LK_REASONS[LK.LK_TRAILING]),
    (" L 0022E500,4,", LK.LK_REASONS[LK.LK_TRAILING]),
    (" S 10000000000000000,4", LK.LK_REASONS[LK.LK_ADDRESS_RANGE]),
    (" S 8000000000000000,4", LK.LK_REASONS[LK.LK_ADDRESS_RANGE]),
    ("SB 0x4011a0", LK.LK_REASONS[LK.LK_NO_SPACE]),
    ("hello world", LK.LK_REASONS[LK.LK_BAD_OP]),
])
@pytest.mark.parametrize("chunk_bytes", [1, 4, 1 << 20])
def test_lackey_malformed(tmp_path, line, reason, chunk_bytes):
    lines = SAMPLE.splitlines()
    lines.insert(5, line)                                   # line 6 of the file
    p = tmp_path / "bad.log"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as e:
        F.read_lackey(p, chunk_bytes=chunk_bytes)
    msg = str(e.value)
    assert f"{p}:6:" in msg and reason in msg and repr(line) in msg


def test_lackey_malformed_last_line_without_newline(tmp_path):
    p = tmp_path / "bad.log"
    p.write_text("I  0023C790,2\n L 0022E500,4\n L zz")
    with pytest.raises(ValueError, match=r"bad\.log:3: .*' L zz'"):
        F.read_lackey(p, chunk_bytes=5)


def test_lackey_binary_garbage(tmp_path):
    p = tmp_path / "bin.log"
    p.write_bytes(b"I  0023C790,2\n\xff\xfe\x00garbage\n")
    with pytest.raises(ValueError, match=r"bin\.log:2: "):
        F.read_lackey(p)
    with pytest.raises(ValueError, match="chunk_bytes"):
        F.read_lackey(p, chunk_bytes=0)


def test_lackey_kernel_has_one_specialisation(tmp_path):
    p = tmp_path / "s.log"
    p.write_text(SAMPLE)
    F.read_lackey(p, chunk_bytes=3)
    F.read_lackey(p, include_instructions=True)
    assert len(LK.parse_lackey.signatures) == 1


# ---- libCacheSim oracleGeneral --------------------------------------------------------------------

def ref_next_access(ids) -> list[int]:
    nxt, seen = [-1] * len(ids), {}
    for i in range(len(ids) - 1, -1, -1):
        nxt[i] = seen.get(ids[i], -2) + 1 if ids[i] in seen else -1
        seen[ids[i]] = i
    return nxt


def test_next_access_vtime_against_reference():
    rng = np.random.default_rng(5)
    ids = rng.zipf(1.3, 5000) % 300
    assert F.compute_next_access_vtime(ids).tolist() == ref_next_access(ids.tolist())
    assert F.compute_next_access_vtime(np.array([5, 3, 5, 7, 3, 5])).tolist() == [3, 5, 6, -1, -1, -1]
    big = np.array([2**64 - 1, 1, 2**64 - 1], dtype=np.uint64)
    assert F.compute_next_access_vtime(big).tolist() == [3, -1, -1]
    assert F.compute_next_access_vtime(np.array([], np.int64)).tolist() == []


def test_oracle_general_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    n = 1000
    ids = rng.integers(0, 50, n, dtype=np.uint64)
    ids[::97] = np.uint64(2**63 + 12345)                     # ids beyond int64
    ct = np.sort(rng.integers(0, 2**32 - 1, n))
    sz = rng.integers(1, 2**32 - 1, n)
    p = tmp_path / "t.oracleGeneral.bin"
    F.write_oracle_general(p, ids, clock_time=ct, obj_size=sz)
    assert p.stat().st_size == 24 * n
    r = F.read_oracle_general(p)
    assert all(v.dtype == np.int64 for v in r.values())
    np.testing.assert_array_equal(r["obj_id"].view(np.uint64), ids)
    np.testing.assert_array_equal(r["clock_time"], ct)
    np.testing.assert_array_equal(r["obj_size"], sz)
    assert r["next_access_vtime"].tolist() == ref_next_access(ids.tolist())
    # the packed layout, field by field, for the first record
    raw = p.read_bytes()[:24]
    assert struct.unpack("<IQIq", raw) == (int(ct[0]), int(ids[0]), int(sz[0]), int(r["next_access_vtime"][0]))


def test_oracle_general_given_next_access_and_defaults(tmp_path):
    p = tmp_path / "o.bin"
    # a trace cut from a longer one: the next access of request 2 lies beyond its end
    F.write_oracle_general(p, np.array([1, 2, 1]), next_access_vtime=np.array([3, 9, -1]))
    r = F.read_oracle_general(p)
    assert r["clock_time"].tolist() == [0, 0, 0] and r["obj_size"].tolist() == [1, 1, 1]
    assert r["next_access_vtime"].tolist() == [3, 9, -1]


@pytest.mark.parametrize("kw, match", [
    ({"obj_size": 0}, "obj_size: values must be >= 1"),
    ({"obj_size": np.array([1, 2 ** 32, 1])}, "obj_size: values must be <= 4294967295"),
    ({"clock_time": np.array([0, -1, 0])}, "clock_time: values must be >= 0"),
    ({"clock_time": np.array([0, 1])}, r"clock_time: expected a scalar or shape \(3,\)"),
    ({"next_access_vtime": np.array([1, -1, -1])}, r"next_access_vtime\[0\]: expected -1 or .* after 1, got 1"),
    ({"next_access_vtime": np.array([2, -1, -1])}, r"next_access_vtime\[0\]: request 2 .* has obj_id 2, not 1"),
    ({"next_access_vtime": np.array([3, -2, -1])}, "next_access_vtime: values must be >= -1"),
])
def test_oracle_general_bad_input_leaves_no_file(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        F.write_oracle_general(tmp_path / "o.bin", np.array([1, 2, 1]), **kw)
    assert files(tmp_path) == []


def test_oracle_general_bad_size(tmp_path):
    p = tmp_path / "o.bin"
    F.write_oracle_general(p, np.arange(10))
    p.write_bytes(p.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"235 bytes is not a multiple of the 24-byte") as e:
        F.read_oracle_general(p)
    assert str(p) in str(e.value)


def test_oracle_general_read_by_libcachesim(tmp_path):
    lcs = pytest.importorskip("libcachesim")
    rng = np.random.default_rng(2)
    n = 2000
    ids = rng.integers(0, 300, n, dtype=np.uint64)
    ids[5] = np.uint64(2**64 - 2)
    sz = rng.integers(1, 10000, n)
    ct = np.arange(n) // 10
    p = tmp_path / "lcs.oracleGeneral.bin"
    F.write_oracle_general(p, ids, clock_time=ct, obj_size=sz)
    reader = lcs.TraceReader(str(p), lcs.TraceType.ORACLE_GENERAL_TRACE)
    got = [(r.obj_id, r.obj_size, r.clock_time, r.next_access_vtime) for r in reader]
    nxt = F.compute_next_access_vtime(ids)
    never = np.iinfo(np.int64).max                          # libCacheSim's reader maps -1 to INT64_MAX
    want = [(int(i), int(s), int(c), never if x == -1 else int(x)) for i, s, c, x in zip(ids, sz, ct, nxt)]
    assert got == want


def test_cachesim_csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("timestamp,op,size,obj_id\n10,get,100,5\n11,get,200,3\n12,set,100,5\n")
    r = F.read_cachesim_csv(p, obj_id_col=4, time_col=1, obj_size_col=3)
    assert list(r) == ["obj_id", "clock_time", "obj_size"]
    assert r["obj_id"].tolist() == [5, 3, 5] and r["clock_time"].tolist() == [10, 11, 12]
    assert r["obj_size"].tolist() == [100, 200, 100] and r["obj_id"].dtype == np.int64
    q = tmp_path / "n.csv"                                  # no header, another delimiter
    q.write_text("1;7\n2;8\n")
    assert F.read_cachesim_csv(q, obj_id_col=2, delimiter=";")["obj_id"].tolist() == [7, 8]
    s = tmp_path / "s.csv"                                  # string ids: dense codes
    s.write_text("key,t\nb,1\na,2\nb,3\n")
    assert F.read_cachesim_csv(s, obj_id_col=1, time_col=2, obj_id_is_num=False)["obj_id"].tolist() == [1, 0, 1]


def test_cachesim_csv_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("1,5\n2,x\n")
    with pytest.raises(ValueError, match="t.csv"):
        F.read_cachesim_csv(p, obj_id_col=2, has_header=False)
    with pytest.raises(ValueError, match="column 3 was asked for"):
        F.read_cachesim_csv(p, obj_id_col=3)
    with pytest.raises(ValueError, match="1-based"):
        F.read_cachesim_csv(p, obj_id_col=0)


def test_cachesim_csv_agrees_with_libcachesim(tmp_path):
    lcs = pytest.importorskip("libcachesim")
    rng = np.random.default_rng(9)
    n = 500
    ids, sizes = rng.integers(0, 1 << 40, n), rng.integers(1, 5000, n)
    p = tmp_path / "t.csv"
    p.write_text("time,id,size\n" + "".join(f"{i},{a},{s}\n" for i, (a, s) in enumerate(zip(ids, sizes))))
    ours = F.read_cachesim_csv(p, obj_id_col=2, time_col=1, obj_size_col=3)
    param = lcs.ReaderInitParam(has_header=True, has_header_set=True, delimiter=",")
    param.time_field, param.obj_id_field, param.obj_size_field = 1, 2, 3
    theirs = [(r.clock_time, r.obj_id, r.obj_size) for r in lcs.TraceReader(str(p), lcs.TraceType.CSV_TRACE, param)]
    assert theirs == list(zip(ours["clock_time"].tolist(), ours["obj_id"].tolist(), ours["obj_size"].tolist()))


# ---- .mmtr ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1001])
def test_mmtr_round_trip(tmp_path, n):
    rng = np.random.default_rng(n)
    a = rng.integers(-(1 << 63), (1 << 63) - 1, n, dtype=np.int64)
    w = rng.random(n) < 0.3
    p = tmp_path / "t.mmtr"
    F.write_access_trace(p, a, w)
    assert p.stat().st_size == 32 + 8 * n + (n + 7) // 8
    ra, rw = F.read_access_trace(p)
    assert ra.dtype == np.int64 and rw.dtype == np.int8
    np.testing.assert_array_equal(ra, a)
    np.testing.assert_array_equal(rw, w.astype(np.int8))


def test_mmtr_layout_is_the_documented_one(tmp_path):
    p = tmp_path / "t.mmtr"
    F.write_access_trace(p, np.array([0x1000, 0x2000, 0x3000]), np.array([True, False, True]))
    raw = p.read_bytes()
    assert raw[:8] == b"\x89MMTR\r\n\x1a"
    assert struct.unpack("<IIQQ", raw[8:32]) == (1, 0, 3, 0)
    assert struct.unpack("<3q", raw[32:56]) == (0x1000, 0x2000, 0x3000)
    assert raw[56:] == bytes([0b101])


def test_mmtr_scalar_writes(tmp_path):
    p = tmp_path / "t.mmtr"
    F.write_access_trace(p, np.arange(10), True)
    assert F.read_access_trace(p)[1].tolist() == [1] * 10


@pytest.mark.parametrize("damage, match", [
    (lambda b: b[:-1], "needs 65: truncated or corrupt"),
    (lambda b: b + b"\0", "needs 65: truncated or corrupt"),
    (lambda b: b"\x89MMTR\n\n\x1a" + b[8:], "bad magic"),
    (lambda b: b[:8] + struct.pack("<I", 2) + b[12:], "version 2"),
    (lambda b: b[:20], "shorter than the 32-byte"),
])
def test_mmtr_rejects_damage(tmp_path, damage, match):
    p = tmp_path / "t.mmtr"
    F.write_access_trace(p, np.arange(4), False)
    p.write_bytes(damage(p.read_bytes()))
    with pytest.raises(ValueError, match=match) as e:
        F.read_access_trace(p)
    assert str(p) in str(e.value)


@pytest.mark.parametrize("writes, match", [
    (np.array([0, 2, 1]), "expected 0/1 values, got 2 at index 1"),
    (np.array([0, 1]), r"shape \(3,\)"),
    (np.array([0.0, 1.0, 0.0]), "dtype float64"),
    (2, "expected a bool or 0/1"),
])
def test_mmtr_bad_writes_leave_no_file(tmp_path, writes, match):
    with pytest.raises(ValueError, match=match):
        F.write_access_trace(tmp_path / "t.mmtr", np.arange(3), writes)
    assert files(tmp_path) == []


# ---- Ramulator ------------------------------------------------------------------------------------

def parse_like_ramulator(text: str):
    """``Trace::get_dramtrace_request``: stoul(line, 16), then 'R' or 'W' after blanks; a line
    that getline reads at end of file (no newline) is never used."""
    assert text == "" or text.endswith("\n")
    out = []
    for line in text.split("\n")[:-1]:
        addr, kind = line.split()
        out.append((int(addr, 16), {"R": 0, "W": 1}[kind]))
    return out


@pytest.mark.parametrize("step", [3, 1 << 20])
def test_ramulator_export(tmp_path, monkeypatch, step):
    monkeypatch.setattr(F, "_RAMULATOR_STEP", step)
    rng = np.random.default_rng(4)
    a = np.concatenate([[0, 1, 0x12345680, 0x4CBD56C0, (1 << 63) - 1], rng.integers(0, 1 << 40, 20)])
    w = rng.random(a.size) < 0.5
    p = tmp_path / "dram.trace"
    F.export_ramulator(p, a, w)
    text = p.read_text()
    assert text.splitlines()[2:4] == ["0x12345680 " + "RW"[int(w[2])], "0x4cbd56c0 " + "RW"[int(w[3])]]
    assert parse_like_ramulator(text) == list(zip(a.tolist(), w.astype(int).tolist()))


def test_ramulator_rejects_negative_addresses(tmp_path):
    with pytest.raises(ValueError, match="addresses: values must be >= 0, got -4096 at index 1"):
        F.export_ramulator(tmp_path / "d.trace", np.array([0, -4096]), False)
    assert files(tmp_path) == []
    F.export_ramulator(tmp_path / "empty.trace", np.array([], np.int64))
    assert (tmp_path / "empty.trace").read_text() == ""


def test_access_hdf5_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    a = rng.integers(0, 1 << 36, 3000)
    w = rng.random(3000) < 0.25
    p = tmp_path / "phys.h5"
    F.export_access_hdf5(p, a, w, attrs={"source": "task 1"})
    with h5py.File(p, "r") as f:                            # plain h5py
        assert f.attrs["format"] == "mmcore-accesses" and f.attrs["source"] == "task 1"
        np.testing.assert_array_equal(f["address"][()], a)
        np.testing.assert_array_equal(f["is_write"][()], w)
    ra, rw = F.read_access_hdf5(p)
    np.testing.assert_array_equal(ra, a)
    np.testing.assert_array_equal(rw, w)
    with h5py.File(p, "r+") as f:
        f.attrs["format"] = "other"
    with pytest.raises(ValueError, match="format attribute 'other'"):
        F.read_access_hdf5(p)
    with pytest.raises(ValueError, match="reserved"):
        F.export_access_hdf5(tmp_path / "x.h5", a, w, attrs={"version": 3})
    assert files(tmp_path) == ["phys.h5"]
