"""benchmark.sh --slurm on a real SLURM: a tiny benchmark submitted as job arrays leaves the same runs and summaries as
a local one; submitting again skips what is done and resumes what was killed.

Needs a running cluster: `bash slurm/start_local_cluster.sh` (as root) starts a one-node one; .ci/run does.
"""
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import ROOT, TINY

START = "start a one-node cluster with `bash slurm/start_local_cluster.sh` (as root; .ci/run does)"
PLAN = ["--games", "chaser", "--seeds", "1", "--methods", "dreamer"]
FLAGS = [f for i, f in enumerate(TINY) if "--env-id" not in TINY[max(i - 1, 0):i + 1]]  # benchmark.sh sets the game
COMPARED = ("day_epochs", "night_epochs", "global_step", "replay_frames", "day_end_test_return",
            "day_end_train_return", "night_end_test_return", "night_end_train_return", "day_end_test_return_se",
            "night_end_test_return_se")
WAIT = 1200  # seconds before a stuck submission fails the test (a hang, not a speed requirement)


def cluster_up():
    if shutil.which("sbatch") is None:
        return "no SLURM here (no sbatch)"
    try:
        state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "SLURM does not answer (sinfo timed out)"
    if state.returncode != 0 or not re.search(r"idle|mix|alloc", state.stdout):
        return f"no SLURM node up ({(state.stderr or state.stdout).strip()[:200]})"
    return None


pytestmark = pytest.mark.skipif(cluster_up() is not None, reason=f"{cluster_up()}; {START}")


def benchmark(*options, log_dir):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), *options, *PLAN, "--log-dir", str(log_dir),
                          "--", *FLAGS], capture_output=True, text=True, cwd=ROOT, env=env, timeout=WAIT)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def submit(log_dir):
    return benchmark("--slurm", os.path.join(ROOT, "slurm", "template.sbatch"), log_dir=log_dir)


def wait_for(jobs, log_dir):
    """Poll squeue until every task of `jobs` has ended; their final states."""
    deadline = time.time() + WAIT
    while True:
        out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(jobs), "-o", "%i %T"], capture_output=True,
                             text=True)
        states = dict(line.split() for line in out.stdout.splitlines())
        if out.returncode == 0 and states and not any(s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")
                                                      for s in states.values()):
            return states
        if time.time() > deadline:
            logs = {p: open(os.path.join(log_dir, "slurm", p)).read()[-500:] for p in
                    os.listdir(os.path.join(log_dir, "slurm"))}
            pytest.fail(f"the jobs {jobs} did not end in {WAIT} s: {states}; {logs}")
        time.sleep(2)


def summaries(log_dir):
    """{run: the summary's deterministic fields} of every finished run."""
    found = {}
    for name in sorted(os.listdir(log_dir)):
        if os.path.isfile(os.path.join(log_dir, name, "summary.json")):
            with open(os.path.join(log_dir, name, "summary.json")) as f:
                found[name] = {k: v for k, v in json.load(f).items() if k in COMPARED}
    return found


def test_slurm_leaves_the_runs_of_a_local_benchmark_and_resubmitting_skips_them(tmp_path):
    cluster, local = tmp_path / "cluster", tmp_path / "local"
    out = submit(cluster)
    days = re.search(r"^# days: job (\d+), tasks 0$", out, re.M)
    nights = re.search(r"^# nights: job (\d+), tasks 1 \(1 of them after their day's task\)$", out, re.M)
    assert days and nights, out
    assert f"scontrol update JobId={nights[1]}_1 Dependency=afterok:{days[1]}_0" in out.splitlines()
    benchmark(log_dir=local)  # the same plan on this machine, while the cluster runs its own
    states = wait_for([days[1], nights[1]], cluster)
    assert states == {f"{days[1]}_0": "COMPLETED", f"{nights[1]}_1": "COMPLETED"}
    expected = summaries(local)
    assert sorted(expected) == ["chaser__day__1", "chaser__dreamer__1"]
    assert all(len(s) == len(COMPARED) for s in expected.values())
    assert isinstance(expected["chaser__dreamer__1"]["night_end_test_return"], float)
    assert summaries(cluster) == expected
    assert os.path.isfile(cluster / "chaser__day__1" / "day.pt")

    again = submit(cluster)  # everything done: nothing submitted
    assert again.splitlines() == ["# done: chaser__day__1", "# done: chaser__dreamer__1",
                                  "# nothing to submit: every run of the plan has finished"]

    (cluster / "chaser__dreamer__1" / "summary.json").unlink()  # a night killed after its last checkpoint
    again = submit(cluster)
    assert again.splitlines()[0] == "# done: chaser__day__1"
    assert "# days:" not in again and "scontrol update" not in again
    resumed = re.search(r"^# nights: job (\d+), tasks 1 \(0 of them after their day's task\)$", again, re.M)
    assert resumed, again
    assert wait_for([resumed[1]], cluster) == {f"{resumed[1]}_1": "COMPLETED"}
    assert "--resume" in open(cluster / "slurm" / "benchmark_nights_1.out").read()
    assert summaries(cluster) == expected
