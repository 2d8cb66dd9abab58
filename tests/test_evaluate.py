"""evaluate.py: a run re-scored by its own script's evaluation, on any difficulty and levels, repeatably; bad input
is one line and leaves the run folder as it was."""
import json
import os
import re
import shutil
import sys

import pytest
import torch

from conftest import ROOT, TINY, load_script, run_script

sys.path.insert(0, os.path.join(ROOT, "tools"))
from checkpoints import build, read  # noqa: E402

SCRIPT = "dreamer_baseline.py"  # not the template: evaluate.py finds the script from the checkpoint's method


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("runs")
    out = run_script(SCRIPT, *TINY, "--log-dir", str(log_dir), "--run-name", "tiny", "--save-checkpoint")
    assert out.returncode == 0, out.stderr[-3000:]
    return log_dir / "tiny"


def evaluate(*flags):
    return run_script("evaluate.py", *flags, "--no-cuda", OMP_NUM_THREADS="1")


def snapshot(folder):
    return {p: (os.path.getsize(os.path.join(d, p)), os.path.getmtime(os.path.join(d, p)))
            for d, _, files in os.walk(folder) for p in files}


def test_a_run_is_scored_by_its_own_scripts_evaluation(run_dir):
    out = evaluate(str(run_dir), "--episodes", "3")
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"tiny/weights\.pt \(Dreamer, chaser, easy\): test [-\d.]+ ± [\d.]+, "
                        r"train [-\d.]+ ± [\d.]+ \(training levels 0-199\), mean ± standard error over 3 \+ 3 "
                        r"episodes, seed 1; wrote .*evaluation_3_easy\.json", line), line
    with open(run_dir / "evaluation_3_easy.json") as f:
        found = json.load(f)
    # every run ends by writing weights.pt, which is read first
    assert found["checkpoint"] == str(run_dir / "weights.pt") and found["method"] == load_script(SCRIPT).METHOD
    assert (found["episodes"], found["seed"], found["run_seed"], found["night_epoch"]) == (3, 1, 1, 2)
    # the numbers are those of the script's evaluate() on the run's models, seeded with the run's seed
    path = str(run_dir / "weights.pt")
    torch.set_num_threads(1)
    mod, args, wm, agent, device = build(path, read(path), cuda=False)
    assert mod is load_script(SCRIPT)
    expected = mod.evaluate(wm, agent, args, 3, device)
    assert {k: found[k] for k in expected} == expected


def test_same_seed_same_json_and_other_levels_another_file(run_dir):
    flags = (str(run_dir), "--episodes", "3", "--distribution-mode", "hard", "--num-levels", "5", "--start-level",
             "100", "--seed", "7")
    assert evaluate(*flags).returncode == 0
    path = run_dir / "evaluation_3_hard_levels100+5_seed7.json"
    first = path.read_bytes()
    assert evaluate(*flags).returncode == 0
    assert path.read_bytes() == first
    found = json.loads(first)
    assert (found["distribution_mode"], found["num_levels"], found["start_level"], found["seed"]) == ("hard", 5, 100, 7)


def test_weights_then_checkpoint_then_day(run_dir, tmp_path):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    weights = {k: state[k] for k in ("method", "args", "world_model", "agent")}
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(run_dir / "day.pt", folder / "day.pt")
    torch.save(weights, folder / "weights.pt")
    shutil.copy(run_dir / "checkpoint.pt", folder / "checkpoint.pt")
    for expected in ("weights.pt", "checkpoint.pt", "day.pt"):
        out = evaluate(str(folder), "--episodes", "2", "--out", str(tmp_path / "e.json"))
        assert out.returncode == 0, out.stderr[-3000:]
        found = json.loads((tmp_path / "e.json").read_text())
        assert found["checkpoint"] == str(folder / expected)
        assert found["night_epoch"] == {"weights.pt": None, "checkpoint.pt": 2, "day.pt": 0}[expected]
        (folder / expected).unlink()


def test_bad_input_is_one_line_and_touches_nothing(run_dir, tmp_path):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    mismatch = tmp_path / "mismatch.pt"
    torch.save(dict(state, args=dict(state["args"], deter=64)), mismatch)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:1000])
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    empty = tmp_path / "empty"
    empty.mkdir()
    before = snapshot(run_dir), snapshot(tmp_path)
    cases = (((str(tmp_path / "missing"),), "error: no checkpoint at"),
             ((str(empty),), "error: {} holds no weights.pt, checkpoint.pt or day.pt".format(empty)),
             ((str(damaged),), "error: cannot read checkpoint"),
             ((str(other),), "error: {} is not a checkpoint of these scripts".format(other)),
             ((str(mismatch),), "error: the weights in {} do not fit the model its flags describe".format(mismatch)),
             ((str(run_dir), "--episodes", "1"), "error: --episodes must be 2 or more"),
             ((str(run_dir), "--num-levels", "-1"), "error: --num-levels must be zero or more"),
             ((str(run_dir), "--distribution-mode", "memory"), "error: chaser has no memory mode"))
    for flags, message in cases:
        out = evaluate(*flags)
        assert out.returncode in (1, 2), (flags, out.stderr[-2000:])
        errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith(message), (flags, out.stderr[-2000:])
    assert (snapshot(run_dir), snapshot(tmp_path)) == before
