"""Scenario files: validation that names the key (or the line) of every mistake, the shipped
examples running and showing what they are about, determinism, params and traces."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from mmcore import formats
from mmcore import trace as T
from mmcore.scenario import (
    PLANNED_OPS, ScenarioError, ScenarioRunError, load_scenario, override, run_scenario,
)

DATA = Path(__file__).parent.parent / "data"
SHIPPED = sorted(DATA.glob("*.toml"))

BASE = {
    "scenario": {"name": "t"},
    "machine": {"memory": "64MiB"},
    "mount": [{"path": "/d", "fstype": "tmpfs", "size": "16MiB"}],
    "task": [{"name": "a"}, {"name": "b"}],
    "phase": [{"name": "p", "task": "a", "ops": [
        {"op": "mmap", "map": "buf", "length": "4MiB"},
        {"op": "touch", "map": "buf"},
        {"op": "open", "fd": "f", "path": "/d/x", "flags": ["O_CREAT", "O_RDWR"]},
    ]}],
}


def doc(*ops, **top) -> dict:
    """BASE with ``ops`` appended to its phase and top-level tables replaced by ``top``."""
    d = copy.deepcopy(BASE)
    d["phase"][0]["ops"] += list(ops)
    d.update(top)
    return d


def error_of(d) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        load_scenario(d)
    return e.value


# ---- validation: each mistake named by its key path --------------------------------------------

BAD_OPS = [
    # (the op, the key path it must name, words the message must contain)
    ({"op": "touch", "map": "buf", "length": "8MiB"}, "phase[0].ops[3].length", "beyond mapping 'buf'"),
    ({"op": "touch", "map": "nope"}, "phase[0].ops[3].map", "no mapping 'nope'"),
    ({"op": "touch", "map": "buf", "lenght": 4096}, "phase[0].ops[3].lenght", "unknown key"),
    ({"op": "frobnicate"}, "phase[0].ops[3].op", "unknown op 'frobnicate'"),
    ({"op": "fork"}, "phase[0].ops[3].op", "not implemented yet"),
    ({"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/khugepaged/max_ptes_none",
      "value": 600}, "phase[0].ops[3].value", "[0, 511]"),
    ({"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/khugepaged/full_scans",
      "value": 1}, "phase[0].ops[3].path", "unknown sysfs file"),
    ({"op": "madvise", "map": "buf", "advice": "wipeonfork"}, "phase[0].ops[3].advice", "unknown madvise advice"),
    ({"op": "fadvise", "fd": "f", "advice": "later"}, "phase[0].ops[3].advice", "unknown fadvise advice"),
    ({"op": "fadvise", "fd": "f", "advice": 9}, "phase[0].ops[3].advice", "POSIX_FADV_NORMAL"),
    ({"op": "fadvise", "fd": "f"}, "phase[0].ops[3].advice", "missing"),
    ({"op": "madvise", "map": "buf"}, "phase[0].ops[3].advice", "missing"),
    ({"op": "mmap", "map": "s", "length": 4096, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"]},
     "phase[0].ops[3].flags", "not implemented yet"),
    ({"op": "mmap", "map": "s", "length": 4096, "fd": "nofd"}, "phase[0].ops[3].fd", "no file descriptor"),
    ({"op": "mmap", "map": "s", "length": 4096, "fd": "f", "offset": 100}, "phase[0].ops[3].offset", "4096"),
    ({"op": "mmap", "map": "s", "length": 4096, "flags": "MAP_PRIVATE"}, "phase[0].ops[3].flags", "give fd"),
    ({"op": "mmap", "map": "s", "length": 4096, "offset": 4096}, "phase[0].ops[3].offset", "needs fd"),
    ({"op": "mmap", "map": "s", "length": "lots"}, "phase[0].ops[3].length", "expected a size"),
    ({"op": "mmap", "map": "9s", "length": 4096}, "phase[0].ops[3].map", "expected a name"),
    ({"op": "access", "map": "buf", "count": 10, "pattern": "zipf", "a": -1}, "phase[0].ops[3].a", "(0, 100]"),
    ({"op": "access", "map": "buf", "count": 10, "pattern": "spiral"}, "phase[0].ops[3].pattern", "'zipf'"),
    ({"op": "access", "map": "buf"}, "phase[0].ops[3].count", "missing"),
    ({"op": "access", "map": "buf", "count": 1.5}, "phase[0].ops[3].count", "expected an integer"),
    ({"op": "access", "map": "buf", "count": 5, "write": 2.0}, "phase[0].ops[3].write", "[0.0, 1.0]"),
    ({"op": "access", "addr": "buf+0x1000", "count": 3}, "phase[0].ops[3].length", "missing"),
    ({"op": "access", "addr": "buf+0x3ff000", "length": 8192, "count": 3}, "phase[0].ops[3].length", "beyond"),
    ({"op": "access", "addr": "buf plus one", "length": 1, "count": 1}, "phase[0].ops[3].addr", "name+offset"),
    ({"op": "open", "fd": "g", "path": "/elsewhere/y"}, "phase[0].ops[3].path", "no mounted filesystem"),
    ({"op": "open", "fd": "g", "path": "/d/y", "count": 4}, "phase[0].ops[3].path", "{i}"),
    ({"op": "open", "fd": "g", "path": "/d/y", "flags": "O_SYNC"}, "phase[0].ops[3].flags", "unknown open flag"),
    ({"op": "pread", "fd": "nofd", "length": 4096}, "phase[0].ops[3].fd", "no file descriptor 'nofd'"),
    ({"op": "pread", "fd": "f", "length": 4096, "pick": {"dist": "zipf"}}, "phase[0].ops[3].pick", "group"),
    ({"op": "pread", "fd": "f", "length": 4096, "offset": {"dist": "gaussian"}},
     "phase[0].ops[3].offset.dist", "'uniform'"),
    ({"op": "sleep", "duration": "5 parsecs"}, "phase[0].ops[3].duration", "expected a duration"),
    ({"op": "repeat", "ops": []}, "phase[0].ops[3].count", "needs a count"),
    ({"op": "repeat", "count": 2, "ops": [{"op": "touch", "map": "buf", "stride": 0}]},
     "phase[0].ops[3].ops[0].stride", "expected a size in [1,"),
    ({"op": "repeat", "while_running": "a", "ops": [{"op": "sleep", "duration": 1}]},
     "phase[0].ops[3].while_running", "another task"),
    ({"op": "repeat", "while_running": "b", "task": "a", "ops": [{"op": "sleep", "duration": 1}]},
     "phase[0].ops[3].while_running", "no ops in this phase"),
    ({"op": "write_sysctl", "name": "vm.swappiness", "value": 3}, "phase[0].ops[3].name", "unknown sysctl"),
    ({"op": "write_sysctl", "name": "vm.drop_caches", "value": 7}, "phase[0].ops[3].value", "1, 2, 3 or 4"),
    ({"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/enabled", "value": "sometimes"},
     "phase[0].ops[3].value", "'madvise'"),
    ({"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/shrink_underused", "value": 2},
     "phase[0].ops[3].value", "'0', '1'"),
    ({"op": "prctl", "option": "PR_SET_FOO"}, "phase[0].ops[3].option", "unknown prctl option"),
    ({"op": "touch", "map": "buf", "task": "zed"}, "phase[0].ops[3].task", "declared in [[task]]"),
    ({"op": "touch", "map": "buf", "count": "${missing}"}, "phase[0].ops[3].count", "param 'missing'"),
    ("touch", "phase[0].ops[3]", "expected an op table"),
]


@pytest.mark.parametrize("op,key,words", BAD_OPS, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD_OPS)])
def test_bad_op_names_its_key(op, key, words):
    e = error_of(doc(op))
    assert e.key == key, str(e)
    assert words in str(e)
    assert f": {key}: " in str(e)


def test_shrink_underused_needs_a_6_12_profile():
    op = {"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/shrink_underused",
          "value": 0}
    e = error_of(doc(op, machine={"memory": "64MiB", "kernel": "4.13"}))
    assert e.key == "phase[0].ops[3].path" and "exists from 6.12" in str(e) and "'4.13'" in str(e)
    assert load_scenario(doc(op)) is not None


BAD_TABLES = [
    ({"bogus": 1}, "bogus", "unknown key"),
    ({"machine": {"memory": "3MiB"}}, "machine.memory", "multiple of 4 MiB"),
    ({"machine": {"memory": "64MiB", "colour": "red"}}, "machine", "unknown key(s) ['colour']"),
    ({"machine": {"tlb": {"foo": 1}}}, "machine.tlb", "unknown key(s) ['foo']"),
    ({"machine": {"tlb": {"stlb_entries": 100}}}, "machine.tlb.stlb_entries", "not a multiple"),
    ({"machine": {"costs": 5}}, "machine.costs", "expected a table"),
    ({"machine": {"kernel": "5.99"}}, "machine.kernel", "expected one of"),
    ({"machine": {"record_faults": True}, "record": {"record_faults": True}}, "machine.record_faults",
     "one place"),
    ({"record": {"observables": ["rss"]}}, "record.observables[0]", "'meminfo'"),
    ({"record": {"record_faults": "yes"}}, "record.record_faults", "true or false"),
    ({"record": {"sample_interval_ns": "1 fortnight"}}, "record.sample_interval_ns", "duration"),
    ({"scenario": {"seed": -1}}, "scenario.seed", "expected an integer"),
    ({"scenario": {"on_error": "shrug"}}, "scenario.on_error", "'continue'"),
    ({"params": {"x": {"a": 1}}}, "params.x", "got a table"),
    ({"mount": [{"path": "data", "fstype": "ext4", "size": "1GiB"}]}, "mount[0].path", "absolute path"),
    ({"mount": [{"path": "/d", "fstype": "zfs"}]}, "mount[0].fstype", "'ext4'"),
    ({"mount": [{"path": "/d", "fstype": "ext4"}]}, "mount[0].size", "needs a size"),
    ({"mount": [{"path": "/d", "fstype": "ext4", "size": "1GiB", "disk": {"rpm": 7200}}]},
     "mount[0].disk.rpm", "unknown key"),
    ({"task": [{"name": "a"}, {"name": "a"}]}, "task[1].name", "declared twice"),
    ({"task": [{"name": "a", "prctl": {"option": 41, "arg2": "yes"}}, {"name": "b"}]},
     "task[0].prctl[0].arg2", "unknown prctl argument"),
    ({"task": [{"name": "a", "oom_score_adj": 5000}, {"name": "b"}]}, "task[0].oom_score_adj", "[-1000, 1000]"),
]


@pytest.mark.parametrize("top,key,words", BAD_TABLES, ids=[b[1] for b in BAD_TABLES])
def test_bad_table_names_its_key(top, key, words):
    e = error_of(doc(**top))
    assert e.key == key, str(e)
    assert words in str(e)


def test_scenario_error_is_a_value_error_and_names_the_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('[machine]\nmemory = "3MiB"\n')
    with pytest.raises(ValueError) as e:
        load_scenario(p)
    assert str(e.value).startswith(f"{p}: machine.memory: ")
    with pytest.raises(ScenarioError, match="no such file"):
        load_scenario(tmp_path / "missing.toml")


@pytest.mark.parametrize("text,line,found,expected", [
    ('[machine]\nmemory = 4GiB\n', 2, "'4GiB'", "must be quoted"),
    ('[machine]\nmemory = "1GiB\n', 2, "'\"1GiB'", "closing quote"),
    ('[machine]\nmemory = "64MiB"\nmemory = "64MiB"\n', 3, None, "each key once"),
    ('x = 1\n[[phase]]\nops = [\n  {op = "sleep",\n   duration = 5},\n]\n', 4, None, "one line"),
    ('[[phase]]\nops = [\n  {op = "sync"},\n', 2, None, "closing ]"),
    ('[machine\n', 1, None, "[name]"),
    ('[scenario]\nseed = yes\n', 2, "'yes'", "true or"),
])
def test_toml_syntax_error_names_line_value_and_expectation(tmp_path, text, line, found, expected):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    msg = str(e.value)
    assert e.value.line == line
    assert msg.startswith(f"{p}:{line}") and f"line {line}" in msg
    if found:
        assert f"found {found}" in msg
    assert expected in msg


def test_datetimes_and_unicode_errors(tmp_path):
    e = error_of(doc(params={"when": __import__("datetime").date(2024, 1, 1)}))
    assert e.key == "params.when"
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[scenario]\nname = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="UTF-8") as e:
        load_scenario(p)
    assert e.value.line == 2


def test_every_planned_op_is_a_clear_validation_error():
    for name in PLANNED_OPS:
        e = error_of(doc({"op": name}))
        assert e.key == "phase[0].ops[3].op" and "not implemented yet" in str(e)


def test_params_are_text_not_code():
    """A param is substituted as data: an expression stays a string (and fails as one)."""
    e = error_of(doc({"op": "touch", "map": "buf", "stride": "${s}"}, params={"s": "__import__('os')"}))
    assert e.key == "phase[0].ops[3].stride" and "expected a size" in str(e)
    s = load_scenario(doc({"op": "open", "fd": "g", "path": "/d/${n}-{i}", "count": 2}, params={"n": "1+1"}))
    assert s.doc["phase"][0]["ops"][3]["path"] == "/d/1+1-{i}"


# ---- the shipped scenarios -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped_runs():
    return {p.stem: run_scenario(load_scenario(p)) for p in SHIPPED}


def test_shipped_scenarios_exist():
    assert {p.stem for p in SHIPPED} >= {"thp_mixed", "drop_caches_cron", "combined"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_scenario_loads_and_runs(path, shipped_runs):
    s = load_scenario(path)
    r = shipped_runs[path.stem]
    assert r["hash"] == s.hash and len(s.hash) == 64
    assert [ph["name"] for ph in r["phases"]] == [ph.name for ph in s.phases]
    assert r["sim_time_ns"] > 0
    for ph in r["phases"]:
        assert ph["sim_time_ns"] == ph["end_ns"] - ph["start_ns"] >= 0
        for key, st in ph["ops"].items():
            killed = path.stem == "combined" and key == "hog.touch"   # the OOM killer's victim
            assert st["errors"] == int(killed) and st["count"] >= 1
            assert 0 <= st["p50_ns"] <= st["p99_ns"] <= st["max_ns"]
    json.dumps(r)                                      # plain values only


def test_thp_mixed_shows_the_per_process_switch(shipped_runs):
    r = shipped_runs["thp_mixed"]
    size_kb = 64 << 10
    off, on = r["tasks"]["nothp"], r["tasks"]["thp"]
    assert off["smaps_rollup"]["AnonHugePages"] == 0
    assert off["smaps"]["heap"]["AnonHugePages"] == 0
    assert on["smaps"]["heap"]["AnonHugePages"] == size_kb
    assert off["status"]["THP_enabled"] == 0 and on["status"]["THP_enabled"] == 1
    assert off["status"]["VmRSS"] == on["status"]["VmRSS"] == size_kb
    assert off["counters"]["min_flt"] == 512 * on["counters"]["min_flt"]
    assert off["counters"]["dtlb_misses"] > 100 * on["counters"]["dtlb_misses"]
    assert r["meminfo"]["AnonHugePages"] == size_kb
    reads = {k: v for k, v in r["phases"][1]["ops"].items()}
    assert reads["nothp.access"]["units"] == reads["thp.access"]["units"] == 200_000
    assert reads["nothp.access"]["total_ns"] > reads["thp.access"]["total_ns"]


def test_thp_bloat_scenario(shipped_runs):
    """One write every 8 pages: under THP always the heap's Rss is all of it (8x the process
    with PR_SET_THP_DISABLE); through khugepaged, max_ptes_none decides."""
    r = shipped_runs["thp_bloat"]
    heap_kb = 512 << 10
    t = r["tasks"]
    assert t["redis"]["smaps_rollup"]["Rss"] == heap_kb
    assert t["redis"]["smaps_rollup"]["AnonHugePages"] == heap_kb
    assert t["redis_nothp"]["smaps_rollup"]["Rss"] == heap_kb // 8
    assert t["redis_nothp"]["smaps_rollup"]["AnonHugePages"] == 0
    s = load_scenario(DATA / "thp_bloat.toml", params={"heap": "64MiB", "reads": 1000,
                                                       "enabled": "never"})
    collapsed = run_scenario(s)["tasks"]["redis"]["smaps_rollup"]
    assert collapsed["AnonHugePages"] == collapsed["Rss"] == 64 << 10
    s = load_scenario(DATA / "thp_bloat.toml", params={"heap": "64MiB", "reads": 1000,
                                                       "enabled": "never", "max_ptes_none": 256})
    kept = run_scenario(s)["tasks"]["redis"]["smaps_rollup"]
    assert kept["AnonHugePages"] == 0 and kept["Rss"] == 8 << 10
    # under always, max_ptes_none 256 lets the shrink phase split every underused THP
    s = load_scenario(DATA / "thp_bloat.toml", params={"heap": "64MiB", "reads": 1000,
                                                       "max_ptes_none": 256})
    run = run_scenario(s)
    split = run["tasks"]["redis"]["smaps_rollup"]
    assert split["AnonHugePages"] == 0 and split["Rss"] == 8 << 10
    assert run["vmstat"]["thp_underused_split_page"] == 32
    assert r["vmstat"]["thp_underused_split_page"] == 0      # max_ptes_none 511: none


def test_drop_caches_cron_sends_reads_back_to_the_disk(shipped_runs):
    s = load_scenario(DATA / "drop_caches_cron.toml")
    cron = shipped_runs["drop_caches_cron"]
    quiet = run_scenario(s, params={"max_drops": 0})
    drops = cron["vmstat"]["drop_pagecache"]
    serve = cron["phases"][1]
    # sh drops every 250 ms while the service runs, and only then
    assert drops == len(cron["dmesg"]) >= 2
    assert all(line == f"sh ({cron['tasks']['sh']['pid']}): drop_caches: 3" for line in cron["dmesg"])
    assert serve["ops"]["sh.write_sysctl"]["count"] == drops
    service_ns = serve["ops"]["service.sleep"]["total_ns"] + serve["ops"]["service.pread"]["total_ns"]
    assert drops <= service_ns // 250_000_000            # each cycle takes at least its 250 ms
    assert quiet["vmstat"]["drop_pagecache"] == 0 and quiet["dmesg"] == []
    # without the job every read hits the page cache; with it, reads go to the disk again
    assert quiet["filesystems"]["/srv"]["bytes_read"] == 0
    assert cron["filesystems"]["/srv"]["bytes_read"] > 0 and cron["vmstat"]["pgpgin"] > 0
    p99 = [r["phases"][1]["ops"]["service.pread"]["p99_ns"] for r in (cron, quiet)]
    assert p99[0] > 10 * p99[1]


def test_combined_shows_all_five(shipped_runs):
    r = shipped_runs["combined"]
    t = r["tasks"]
    # PR_SET_THP_DISABLE beside THP
    assert t["nothp"]["smaps"]["heap"]["AnonHugePages"] == 0
    assert t["thp"]["smaps"]["heap"]["AnonHugePages"] == (32 << 10) - 2048    # one 2 MiB MADV_DONTNEED
    # drop_caches, logged
    drops = [line for line in r["dmesg"] if "drop_caches: 3" in line]
    assert r["vmstat"]["drop_pagecache"] == len(drops) >= 1
    assert r["filesystems"]["/srv"]["bytes_read"] > 0
    # MADV_WILLWRITE: the journal's blocks were prepared ahead, then every page written (the
    # data file's 4 MiB twice, by pwrite and fallocate's zeroing, then the 16 MiB journal)
    assert r["filesystems"]["/srv"]["bytes_written"] >= (4 << 20) + (16 << 20)
    # the huge page cache: the tmpfs file mapped by PMDs
    assert t["shm"]["smaps"]["s"]["ShmemPmdMapped"] == 16 << 10 and t["shm"]["counters"]["min_flt"] == 8
    assert r["meminfo"]["Shmem"] == 16 << 10
    # the hog's faults reclaimed the page cache before the OOM killer ran: the journal's pages
    # (clean after its fsync) went through the reverse map; the tmpfs table stays (no swap)
    assert t["journal"]["smaps"]["j"]["Rss"] == 0
    assert r["vmstat"]["pgsteal_direct"] + r["vmstat"]["pgsteal_kswapd"] >= 4096
    assert r["meminfo"]["Cached"] == 16 << 10
    # the OOM killer: the hog dies at a fault, the run goes on
    assert not t["hog"]["alive"]
    assert any(line.startswith("Out of memory: Killed process") and "(hog)" in line for line in r["dmesg"])
    assert r["vmstat"]["oom_kill"] == 1


def test_oomd_kills_the_thrashing_cgroup_after_30_s_of_pressure(shipped_runs):
    r = shipped_runs["oomd_pressure"]
    kills = r["userspace_kills"]
    assert [(k["by"], k["comm"], k["cgroup"], k["rule"], k["signal"]) for k in kills] == [
        ("oomd", "batch", "/work/batch", "memory pressure", "SIGKILL")]
    # the 10 s average needs some seconds to pass 60 %, then the pressure must stay 30 s
    assert 32e9 < kills[0]["time_ns"] < 60e9
    assert r["tasks"]["web"]["alive"] and not r["tasks"]["batch"]["alive"]
    assert r["vmstat"]["pswpin"] > 10 * 8192
    assert r["cgroups"]["/work/batch"]["swap"] == 0          # its slots went with it


def test_oomd_spares_a_job_that_only_streams_through_swap():
    """A working set three times the box: every swap-in refaults a page evicted longer ago than
    the workingset could hold, so none is a restore and the reads are not memory stalls; what
    pressure there is (the memcg reclaim) stays far below the limit."""
    s = load_scenario(DATA / "oomd_pressure.toml", params={"data": "48MiB", "passes": 40})
    r = run_scenario(s)
    assert r["userspace_kills"] == [] and r["tasks"]["batch"]["alive"]
    assert r["vmstat"]["workingset_refault_anon"] == r["vmstat"]["pswpin"] > 0
    assert r["vmstat"]["workingset_restore_anon"] == 0


def test_oomd_spares_a_cgroup_below_the_limit():
    s = load_scenario(DATA / "oomd_pressure.toml", params={"limit": 99, "passes": 40})
    r = run_scenario(s)
    assert r["userspace_kills"] == [] and r["tasks"]["batch"]["alive"]
    assert r["cgroups"]["/work/batch"]["swap"] > 0


def test_oomd_op_validation():
    e = error_of(doc({"op": "oomd", "cgroups": []}))
    assert e.key == "phase[0].ops[3].cgroups" and "cgroup path" in str(e)
    e = error_of(doc({"op": "oomd", "cgroups": ["/a"], "pressure_limit": 120}))
    assert e.key == "phase[0].ops[3].pressure_limit"


def test_same_seed_same_summary_and_seed_matters():
    s = load_scenario(DATA / "thp_mixed.toml", params={"reads": 20_000, "size": "16MiB"})
    a, b = run_scenario(s, seed=5), run_scenario(s, seed=5)
    assert a == b
    c = run_scenario(s, seed=6)
    assert c["seed"] == 6 and c["tasks"]["nothp"]["counters"] != a["tasks"]["nothp"]["counters"]


# ---- params, overrides and the hash -------------------------------------------------------------

def test_params_override_and_hash():
    s = load_scenario(DATA / "thp_mixed.toml")
    s2 = load_scenario(DATA / "thp_mixed.toml", params={"reads": 1000})
    assert s2.params["reads"] == 1000 and s2.hash != s.hash
    assert load_scenario(DATA / "thp_mixed.toml").hash == s.hash
    assert s2.phases[1].ops[0].args["count"] == 1000
    with pytest.raises(ScenarioError, match="not a param"):
        load_scenario(DATA / "thp_mixed.toml", params={"nope": 1})
    s3 = override(s, {"reads": 10, "machine.memory": "256MiB", "scenario.seed": 4})
    assert s3.params["reads"] == 10 and s3.machine["memory"] == "256MiB" and s3.seed == 4
    with pytest.raises(ScenarioError, match="not a param"):
        override(s, {"readz": 10})
    with pytest.raises(ScenarioError) as e:
        override(s, {"machine.memory": "3MiB"})
    assert e.value.key == "machine.memory"
    with pytest.raises(ScenarioError) as e:
        load_scenario(DATA / "thp_mixed.toml", params={"size": "a lot"})
    assert e.value.key == "phase[0].ops[0].length"
    assert json.loads(s.canonical)["params"]["reads"] == 200_000


# ---- running: semantics ---------------------------------------------------------------------------

def small(*ops, **top) -> dict:
    d = {"machine": {"memory": "64MiB", "thp_enabled": "never"}, "task": [{"name": "a"}, {"name": "b"}],
         "phase": [{"task": "a", "ops": [{"op": "mmap", "map": "buf", "length": "1MiB"}, *ops]}]}
    d.update(top)
    return d


def test_sequential_access_visits_every_page_once():
    r = run_scenario(small({"op": "access", "map": "buf", "pattern": "sequential", "count": 256}))
    c = r["tasks"]["a"]["counters"]
    assert c["min_flt"] == 256 and c["accesses"] == 256


def test_write_fraction_and_zipf_are_seeded_and_bounded():
    ops = [{"op": "access", "map": "buf", "pattern": "zipf", "a": 2.0, "count": 5000, "write": 0.5}]
    a = run_scenario(small(*ops), seed=1)
    assert a == run_scenario(small(*ops), seed=1)
    # zipf a=2 puts most accesses on the first pages: few of the 256 pages are faulted in
    assert a["tasks"]["a"]["counters"]["min_flt"] < 128


def test_access_from_trace_files(tmp_path):
    addrs = 0x400000 + np.arange(0, 64 * 4096, 4096, dtype=np.int64)
    formats.write_access_trace(tmp_path / "t.mmtr", addrs, np.arange(64) % 2)
    (tmp_path / "t.log").write_text("".join(f" L {a:x},8\n" for a in addrs[:10]))
    d = small({"op": "access", "map": "buf", "trace": "t.mmtr"},
              {"op": "access", "map": "buf", "trace": "t.log", "format": "lackey", "label": "lackey"})
    p = tmp_path / "s.toml"
    p.write_text(_toml(d))
    s = load_scenario(p)
    assert set(json.loads(s.canonical)["trace_files"]) == {"t.mmtr", "t.log"}
    r = run_scenario(s)
    c = r["tasks"]["a"]["counters"]
    assert c["accesses"] == 74 and c["min_flt"] == 64
    # a trace that does not fit in its range is refused before the run
    d["phase"][0]["ops"][0]["length"] = "128KiB"
    p.write_text(_toml(d))
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert e.value.key == "phase[0].ops[1].trace" and "wrap = true" in str(e.value)
    d["phase"][0]["ops"][1]["wrap"] = True
    d["phase"][0]["ops"].pop()
    p.write_text(_toml(d))
    assert run_scenario(load_scenario(p))["tasks"]["a"]["counters"]["min_flt"] == 32


def _toml(d: dict) -> str:
    """A small TOML writer for the documents these tests build (tables of scalars and lists)."""
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"
    out = []
    for k, v in d.items():
        if isinstance(v, list):
            for item in v:
                out.append(f"[[{k}]]")
                out += [f"{kk} = {val(x)}" for kk, x in item.items()]
        else:
            out.append(f"[{k}]")
            out += [f"{kk} = {val(x)}" for kk, x in v.items()]
    return "\n".join(out) + "\n"


def test_a_failing_op_names_its_key_and_leaves_no_trace(tmp_path):
    out = tmp_path / "run.h5"
    d = small({"op": "munmap", "map": "buf", "length": "512KiB"}, {"op": "touch", "map": "buf"})
    with pytest.raises(ScenarioRunError) as e:
        run_scenario(d, trace=out)
    assert e.value.key == "phase[0].ops[2]" and "SIGSEGV" in str(e.value)
    assert list(tmp_path.iterdir()) == []
    d["scenario"] = {"on_error": "continue"}
    r = run_scenario(d, trace=out)
    assert r["phases"][0]["ops"]["a.touch"]["errors"] == 1 and out.exists()


def test_while_running_stops_with_its_task_and_interleaves_by_clock():
    ops = [{"op": "repeat", "task": "a", "count": 10, "ops": [{"op": "sleep", "duration": "1ms"}]},
           {"op": "repeat", "task": "b", "while_running": "a",
            "ops": [{"op": "sleep", "duration": "3ms"}, {"op": "sync", "label": "tick"}]}]
    r = run_scenario(small(phase=[{"task": "a", "ops": ops}]))
    st = r["phases"][0]["ops"]
    assert st["a.sleep"]["count"] == 10
    assert st["b.tick"]["count"] == 3            # at 3, 6 and 9 ms; at 12 ms a has finished
    assert r["phases"][0]["sim_time_ns"] >= 10_000_000
    loop = small(phase=[{"task": "a", "ops": [
        {"op": "repeat", "count": 3, "ops": [{"op": "sleep", "duration": 1}]},
        {"op": "repeat", "task": "b", "while_running": "a", "ops": [     # takes no time
            {"op": "sysfs_write", "path": "kernel/mm/transparent_hugepage/enabled", "value": "never"}]}]}])
    with pytest.raises(ScenarioRunError, match="no progress"):
        run_scenario(loop)


def test_phases_start_together_and_progress_reaches_the_total():
    seen = []
    d = small(phase=[{"task": "a", "ops": [{"op": "sleep", "duration": "1ms"}]},
                     {"task": "b", "ops": [{"op": "mmap", "map": "m", "length": 8192},
                                           {"op": "touch", "map": "m"}]}])
    r = run_scenario(d, progress=lambda done, total: seen.append((done, total)))
    assert r["phases"][1]["start_ns"] == r["phases"][0]["end_ns"] >= 1_000_000
    assert seen[-1][0] == seen[-1][1] == 4                    # sleep, mmap, touch of 2 pages


def test_file_mappings_and_madv_willwrite():
    """A file fallocated, mapped MAP_SHARED, prepared with MADV_WILLWRITE, written through the
    mapping and fsynced; then a mapping longer than the file, whose access past the end is a
    SIGBUS that names the op."""
    ops = [{"op": "open", "fd": "j", "path": "/db/journal", "flags": ["O_CREAT", "O_RDWR"]},
           {"op": "fallocate", "fd": "j", "length": "8MiB"},
           {"op": "mmap", "map": "jm", "fd": "j", "length": "8MiB"},
           {"op": "madvise", "map": "jm", "advice": "MADV_WILLWRITE"},
           {"op": "touch", "map": "jm", "label": "write_all"},
           {"op": "fsync", "fd": "j"}]
    d = {"machine": {"memory": "256MiB"}, "mount": [{"path": "/db", "fstype": "ext4", "size": "256MiB"}],
         "task": [{"name": "db"}], "phase": [{"task": "db", "ops": ops}]}
    r = run_scenario(d)
    assert r["tasks"]["db"]["status"]["RssFile"] == 8192
    assert r["filesystems"]["/db"]["bytes_written"] >= 8 << 20
    assert r["meminfo"]["Dirty"] == 0
    assert r["phases"][0]["ops"]["db.write_all"]["units"] == 2048
    d["phase"][0]["ops"] = ops[:2] + [{"op": "mmap", "map": "jm", "fd": "j", "length": "16MiB"},
                                      {"op": "touch", "map": "jm"}]
    with pytest.raises(ScenarioRunError) as e:
        run_scenario(d)
    assert e.value.key == "phase[0].ops[3]" and "SIGBUS" in str(e.value)


def test_fadvise_and_madvise_readahead_hints():
    """POSIX_FADV_DONTNEED drops a written file's clean pages; MADV_RANDOM then faults them in a
    page at a time."""
    ops = [{"op": "open", "fd": "f", "path": "/d/data", "flags": ["O_CREAT", "O_RDWR"]},
           {"op": "pwrite", "fd": "f", "length": "4MiB"},
           {"op": "fsync", "fd": "f"},
           {"op": "fadvise", "fd": "f", "advice": "dontneed"},
           {"op": "mmap", "map": "m", "fd": "f", "length": "4MiB"},
           {"op": "madvise", "map": "m", "advice": "MADV_RANDOM"},
           {"op": "touch", "map": "m", "length": "64KiB", "write": False}]
    d = {"machine": {"memory": "256MiB"}, "mount": [{"path": "/d", "fstype": "ext4", "size": "64MiB"}],
         "task": [{"name": "t"}], "phase": [{"task": "t", "ops": ops}]}
    r = run_scenario(d)
    assert r["meminfo"]["Cached"] == 64                       # 16 pages, one fault each
    assert r["tasks"]["t"]["counters"]["maj_flt"] == 16


def test_run_writes_a_complete_trace_with_the_scenario_hash(tmp_path):
    s = load_scenario(DATA / "thp_mixed.toml", params={"reads": 5000, "size": "8MiB"})
    out = tmp_path / "t.h5"
    r = run_scenario(s, trace=out, seed=2)
    with T.open(out) as t:
        assert t.attrs["complete"] is True
        assert t.attrs["scenario_hash"] == s.hash and t.attrs["seed"] == 2
        assert json.loads(t.attrs["scenario"])["params"]["reads"] == 5000
        assert json.loads(t.attrs["summary"]) == json.loads(json.dumps(r))
        assert t.n_events == sum(x["counters"]["min_flt"] for x in r["tasks"].values())
        assert len(t.samples["time_ns"]) > 0
        assert t.final["smaps.1.heap"]["AnonHugePages"] == 0
        assert t.final["smaps.2.heap"]["AnonHugePages"] == 8192
        assert "phase1.thp.access_latency_ns" in t.hist
    with pytest.raises(ScenarioError, match="does not exist"):
        run_scenario(s, trace=tmp_path / "no" / "t.h5")
