"""tools/day_study.py on fake day-only runs with known returns gives the known CSV, table, effects and figure."""
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from conftest import ROOT

import day_study  # tools/ is on the path (conftest)

REPS = 300  # bootstrap resamples in tests: enough for the checks below, and fast


def fake_run(log_dir, config, game, seed, test, train, finished=True, **summary):
    """A day of three evaluation points ending at (test, train), as benchmark.sh lays it out."""
    run_dir = os.path.join(log_dir, config, f"{game}__day__{seed}")
    with SummaryWriter(run_dir) as writer:
        for step, fraction in ((200, 0.0), (1200, 0.5), (2200, 1.0)):
            writer.add_scalar("eval/test_return", fraction * test, step)
            writer.add_scalar("eval/train_return", fraction * train, step)
    if finished:
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump(dict(env_id=game, seed=seed, day_end_test_return=test, day_end_train_return=train,
                           day_seconds=600.0, **summary), f)


def study(tmp_path, folder, *flags):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "day_study.py"), *flags, "--out",
                          str(tmp_path / folder), "--reps", str(REPS)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def cell(line, column):
    """(point, low, high) of a 'mean [low, high]' markdown cell."""
    text = line.split("|")[column + 1]
    return tuple(map(float, re.match(r" (-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", text).groups()))


def test_known_runs_give_the_known_files(tmp_path):
    logs, kept = tmp_path / "runs", tmp_path / "kept"
    for seed in (1, 2, 3):
        fake_run(logs, "quick", "coinrun", seed, 4.0 + seed, 3.5, eval_episodes=10, final_eval_episodes=100)
        fake_run(logs, "quick", "chaser", seed, 0.25 * seed, 0.5, eval_episodes=50)  # no final_eval_episodes
        fake_run(logs, "base", "coinrun", seed, 1.0 + seed, 2.0, final_eval_episodes=100)
    fake_run(logs, "quick", "coinrun", 4, 9.0, 9.0, finished=False)
    first = study(tmp_path, "out", str(logs), "--order", "base quick", "--keep-logs", str(kept))
    assert "skipped 1 unfinished runs" in first
    study(tmp_path, "again", str(kept), "--order", "base quick")
    for name in ("results.csv", "results.md", "day_curves.png"):  # the kept logs draw the same files
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name

    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.reader(f))
    assert rows == [["game", "seed", "config", "day_end_test_return", "day_end_train_return", "eval_episodes"],
                    *[["coinrun", str(s), "base", str(1 + s), "2", "100"] for s in (1, 2, 3)],
                    *[["chaser", str(s), "quick", str(0.25 * s), "0.5", "50"] for s in (1, 2, 3)],
                    *[["coinrun", str(s), "quick", str(4 + s), "3.5", "100"] for s in (1, 2, 3)]]

    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    base = next(line for line in table if line.startswith("| base | coinrun | 3 | "))
    quick = next(line for line in table if line.startswith("| quick | coinrun | 3 | "))
    assert cell(base, 3)[0] == 3.0 and base.endswith("| 2.00 | 2/3 | 10.0 |  |")  # random coinrun: 2.67
    assert cell(quick, 3)[0] == 6.0 and cell(quick, 8) == (3.0, 3.0, 3.0) and quick.endswith("vs base (3 seeds) |")
    chaser = next(line for line in table if line.startswith("| quick | chaser | 3 | 0.50 ["))
    assert "| 1/3 |" in chaser and chaser.endswith("|  |")  # base never ran chaser: no effect to show

    image = Image.open(tmp_path / "out" / "day_curves.png")
    assert image.size[0] == 920  # two panels, coinrun and chaser
    colours = {c for _, c in image.convert("RGB").getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # base and quick, tab10's first two


def in_memory(tests):
    """runs as day_ends gives them from {config: {seed: day-end test return}} on coinrun."""
    summary = lambda seed, test: dict(env_id="coinrun", seed=seed, day_end_test_return=test,
                                      day_end_train_return=test, day_seconds=60.0)
    logs = {config: [day_study.agg.Log("", summary(seed, test), [], {}) for seed, test in by_seed.items()]
            for config, by_seed in tests.items()}
    return day_study.day_ends(logs, list(tests))


def test_effect_is_the_paired_difference_against_the_config_before(tmp_path):
    level = np.array([0.0, 3.0, 6.0, 9.0, 12.0])  # seeds differ widely, the same way in every configuration
    noise = np.array([-0.3, 0.1, 0.2, -0.2, 0.2])  # mean 0: the true effect of b over a is 1 exactly
    seeds = range(1, 6)
    tests = {"c": dict(zip(seeds, level + 3.0)), "a": dict(zip(seeds, level)),
             "b": {**dict(zip(seeds, level + 1.0 + noise)), 6: 100.0}}  # seed 6: a has no pair for it
    configs, against = day_study.parse_order("c a b")
    rows = {line.split(" | ")[0][2:]: line for line in day_study.study_table(in_memory(tests), configs, REPS, against)}
    assert rows["c"].endswith("|  |")  # first in the order: nothing before it
    assert cell(rows["a"], 8) == (-3.0, -3.0, -3.0) and rows["a"].endswith(" vs c (5 seeds) |")
    mean, low, high = cell(rows["b"], 8)
    assert mean == 1.0 and low < 1.0 < high and high - low < 1.0  # pairing cancels the seeds' spread of 12
    assert rows["b"].endswith(" vs a (5 seeds) |")


def test_a_config_can_be_compared_with_a_named_base():
    configs, against = day_study.parse_order("a b:a c:a d e")
    assert configs == ["a", "b", "c", "d", "e"] and against == dict(b="a", c="a", d="c", e="d")
    tests = {"a": {1: 1.0, 2: 2.0}, "b": {1: 5.0, 2: 6.0}, "c": {1: 2.0, 2: 3.0}, "d": {1: 0.0, 2: 0.0}, "e": {3: 1.0}}
    rows = {line.split(" | ")[0][2:]: line for line in
            day_study.study_table(in_memory(tests), configs, REPS, against)}
    assert cell(rows["b"], 8)[0] == 4.0 and rows["b"].endswith(" vs a (2 seeds) |")
    assert cell(rows["c"], 8)[0] == 1.0 and rows["c"].endswith(" vs a (2 seeds) |")  # not vs b, the one before it
    assert cell(rows["d"], 8)[0] == -2.5 and rows["d"].endswith(" vs c (2 seeds) |")
    assert rows["e"].endswith("| no seed shared with d |")
    with pytest.raises(SystemExit, match=r"^error: --order compares b with z, which must come before it in --order$"):
        day_study.parse_order("a b:z")


def test_order_defaults_to_names_and_rejects_a_config_without_runs(tmp_path):
    fake_run(tmp_path, "quick", "coinrun", 1, 5.0, 5.0)
    fake_run(tmp_path, "base", "coinrun", 1, 3.0, 3.0)
    fake_run(tmp_path, "broken", "coinrun", 1, 0.0, 0.0, finished=False)
    configs, logs, unfinished = day_study.read_study(str(tmp_path))
    assert configs == ["base", "quick"] and unfinished == 1 and len(logs["quick"]) == 1
    without_runs = r"^error: --order names configurations without finished runs under .*: broken, ghost$"
    with pytest.raises(SystemExit, match=without_runs):
        day_study.read_study(str(tmp_path), ["quick", "broken", "ghost"])
