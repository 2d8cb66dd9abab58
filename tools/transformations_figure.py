"""The paper's Fig. 2 from a real run: a replayed frame, its decoded latent state, and the three transformations.

    python tools/transformations_figure.py runs/RUN/day.pt --out docs/transformations.png

Reads a day checkpoint written with --save-checkpoint (and the replay beside it), encodes a few replayed
sequences with the world model and applies random swing (Eq. 3), DeepDream (Eq. 4) and value
diversification (Eq. 5) to their last posterior states, exactly as the scripts do at night.
"""
import argparse
import os
import sys

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shared_code import load_script  # noqa: E402

TITLES = ("real frame", "decoded state", "random swing (Eq. 3)", "DeepDream (Eq. 4)", "value diversification (Eq. 5)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a day.pt, or the run folder that holds it")
    parser.add_argument("--out", default="docs/transformations.png")
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    full = load_script("dream_ppo_full")  # holds all three transformations and the shared code
    torch.manual_seed(cli.seed)
    rng = np.random.default_rng(cli.seed)
    path = os.path.join(cli.checkpoint, "day.pt") if os.path.isdir(cli.checkpoint) else cli.checkpoint
    if not os.path.isfile(path):
        sys.exit(f"error: no checkpoint at {path}; pass a day.pt written with --save-checkpoint")
    state = torch.load(path, map_location="cpu", weights_only=False)
    args = full.Args(**{k: v for k, v in state["args"].items() if hasattr(full.Args, k)})
    wm = full.WorldModel(args, 15)
    wm.load_state_dict(state["world_model"])
    wm.requires_grad_(False)
    agent = full.Agent(wm.feat_dim, 15, args)
    agent.load_state_dict(state["agent"])
    replay = full.Replay(state["replay_rows"], args.num_envs)
    replay.load(os.path.join(os.path.dirname(os.path.abspath(path)), "replay"), state["replay_rows"])
    batch = replay.batch(replay.sample(cli.examples, args.seq_len, rng, priority=1.0), "cpu")
    with torch.no_grad():
        h, z, _, _ = wm.observe(wm.encode(batch["obs"]), batch["action"], batch["is_first"])
    h, z = h[:, -1], z[:, -1]
    columns = [batch["obs"][:, -1].float() / 255, wm.decode(full.feature(h, z))]
    for transform in (full.random_swing(h, z, args), full.deep_dream(wm, h, z, args),
                      full.value_diversification(agent, h, z, args)):
        with torch.no_grad():
            columns.append(wm.decode(full.feature(*transform)))
    frames = torch.stack(columns, 1).detach().clamp(0, 1).permute(0, 1, 3, 4, 2).numpy()  # (rows, columns, 64, 64, 3)
    fig, axes = plt.subplots(len(frames), len(TITLES), figsize=(1.9 * len(TITLES), 1.9 * len(frames)), squeeze=False)
    for row, images in zip(axes, frames):
        for ax, image in zip(row, images):
            ax.imshow(image, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
    for ax, title in zip(axes[0], TITLES):
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(cli.out)), exist_ok=True)
    fig.savefig(cli.out, dpi=100, metadata={"Software": None})
    print(f"wrote {cli.out}: columns = {', '.join(TITLES)}")


if __name__ == "__main__":
    main()
