"""Audit the world model a checkpoint holds: what it predicts against what its policy really meets.

    python tools/wm_audit.py runs/benchmark/coinrun__day__1            # a run folder (its checkpoint.pt or day.pt)
    python tools/wm_audit.py a/day.pt b/checkpoint.pt --episodes 100    # several checkpoints: one table row each

The checkpoint's policy plays fresh episodes on test levels and on training levels (the levels of the run's own
evaluations, from --seed, the run's by default), with the evaluation code of the script that made the checkpoint;
then `diagnose` (diagnostics.py) measures, per split: the reward head's precision and recall at the real
reward steps, the continue head's recall at real terminals, the critic's value against the realised discounted
return, the H-step return the world model predicts from the real states (closed loop: the policy acting, the number
the night maximises; open loop: the recorded actions) against the real one, and from random starts (Eq. 2) and from
real ones, per dream step, the share of |h| > 1 and the dreamed reward and terminal rates beside the real ones.
Writes wm_audit_<checkpoint>.json beside each checkpoint (or in --out) and prints one markdown table row each.
docs/metrics.md names every field. With --figure, also wm_audit_<checkpoint>.png: the frames up to rewarded steps
beside what the world model reconstructs of them and the reward it predicts (does it see what the reward hangs on?).
"""
import argparse
import json
import os
import sys
import time

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkpoints import build, checkpoint_path, read  # noqa: E402
from shared_code import ROOT  # noqa: E402

sys.path.insert(0, ROOT)
from diagnostics import DIAGNOSED_STATES, by_step, diagnose, split_state  # noqa: E402

# The table's columns: (header, field of the audit JSON, format)
COLUMNS = (("test return", "test_return", "{:.2f}"), ("pred. H-return, closed loop", "test_closed_loop_predicted_return",
           "{:.2f}"), ("real H-return", "test_real_h_step_return", "{:.2f}"), ("gap closed", "test_closed_loop_gap",
           "{:+.2f}"), ("gap open", "test_open_loop_gap", "{:+.2f}"), ("reward prec.", "test_reward_precision", "{:.2f}"),
           ("reward recall", "test_reward_recall", "{:.2f}"), ("terminal recall", "test_terminal_recall", "{:.2f}"),
           ("value - return", "test_value_error", "{:+.2f}"), ("random start abs(h)>1, step 0",
           "random_start_h_outside_by_step", "{:.2f}"), ("random start reward, step 0", "random_start_reward_by_step",
           "{:.3f}"), ("real reward rate", "test_real_reward_mean", "{:.3f}"))


def start_diagnostics(mod, wm, agent, h, z, args):
    """Per dream step from the starts (h, z), dreamed with the script `mod`'s dream(): the share of h's units
    outside (-1, 1), where no posterior state lies, and the dreamed reward and terminal rates."""
    traj, mask, _, _ = mod.dream(wm, agent, h, z, args)
    outside = (traj["feat"][..., :wm.deter].abs() > 1).float().mean((1, 2))  # (H,)
    return dict(h_outside_by_step=outside.tolist(), reward_by_step=by_step(traj["reward"], mask),
                terminal_by_step=by_step(1 - traj["cont"], mask))


FIGURE_EVENTS, FIGURE_STEPS = 4, 5  # --figure: the first rewarded steps drawn, and the frames up to each


def reward_windows(rec, events=FIGURE_EVENTS, steps=FIGURE_STEPS):
    """(n, steps) rows of a recording: the `steps` rows up to and including each of its first `events` rewarded rows
    (n <= events) whose episode kept its frames and had played `steps` - 1 steps before it."""
    ends = [r for r in np.flatnonzero(rec.framed & (rec.reward != 0))
            if r >= steps - 1 and rec.env[r - steps + 1] == rec.env[r]][:events]
    return np.array([np.arange(r - steps + 1, r + 1) for r in ends], dtype=int).reshape(-1, steps)


def reward_figure(mod, wm, rec, args, path, title):
    """--figure: for each of reward_windows, the real frames above what the world model reconstructs from its
    posterior state of each (what the state holds of the frame), each titled with the reward its reward head predicts
    for that step (from h_{t+1} and a draw of the prior, as a dream credits it). Returns the windows drawn (0: no file).
    """
    rows = reward_windows(rec)
    if not len(rows):
        return 0
    device = wm.bins.device
    with mod.own_random_stream(device, args.seed), mod.acting(device, wm):
        flat = torch.from_numpy(rows.ravel())
        recon = wm.decode(rec.feat[flat].to(device)).float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        h_next = rec.h_next[flat].to(device)
        predicted = wm.heads(mod.feature(h_next, mod.sample_one_hot(wm.prior(h_next))))[0].float().cpu().numpy()
    real = rec.frames[np.searchsorted(np.flatnonzero(rec.framed), rows.ravel())]
    n, steps = rows.shape
    fig, axes = plt.subplots(2 * n, steps, figsize=(1.7 * steps, 3.6 * n), squeeze=False)
    for i, row in enumerate(rows.ravel()):
        event, step = divmod(i, steps)
        reward = f", r {rec.reward[row]:g}" if rec.reward[row] else ""
        axes[2 * event, step].imshow(real[i], interpolation="nearest")
        axes[2 * event, step].set_title(f"real t{step - steps + 1:+d}{reward}", fontsize=8)
        axes[2 * event + 1, step].imshow(recon[i], interpolation="nearest")
        axes[2 * event + 1, step].set_title(f"model, pred. r {predicted[i]:.2f}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(f"{title}: the frames up to a rewarded step t (rows 1, 3, ...) and the world model's reconstruction "
                 "of each (rows 2, 4, ...)", fontsize=9, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return n


def audit(path, episodes, seed=None, cuda=True, figure=None):
    """The audit of one checkpoint, as a dict (the JSON's content); with `figure` (path, title), its reward_figure."""
    state = read(path)
    mod, args, wm, agent, device = build(path, state, seed, cuda)
    start = time.time()
    result, recording = mod.evaluate(wm, agent, args, episodes, device, record=True)
    at_night = state["progress"]["night_epoch"] > 0
    found = diagnose(mod, wm, agent, recording, args, mod.night_gamma(args) if at_night else args.gamma)
    n = min(DIAGNOSED_STATES, len(recording.env))  # random starts (Eq. 2) against as many real ones
    real = recording.feat[np.sort(np.random.default_rng(args.seed).choice(len(recording.env), n, replace=False))]
    with mod.own_random_stream(device, args.seed), mod.acting(device, wm, agent):
        for name, (h, z) in (("random_start", mod.random_starts(wm, n)), ("real_start", split_state(wm, real))):
            found.update({f"{name}_{k}": v for k, v in start_diagnostics(mod, wm, agent, h, z, args).items()})
    if figure is not None and not reward_figure(mod, wm, recording, args, *figure):
        print(f"{figure[1]}: no rewarded step with {FIGURE_STEPS - 1} before it in the filmed episodes, no figure",
              file=sys.stderr)
    progress = state["progress"]
    return dict(checkpoint=os.path.abspath(path), method=state["method"], env_id=args.env_id, seed=args.seed,
                run_seed=state["args"]["seed"], day_epoch=progress["day_epoch"], night_epoch=progress["night_epoch"],
                global_step=progress["global_step"], episodes=episodes, seconds=time.time() - start,
                **result, **found)


def row(name, found):
    cells = []
    for _, key, form in COLUMNS:
        value = found.get(key)
        value = value[0] if isinstance(value, list) else value
        cells.append("" if value is None else form.format(value))
    return f"| {name} | " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="day.pt, checkpoint.pt, or run folders holding one")
    parser.add_argument("--episodes", type=int, default=50, help="episodes on test levels, and as many on training "
                        "levels (default: 50)")
    parser.add_argument("--seed", type=int, help="seed of the levels and of the audit's random draws (default: the "
                        "run's own, so the levels are those of its evaluations)")
    parser.add_argument("--out", help="folder for the JSON files (default: beside each checkpoint)")
    parser.add_argument("--figure", action="store_true", help="also draw wm_audit_<checkpoint>.png beside the JSON: "
                        f"the {FIGURE_STEPS} frames up to each of the first {FIGURE_EVENTS} rewarded steps, above the "
                        "world model's reconstruction of each and the reward it predicts")
    parser.add_argument("--no-cuda", action="store_true", help="use the CPU even where CUDA is available")
    cli = parser.parse_args()
    if cli.episodes < 2:
        sys.exit(f"error: --episodes must be 2 or more, got {cli.episodes}")
    paths = [checkpoint_path(p) for p in cli.checkpoints]
    print("| checkpoint | " + " | ".join(h for h, _, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for path in paths:
        run = os.path.basename(os.path.dirname(os.path.abspath(path)))
        stem = os.path.splitext(os.path.basename(path))[0]
        out_dir = cli.out or os.path.dirname(os.path.abspath(path))
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, f"wm_audit_{run}_{stem}" if cli.out else f"wm_audit_{stem}")
        found = audit(path, cli.episodes, cli.seed, not cli.no_cuda, (out + ".png", f"{run}/{stem}") if cli.figure
                      else None)
        out += ".json"
        with open(out + ".tmp", "w") as f:
            json.dump(found, f, indent=1)
        os.replace(out + ".tmp", out)
        print(row(f"{run}/{stem}", found), flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
