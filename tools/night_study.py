"""The night study: each night's diagnostics (diagnostics.jsonl) against its test return, and the days' audits.

    python tools/night_study.py docs/night_study/logs --out docs/night_study

reads every run folder of LOGS that holds a summary.json (a benchmark's log folder, or the kept logs of
`aggregate.py --keep-logs`) and writes OUT/diagnostics.png (one panel per diagnostic, night epoch on x, one line per
night, the day's last evaluation at epoch 0; with several games, diagnostics_<game>.png for each), OUT/nights.md
(one row per night: game, seed, its start, lowest point and end) and OUT/audits.md (a row per wm_audit_*.json found).
"""
import argparse
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from aggregate import COLOURS, method_label  # noqa: E402

# (field of a diagnostics line, the panel's title)
PANELS = (("test_return", "test return"), ("train_return", "train return"),
          ("test_closed_loop_gap", "predicted minus real H-step return\n(policy acting, test levels)"),
          ("test_open_loop_gap", "the same, actions replayed"),
          ("test_entropy", "policy entropy (nats)"), ("test_kl_to_day", "KL to the day's policy"),
          ("test_value_error", "critic minus realised return"), ("test_death", "share of episodes died"),
          ("test_timeout", "share of episodes timed out"))
# the nights table: (header, how a night's lines and summary give the cell, format)
TABLE = (("day end", lambda lines, summary: summary["day_end_test_return"], "{:.2f}"),
         ("night end", lambda lines, summary: summary["night_end_test_return"], "{:.2f}"),
         ("gain", lambda lines, summary: summary["night_end_test_return"] - summary["day_end_test_return"], "{:+.2f}"),
         ("lowest (epoch)", lambda lines, summary: min((p["test_return"], p["night_epoch"]) for p in lines), None),
         ("gap, first point", lambda lines, summary: lines[0]["test_closed_loop_gap"], "{:+.2f}"),
         ("gap, end", lambda lines, summary: lines[-1]["test_closed_loop_gap"], "{:+.2f}"),
         ("entropy, end", lambda lines, summary: lines[-1]["test_entropy"], "{:.2f}"),
         ("KL to day, end", lambda lines, summary: lines[-1]["test_kl_to_day"], "{:.2f}"),
         ("dreamed / real reward a step", lambda lines, summary: sum(  # real: the raw game's, all episodes' steps
             sum(p["dream_reward_by_step"]) / len(p["dream_reward_by_step"]) for p in lines) / sum(
             p["test_return"] / p["test_length"] for p in lines), "{:.1f}"),
         ("timeouts, end", lambda lines, summary: lines[-1]["test_timeout"], "{:.2f}"))
STYLES = ["-", "--", ":", "-.", (0, (5, 1))]


def read_runs(logs):
    """[(label, game, seed, [diagnostics line], summary)] of every finished run with diagnostics, days included."""
    runs = []
    for path in sorted(glob.glob(os.path.join(logs, "*", "summary.json"))):
        folder = os.path.dirname(path)
        lines_path = os.path.join(folder, "diagnostics.jsonl")
        if not os.path.isfile(lines_path):
            continue
        with open(path) as f:
            summary = json.load(f)
        with open(lines_path) as f:
            lines = [json.loads(line) for line in f]
        label = "day" if summary.get("exp_name") == "day" else method_label(summary)
        runs.append((label, summary.get("env_id", "?"), summary["seed"], lines, summary))
    return runs


def draw(runs, path, title):
    fig, axes = plt.subplots(3, 3, figsize=(15, 11))
    fig.suptitle(title)
    for ax, (field, title) in zip(axes.flat, PANELS):
        for label, _, seed, lines, summary in runs:
            if label == "day":
                continue
            day_end = dict(night_epoch=0, test_return=summary["day_end_test_return"],
                           train_return=summary["day_end_train_return"])
            points = [day_end] + lines  # the night starts where its day ended
            xs = [p["night_epoch"] for p in points if p.get(field) is not None]
            ys = [p[field] for p in points if p.get(field) is not None]
            ax.plot(xs, ys, color=COLOURS.get(label, "black"), linestyle=STYLES[(seed - 1) % len(STYLES)],
                    label=f"{label}, seed {seed}", linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("night epoch")
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = max(4, -(-len(labels) // 8))  # at most 8 rows of legend, below the panels, whatever the number of nights
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.tight_layout(rect=(0, 0.015 + 0.017 * -(-len(labels) // ncol), 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def cell(lines, summary, value, form):
    try:
        found = value(lines, summary)
    except (KeyError, TypeError, ZeroDivisionError):
        return ""
    return f"{found[0]:.2f} ({found[1]})" if form is None else form.format(found)


def nights_table(runs):
    """One row per night (test levels): its day's end and its own, its lowest point, the world model's gap between
    predicted and real H-step return, the policy's entropy and KL, how rich in reward its dreams were."""
    out = ["| night | game | seed | " + " | ".join(h for h, _, _ in TABLE) + " |",
           "|---|---|---" + "|---" * len(TABLE) + "|"]
    nights = sorted((r for r in runs if r[0] != "day"), key=lambda r: (r[1], r[0], r[2]))  # game, night, seed
    for label, game, seed, lines, summary in nights:
        out.append(f"| {label} | {game} | {seed} | " + " | ".join(cell(lines, summary, v, f) for _, v, f in TABLE)
                   + " |")
    return "\n".join(out) + "\n"


def audits_table(logs):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from wm_audit import COLUMNS, row

    out = ["| checkpoint | " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for path in sorted(glob.glob(os.path.join(logs, "*", "wm_audit_*.json"))):
        with open(path) as f:
            found = json.load(f)
        name = os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path)[len("wm_audit_"):-5]
        out.append(row(name, found))
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", help="folder of run folders (full or kept logs)")
    parser.add_argument("--out", required=True, help="folder for diagnostics.png, nights.md and audits.md")
    cli = parser.parse_args()
    runs = read_runs(cli.logs)
    if not runs:
        sys.exit(f"error: no finished run with diagnostics.jsonl under {cli.logs}; run the nights with --diagnostics")
    os.makedirs(cli.out, exist_ok=True)
    games = sorted({run[1] for run in runs})
    for game in games:
        name = "diagnostics.png" if len(games) == 1 else f"diagnostics_{game}.png"
        draw([run for run in runs if run[1] == game], os.path.join(cli.out, name), f"the nights on {game}")
    with open(os.path.join(cli.out, "nights.md"), "w") as f:
        f.write(nights_table(runs))
    with open(os.path.join(cli.out, "audits.md"), "w") as f:
        f.write(audits_table(cli.logs))
    figures = "diagnostics.png" if len(games) == 1 else ", ".join(f"diagnostics_{g}.png" for g in games)
    print(f"wrote {cli.out}/{figures}, nights.md, audits.md ({len(runs)} runs)")


if __name__ == "__main__":
    main()
