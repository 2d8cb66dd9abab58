"""benchmark.sh: one day per (game, seed) shared by every night; finished runs skipped, killed ones resumed."""
import os
import subprocess

from conftest import ROOT


def dry_run(*options, log_dir, env=None):
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), "--dry-run", "--log-dir", str(log_dir), *options],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_days_run_once_then_every_night_reads_them(tmp_path):
    lines = dry_run("--games", "coinrun chaser", "--seeds", "1 2", "--", "--day-epochs", "3", "--night-epochs", "5",
                    log_dir=tmp_path)
    days = [line for line in lines if "--exp-name day " in line]
    nights = [line for line in lines if "--load-day-checkpoint" in line]
    assert len(days) == 4 and len(nights) == 4 * 7 and len(lines) == 4 + 28
    assert lines[:4] == days  # every day before any night
    assert all(day.index("--night-epochs 5") < day.index("--night-epochs 0") for day in days)  # the day's wins
    for game in ("coinrun", "chaser"):
        for seed in (1, 2):
            day = f"{tmp_path}/{game}__day__{seed}/day.pt"
            assert sum(f"--load-day-checkpoint {day} " in line for line in nights) == 7
            assert f"--run-name {game}__day__{seed} " in " ".join(days) + " "
    assert all(line.split()[2:4] == ["--day-epochs", "3"] for line in lines)  # passed through, first
    assert all(line.endswith("--save-checkpoint") for line in lines)
    scripts = sorted({line.split()[1] for line in nights})
    assert scripts == ["dream_ppo_deepdream.py", "dream_ppo_full.py", "dream_ppo_rnd.py", "dream_ppo_value.py",
                       "dreamer_baseline.py", "offline_ppo.py"]
    assert sum("--init-states real --exp-name dreamer_real" in line for line in nights) == 4


def test_finished_runs_are_skipped_and_killed_ones_resumed(tmp_path):
    (tmp_path / "coinrun__day__1").mkdir(parents=True)
    (tmp_path / "coinrun__day__1" / "summary.json").write_text("{}")
    (tmp_path / "coinrun__offline__1").mkdir()
    (tmp_path / "coinrun__offline__1" / "checkpoint.pt").write_text("")
    lines = dry_run("--games", "coinrun", "--seeds", "1", "--methods", "value offline", log_dir=tmp_path)
    assert lines[0] == "# done: coinrun__day__1"
    value, offline = lines[1:]
    assert "--load-day-checkpoint" in value and "--resume" not in value
    assert "--load-day-checkpoint" not in offline and offline.split()[:2] == ["python", "offline_ppo.py"]
    assert "--resume" in offline and "--run-name coinrun__offline__1" in offline


def test_a_night_without_its_days_checkpoint_is_one_line_and_starts_nothing(tmp_path):
    (tmp_path / "coinrun__day__1").mkdir(parents=True)
    (tmp_path / "coinrun__day__1" / "summary.json").write_text("{}")  # a day kept without its day.pt
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), "--games", "coinrun", "--seeds", "1",
                          "--methods", "value", "--log-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and out.stdout.splitlines() == ["# done: coinrun__day__1"]
    assert out.stderr.splitlines() == [(f"error: coinrun__value__1 needs {tmp_path}/coinrun__day__1/day.pt, which is "
                                           f"missing; move {tmp_path}/coinrun__day__1 away and run again to remake "
                                           "that day")]
    assert sorted(os.listdir(tmp_path)) == ["coinrun__day__1"]  # no night's folder or log


def test_workers_share_the_cores_unless_told_otherwise(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    lines = dry_run("--games", "coinrun", "--seeds", "1", "--workers", "2", log_dir=tmp_path, env=env)
    assert lines[0] == f"# 2 runs at a time, OMP_NUM_THREADS={threads} each" and len(lines) == 1 + 1 + 7
    lines = dry_run("--games", "coinrun", "--seeds", "1", "--workers", "2", log_dir=tmp_path,
                    env=dict(env, OMP_NUM_THREADS="3"))
    assert lines[0] == "# 2 runs at a time, OMP_NUM_THREADS=3 each"
    assert dry_run("--games", "coinrun", "--seeds", "1", log_dir=tmp_path, env=env)[0].startswith("python ")


def test_bad_options_are_one_line(tmp_path):
    for options, message in ((["--methods", "nope"], "unknown method nope"), (["--workers", "0"], "--workers"),
                             (["--bogus"], "unknown option --bogus")):
        out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), *options], capture_output=True, text=True,
                             cwd=ROOT)
        assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    help_text = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--dry-run" in help_text.stdout


def test_task_runs_the_ith_run_of_the_plan_counting_from_zero(tmp_path):
    options = ("--games", "coinrun chaser", "--seeds", "1", "--methods", "value offline", "--", "--day-epochs", "3")
    (tmp_path / "chaser__day__1").mkdir(parents=True)
    (tmp_path / "chaser__day__1" / "summary.json").write_text("{}")
    plan = dry_run(*options, log_dir=tmp_path)
    assert len(plan) == 2 + 4 and plan[1] == "# done: chaser__day__1"
    assert [line for i in range(len(plan)) for line in dry_run("--task", str(i), *options, log_dir=tmp_path)] == plan
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), "--task", "6", *options[:6]], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.splitlines() == ["error: --task must be 0 to 5 (this plan has 6 runs), "
                                                               "got 6"]


def test_gpus_give_each_worker_its_own_gpu_in_turn(tmp_path):
    """With a stand-in `python` that records when each run starts and ends on which GPU: two runs never share one,
    though the runs end out of order (a short night after a long one), and every GPU is used."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text("""#!/usr/bin/env bash
while [ $# -gt 0 ]; do case "$1" in --log-dir) dir="$2"; shift 2 ;; --run-name) name="$2"; shift 2 ;; *) shift ;; esac
done
echo "start $CUDA_VISIBLE_DEVICES $name" >> "$dir/events"
case "$name" in *__rnd__*) sleep 1.5 ;; *) sleep 0.2 ;; esac
mkdir -p "$dir/$name" && touch "$dir/$name/day.pt" "$dir/$name/summary.json"
echo "end $CUDA_VISIBLE_DEVICES $name" >> "$dir/events"
""")
    (fake / "python").chmod(0o755)
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), "--games", "coinrun chaser", "--seeds", "1",
                          "--methods", "rnd value offline", "--workers", "2", "--gpus", "3 5", "--log-dir",
                          str(log_dir)], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}"))
    assert out.returncode == 0, out.stderr
    busy, used = {}, set()
    events = (log_dir / "events").read_text().splitlines()
    assert len(events) == 2 * (2 + 6)
    for event in events:
        what, gpu, name = event.split()
        if what == "start":
            assert gpu not in busy, f"{name} started on GPU {gpu}, which {busy.get(gpu)} was using"
            busy[gpu] = name
            used.add(gpu)
        else:
            assert busy.pop(gpu) == name
    assert used == {"3", "5"}
    starts = [line for line in out.stdout.splitlines() if line.startswith("CUDA_VISIBLE_DEVICES=")]
    assert len(starts) == 8 and all(line.split()[1] == "python" for line in starts)


def test_gpus_in_a_dry_run_and_bad_gpus(tmp_path):
    lines = dry_run("--games", "coinrun", "--seeds", "1 2", "--methods", "", "--workers", "2", "--gpus", "0 1",
                    log_dir=tmp_path)
    assert [line.split()[0] for line in lines[1:]] == ["CUDA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=1"]
    for options, message in ((["--gpus", "0 x"], "error: --gpus takes GPU ids (integers), got x"),
                             (["--gpus", "0", "--slurm", "t.sbatch"], "error: --gpus is for local workers"),
                             (["--task", "0", "--slurm", "t.sbatch"], "error: use either --slurm")):
        out = subprocess.run(["bash", os.path.join(ROOT, "benchmark.sh"), *options], capture_output=True, text=True,
                             cwd=ROOT)
        assert out.returncode == 2 and out.stderr.startswith(message) and len(out.stderr.splitlines()) == 1


def test_slurm_dry_run_submits_what_is_left_each_night_after_its_own_day(tmp_path):
    """The sbatch and scontrol commands, without a cluster (tests/test_slurm.py runs them on a real one)."""
    for name in ("coinrun__day__1", "coinrun__value__1"):  # a finished day and night
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text("{}")
    template = os.path.join(ROOT, "slurm", "template.sbatch")
    lines = dry_run("--slurm", template, "--games", "coinrun chaser", "--seeds", "1", "--methods", "value offline",
                    "--", "--day-epochs", "3", log_dir=tmp_path)
    assert lines[:2] == ["# done: coinrun__day__1", "# done: coinrun__value__1"]
    job = f"{tmp_path}/slurm/benchmark.sbatch"
    assert lines[2] == f"# job script: {job}"
    out = f"--output {tmp_path}/slurm/%x_%a.out"
    assert lines[3:] == [f"sbatch --parsable --job-name benchmark_days --array 1 {out} {job}",
                         "# days: job benchmark_days, tasks 1",
                         f"sbatch --parsable --job-name benchmark_nights --array 3,4,5 {out} --hold "
                         f"--kill-on-invalid-dep=yes {job}",
                         "scontrol update JobId=benchmark_nights_4 Dependency=afterok:benchmark_days_1",
                         "scontrol update JobId=benchmark_nights_5 Dependency=afterok:benchmark_days_1",
                         "scontrol release benchmark_nights",
                         "# nights: job benchmark_nights, tasks 3,4,5 (2 of them after their day's task)"]
    script = open(job).read()
    assert script.startswith(open(template).read())  # the user's template, then the task's command
    assert script.splitlines()[-1] == (f"exec bash benchmark.sh --games coinrun\\ chaser --seeds 1 --methods "
                                       f"value\\ offline --log-dir {tmp_path} --task \"$SLURM_ARRAY_TASK_ID\" -- "
                                       "--day-epochs 3")
