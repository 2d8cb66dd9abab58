"""Turn a benchmark's runs into the paper's figures and a results table, with rliable's statistics.

    python aggregate.py runs/benchmark --out docs/benchmark

Reads every run's summary.json and TensorBoard events (eval/test_return, eval/train_return). A night
run started from a day checkpoint continues that (game, seed) day's curve. Writes:
- results.csv: every evaluation point (method, game, seed, phase, global step, test and train return, the
  episodes it averages, and the standard error of the day-end and night-end points where the run wrote it);
- fig3.png (Dreamer from random vs real starts), fig4.png (the three dreamers, Dreamer and Offline),
  fig5.png (the three dreamers and FullDreamer): one panel per game, test return against global step, the
  mean across seeds with a shaded 95% confidence interval, the shared day in gray and a line where the night
  begins;
- results.md: per method and game, test and train return at the day's end and the night's end and the
  night's gain (night end minus the same seed's day end); across the sparse games, the interquartile mean
  (IQM) of the normalised test return, (score - random) / (PPO at 1M steps - random) with SPEC section 8's
  reference scores; the probability that each dreamer's night-end test return beats Dreamer's and
  Offline's; and what each transformation did to the states it changed (dream/transform_*, the mean over
  the night's epochs of each run).

Every interval is rliable's (Agarwal et al., 2021) 95% percentile interval from a stratified bootstrap over
seeds (each game resampled on its own), --reps resamples, drawn from a fixed seed so the same logs give the
same files byte for byte.
"""
import argparse
import csv
import filecmp
import glob
import json
import logging
import math
import os
import shutil
from collections import defaultdict, namedtuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from rliable import library as rly, metrics  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

LABELS = {"dream_ppo_rnd": "RndDreamer", "dream_ppo_deepdream": "DeepDreamer", "dream_ppo_value": "ValDreamer",
          "dream_ppo_full": "FullDreamer", "dreamer_baseline": "Dreamer", "dreamer_real": "Dreamer (real starts)",
          "offline_ppo": "Offline", "value_untransformed": "ValDreamer (untransformed credit)",
          "dreamer_gamma997": "Dreamer (gamma 0.997)"}
FIGURES = {"fig3": ("Fig. 3: Dreamer's night from random vs real starts", ["Dreamer", "Dreamer (real starts)"]),
           "fig4": ("Fig. 4: the three dreamers, Dreamer and offline PPO",
                    ["RndDreamer", "DeepDreamer", "ValDreamer", "Dreamer", "Offline"]),
           "fig5": ("Fig. 5: the three dreamers and FullDreamer",
                    ["RndDreamer", "DeepDreamer", "ValDreamer", "FullDreamer"])}
DREAMERS, BASELINES = ["RndDreamer", "DeepDreamer", "ValDreamer", "FullDreamer"], ["Dreamer", "Offline"]
VERSUS = [(x, y) for x in DREAMERS for y in BASELINES]  # the rows that compare nights
FIG3 = ("Dreamer", "Dreamer (real starts)")  # the paper's Fig. 3: random starts against real ones
# SPEC section 8: test return of a random policy and of PPO after 1M steps (easy mode, 200 training levels)
REFERENCE = {"caveflyer": (2.76, 4.09), "chaser": (0.66, 1.01), "coinrun": (2.67, 7.45), "plunder": (4.28, 3.87)}
SPARSE = ["coinrun", "caveflyer"]  # the games of the paper's claim
COLOURS = {"RndDreamer": "tab:blue", "DeepDreamer": "tab:orange", "ValDreamer": "tab:green", "Dreamer": "tab:red",
           "Offline": "tab:purple", "FullDreamer": "tab:brown", "Dreamer (real starts)": "tab:pink",
           "ValDreamer (untransformed credit)": "tab:olive", "Dreamer (gamma 0.997)": "tab:cyan"}  # every figure
DAY_COLOUR = "#5a5a5a"
X_LABEL = "global step (real steps by day, dreamed transitions at night)"
Y_LABEL = "test return (raw game score)"
# what a transformation did to the dreamed states it changed, as each night logs it (mean over those states)
TRANSFORM = {"dream/transform_z_changed": "z categoricals changed", "dream/transform_h_change": "mean abs delta h",
             "dream/transform_value_change": "mean abs delta v"}
# One evaluation point of a run: its return on the full distribution (test) and on the training levels, the
# episodes each averages, and the standard errors (only the day-end and night-end points have them).
Point = namedtuple("Point", "phase step test train episodes test_se train_se")


Log = namedtuple("Log", "run_dir summary curve transform")


def read_events(run_dir):
    """(eval curve [(global_step, test_return, train_return)], {TRANSFORM tag: [(global_step, value)]}) of one
    run; a run that transforms no state has no TRANSFORM tags."""
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    transform = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in TRANSFORM if tag in tags}
    if "eval/test_return" not in tags:
        return [], transform
    train = {e.step: e.value for e in events.Scalars("eval/train_return")}
    return [(e.step, e.value, train.get(e.step, float("nan"))) for e in events.Scalars("eval/test_return")], transform


def read_logs_of(run_dir):
    """(summary, eval curve, TRANSFORM scalars) of one finished run."""
    with open(os.path.join(run_dir, "summary.json")) as f:
        return (json.load(f), *read_events(run_dir))


def read_logs(log_dir):
    """[Log] of every finished run (one with a summary.json)."""
    return [Log(os.path.dirname(path), *read_logs_of(os.path.dirname(path)))
            for path in sorted(glob.glob(os.path.join(log_dir, "*", "summary.json")))]


def method_label(summary):
    """The method's name in tables and figures: Dreamer from real starts has its own."""
    return LABELS.get(summary.get("exp_name"), summary["method"])


def eval_episodes(summary):
    """(episodes per evaluation point, episodes at the day's and the night's end) of one run, on test and the
    same on train. Runs before --eval-episodes wrote neither: they played num_envs x eval_repeats episodes, and
    the early benchmark's summaries (docs/early_benchmark/logs) lack even those keys: 5 envs x 2 episodes = 10."""
    per_point = summary.get("eval_episodes")
    if per_point is None:
        old = {"num_envs", "eval_repeats"} <= summary.keys()
        per_point = summary["num_envs"] * summary["eval_repeats"] if old else 10
    return per_point, summary.get("final_eval_episodes") or per_point


def tag_points(curve, summary, day_end):
    """A run's curve as Points; a point at or before day_end belongs to the day. The last point of each phase is
    that phase's end: it averages final_eval_episodes and carries the summary's standard errors."""
    per_point, final = eval_episodes(summary)
    phases = ["day" if step <= day_end else "night" for step, _, _ in curve]
    points = []
    for i, ((step, test, train), phase) in enumerate(zip(curve, phases)):
        if phase in phases[i + 1:]:
            points.append(Point(phase, step, test, train, per_point, None, None))
        else:
            points.append(Point(phase, step, test, train, final, summary.get(f"{phase}_end_test_return_se"),
                                summary.get(f"{phase}_end_train_return_se")))
    return points


def load_runs(logs):
    """{(method, game, seed): [Point]}, each night prefixed by its day."""
    days, nights = {}, []
    for log in logs:
        key = (log.summary["env_id"], log.summary["seed"])
        if log.summary.get("exp_name") == "day":
            days[key] = (log.curve, log.summary)
        else:
            nights.append((method_label(log.summary), key, log.curve, log.summary, log.run_dir))
    runs = {}
    for label, (game, seed), night, summary, run_dir in nights:
        day, day_summary = days.get((game, seed), ([], summary))
        check_same_day(summary, day_summary, run_dir)
        day_end = day[-1][0] if day else (night[0][0] if night else 0)
        runs[(label, game, seed)] = tag_points(day, day_summary, day_end) + tag_points(night, summary, day_end)
    return runs


def check_same_day(summary, day_summary, run_dir):
    """One clear line if a night started from another day than the day run beside it (a day made again, on another
    machine or after its folder was lost, is not the same day): its gain would be read against the wrong day end.
    A night's summary carries the day end of the day.pt it loaded; summaries older than that field pass."""
    ends = [(s.get("day_end_test_return"), s.get("day_end_train_return")) for s in (summary, day_summary)]
    if None not in ends[0] + ends[1] and ends[0] != ends[1]:
        raise SystemExit(f"error: {run_dir} started from a day that ended at {ends[0][0]} test, {ends[0][1]} train, "
                         f"but its day's logs end at {ends[1][0]}, {ends[1][1]}: make the night again from this day "
                         "(remove its folder, run benchmark.sh again) or put back the logs of its own day")


# files a run folder may hold that are kept as they are: the night's diagnostics and world-model audits
KEPT_FILES = ("diagnostics.jsonl", "wm_audit_*.json")


def keep_logs(logs, dest):
    """Copy each run's summary.json, eval curves and TRANSFORM scalars, and its KEPT_FILES (nothing else), to
    dest/{run}: a few KB a run (diagnostics: about 10 KB a night point), from which this script draws the same files
    as from the full logs. A run already kept as it is stays untouched, so that keeping a growing benchmark's logs
    again rewrites only what changed."""
    from torch.utils.tensorboard import SummaryWriter

    for log in logs:
        kept = os.path.join(dest, os.path.basename(log.run_dir))
        for pattern in KEPT_FILES:
            for path in glob.glob(os.path.join(log.run_dir, pattern)):
                target = os.path.join(kept, os.path.basename(path))
                if not (os.path.isfile(target) and filecmp.cmp(path, target, shallow=False)):
                    os.makedirs(kept, exist_ok=True)
                    shutil.copyfile(path, target)
        if os.path.isfile(os.path.join(kept, "summary.json")) and read_logs_of(kept) == log[1:]:
            continue
        os.makedirs(kept, exist_ok=True)
        for old in glob.glob(os.path.join(kept, "events.out.tfevents.*")):
            os.remove(old)
        with SummaryWriter(kept) as writer:
            for step, test, train in log.curve:
                writer.add_scalar("eval/test_return", test, step)
                writer.add_scalar("eval/train_return", train, step)
            for tag, values in log.transform.items():
                for step, value in values:
                    writer.add_scalar(tag, value, step)
        shutil.copyfile(os.path.join(log.run_dir, "summary.json"), os.path.join(kept, "summary.json"))


def split(points):
    """A run's points -> (its day's, its night's)."""
    return [p for p in points if p.phase == "day"], [p for p in points if p.phase == "night"]


def interval(scores, func, reps):
    """(point estimate, 95% CI lower, upper) of func by rliable's stratified bootstrap over seeds. scores: a
    (seeds, games, ...) array, or a list of them for a func of several methods' scores (resampled independently)."""
    np.random.seed(0)  # rliable resamples with numpy's global generator: a fixed seed, the same interval every run
    point, ci = rly.get_interval_estimates({"": scores}, func, reps=reps)
    low, high = np.squeeze(ci[""][0]), np.squeeze(ci[""][1])
    if min(len(s) for s in (scores if isinstance(scores, list) else [scores])) < 2:
        low, high = np.full_like(low, np.nan), np.full_like(high, np.nan)  # one seed: resampling it says nothing
    return np.squeeze(point[""]), low, high


def mean_over_seeds(scores):
    """The statistic of most intervals here: each column's mean over the seeds (the rows)."""
    return scores.mean(axis=0)


def fmt(point, low, high):
    """'mean [low, high]', or the mean alone where there is no interval."""
    return f"{float(point):.2f}" + ("" if np.isnan(low) else f" [{float(low):.2f}, {float(high):.2f}]")


def normalise(score, game):
    """0 at a random policy's test return, 1 at PPO's after 1M steps (SPEC section 8)."""
    random, ppo = REFERENCE[game]
    return (score - random) / (ppo - random)


def end_returns(runs):
    """{(method, game): {seed: (day end test, day end train, night end test, night end train)}}."""
    ends = defaultdict(dict)
    for (label, game, seed), points in runs.items():
        day, night = split(points)
        if day and night:
            ends[(label, game)][seed] = (day[-1].test, day[-1].train, night[-1].test, night[-1].train)
    return ends


def seed_matrix(ends, label, games, column, norm=False):
    """(seeds, games) array of one column of end_returns over the seeds that every game has, or None."""
    seeds = sorted(set.intersection(*(set(ends.get((label, game), {})) for game in games)))
    if not seeds:
        return None
    return np.array([[normalise(ends[(label, g)][s][column], g) if norm else ends[(label, g)][s][column]
                      for g in games] for s in seeds])


def write_csv(runs, path):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["method", "game", "seed", "phase", "global_step", "test_return", "train_return",
                      "eval_episodes", "test_return_se", "train_return_se"])
        number = lambda v: "" if v is None else f"{v:.4g}"
        for (label, game, seed), points in sorted(runs.items()):
            for p in points:
                out.writerow([label, game, seed, p.phase, p.step, number(p.test), number(p.train), p.episodes,
                              number(p.test_se), number(p.train_se)])


def end_table(ends, reps):
    """Markdown lines: day end, night end and night gain per method and game."""
    lines = ["| method | game | seeds | day end, test | day end, train | night end, test | night end, train "
             "| night gain, test | night gain, train |", "|---|---|---|---|---|---|---|---|---|"]
    for (label, game), by_seed in sorted(ends.items(), key=lambda item: (item[0][1], item[0][0])):
        rows = np.array(list(by_seed.values()))
        scores = np.concatenate([rows, rows[:, 2:] - rows[:, :2]], axis=1)  # (seeds, 6): each column a stratum
        cells = zip(*interval(scores, mean_over_seeds, reps))
        lines.append(f"| {label} | {game} | {len(rows)} | " + " | ".join(fmt(*cell) for cell in cells) + " |")
    return lines


def iqm_table(ends, games, reps):
    """Markdown lines: IQM of the normalised test return at day end and night end across games, per method."""
    lines = ["| method | seeds | day end, test | night end, test |", "|---|---|---|---|"]
    for label in sorted({label for label, _ in ends}):
        day, night = (seed_matrix(ends, label, games, column, norm=True) for column in (0, 2))
        if day is not None:
            cells = [fmt(*interval(scores, metrics.aggregate_iqm, reps)) for scores in (day, night)]
            lines.append(f"| {label} | {len(day)} | {cells[0]} | {cells[1]} |")
    return lines


def versus_table(header, columns, relation, cell, pairs=VERSUS):
    """Markdown lines: a row "X relation Y" for each pair (X, Y) with any cell, a column per list of games, each
    cell cell(X, Y, games) ("" where there is nothing to compare)."""
    lines = [f"| {header} | " + " | ".join(", ".join(c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for x, y in pairs:
        cells = [cell(x, y, column) for column in columns]
        if any(cells):
            lines.append(f"| {x} {relation} {y} | " + " | ".join(cells) + " |")
    return lines


def improvement_table(ends, games, reps):
    """Markdown lines: probability of improvement of each dreamer's night-end test return over each baseline's,
    per game, and across the sparse games where there are two or more."""
    sparse = [g for g in SPARSE if g in games]

    def cell(x, y, column):
        pair = [seed_matrix(ends, label, column, 2) for label in (x, y)]
        return "" if any(p is None for p in pair) else fmt(*interval(pair, metrics.probability_of_improvement, reps))
    return versus_table("P(X > Y)", [[g] for g in games] + ([sparse] if len(sparse) > 1 else []), ">", cell)


def paired_difference(x, y, reps):
    """('mean [CI]' of x[seed] - y[seed] over the seeds both have, their number); (None, 0) if they share none.
    x, y: {seed: score}."""
    seeds = sorted(set(x) & set(y))
    if not seeds:
        return None, 0
    diff = np.array([[x[s] - y[s]] for s in seeds])  # (seeds, 1)
    return fmt(*interval(diff, mean_over_seeds, reps)), len(seeds)


def paired_table(ends, games, reps):
    """Markdown lines: per game, each dreamer's night-end test return minus each baseline's on the same seed (both
    nights start from that seed's day, so the seeds' different days cancel), mean [CI] over the seeds both ran."""
    def cell(x, y, column):
        night_end = [{seed: row[2] for seed, row in ends.get((label, column[0]), {}).items()} for label in (x, y)]
        text, seeds = paired_difference(*night_end, reps)
        return f"{text} ({seeds} seeds)" if seeds else ""
    return versus_table("X - Y", [[g] for g in games], "-", cell, VERSUS + [FIG3])


def transform_table(logs, reps):
    """Markdown lines: per method and game, each TRANSFORM scalar's mean over a night's epochs, mean [CI] over
    seeds; no lines without a run that transformed a state."""
    by_seed = defaultdict(dict)
    for log in logs:
        if len(log.transform) == len(TRANSFORM):
            by_seed[(method_label(log.summary), log.summary["env_id"])][log.summary["seed"]] = [
                np.mean([value for _, value in log.transform[tag]]) for tag in TRANSFORM]
    if not by_seed:
        return []
    lines = ["| method | game | seeds | " + " | ".join(TRANSFORM.values()) + " |", "|---|---|---|---|---|---|"]
    for (name, game), seeds in sorted(by_seed.items(), key=lambda item: (item[0][1], item[0][0])):
        cells = zip(*interval(np.array(list(seeds.values())), mean_over_seeds, reps))
        lines.append(f"| {name} | {game} | {len(seeds)} | " + " | ".join(fmt(*cell) for cell in cells) + " |")
    return lines


def write_table(runs, logs, path, reps):
    """results.md: the five tables, each under a line that says what its numbers are."""
    ends = end_returns(runs)
    games = sorted({game for _, game in ends})
    sparse = [g for g in SPARSE if g in games]
    seeds = "/".join(str(n) for n in sorted({len(by_seed) for by_seed in ends.values()}))
    how = f"{seeds} seeds, 95% stratified-bootstrap CI over seeds (rliable, {reps} resamples)"
    lines = [f"Return (raw game score) at the end of the day and of the night, and the night's gain (night end minus "
             f"the same seed's day end): mean [{how}].", "", *end_table(ends, reps)]
    if sparse:
        lines += ["", f"Interquartile mean (IQM) of the normalised test return, (score - random) / (PPO at 1M steps - "
                      f"random), across {', '.join(sparse)}, over the seeds each method has on all of them "
                      f"(1 = PPO after 1M steps): IQM [{how}].", "", *iqm_table(ends, sparse, reps)]
    lines += ["", f"Probability of improvement P(X > Y): the chance that a night-end test return of dreamer X beats "
                  f"one of baseline Y (Mann-Whitney U / (n_X n_Y), ties counting half; averaged over the games of a "
                  f"column): P [{how}, X's and Y's seeds resampled independently].", "",
              *improvement_table(ends, games, reps),
              "", f"Paired difference X - Y: dreamer X's night-end test return minus baseline Y's on the same seed, "
                  f"whose day both nights start from (last row: Dreamer from random starts minus from real ones, "
                  f"the paper's Fig. 3): mean [95% stratified-bootstrap CI over the seeds both ran "
                  f"(rliable, {reps} resamples)] (seeds).", "", *paired_table(ends, games, reps)]
    transform = transform_table(logs, reps)
    if transform:
        lines += ["", "What the transformation did to the dreamed states it changed (about 1/H of them): the fraction "
                      "of z's categoricals whose class changed, the mean |delta h| per unit and the mean |v(s') - v(s)| "
                      f"of the critic, each averaged over the night's epochs of a run: mean [{how}].", "", *transform]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def seed_curves(runs, label, game):
    """(global steps averaged over seeds, (seeds, points) test returns, points in the day) of one method on one
    game, or None if it has no runs. The seeds are lined up at the day's end: a day that lacks a point (a killed
    and resumed run can) shifts only its earlier points."""
    seeds = [points for (lab, gm, _), points in sorted(runs.items()) if lab == label and gm == game]
    if not seeds:
        return None
    days, nights = zip(*map(split, seeds))
    n_day, n_night = min(map(len, days)), min(map(len, nights))
    seeds = [d[len(d) - n_day:] + n[:n_night] for d, n in zip(days, nights)]
    return (np.array([[p.step for p in s] for s in seeds]).mean(axis=0), np.array([[p.test for p in s] for s in seeds]),
            n_day)


def draw_panel(ax, runs, methods, game, reps):
    """One game: the shared day in gray, then each method's night, mean and 95% CI across seeds."""
    curves = {label: seed_curves(runs, label, game) for label in methods}
    curves = {label: c for label, c in curves.items() if c is not None}
    seeds = sorted({len(tests) for _, tests, _ in curves.values()})
    ax.set_title(game + (f" ({'/'.join(map(str, seeds))} seeds)" if seeds else ": no runs"), fontsize=11)
    for c, (label, (steps, tests, n_day)) in enumerate(curves.items()):
        mean, low, high = interval(tests, mean_over_seeds, reps)
        parts = [(slice(0, n_day), DAY_COLOUR, "day (shared by every night)")] if c == 0 else []
        # each night from the day's last point on
        parts.append((slice(n_day - 1, None), COLOURS[label], label))
        for part, colour, name in parts:
            ax.fill_between(steps[part], low[part], high[part], color=colour, alpha=0.18, linewidth=0)
            ax.plot(steps[part], mean[part], color=colour, linewidth=2, label=name)
        if c == 0:
            ax.axvline(steps[n_day - 1], color="black", linewidth=1)
            for text, align in (("day ", "right"), (" night", "left")):
                ax.text(steps[n_day - 1], 0.02, text, transform=ax.get_xaxis_transform(), ha=align, va="bottom")
    if game in REFERENCE:
        for value, style, name in zip(REFERENCE[game], (":", "--"), ("random policy", "PPO after 1M steps")):
            ax.axhline(value, color="black", linestyle=style, linewidth=1, label=f"{name} (SPEC 8)")
    ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    ax.grid(alpha=0.3)


def draw_figure(runs, methods, title, path, reps, panel=draw_panel, x_label=X_LABEL):
    """One panel per game (two to a row), a shared legend below (three columns, two under one panel), 460 px a panel
    at README width. panel draws one game's lines (tools/day_study.py draws days alone)."""
    games = sorted({game for (_, game, _) in runs})
    cols, rows = min(len(games), 2), math.ceil(len(games) / 2)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 1.2 + 3.2 * rows), squeeze=False, layout="constrained")
    for ax, game in zip(axes.flat, games):
        panel(ax, runs, methods, game, reps)
        ax.set_xlabel(x_label, fontsize=9)
        ax.set_ylabel(Y_LABEL, fontsize=9)
    for ax in axes.flat[len(games):]:
        ax.set_visible(False)
    fig.suptitle(f"{title}\nmean across seeds, shaded: 95% bootstrap CI", fontsize=11)
    handles = {}
    for ax in axes.flat:
        handles.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 1 + cols),
               fontsize=9, frameon=False)
    fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: the same logs, the same bytes
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="the benchmark's --log-dir")
    parser.add_argument("--out", default="docs/benchmark", help="folder for results.csv, results.md, fig*.png")
    parser.add_argument("--keep-logs", metavar="DIR", help="also copy each run's summary and eval curves to DIR, "
                        "small enough to commit; aggregate.py DIR draws the same files")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of each confidence interval")
    cli = parser.parse_args()
    # a resumed run drops what its killed attempt logged after its last checkpoint; TensorBoard warns of that
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    logs = read_logs(cli.log_dir)
    runs = load_runs(logs)
    if not runs:
        raise SystemExit(f"error: no finished night runs (summary.json) under {cli.log_dir}; run benchmark.sh first")
    os.makedirs(cli.out, exist_ok=True)
    write_csv(runs, os.path.join(cli.out, "results.csv"))
    print("\n".join(write_table(runs, logs, os.path.join(cli.out, "results.md"), cli.reps)))
    for name, (title, methods) in FIGURES.items():
        draw_figure(runs, methods, title, os.path.join(cli.out, f"{name}.png"), cli.reps)
    print(f"wrote {cli.out}/results.csv, results.md, " + ", ".join(f"{n}.png" for n in FIGURES))
    if cli.keep_logs:
        keep_logs(logs, cli.keep_logs)
        print(f"kept the summaries and eval curves in {cli.keep_logs}")


if __name__ == "__main__":
    main()
