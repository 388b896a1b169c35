"""Swap: anonymous memory larger than RAM, written out and read back (group ``swap``)."""
from __future__ import annotations

import pytest

import mmcore

SEED = 7
MiB = 1 << 20
RAM, SWAP, DATA = "256MiB", "512MiB", 384 * MiB
ROUNDS = 3


@pytest.mark.benchmark(group="swap")
def test_swap_thrash(benchmark, rates):
    """A 384 MiB working set on a 256 MiB machine with 512 MiB of swap, THP off: one pass writes
    it (about 130 MiB swapped out), each timed round reads all of it back (every page that was
    out is a swap-in fault, each of which makes reclaim swap another one out). Rate: pages moved
    (pswpin + pswpout) per second of the host's time."""
    made: list[tuple] = []

    def setup():
        m = mmcore.Machine(mmcore.Config(memory=RAM, swap=SWAP, thp_enabled="never"), seed=SEED)
        t = m.spawn("hog")
        a = t.mmap(DATA)
        t.touch(a, DATA)
        made.append((m, t, m.vmstat()))
        return (t, a), {}

    def read_back(t, a):
        t.touch(a, DATA, write=False)

    args, _ = setup()                                   # warm-up, untimed
    read_back(*args)
    made.clear()
    benchmark.pedantic(read_back, setup=setup, rounds=ROUNDS, iterations=1)
    moved = []
    for m, t, v0 in made:
        v = m.vmstat()
        moved.append(v["pswpin"] - v0["pswpin"] + v["pswpout"] - v0["pswpout"])
        st = t.status()
        assert st["RssAnon"] + st["VmSwap"] == DATA >> 10 and v["oom_kill"] == 0
    assert len(set(moved)) == 1 and moved[0] > 2 * (100 * MiB >> 12)   # deterministic, real work
    rates.record(benchmark, "swap-thrash", moved[0], "pages_per_s")
    benchmark.extra_info["pages_per_round"] = moved[0]
