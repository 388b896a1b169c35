"""The 2013 memcg OOM deadlocks (spec 4.9) under the three OOM handling models, the lock model
and khungtaskd, run from the shipped scenario files."""
from __future__ import annotations

from pathlib import Path

import pytest

from mmcore.locking import HungTaskDetector, LockTable, Rwsem, hung_task_lines, lock_plan
from mmcore.scenario import ScenarioError, load_scenario, run_scenario

DATA = Path(__file__).resolve().parent.parent / "data"
S = 10**12                          # picoseconds in a second


def run(name: str, kernel: str) -> dict:
    return run_scenario(DATA / name, params={"kernel": kernel})


def ops(s: dict) -> dict:
    """(phase, task.label) -> (count, errors)."""
    return {(ph["name"], k): (v["count"], v["errors"]) for ph in s["phases"] for k, v in ph["ops"].items()}


def info_lines(s: dict) -> list[str]:
    return [x for x in s["dmesg"] if x.startswith("INFO: task")]


@pytest.mark.parametrize("kernel", ["3.10", "3.12", "6.18"])
def test_write_truncate_deadlock_by_model(kernel):
    s = run("oom_deadlock_write.toml", kernel)
    victim, writer = s["tasks"]["victim"], s["tasks"]["writer"]
    kills = [x for x in s["dmesg"] if "Killed process" in x]
    assert len(kills) == 1 and f"Killed process {victim['pid']} (victim)" in kills[0]
    if kernel == "3.10":
        # legacy: the writer loops in the charge path holding i_mutex; the victim, killed, sleeps
        # uninterruptibly on that i_mutex: nothing moves until khungtaskd reports the victim
        assert s["outcome"] == "hung"
        assert victim["alive"] and writer["alive"]
        assert info_lines(s) == [f"INFO: task victim:{victim['pid']} blocked for more than 120 seconds."]
        hung = {h["task"]: h for h in s["hung_tasks"]}
        assert hung["victim"]["state"] == "D" and "i_mutex" in hung["victim"]["waiting_for"]
        assert hung["writer"]["state"] == "R" and not hung["writer"]["reported"]
        assert 120 * 10**9 <= hung["victim"]["reported_at_ns"] <= 240 * 10**9
        assert s["sim_time_ns"] == hung["victim"]["reported_at_ns"]
        assert not any("oom_reaper" in x for x in s["dmesg"])            # none before 4.6
        assert ops(s)[("write", "victim.ftruncate")] == (0, 0)           # never returned
    elif kernel == "3.12":
        # reliable: the write() stops short and releases i_mutex; the next write() gets ENOMEM;
        # the writer's user fault kills the victim once, and everything finishes
        assert s["outcome"] == "completed" and not info_lines(s)
        o = ops(s)
        assert o[("write", "writer.pwrite")] == (1, 0) and o[("write", "victim.ftruncate")] == (1, 0)
        assert o[("after", "writer.pwrite_more")] == (1, 1)            # ENOMEM, nothing killed
        assert o[("after", "writer.touch")] == (1, 0) and o[("after", "writer.pwrite_retry")] == (1, 0)
        assert not victim["alive"] and writer["alive"]
        assert s["cgroups"]["/job"]["events"]["oom_kill"] == 1
    else:
        # current: the kill happens in the write's charge path; the victim cannot exit, the
        # oom_reaper frees its memory 2 s later, the write completes, the victim then dies
        assert s["outcome"] == "completed" and not info_lines(s)
        reaped = [x for x in s["dmesg"] if x.startswith("oom_reaper: reaped process")]
        assert reaped == [f"oom_reaper: reaped process {victim['pid']} (victim), now anon-rss:0kB, "
                          "file-rss:0kB, shmem-rss:0kB"]
        o = ops(s)
        assert o[("after", "writer.pwrite_more")] == (1, 0)
        assert not victim["alive"]
        assert 2 * 10**9 <= s["sim_time_ns"] < 3 * 10**9                 # OOM_REAPER_DELAY


@pytest.mark.parametrize("kernel", ["3.10", "3.12", "6.18"])
def test_brk_handler_deadlock_by_model(kernel):
    s = run("oom_deadlock_brk.toml", kernel)
    t = s["tasks"]
    assert all(d["alive"] for d in t.values())                        # oom_kill_disable: no kill
    assert not any("Killed process" in x for x in s["dmesg"])
    if kernel == "3.10":
        # legacy: app sleeps on the memcg OOM holding mmap_sem (read); app_thread's mmap waits
        # for the write side; the handler's /proc read queues behind that writer
        assert s["outcome"] == "hung"
        hung = {h["task"]: h for h in s["hung_tasks"]}
        assert hung["app"]["state"] == "D (killable)" and not hung["app"]["reported"]
        assert hung["app_thread"]["state"] == "D" and hung["handler"]["state"] == "D"
        assert sorted(info_lines(s)) == sorted([
            f"INFO: task app:{t['app_thread']['pid']} blocked for more than 120 seconds.",
            f"INFO: task handler:{t['handler']['pid']} blocked for more than 120 seconds."])
        assert s["cgroups"]["/job"]["current"] == 16 << 20
    else:
        # reliable and current: brk's populate gets ENOMEM and brk returns; the user fault
        # unwinds, drops the lock and waits; the handler reads /proc, raises the limit, done
        assert s["outcome"] == "completed" and not info_lines(s)
        o = ops(s)
        assert o[("run", "handler.read_proc")] == (1, 0)
        assert o[("run", "handler.cgroup_write")] == (1, 0)
        assert o[("run", "app.touch")] == (1, 0)
        assert s["cgroups"]["/job"]["current"] == 32 << 20            # the whole heap, in the end
        assert s["cgroups"]["/job"]["events"]["oom"] >= 1


def test_the_runs_are_deterministic():
    a = run("oom_deadlock_write.toml", "6.18")
    b = run("oom_deadlock_write.toml", "6.18")
    assert a["dmesg"] == b["dmesg"] and a["sim_time_ns"] == b["sim_time_ns"]


# ---- the lock model ---------------------------------------------------------------------------

def test_rwsem_readers_share_and_do_not_pass_a_waiting_writer():
    lk = Rwsem("mmap")
    assert lk.can_take("r1", "r")
    lk.take("r1", "r")
    assert lk.can_take("r2", "r")
    lk.wait("w", "w")                           # a writer queues behind the reader
    assert not lk.can_take("w", "w")
    assert not lk.can_take("r3", "r")           # a later reader waits behind the writer
    lk.release("r1")
    assert lk.can_take("w", "w")
    lk.take("w", "w")
    assert not lk.can_take("r3", "r")
    lk.release("w")
    assert lk.can_take("r3", "r")


def test_lock_table_release_all_leaves_no_trace():
    lt = LockTable()
    assert lt.try_take("a", ("inode", 1), "w")
    assert not lt.try_take("b", ("inode", 1), "w")
    lt.release_all("a")
    assert lt.try_take("b", ("inode", 1), "w")
    lt.release_all("b")
    assert lt.get(("inode", 1)).holders() == [] and lt.get(("inode", 1)).queue == []


def test_lock_plans_follow_the_kernel_version():
    assert lock_plan("pwrite", 310, ino=3) == [(("inode", 3), "w")]
    assert lock_plan("pread", 618, ino=3) == []
    assert lock_plan("touch", 310, mm=2) == [(("mmap", 2), "r")]
    assert lock_plan("touch", 618, mm=2) == [(("mmap", 2), "f")]        # per-VMA lock (6.4)
    assert lock_plan("read_proc", 310, target_mm=5, proc_file="cmdline") == [(("mmap", 5), "r")]
    assert lock_plan("read_proc", 310, target_mm=5, proc_file="status") == []


def test_khungtaskd_reports_between_one_and_two_timeouts():
    d = HungTaskDetector(120)
    assert d.report_time(0) == 120 * S
    assert d.report_time(1) == 240 * S
    assert d.report_time(120 * S) == 240 * S
    assert HungTaskDetector(0).report_time(5) is None
    assert hung_task_lines("x", 7, 120, 310) == [
        "INFO: task x:7 blocked for more than 120 seconds.",
        '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.']
    assert hung_task_lines("x", 7, 120, 618)[1].startswith("      Not tainted 6.18")


def test_hung_task_timeout_zero_reports_nothing_but_the_run_still_stops():
    sc = load_scenario(DATA / "oom_deadlock_write.toml")
    from mmcore.scenario import override
    s = run_scenario(override(sc, {"machine.hung_task_timeout_secs": 0, "kernel": "3.10"}))
    assert s["outcome"] == "hung" and not info_lines(s)


# ---- the scenario format's new parts ----------------------------------------------------------

BASE = {"scenario": {"name": "x"}, "machine": {"memory": "64MiB", "kernel": "3.10"},
        "task": [{"name": "a"}, {"name": "b"}]}


@pytest.mark.parametrize("extra, key, text", [
    ({"cgroup": [{"path": "/x/y"}]}, "cgroup[0].path", "parent of /x/y"),
    ({"cgroup": [{"path": "/x", "files": {"memory.max": "1M"}}]}, "cgroup[0].files.memory.max",
     "not a writable cgroup v1"),
    ({"cgroup": [{"path": "/x", "tasks": ["nobody"]}]}, "cgroup[0].tasks", "task names"),
    ({"cgroup": [{"path": "/x"}, {"path": "/x"}]}, "cgroup[1].path", "declared twice"),
    ({"task": [{"name": "a"}, {"name": "t", "thread_of": "zz"}]}, "task[1].thread_of", "process declared above"),
    ({"phase": [{"task": "a", "ops": [{"op": "read_proc", "target": "b", "file": "stack"}]}]},
     "phase[0].ops[0].file", "cmdline"),
    ({"phase": [{"task": "a", "ops": [{"op": "kill", "target": "c"}]}]}, "phase[0].ops[0].target", "task"),
    ({"scenario": {"name": "x", "quantum": "lots"}}, "scenario.quantum", ""),
])
def test_bad_new_format_parts_name_the_key(extra, key, text):
    doc = {**BASE, **extra}
    with pytest.raises(ScenarioError) as e:
        load_scenario(doc)
    assert key in str(e.value) and text in str(e.value)
