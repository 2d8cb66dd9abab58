"""The day agent's study (issue 10): every configuration of the day tried, its day-end returns and its day curves.

    python tools/day_study.py runs/day_agent --out docs/day_agent --keep-logs docs/day_agent/logs --order "base quick"

Reads day-only runs (--night-epochs 0), one folder of runs per configuration, LOG_DIR/<config>/<game>__day__<seed>/,
as `bash benchmark.sh --methods "" --log-dir LOG_DIR/<config> -- FLAGS` lays them out; a run without summary.json
is unfinished and skipped. --order names the configurations to study in the order their changes were made (by
default every configuration, sorted by name); CONFIG:BASE compares a configuration with BASE instead of the one before
it (a branch tried off the line, for example). Writes:
- results.csv: one row per run, its day-end test and train return and the episodes each of them averages;
- results.md: per configuration and game, the day-end returns (mean and 95% CI over seeds), the worst seed, the
  seeds that beat a random policy, the day's wall time, and the effect of the configuration against the one before
  it in the order (or its named BASE): the mean difference of day-end test return over the seeds both ran, with a CI
  over those pairs, so that each change is measured against the configuration it changed;
- day_curves.png: test return against real environment steps, one line per configuration, one panel per game.
The statistics and the figure's layout are aggregate.py's (rliable's stratified bootstrap from a fixed seed): the
same logs give the same files byte for byte, and so do the summaries and curves that --keep-logs keeps.
"""
import argparse
import csv
import glob
import logging
import math
import os

import numpy as np

from shared_code import load_script

agg = load_script("aggregate")  # also selects matplotlib's Agg backend, before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

COLUMNS = ["game", "seed", "config", "day_end_test_return", "day_end_train_return", "eval_episodes"]
X_LABEL = "real environment steps"


def parse_order(text):
    """--order's words, "CONFIG" or "CONFIG:BASE", as (configurations, {configuration: the one it is compared with})."""
    configs, against = [], {}
    for word in text.split():
        config, _, base = word.partition(":")
        if base and base not in configs:
            raise SystemExit(f"error: --order compares {config} with {base}, which must come before it in --order")
        if configs:
            against[config] = base or configs[-1]
        configs.append(config)
    return configs, against


def read_study(log_dir, order=None):
    """(configurations in order, {configuration: aggregate.read_logs of its finished runs}, unfinished runs of any
    configuration)."""
    found = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(log_dir, "*", "")))
    logs = {config: agg.read_logs(os.path.join(log_dir, config)) for config in found}
    configs = order or [config for config in found if logs[config]]
    if not configs:
        raise SystemExit(f"error: no finished day runs (summary.json) under {log_dir}/<config>/; run benchmark.sh")
    missing = [config for config in configs if not logs.get(config)]
    if missing:
        raise SystemExit(f"error: --order names configurations without finished runs under {log_dir}: "
                         f"{', '.join(missing)}")
    unfinished = len(glob.glob(os.path.join(log_dir, "*", "*", ""))) - sum(map(len, logs.values()))
    return configs, {config: logs[config] for config in configs}, unfinished


def day_ends(logs, configs):
    """{(config, game, seed): (summary, eval curve)} sorted by the configurations' order, game and seed."""
    runs = {(config, log.summary["env_id"], log.summary["seed"]): (log.summary, log.curve)
            for config in configs for log in logs[config]}
    return dict(sorted(runs.items(), key=lambda item: (configs.index(item[0][0]), *item[0][1:])))


def write_csv(runs, path):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for (config, game, seed), (summary, _) in runs.items():
            out.writerow([game, seed, config, f"{summary['day_end_test_return']:.4g}",
                          f"{summary['day_end_train_return']:.4g}", agg.eval_episodes(summary)[1]])


def by_seed(runs, config, game):
    """{seed: summary} of one configuration on one game."""
    return {seed: summary for (c, g, seed), (summary, _) in runs.items() if (c, g) == (config, game)}


def effect(runs, config, before, game, reps):
    """Cell: config's day-end test return minus before's, the mean over the seeds both ran, with a bootstrap CI
    over those pairs: the same seed's level draws and initial weights cancel, which is why the seeds are paired."""
    now, then = ({seed: summary["day_end_test_return"] for seed, summary in by_seed(runs, c, game).items()}
                 for c in (config, before))
    if not then:
        return ""  # the base configuration never ran this game: nothing to compare with
    text, seeds = agg.paired_difference(now, then, reps)
    return f"{text} vs {before} ({seeds} seeds)" if seeds else f"no seed shared with {before}"


def study_table(runs, configs, reps, against):
    """Markdown lines: one row per configuration and game, the games one after another, each in the given order;
    each configuration's effect is against against[config] (parse_order's second value)."""
    lines = ["| config | game | seeds | day end, test | day end, train | worst seed, test | seeds > random "
             "| day, minutes | effect on test |", "|---|---|---|---|---|---|---|---|---|"]
    for game in sorted({game for _, game, _ in runs}):
        for config in configs:
            summaries = list(by_seed(runs, config, game).values())
            if not summaries:
                continue
            ends = np.array([[s["day_end_test_return"], s["day_end_train_return"]] for s in summaries])
            test, train = zip(*agg.interval(ends, agg.mean_over_seeds, reps))
            above = f"{(ends[:, 0] > agg.REFERENCE[game][0]).sum()}/{len(ends)}" if game in agg.REFERENCE else ""
            minutes = np.mean([s.get("day_seconds", math.nan) for s in summaries]) / 60
            cells = [config, game, len(ends), agg.fmt(*test), agg.fmt(*train), f"{ends[:, 0].min():.2f}", above,
                     f"{minutes:.1f}", effect(runs, config, against[config], game, reps) if config in against else ""]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def write_table(runs, configs, path, reps, against):
    """results.md: the table under a line that says what its numbers are."""
    episodes = "/".join(map(str, sorted({agg.eval_episodes(summary)[1] for summary, _ in runs.values()})))
    games = sorted({game for _, game, _ in runs} & set(agg.REFERENCE))
    randoms = ", ".join(f"{game} {agg.REFERENCE[game][0]}" for game in games)
    lines = [f"Day-only runs (--night-epochs 0), one row per configuration and game, configurations in the order "
             f"their changes were made. Day end: the return (raw game score) at the day's end, each seed's averaging "
             f"{episodes} episodes on test levels (the full distribution) and as many on training levels: mean "
             f"[95% stratified-bootstrap CI over seeds (rliable, {reps} resamples)]. Worst seed: the lowest day-end "
             f"test return. Seeds > random: seeds whose test return beats a random policy's (SPEC 8: {randoms}). "
             f"Day, minutes: mean wall time of the day. Effect on test: day-end test return minus that of the "
             f"configuration it names, the mean over the seeds both ran [95% bootstrap CI over those pairs]; blank "
             f"where that configuration did not run the game.", "",
             *study_table(runs, configs, reps, against)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return lines


def draw_panel(ax, curves, configs, game, reps):
    """One game: each configuration's day, mean and 95% CI across seeds, and a random policy's score."""
    seeds = set()
    for i, config in enumerate(configs):
        colour = plt.cm.tab10(i % 10)  # by place in the order: the same colour in every panel
        curve = agg.seed_curves(curves, config, game)
        steps, mean = [], []  # a configuration without runs on this game still holds its place in the legend
        if curve is not None:
            steps, tests, _ = curve
            mean, low, high = agg.interval(tests, agg.mean_over_seeds, reps)
            ax.fill_between(steps, low, high, color=colour, alpha=0.18, linewidth=0)
            seeds.add(len(tests))
        ax.plot(steps, mean, color=colour, linewidth=2, label=config)
    ax.set_title(f"{game} ({'/'.join(map(str, sorted(seeds)))} seeds)", fontsize=11)
    if game in agg.REFERENCE:
        ax.axhline(agg.REFERENCE[game][0], color="black", linestyle=":", linewidth=1, label="random policy (SPEC 8)")
    ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    ax.grid(alpha=0.3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log_dir", help="folder of configurations, each a benchmark.sh --log-dir of day-only runs")
    parser.add_argument("--out", default="docs/day_agent", help="folder for results.csv, results.md, day_curves.png")
    parser.add_argument("--keep-logs", metavar="DIR", help="also copy each run's summary and eval curves to "
                        "DIR/<config>/<run>, small enough to commit; day_study.py DIR draws the same files")
    parser.add_argument("--order", help='configurations in the order their changes were made, e.g. "base quick"; '
                        'each is compared with the one before it, or with BASE when written CONFIG:BASE (e.g. '
                        '"base wide:base quick:base"; default: every configuration, by name)')
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of each confidence interval")
    cli = parser.parse_args()
    logging.getLogger("tensorboard").setLevel(logging.ERROR)  # a resumed run's dropped events: see aggregate.py
    order, against = parse_order(cli.order) if cli.order else (None, None)
    configs, logs, unfinished = read_study(cli.log_dir, order)
    against = against or parse_order(" ".join(configs))[1]  # without --order: each against the one before it
    runs = day_ends(logs, configs)
    os.makedirs(cli.out, exist_ok=True)
    write_csv(runs, os.path.join(cli.out, "results.csv"))
    print("\n".join(write_table(runs, configs, os.path.join(cli.out, "results.md"), cli.reps, against)))
    curves = {key: agg.tag_points(curve, summary, math.inf) for key, (summary, curve) in runs.items()}
    agg.draw_figure(curves, configs, "The day alone: test return of each configuration",
                    os.path.join(cli.out, "day_curves.png"), cli.reps, panel=draw_panel, x_label=X_LABEL)
    print(f"wrote {cli.out}/results.csv, results.md, day_curves.png from {len(runs)} runs of {len(configs)} "
          f"configurations; skipped {unfinished} unfinished runs under {cli.log_dir} (no summary.json)")
    if cli.keep_logs:
        for config in configs:
            agg.keep_logs(logs[config], os.path.join(cli.keep_logs, config))
        print(f"kept the summaries and eval curves in {cli.keep_logs}")


if __name__ == "__main__":
    main()
