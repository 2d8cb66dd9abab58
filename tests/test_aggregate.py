"""aggregate.py on synthetic runs with known returns gives the known CSV, table and figures."""
import csv
import json
import os
import subprocess
import sys

from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from conftest import ROOT


def fake_run(log_dir, name, exp_name, method, seed, points):
    run_dir = os.path.join(log_dir, name)
    writer = SummaryWriter(run_dir)
    for step, test, train in points:
        writer.add_scalar("eval/test_return", test, step)
        writer.add_scalar("eval/train_return", train, step)
    writer.close()
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(dict(method=method, exp_name=exp_name, env_id="coinrun", seed=seed), f)


def test_known_runs_give_the_known_table(tmp_path):
    for seed in (1, 2, 3):
        day_test, day_train = 2.0 + seed, 1.0 + seed  # day ends at 3, 4, 5 (test) and 2, 3, 4 (train)
        fake_run(tmp_path, f"coinrun__day__{seed}", "day", "ValDreamer", seed,
                 [(0, 0.0, 0.0), (100, 1.0, 1.0), (200, day_test, day_train)])
        fake_run(tmp_path, f"coinrun__value__{seed}", "dream_ppo_value", "ValDreamer", seed,
                 [(300, day_test + 0.5, day_train), (400, day_test + 1.0, day_train + 2.0)])
        fake_run(tmp_path, f"coinrun__offline__{seed}", "offline_ppo", "Offline", seed,
                 [(300, day_test, day_train), (400, day_test - seed, day_train)])
    kept = tmp_path.parent / (tmp_path.name + "_kept")
    for logs, folder, more in ((tmp_path, "out", ["--keep-logs", str(kept)]), (kept, "again", [])):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "aggregate.py"), str(logs), "--out",
                              str(tmp_path / folder), *more], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
    assert sorted(os.listdir(kept)) == sorted(p for p in os.listdir(tmp_path) if "__" in p)
    for name in ("results.csv", "results.md", "fig3.png", "fig4.png", "fig5.png"):  # the kept logs draw the same
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    # t(0.975, 2 dof) = 4.30; sd of (3, 4, 5) = 1, so the CI half-width is 4.30 / sqrt(3) = 2.48
    assert "| Offline | coinrun | 3 | 4.00 +/- 2.48 | 3.00 +/- 2.48 | 2.00 +/- 0.00 | 3.00 +/- 2.48 " \
           "| -2.00 +/- 2.48 | 0.00 +/- 0.00 |" in table
    assert "| ValDreamer | coinrun | 3 | 4.00 +/- 2.48 | 3.00 +/- 2.48 | 5.00 +/- 2.48 | 5.00 +/- 2.48 " \
           "| 1.00 +/- 0.00 | 2.00 +/- 0.00 |" in table
    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3 * 5
    value_1 = [r for r in rows if r["method"] == "ValDreamer" and r["seed"] == "1"]
    assert [(r["phase"], r["global_step"], r["test_return"]) for r in value_1] == [
        ("day", "0", "0"), ("day", "100", "1"), ("day", "200", "3"), ("night", "300", "3.5"), ("night", "400", "4")]
    for name in ("fig3", "fig4", "fig5"):
        assert Image.open(tmp_path / "out" / f"{name}.png").size[0] == 480  # one panel: coinrun
    panel = Image.open(tmp_path / "out" / "fig4.png").convert("RGB").crop((0, 0, 480, 300))  # above the legend
    colours = {c for _, c in panel.getcolors(1 << 20)}
    assert (90, 90, 90) in colours and (44, 160, 44) in colours  # the shared day in gray, ValDreamer's night


def test_no_runs_is_one_clear_line(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "aggregate.py"), str(tmp_path)], capture_output=True,
                         text=True, cwd=ROOT)
    assert out.returncode == 1 and out.stderr.strip().startswith("error: no finished night runs")
