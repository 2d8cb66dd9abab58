"""aggregate.py on synthetic runs with known returns gives the known CSV, tables, statistics and figures."""
import csv
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from conftest import ROOT, load_script

REPS = 300  # bootstrap resamples in tests: enough for the checks below, and fast


@pytest.fixture(scope="module")
def agg():
    return load_script("aggregate.py")


def fake_run(log_dir, name, exp_name, method, seed, points, transform=(), **summary):
    """A finished run's summary and eval curve; transform: (z changed, |delta h|, |delta v|) logged at each point."""
    run_dir = os.path.join(log_dir, name)
    writer = SummaryWriter(run_dir)
    for step, test, train in points:
        writer.add_scalar("eval/test_return", test, step)
        writer.add_scalar("eval/train_return", train, step)
        for tag, value in zip(("z_changed", "h_change", "value_change"), transform):
            writer.add_scalar(f"dream/transform_{tag}", value + step / 1000, step)  # steps 300, 400: + 0.35 mean
    writer.close()
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(dict(method=method, exp_name=exp_name, env_id="coinrun", seed=seed, **summary), f)


def aggregate(logs, *flags):
    """aggregate.py's command line on the folder logs, with REPS resamples where it writes tables."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "aggregate.py"), str(logs), "--reps", str(REPS),
                           *flags], capture_output=True, text=True, cwd=ROOT)


def cell(line, column):
    """(point, low, high) of one 'mean [low, high]' cell of a markdown table row."""
    text = line.split("|")[column + 1]
    return tuple(map(float, re.fullmatch(r" (-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\] ", text).groups()))


def test_known_runs_give_the_known_files(tmp_path):
    # the evaluation's size as each generation of summary.json says it: not at all (the early benchmark: 10),
    # num_envs x eval_repeats, or eval_episodes with final_eval_episodes and standard errors at the phases' ends
    episodes = {1: {}, 2: dict(num_envs=4, eval_repeats=3),
                3: dict(eval_episodes=100, final_eval_episodes=200, day_end_test_return_se=0.25)}
    for seed in (1, 2, 3):
        day_test, day_train = 2.0 + seed, 1.0 + seed  # day ends at 3, 4, 5 (test) and 2, 3, 4 (train)
        fake_run(tmp_path, f"coinrun__day__{seed}", "day", "ValDreamer", seed,
                 [(0, 0.0, 0.0), (100, 1.0, 1.0), (200, day_test, day_train)], **episodes[seed])
        night = dict(episodes[seed], night_end_test_return_se=0.5) if seed == 3 else episodes[seed]
        fake_run(tmp_path, f"coinrun__value__{seed}", "dream_ppo_value", "ValDreamer", seed,
                 [(300, day_test + 0.5, day_train), (400, day_test + 1.0, day_train + 2.0)], (0.5, seed, 2.0), **night)
        fake_run(tmp_path, f"coinrun__offline__{seed}", "offline_ppo", "Offline", seed,
                 [(300, day_test, day_train), (400, day_test - seed, day_train)], **episodes[seed])
    kept = tmp_path.parent / (tmp_path.name + "_kept")
    for logs, folder, more in ((tmp_path, "out", ["--keep-logs", str(kept)]), (kept, "again", [])):
        out = aggregate(logs, "--out", str(tmp_path / folder), *more)
        assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(kept)) == sorted(p for p in os.listdir(tmp_path) if "__" in p)
    files = sorted(glob.glob(str(kept / "*" / "*")))
    with open(tmp_path / "coinrun__value__3" / "summary.json") as f:
        summary = json.load(f)
    with open(tmp_path / "coinrun__value__3" / "summary.json", "w") as f:
        json.dump(dict(summary, night_seconds=1.0), f)  # one run changes (a new summary), the rest do not
    assert aggregate(tmp_path, "--out", str(tmp_path / "out"), "--keep-logs", str(kept)).returncode == 0
    rewritten = sorted(set(files) ^ set(glob.glob(str(kept / "*" / "*"))))
    assert len(rewritten) == 2 and all("coinrun__value__3" in p for p in rewritten)  # only its events file renamed
    for name in ("results.csv", "results.md", "fig3.png", "fig4.png", "fig5.png"):  # the kept logs draw the same
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name

    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    offline = next(line for line in table if line.startswith("| Offline | coinrun | 3 |"))
    value = next(line for line in table if line.startswith("| ValDreamer | coinrun | 3 |"))
    for row in (offline, value):
        mean, low, high = cell(row, 3)  # day end, test: seeds at 3, 4, 5
        assert mean == 4.0 and 3.0 <= low < 4.0 < high <= 5.0
    assert cell(offline, 4)[0] == 3.0 and cell(offline, 5) == (2.0, 2.0, 2.0)  # every seed's night ends at 2
    assert cell(offline, 7)[0] == -2.0 and cell(offline, 8) == (0.0, 0.0, 0.0)
    assert cell(value, 7) == (1.0, 1.0, 1.0) and cell(value, 8) == (2.0, 2.0, 2.0)  # the same gain on every seed
    assert any(line.startswith("| ValDreamer > Offline | ") for line in table)
    header = table.index("| method | game | seeds | z categoricals changed | mean abs delta h | mean abs delta v |")
    assert len(table) == header + 3  # the last table, one row: Offline transforms nothing
    transform = table[header + 2]
    assert transform.startswith("| ValDreamer | coinrun | 3 | ")
    assert cell(transform, 3) == (0.85, 0.85, 0.85) and cell(transform, 5) == (2.35, 2.35, 2.35)
    mean, low, high = cell(transform, 4)  # |delta h| of the seeds: 1.35, 2.35, 3.35
    assert mean == 2.35 and 1.35 <= low < 2.35 < high <= 3.35

    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 5
    value_1 = [r for r in rows if r["method"] == "ValDreamer" and r["seed"] == "1"]
    assert [(r["phase"], r["global_step"], r["test_return"]) for r in value_1] == [
        ("day", "0", "0"), ("day", "100", "1"), ("day", "200", "3"), ("night", "300", "3.5"), ("night", "400", "4")]
    for seed, expected in (("1", [10] * 5), ("2", [12] * 5), ("3", [100, 100, 200, 100, 200])):
        assert [int(r["eval_episodes"]) for r in rows if r["method"] == "Offline" and r["seed"] == seed] == expected
    value_3 = [r for r in rows if r["method"] == "ValDreamer" and r["seed"] == "3"]
    assert [r["test_return_se"] for r in value_3] == ["", "", "0.25", "", "0.5"]

    for name in ("fig3", "fig4", "fig5"):
        assert Image.open(tmp_path / "out" / f"{name}.png").size[0] == 460  # one panel: coinrun
    colours = {c for _, c in Image.open(tmp_path / "out" / "fig4.png").convert("RGB").getcolors(1 << 20)}
    assert (90, 90, 90) in colours and (44, 160, 44) in colours  # the shared day in gray, ValDreamer's night


def synthetic_runs(agg, nights, day=2.0):
    """runs as load_runs gives them: {(method, game, seed)} -> a day ending at `day`, a night at each value."""
    return {(label, game, seed): [agg.Point("day", 100, day, day, 10, None, None),
                                  agg.Point("night", 200, night, night, 10, None, None)]
            for (label, game), values in nights.items() for seed, night in enumerate(values, 1)}


def test_gain_interval_holds_the_mean_and_narrows_with_more_seeds(agg):
    widths = []
    for n in (5, 25):
        gains = 1.0 + 0.5 * np.linspace(-1, 1, n)  # mean 1 exactly, about the same spread for both n
        ends = agg.end_returns(synthetic_runs(agg, {("ValDreamer", "coinrun"): 2.0 + gains}))
        mean, low, high = cell(agg.end_table(ends, REPS)[2], 7)
        assert mean == 1.0 and low < 1.0 < high
        widths.append(high - low)
    assert widths[1] < 0.6 * widths[0]  # 1 / sqrt(5) in theory
    one_seed = agg.end_table(agg.end_returns(synthetic_runs(agg, {("ValDreamer", "coinrun"): [3.0]})), REPS)[2]
    assert one_seed.endswith("| 2.00 | 2.00 | 3.00 | 3.00 | 1.00 | 1.00 |")  # no interval from one seed


def test_probability_of_improvement(agg):
    nights = {("Dreamer", "coinrun"): [1.0, 2.0, 3.0, 4.0], ("Offline", "coinrun"): [1.0, 2.0, 3.0, 4.0],
              ("RndDreamer", "coinrun"): [5.0, 6.0, 7.0, 8.0],  # beats both on every seed
              ("ValDreamer", "coinrun"): [1.0, 2.0, 3.0, 4.0]}  # the same scores as both
    table = agg.improvement_table(agg.end_returns(synthetic_runs(agg, nights)), ["coinrun"], REPS)
    assert table[0] == "| P(X > Y) | coinrun |"
    rows = {line.split(" | ")[0][2:]: line for line in table[2:]}
    assert sorted(rows) == ["RndDreamer > Dreamer", "RndDreamer > Offline", "ValDreamer > Dreamer",
                            "ValDreamer > Offline"]  # no rows for dreamers without runs
    assert cell(rows["RndDreamer > Dreamer"], 1) == (1.0, 1.0, 1.0)
    assert cell(rows["ValDreamer > Offline"], 1)[0] == 0.5


def test_normalised_score_is_0_at_random_and_1_at_ppo(agg):
    for game, (random, ppo) in agg.REFERENCE.items():
        assert agg.normalise(random, game) == 0.0 and agg.normalise(ppo, game) == 1.0
    nights = {("ValDreamer", "coinrun"): [7.45] * 3, ("ValDreamer", "caveflyer"): [4.09] * 3}
    table = agg.iqm_table(agg.end_returns(synthetic_runs(agg, nights, day=2.67)), ["coinrun", "caveflyer"], REPS)
    # caveflyer's day at 2.67 is below its random 2.76; IQM of (0, 0, 0, -0.068, -0.068, -0.068) trims to both
    assert table[2].startswith("| ValDreamer | 3 | -0.03 [") and cell(table[2], 3) == (1.0, 1.0, 1.0)


def test_no_runs_is_one_clear_line(tmp_path):
    out = aggregate(tmp_path)
    assert out.returncode == 1 and out.stderr.strip().startswith("error: no finished night runs")


def test_a_night_from_another_day_is_one_clear_line(tmp_path):
    # the night's summary records the day end of the day.pt it loaded: 3.0 (its day) or 3.5 (a day made again)
    for loaded in (3.0, 3.5):
        logs = tmp_path / str(loaded)
        fake_run(logs, "coinrun__day__1", "day", "ValDreamer", 1, [(0, 0.0, 0.0), (200, 3.0, 2.0)],
                 day_end_test_return=3.0, day_end_train_return=2.0)
        fake_run(logs, "coinrun__value__1", "dream_ppo_value", "ValDreamer", 1, [(300, 3.5, 2.5)],
                 day_end_test_return=loaded, day_end_train_return=2.0)
        out = aggregate(logs, "--out", str(logs / "out"))
        if loaded == 3.0:
            assert out.returncode == 0, out.stderr
        else:
            assert out.returncode == 1 and out.stderr.strip() == (
                f"error: {logs / 'coinrun__value__1'} started from a day that ended at 3.5 test, 2.0 train, but its "
                "day's logs end at 3.0, 2.0: make the night again from this day (remove its folder, run benchmark.sh "
                "again) or put back the logs of its own day")


def test_paired_difference_cancels_the_seeds_days(agg):
    seeds_level = [1.0, 4.0, 7.0, 10.0]  # each seed's day leads to a different level, the same for every night
    nights = {("Dreamer", "coinrun"): seeds_level, ("Offline", "coinrun"): seeds_level[:2],
              ("ValDreamer", "coinrun"): [v + 1.0 for v in seeds_level],  # 1 above Dreamer on every seed
              ("Dreamer (real starts)", "coinrun"): [v + 0.5 for v in seeds_level[:3]]}
    ends = agg.end_returns(synthetic_runs(agg, nights))
    table = agg.paired_table(ends, ["coinrun"], REPS)
    assert table[0] == "| X - Y | coinrun |"
    rows = {line.split(" | ")[0][2:]: line for line in table[2:]}
    assert sorted(rows) == ["Dreamer - Dreamer (real starts)", "ValDreamer - Dreamer", "ValDreamer - Offline"]
    fig3 = "| Dreamer - Dreamer (real starts) | -0.50 [-0.50, -0.50] (3 seeds) |"  # the paper's Fig. 3, paired
    assert rows["Dreamer - Dreamer (real starts)"] == fig3
    assert rows["ValDreamer - Dreamer"] == "| ValDreamer - Dreamer | 1.00 [1.00, 1.00] (4 seeds) |"
    assert rows["ValDreamer - Offline"] == "| ValDreamer - Offline | 1.00 [1.00, 1.00] (2 seeds) |"  # seeds both ran
    improvement = agg.improvement_table(ends, ["coinrun"], REPS)
    assert cell(improvement[2], 1)[0] == 0.62  # unpaired, 10 of 16 pairs: the same runs look close to a coin flip
