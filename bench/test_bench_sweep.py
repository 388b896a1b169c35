"""Sweep scaling: the same 64-point sweep on one worker, on two local worker processes, and on a
Dask LocalCluster of two workers.

Each point is ``mmcore.scenarios.thp_story`` over a 128 MiB region with 1.5 * 10^6 random reads (six
machines; about 0.6 s of work on the machine the figures were recorded on). Workers load the
compiled kernels from the warm cache before their first point. Start-up (spawning the processes
or the cluster, loading the kernels, shutting down) is measured apart, as the wall time of a
sweep of one near-empty point per worker on the same backend, and taken off the sweep's wall
time; ``startup_s`` reports it, and the headline is points per second of work.
"""
from __future__ import annotations

import time

import pytest

from mmcore.scenarios import thp_story, warmup
from mmcore.sweep import run_sweep

POINTS = 64
WORK = {"memory": "1GiB", "size": "128MiB", "accesses": 1_500_000}
EMPTY = {"memory": "64MiB", "size": "4MiB", "accesses": 1}

MODES = {"1-worker": ("local", 1), "2-workers": ("local", 2), "dask-2-workers": ("dask", 2)}


def _sweep(backend: str, workers: int, params: dict, seeds: int) -> float:
    t0 = time.perf_counter()
    rows = run_sweep(thp_story, grid={k: [v] for k, v in params.items()}, seeds=seeds,
                     workers=workers, backend=backend, progress=False, frame=False)
    wall = time.perf_counter() - t0
    assert len(rows["status"]) == seeds and set(rows["status"]) == {"ok"}
    return wall


@pytest.mark.benchmark(group="sweep")
@pytest.mark.parametrize("mode", list(MODES))
def test_sweep_scaling(benchmark, rates, mode):
    """64 points of about half a second each; ``startup_s`` is the backend's start-up and
    shutdown, measured apart and taken off; ``point_s`` the mean work of one point."""
    if mode.startswith("dask"):
        pytest.importorskip("distributed")
    backend, workers = MODES[mode]
    warmup()                                           # this process's kernels, warm
    startup = _sweep(backend, workers, EMPTY, workers)
    walls = []

    def sweep():
        walls.append(_sweep(backend, workers, WORK, POINTS))
    benchmark.pedantic(sweep, rounds=1, iterations=1)
    work = max(walls[-1] - startup, 1e-9)
    benchmark.extra_info["startup_s"] = startup
    benchmark.extra_info["wall_s"] = walls[-1]
    rates.record_rate(benchmark, f"sweep-{mode}", POINTS / work, "points_per_s")
    benchmark.extra_info["point_s"] = work * workers / POINTS
    rates.ratio("two_workers_over_one", "sweep-2-workers", "sweep-1-worker")
    rates.ratio("dask_over_local", "sweep-dask-2-workers", "sweep-2-workers")


TLB_SIZES = [(512, 4), (768, 6), (1024, 8), (1536, 12), (2048, 16), (3072, 12), (4096, 16),
             (8192, 16)]
TLB_SCENARIO = {
    "scenario": {"name": "tlb-loads"},
    "machine": {"memory": "512MiB", "thp_enabled": "never"},
    "task": [{"name": "app"}],
    "phase": [{"name": "map", "task": "app",
               "ops": [{"op": "mmap", "map": "buf", "length": "128MiB",
                        "flags": ["MAP_PRIVATE", "MAP_ANONYMOUS", "MAP_POPULATE"]}]},
              {"name": "reads", "task": "app",
               "ops": [{"op": "access", "map": "buf", "pattern": "uniform", "count": 1_000_000}]}],
}


@pytest.mark.benchmark(group="tlb-sweep")
@pytest.mark.parametrize("mode", ["grid", "batch"])
def test_tlb_sweep(benchmark, rates, mode):
    """Eight STLB geometries (512 to 8192 entries) over a scenario of 10^6 uniform loads on 128
    MiB of populated 4 KiB pages, one worker: ``grid`` sweeps them as eight points (eight
    machines built, populated and run); ``batch`` runs the scenario once with the eight as
    ``[record] tlb_geometries`` (what ``batch=`` sets; shadow TLBs, one replay pass per access
    call). Both give the same counts (the
    tests check it); the figure is geometries per second."""
    from mmcore.scenario import load_scenario
    warmup()
    sc = load_scenario(TLB_SCENARIO)
    points = [{"machine.tlb.stlb_entries": e, "machine.tlb.stlb_ways": w} for e, w in TLB_SIZES]
    geos = [{"stlb_entries": e, "stlb_ways": w} for e, w in TLB_SIZES]

    def grid():
        rows = run_sweep(sc, points=points, progress=False, frame=False)
        assert set(rows["status"]) == {"ok"}

    def batch():
        rows = run_sweep(sc, params={"record.tlb_geometries": geos}, progress=False, frame=False)
        assert set(rows["status"]) == {"ok"}
    benchmark.pedantic(grid if mode == "grid" else batch, rounds=3, iterations=1)
    rates.record(benchmark, f"tlb-sweep-{mode}", len(TLB_SIZES), "geometries_per_s")
    rates.ratio("batch_over_grid", "tlb-sweep-batch", "tlb-sweep-grid")
