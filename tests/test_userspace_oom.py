"""A userspace OOM daemon on the machine: the earlyoom-like poll op of scenario runs."""
from __future__ import annotations

import pytest

from mmcore.scenario import ScenarioError, load_scenario, run_scenario


def doc(mem_percent=10.0, memory="256MiB", hog="512MiB"):
    return {
        "scenario": {"name": "earlyoom", "quantum": "4MiB"},
        "machine": {"memory": memory, "thp_enabled": "never", "overcommit_memory": 1},
        "task": [{"name": "init"}, {"name": "eo", "oom_score_adj": -1000}, {"name": "hog"},
                 {"name": "small"}],
        "phase": [{"name": "run", "ops": [
            {"op": "mmap", "task": "small", "map": "s", "length": "16MiB"},
            {"op": "touch", "task": "small", "map": "s"},
            {"op": "mmap", "task": "hog", "map": "h", "length": hog},
            {"op": "touch", "task": "hog", "map": "h"},
            {"op": "repeat", "task": "eo", "while_running": "hog", "ops": [
                {"op": "earlyoom", "mem_percent": mem_percent}, {"op": "sleep", "duration": "1ms"}]},
        ]}]}


def test_earlyoom_terms_the_biggest_before_the_kernel_oom_killer_runs():
    s = run_scenario(doc())
    (k,) = s["userspace_kills"]
    assert k["comm"] == "hog" and k["signal"] == "SIGTERM"
    assert s["vmstat"]["oom_kill"] == 0 and not s["tasks"]["hog"]["alive"]
    assert s["tasks"]["small"]["alive"] and s["tasks"]["eo"]["alive"]
    # it acted once MemAvailable was at or below 10 % of MemTotal: not long before
    assert k["VmRSS_kB"] >= (256 - 16) * 1024 * 0.8


def test_without_the_daemon_the_kernel_kills_instead():
    d = doc(mem_percent=0.0)                     # never low: earlyoom does nothing
    s = run_scenario(d)
    assert s["userspace_kills"] == [] and s["vmstat"]["oom_kill"] == 1
    assert any("Killed process" in x and "(hog)" in x for x in s["dmesg"])


def test_bad_percent_names_the_key():
    d = doc(mem_percent=150.0)
    with pytest.raises(ScenarioError, match=r"phase\[0\]\.ops\[4\]\.ops\[0\]\.mem_percent"):
        load_scenario(d)
