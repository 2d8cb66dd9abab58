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
