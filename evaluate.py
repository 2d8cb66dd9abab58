"""Re-score a finished (or killed) run without training: its agent plays fresh episodes on test levels and on training
levels with the evaluation code of the script that made it, on any difficulty and level range.

    python evaluate.py runs/benchmark/coinrun__value__1                          # 200 + 200 episodes, the run's levels
    python evaluate.py runs/benchmark/coinrun__value__1 --distribution-mode hard --episodes 500
    python evaluate.py runs/benchmark/coinrun__day__1/day.pt --num-levels 500 --start-level 1000

A run folder is read from its weights.pt, else its checkpoint.pt, else its day.pt; a .pt file is read as it is. The
levels follow from --seed (the run's by default: the levels of the run's own evaluations) and the level flags, so the
same command gives the same numbers. Writes evaluation_<episodes>_<mode>[_levels<start>+<num>][_seed<seed>].json beside
the checkpoint (the level and seed parts only where they differ from the run's) and prints one line with the mean
returns and their standard errors.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
from checkpoints import build, checkpoint_path, read  # noqa: E402

MODES = ("easy", "hard", "extreme", "memory")  # exploration mode fixes the levels itself: it has no level range
MEMORY_GAMES = ("caveflyer", "dodgeball", "heist", "jumper", "maze", "miner")  # ProcGen's games with a memory mode


def out_name(cli, run_args):
    """The JSON's file name: the parts that differ from the run's evaluations only."""
    name = f"evaluation_{cli.episodes}_{cli.distribution_mode or run_args['distribution_mode']}"
    start = run_args["start_level"] if cli.start_level is None else cli.start_level
    levels = run_args["num_levels"] if cli.num_levels is None else cli.num_levels
    if (start, levels) != (run_args["start_level"], run_args["num_levels"]):
        name += f"_levels{start}+{levels}"
    if cli.seed is not None and cli.seed != run_args["seed"]:
        name += f"_seed{cli.seed}"
    return name + ".json"


def levels(args):
    """The training levels, in words."""
    if args.num_levels == 0:
        return f"training levels: all from {args.start_level}"
    return f"training levels {args.start_level}-{args.start_level + args.num_levels - 1}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder, or a weights.pt, checkpoint.pt or day.pt")
    parser.add_argument("--episodes", type=int, default=200, help="episodes on test levels, and as many on training "
                        "levels (default: 200)")
    parser.add_argument("--distribution-mode", choices=MODES, help="ProcGen difficulty (default: the run's)")
    parser.add_argument("--num-levels", type=int, help="training levels (default: the run's); test levels are the "
                        "full distribution")
    parser.add_argument("--start-level", type=int, help="first training level (default: the run's)")
    parser.add_argument("--seed", type=int, help="seed of the levels and of the agent's draws (default: the run's "
                        "own, so the levels are those of its evaluations)")
    parser.add_argument("--out", help="the JSON file to write (default: beside the checkpoint)")
    parser.add_argument("--no-cuda", action="store_true", help="use the CPU even where CUDA is available")
    cli = parser.parse_args()
    if cli.episodes < 2:
        sys.exit(f"error: --episodes must be 2 or more (a standard error needs two), got {cli.episodes}")
    for flag in ("num_levels", "start_level"):
        if getattr(cli, flag) is not None and getattr(cli, flag) < 0:
            sys.exit(f"error: --{flag.replace('_', '-')} must be zero or more, got {getattr(cli, flag)}")

    path = checkpoint_path(cli.run, ("weights.pt", "checkpoint.pt", "day.pt"))
    state = read(path)
    if cli.distribution_mode == "memory" and state["args"]["env_id"] not in MEMORY_GAMES:
        sys.exit(f"error: {state['args']['env_id']} has no memory mode; ProcGen has one for {', '.join(MEMORY_GAMES)}")
    overrides = {k: getattr(cli, k) for k in ("distribution_mode", "num_levels", "start_level")
                 if getattr(cli, k) is not None}
    mod, args, wm, agent, device = build(path, state, cli.seed, not cli.no_cuda, **overrides)
    out = cli.out or os.path.join(os.path.dirname(os.path.abspath(path)), out_name(cli, state["args"]))
    result = mod.evaluate(wm, agent, args, cli.episodes, device)
    progress = state.get("progress") or {}
    found = dict(checkpoint=os.path.abspath(path), method=state["method"], env_id=args.env_id,
                 run_seed=state["args"]["seed"], seed=args.seed, episodes=cli.episodes,
                 distribution_mode=args.distribution_mode, num_levels=args.num_levels, start_level=args.start_level,
                 day_epoch=progress.get("day_epoch"), night_epoch=progress.get("night_epoch"),
                 global_step=progress.get("global_step"), device=str(device), **result)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(found, f, indent=2)
    os.replace(out + ".tmp", out)
    run = os.path.basename(os.path.dirname(os.path.abspath(path)))
    print(f"{run}/{os.path.basename(path)} ({state['method']}, {args.env_id}, {args.distribution_mode}): "
          f"test {result['test_return']:.2f} ± {result['test_return_se']:.2f}, "
          f"train {result['train_return']:.2f} ± {result['train_return_se']:.2f} ({levels(args)}), "
          f"mean ± standard error over {cli.episodes} + {cli.episodes} episodes, seed {args.seed}; "
          f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
