"""Shadow TLBs: geometries that watch a machine's runs (Machine.shadow_tlbs, [record]
tlb_geometries, sweeps' batch=), checked against a machine built with each geometry."""
from __future__ import annotations

import numpy as np
import pytest

import mmcore.sweep as S
from mmcore import MAP_ANONYMOUS, MAP_POPULATE, MAP_PRIVATE, Config, Machine, TLBConfig
from mmcore.scenario import ScenarioError, load_scenario, run_scenario
from mmcore.tlbsim import GeometryReplay, tlb_replay

POPULATE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE
GEOMETRIES = [{"stlb_entries": 512, "stlb_ways": 4}, {}, {"stlb_entries": 2048, "stlb_ways": 16},
              {"l1_4k_entries": 16}, {"stlb_entries": 768, "stlb_ways": 6}]


@pytest.fixture(scope="module", autouse=True)
def warm():
    from mmcore.scenarios import warmup
    warmup()


def test_a_stream_in_pieces_counts_as_one_stream():
    rng = np.random.default_rng(11)
    vas = rng.integers(0, 256 << 20, 60_000)
    huge = (vas >> 21) % 3 == 0                      # a third of the 2 MiB ranges huge
    whole = tlb_replay(vas, GEOMETRIES, huge=huge)
    r = GeometryReplay(GEOMETRIES)
    cuts = np.sort(rng.integers(0, vas.shape[0], 9))
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, vas.shape[0]]):
        r.feed(vas[lo:hi], huge[lo:hi].astype(np.int8))
    assert r.counts() == whole
    assert whole[0]["stlb_misses"] > whole[2]["stlb_misses"] > 0     # the model is not idle


def _loads(thp: str, tlb: dict, off: np.ndarray, pieces: int, shadow=None):
    """A task that populated 32 MiB at mmap, then loads ``off`` in ``pieces`` calls: the
    machine's own dTLB misses and walks, and the shadow TLBs' counts."""
    m = Machine(Config(memory="256MiB", thp_enabled=thp, tlb=TLBConfig(**tlb)))
    t = m.spawn("app")
    a = t.mmap(32 << 20, flags=POPULATE)
    sh = m.shadow_tlbs(shadow) if shadow else None
    c0 = t.counters()
    for part in np.array_split(off, pieces):
        t.access(a + part)
    c1 = t.counters()
    own = (c1["dtlb_misses"] - c0["dtlb_misses"], c1["stlb_misses"] - c0["stlb_misses"])
    return own, (sh.counts() if sh else None), t, a


@pytest.mark.parametrize("thp", ["never", "always"])
def test_shadow_geometries_count_as_a_machine_built_with_each(thp):
    """Loads of populated memory: each shadow geometry counts exactly what the machine's own TLB
    counts on a machine built with that geometry."""
    off = np.random.default_rng(4).integers(0, 32 << 20, 40_000)
    _, shadow, t, a = _loads(thp, {}, off, 7, GEOMETRIES)
    want = [_loads(thp, g, off, 1)[0] for g in GEOMETRIES]
    assert [(c["dtlb_misses"], c["stlb_misses"]) for c in shadow] == want
    assert all(c["accesses"] == off.shape[0] for c in shadow)
    if thp == "always":                                 # 16 huge pages: cold misses only
        assert t.smaps(a)["AnonHugePages"] == 32 << 10 and set(want) == {(16, 16)}
    else:
        assert len(set(want)) > 2                       # the geometries do differ


def test_shadow_leaves_the_machine_as_it_was():
    off = np.random.default_rng(8).integers(0, 32 << 20, 20_000)
    own, _, t, _ = _loads("never", {}, off, 3, GEOMETRIES)
    plain, _, u, _ = _loads("never", {}, off, 3)
    assert own == plain and t.time_ns == u.time_ns and t.counters() == u.counters()


def test_unmapped_addresses_count_nothing_and_cpus_keep_their_own_tlbs():
    m = Machine(Config(memory="128MiB", thp_enabled="never"))
    x = m.spawn("app")
    a = x.mmap(4 << 20, flags=POPULATE)
    sh = m.shadow_tlbs([{}])
    x.access(np.r_[a + np.arange(0, 4 << 20, 4096), [0x1000, 0x2000]], record_faults=True)
    assert sh.counts()[0]["accesses"] == 1024            # the two SIGSEGVs are not loads
    assert sh.counts()[0]["dtlb_misses"] == 1024
    y = x.clone_thread()                                 # the other CPU: its own empty TLB
    y.access(a + np.arange(0, 4 << 20, 4096))
    x.access(a + np.arange(0, 4 << 20, 4096))
    c = sh.counts()[0]
    assert sorted(sh.cpus) == [0, 1] and c["accesses"] == 3 * 1024
    # 1024 pages fit the 1536-entry STLB: x's second pass walks nowhere, y's first pass everywhere
    assert c["dtlb_misses"] == 3 * 1024 and c["stlb_misses"] == 2 * 1024
    x.touch(a, 1 << 20, 4096, write=False)               # a touch is recorded as well
    assert sh.counts()[0]["accesses"] == 3 * 1024 + 256
    with pytest.raises(RuntimeError, match="already has shadow TLBs"):
        m.shadow_tlbs([{}])
    with pytest.raises(ValueError, match=r"geometries\[0\]"):
        Machine(Config(memory="64MiB")).shadow_tlbs([{"stlb_entries": 100, "stlb_ways": 12}])


# ---- scenarios and sweeps ------------------------------------------------------------------------

def _scenario(**record) -> dict:
    return {"scenario": {"name": "loads"}, "params": {"reads": 30_000},
            "machine": {"memory": "256MiB", "thp_enabled": "never"},
            "task": [{"name": "app"}],
            "phase": [{"name": "map", "task": "app",
                       "ops": [{"op": "mmap", "map": "buf", "length": "32MiB",
                                "flags": ["MAP_PRIVATE", "MAP_ANONYMOUS", "MAP_POPULATE"]}]},
                      {"name": "reads", "task": "app",
                       "ops": [{"op": "access", "map": "buf", "pattern": "uniform",
                                "count": "${reads}"}]}],
            "record": record}


def test_record_tlb_geometries_in_a_scenario_summary():
    geos = [{"stlb_entries": 512, "stlb_ways": 4}, {}]
    s = run_scenario(load_scenario(_scenario(tlb_geometries=geos)), seed=1)
    rows = s["tlb_geometries"]
    assert [r["geometry"] for r in rows] == ["stlb_entries=512,stlb_ways=4", "machine"]
    own = s["tasks"]["app"]["counters"]
    # the machine's own TLB is the second geometry: the same counts (loads of populated memory)
    assert (rows[1]["dtlb_misses"], rows[1]["stlb_misses"]) == (own["dtlb_misses"], own["stlb_misses"])
    assert rows[0]["stlb_misses"] > rows[1]["stlb_misses"]
    assert "tlb_geometries" not in run_scenario(load_scenario(_scenario()), seed=1)


@pytest.mark.parametrize("bad, where, what", [
    (5, "record.tlb_geometries", "non-empty list"),
    ([], "record.tlb_geometries", "non-empty list"),
    (["x"], r"record.tlb_geometries\[0\]", "expected a table"),
    ([{"stlb_entires": 5}], r"record.tlb_geometries\[0\]", "stlb_entires"),
    ([{"stlb_entries": "big"}], r"record.tlb_geometries\[0\].stlb_entries", "expected an integer"),
    ([{"stlb_entries": 100}], r"record.tlb_geometries\[0\]", "multiple"),
])
def test_record_tlb_geometries_bad_input(bad, where, what):
    with pytest.raises(ScenarioError, match=f"{where}.*{what}"):
        load_scenario(_scenario(tlb_geometries=bad))


def test_a_batched_sweep_equals_a_run_per_geometry():
    """Each batch column is what the machine's own TLB counts in a run of that point with that
    geometry and the same seed: one run per point instead of one per geometry."""
    from mmcore.scenario import override
    sizes = [512, 1024, 2048]
    sc = load_scenario(_scenario())
    ways = {"machine.tlb.stlb_ways": 4}
    rows = S.run_sweep(sc, {"reads": [20_000, 30_000]}, seed=3, frame=False, params=ways,
                       batch={"machine.tlb.stlb_entries": sizes})
    assert rows["status"].tolist() == ["ok", "ok"]
    for i, reads in enumerate([20_000, 30_000]):
        for e in sizes:
            point = {**ways, "reads": reads, "machine.tlb.stlb_entries": e}
            own = run_scenario(override(sc, point), seed=int(rows["seed"][i]))["tasks"]["app"]["counters"]
            col = f"tlb_geometries.stlb_entries={e}"
            assert rows[f"{col}.dtlb_misses"][i] == own["dtlb_misses"]
            assert rows[f"{col}.stlb_misses"][i] == own["stlb_misses"]
            assert rows[f"{col}.accesses"][i] == reads
    walks = [rows[f"tlb_geometries.stlb_entries={e}.stlb_misses"][1] for e in sizes]
    assert walks[0] > walks[1] > walks[2]
    # the runs themselves used the scenario's own TLB (1536 entries, 4 ways)
    assert rows["tasks.app.counters.stlb_misses"][1] not in walks


def test_batched_sweep_file_and_bad_batches(tmp_path):
    sc = load_scenario(_scenario())
    out = tmp_path / "b.h5"
    S.run_sweep(sc, seed=0, out=out, batch={"machine.tlb.stlb_entries": [768, 1536]})
    assert S.read_attrs(out)["batch"] == {"machine.tlb.stlb_entries": [768, 1536]}
    assert S.load(out, frame=False)["tlb_geometries.stlb_entries=768.stlb_misses"][0] > 0
    with pytest.raises(S.SweepError, match="batch 'machine.memory': expected a TLB setting"):
        S.Sweep(sc, batch={"machine.memory": [1]})
    with pytest.raises(S.SweepError, match="machine.tlb.stlb_entries: both a grid key and a batch key"):
        S.Sweep(sc, {"machine.tlb.stlb_entries": [768]}, batch={"machine.tlb.stlb_entries": [768]})
    with pytest.raises(S.SweepError, match="'x': expected an integer"):
        S.Sweep(sc, batch={"machine.tlb.stlb_entries": ["x"]})
    with pytest.raises(S.SweepError, match="listed twice"):
        S.Sweep(sc, batch={"machine.tlb.stlb_entries": [768, 768]})
    with pytest.raises(S.SweepError, match=r"batch machine.tlb.stlb_entries=512: .*not a multiple "
                                           r"of tlb.stlb_ways = 12"):
        S.Sweep(sc, batch={"machine.tlb.stlb_entries": [1536, 512]})
    with pytest.raises(S.SweepError, match="not to functions"):
        S.Sweep("mmcore.scenarios.thp_bloat", batch={"machine.tlb.stlb_entries": [512]})


def test_cli_sweep_batch(tmp_path, capsys):
    from pathlib import Path

    from mmcore.cli import main
    bloat = str(Path(__file__).resolve().parent.parent / "data" / "thp_bloat.toml")
    out = str(tmp_path / "tlb.h5")
    code = main(["sweep", bloat, "--set", "heap=16MiB", "--set", "reads=2000", "--grid",
                 "machine.thp_enabled=always,never", "--batch", "machine.tlb.stlb_entries=768,1536",
                 "--out", out, "--quiet"])
    assert code == 0, capsys.readouterr().err
    rows = S.load(out, frame=False)
    walks = rows["tlb_geometries.stlb_entries=768.stlb_misses"]
    assert rows["point"].tolist() == [0, 1] and walks[0] < walks[1]      # THPs walk less
    # both tasks: a touch every 32 KiB of 16 MiB, then 2000 reads
    assert rows["tlb_geometries.stlb_entries=1536.accesses"].tolist() == [2 * (512 + 2000)] * 2
    code = main(["sweep", bloat, "--batch", "machine.memory=1GiB", "--out", str(tmp_path / "x.h5")])
    assert code == 2 and "expected a TLB setting machine.tlb.KEY" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_sweep_points_whose_values_only_go_together():
    """512 STLB entries are not a multiple of the default 12 ways, but 512 with 4 ways is a
    geometry: a point is checked whole; a bad one is still blamed on its bad pair."""
    sc = load_scenario(_scenario())
    sw = S.Sweep(sc, points=[{"machine.tlb.stlb_entries": 512, "machine.tlb.stlb_ways": 4},
                             {"machine.tlb.stlb_entries": 1536, "machine.tlb.stlb_ways": 12}])
    assert len(sw.runs) == 2
    with pytest.raises(S.SweepError, match=r"^point 0 .*machine.tlb.stlb_ways: expected an "
                                           r"integer in \[1, 512\], got 0"):
        S.Sweep(sc, points=[{"machine.tlb.stlb_entries": 512, "machine.tlb.stlb_ways": 0}])
    with pytest.raises(S.SweepError, match=r"^machine.tlb.stlb_entries=512: .*not a multiple"):
        S.Sweep(sc, points=[{"machine.tlb.stlb_entries": 512, "machine.tlb.stlb_ways": 12}])
