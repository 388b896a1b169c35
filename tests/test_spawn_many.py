"""Machine.spawn_many: a million processes at once, and the machine's victim selection over them."""
from __future__ import annotations

import numpy as np
import pytest

from mmcore import Config, Machine, oom


@pytest.mark.parametrize("kernel", ["3.10", "6.18"])
def test_victim_is_the_highest_badness_with_the_profiles_tie_rule(kernel):
    m = Machine(Config(memory="256MiB", kernel=kernel))
    m.spawn("init")
    rng = np.random.default_rng(5)
    n = 2000
    rss = rng.integers(0, 50, n)                    # small values: many ties
    adj = rng.integers(-5, 6, n)
    ts = m.spawn_many(n, "w", rss_pages=rss, oom_score_adj=adj)
    assert [t.pid for t in ts] == list(range(2, n + 2))
    b = oom.oom_badness(rss, np.zeros(n, np.int64), np.zeros(n, np.int64), adj, m.totalpages,
                        kernel=kernel)
    best = np.flatnonzero(b == b.max())
    want = best[-1] if kernel == "6.18" else best[0]    # current: the last scanned; 3.10: first
    assert m.oom_victim().pid == ts[want].pid
    assert ts[want].oom_badness() == b.max()
    st = ts[0].status()
    assert st["VmRSS"] == rss[0] * 4 and st["RssAnon"] == rss[0] * 4


def test_spawned_tasks_are_ordinary_processes():
    m = Machine(Config(memory="64MiB", thp_enabled="never"))
    m.spawn("init")
    t = m.spawn_many(3, "job")[1]
    a = t.mmap(1 << 20)
    t.touch(a, 1 << 20)
    assert t.status()["VmRSS"] == 1024 and t.cgroup is m.cgroup("/")
    assert m.cgroup("/").procs == [1, 2, 3, 4]
    t.exit()
    later = m.spawn("later")
    assert later.pid == 5


@pytest.mark.parametrize("kw, msg", [
    ({"n": -1}, "n"),
    ({"n": 3, "rss_pages": [1, 2]}, "rss_pages: expected an integer or an integer array of length 3"),
    ({"n": 2, "oom_score_adj": [0, 1001]}, r"oom_score_adj\[1\]: 1001 is out of range"),
    ({"n": 2, "swap_pages": -1}, r"swap_pages\[0\]"),
    ({"n": 2, "comm": ""}, "comm"),
])
def test_bad_input_names_the_argument(kw, msg):
    m = Machine(Config(memory="64MiB"))
    with pytest.raises(ValueError, match=msg):
        m.spawn_many(**kw)
