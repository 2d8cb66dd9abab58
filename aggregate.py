"""Turn a benchmark's runs into the paper's figures and a results table.

    python aggregate.py runs/benchmark --out docs/benchmark

Reads every run's summary.json and TensorBoard events (eval/test_return, eval/train_return). A night
run started from a day checkpoint continues that (game, seed) day's curve. Writes results.csv (method,
game, seed, phase, global_step, test and train return), fig3.png (Dreamer from random vs real starts),
fig4.png (the three dreamers and both baselines), fig5.png (the three dreamers and FullDreamer), each
the test return's mean and 95% confidence interval across seeds with a line where the night begins,
and results.md: test and train return at the end of the day and of the night, and the night's gain.
"""
import argparse
import csv
import glob
import json
import logging
import math
import os
import shutil
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

LABELS = {"dream_ppo_rnd": "RndDreamer", "dream_ppo_deepdream": "DeepDreamer", "dream_ppo_value": "ValDreamer",
          "dream_ppo_full": "FullDreamer", "dreamer_baseline": "Dreamer", "dreamer_real": "Dreamer (real starts)",
          "offline_ppo": "Offline"}
FIGURES = {"fig3": ["Dreamer", "Dreamer (real starts)"],
           "fig4": ["RndDreamer", "DeepDreamer", "ValDreamer", "Dreamer", "Offline"],
           "fig5": ["RndDreamer", "DeepDreamer", "ValDreamer", "FullDreamer"]}
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23}


def mean_ci(values):
    """Mean and half-width of the 95% confidence interval (Student's t) of a list of numbers."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), T_975.get(len(values) - 1, 1.96) * float(values.std(ddof=1)) / math.sqrt(len(values))


def eval_curve(run_dir):
    """[(global_step, test_return, train_return)] of one run."""
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    if "eval/test_return" not in events.Tags()["scalars"]:
        return []
    train = {e.step: e.value for e in events.Scalars("eval/train_return")}
    return [(e.step, e.value, train.get(e.step, float("nan"))) for e in events.Scalars("eval/test_return")]


def read_logs(log_dir):
    """[(run folder, summary, eval curve)] of every finished run (one with a summary.json)."""
    logs = []
    for path in sorted(glob.glob(os.path.join(log_dir, "*", "summary.json"))):
        with open(path) as f:
            logs.append((os.path.dirname(path), json.load(f), eval_curve(os.path.dirname(path))))
    return logs


def load_runs(logs):
    """{(method, game, seed): [(phase, step, test, train)]}, each night prefixed by its day."""
    days, nights = {}, []
    for _, summary, curve in logs:
        key = (summary["env_id"], summary["seed"])
        if summary.get("exp_name") == "day":
            days[key] = curve
        else:
            nights.append((LABELS.get(summary.get("exp_name"), summary["method"]), key, curve))
    runs = {}
    for label, (game, seed), night in nights:
        day = days.get((game, seed), [])
        day_end = day[-1][0] if day else (night[0][0] if night else 0)
        points = [("day", *p) for p in day] + [("night" if p[0] > day_end else "day", *p) for p in night]
        runs[(label, game, seed)] = points
    return runs


def keep_logs(logs, dest):
    """Copy each run's summary.json and eval curves (nothing else) to dest/{run}: a few KB a run, from which
    this script draws the same files as from the full logs."""
    from torch.utils.tensorboard import SummaryWriter

    for run_dir, _, curve in logs:
        kept = os.path.join(dest, os.path.basename(run_dir))
        os.makedirs(kept, exist_ok=True)
        for old in glob.glob(os.path.join(kept, "events.out.tfevents.*")):
            os.remove(old)
        with SummaryWriter(kept) as writer:
            for step, test, train in curve:
                writer.add_scalar("eval/test_return", test, step)
                writer.add_scalar("eval/train_return", train, step)
        shutil.copyfile(os.path.join(run_dir, "summary.json"), os.path.join(kept, "summary.json"))


def split(points):
    """A run's points -> (its day's, its night's)."""
    return [p for p in points if p[0] == "day"], [p for p in points if p[0] == "night"]


def write_csv(runs, path):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["method", "game", "seed", "phase", "global_step", "test_return", "train_return"])
        for (label, game, seed), points in sorted(runs.items()):
            for phase, step, test, train in points:
                out.writerow([label, game, seed, phase, step, f"{test:.4g}", f"{train:.4g}"])


def write_table(runs, path):
    """Markdown: day end, night end and night gain (mean +/- 95% CI across seeds) per method and game."""
    groups = defaultdict(list)
    for (label, game, seed), points in runs.items():
        day, night = split(points)
        if day and night:
            groups[(label, game)].append((day[-1][2], day[-1][3], night[-1][2], night[-1][3]))
    fmt = lambda values: "{:.2f} +/- {:.2f}".format(*mean_ci(values))
    lines = ["| method | game | seeds | day end, test | day end, train | night end, test | night end, train "
             "| night gain, test | night gain, train |", "|---|---|---|---|---|---|---|---|---|"]
    for (label, game), rows in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        rows = np.array(rows)
        lines.append(f"| {label} | {game} | {len(rows)} | {fmt(rows[:, 0])} | {fmt(rows[:, 1])} | {fmt(rows[:, 2])} "
                     f"| {fmt(rows[:, 3])} | {fmt(rows[:, 2] - rows[:, 0])} | {fmt(rows[:, 3] - rows[:, 1])} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def draw_figure(runs, methods, path, width=480, height=300):
    """One panel per game: mean test return across seeds, shaded 95% CI, a vertical line at the day's end.
    The y-axis spans the returns the seeds reached; a wider interval (few seeds) is cut at its edges."""
    games = sorted({game for (_, game, _) in runs})
    image = Image.new("RGBA", (width * len(games), height + 20 * len(methods) + 10), "white")
    draw = ImageDraw.Draw(image)
    for g, game in enumerate(games):
        x0, curves, seen = g * width, {}, []
        for label in methods:
            seeds = [points for (lab, gm, _), points in runs.items() if lab == label and gm == game]
            if seeds:
                seen += [p[2] for points in seeds for p in points]
                # line the seeds up at the day's end: a day that lacks a point (a killed and resumed run can)
                # shifts only its earlier points
                days, nights = zip(*map(split, seeds))
                n_day, n_night = min(map(len, days)), min(map(len, nights))
                seeds = [d[len(d) - n_day:] + n[:n_night] for d, n in zip(days, nights)]
                steps = np.array([np.mean([s[i][1] for s in seeds]) for i in range(n_day + n_night)])
                stats = [mean_ci([s[i][2] for s in seeds]) for i in range(n_day + n_night)]
                curves[label] = (steps, np.array(stats), steps[n_day - 1])
        if not curves:
            continue
        xs = np.concatenate([c[0] for c in curves.values()])
        lo, hi = min(min(seen), 0), max(max(seen), 1e-6)
        sx = lambda v: x0 + 40 + (v - xs.min()) / max(xs.max() - xs.min(), 1) * (width - 55)
        sy = lambda v: 25 + (hi - min(max(v, lo), hi)) / (hi - lo) * (height - 55)
        draw.rectangle([x0 + 40, 25, x0 + width - 15, height - 30], outline="black")
        draw.text((x0 + 45, 5), f"{game}: test return", fill="black")
        draw.text((x0 + 2, 20), f"{hi:.1f}", fill="black")
        draw.text((x0 + 2, height - 40), f"{lo:.1f}", fill="black")
        draw.text((x0 + 40, height - 25), "0", fill="black")
        draw.text((x0 + width - 70, height - 25), f"{xs.max():,.0f}", fill="black")
        draw.text((x0 + width // 2 - 30, height - 25), "global step", fill="black")

        def band_and_line(steps, stats, colour):
            half = np.nan_to_num(stats[:, 1])
            upper = [(sx(s), sy(m + h)) for s, m, h in zip(steps, stats[:, 0], half)]
            lower = [(sx(s), sy(m - h)) for s, m, h in zip(steps, stats[:, 0], half)]
            line = [(sx(s), sy(m)) for s, m in zip(steps, stats[:, 0])]
            return (upper + lower[::-1], (*colour, 32)), (line, colour)  # the band translucent

        parts = []  # the day is common to all methods: drawn once, in gray; then each method's night
        steps, stats, day_end = next(iter(curves.values()))
        parts.append(band_and_line(steps[steps <= day_end], stats[steps <= day_end], (90, 90, 90)))
        for label, (steps, stats, day_end) in curves.items():
            night = steps >= day_end  # from the day's last point on
            parts.append(band_and_line(steps[night], stats[night], COLOURS[methods.index(label) % len(COLOURS)]))
        for (band, pale), _ in parts:
            if len(band) > 2:
                layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
                ImageDraw.Draw(layer).polygon(band, fill=pale)
                image.alpha_composite(layer)
        draw.line([(sx(day_end), 25), (sx(day_end), height - 30)], fill="gray")
        for _, (line, colour) in parts:
            if len(line) > 1:
                draw.line(line, fill=colour, width=2)
    for c, label in enumerate(methods):
        y = height + 5 + 20 * c
        draw.rectangle([10, y + 4, 30, y + 10], fill=COLOURS[c % len(COLOURS)])
        draw.text((38, y), label, fill="black")
    image.convert("RGB").save(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the benchmark's --log-dir")
    parser.add_argument("--out", default="docs/benchmark", help="folder for results.csv, results.md, fig*.png")
    parser.add_argument("--keep-logs", metavar="DIR", help="also copy each run's summary and eval curves to DIR, "
                        "small enough to commit; aggregate.py DIR draws the same files")
    cli = parser.parse_args()
    # a resumed run drops what its killed attempt logged after its last checkpoint; TensorBoard warns of that
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    logs = read_logs(cli.log_dir)
    runs = load_runs(logs)
    if not runs:
        raise SystemExit(f"error: no finished night runs (summary.json) under {cli.log_dir}; run benchmark.sh first")
    os.makedirs(cli.out, exist_ok=True)
    write_csv(runs, os.path.join(cli.out, "results.csv"))
    print("\n".join(write_table(runs, os.path.join(cli.out, "results.md"))))
    for name, methods in FIGURES.items():
        draw_figure(runs, methods, os.path.join(cli.out, f"{name}.png"))
    print(f"wrote {cli.out}/results.csv, results.md, " + ", ".join(f"{n}.png" for n in FIGURES))
    if cli.keep_logs:
        keep_logs(logs, cli.keep_logs)
        print(f"kept the summaries and eval curves in {cli.keep_logs}")


if __name__ == "__main__":
    main()
