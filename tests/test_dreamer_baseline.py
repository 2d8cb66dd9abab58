"""The Dreamer baseline: untransformed dreams, from random starts or from replayed posterior states (Fig. 3)."""
import numpy as np
import torch

from conftest import load_script, tiny_args
from test_replay import rows

mod = load_script("dreamer_baseline.py")


def setup(init_states):
    torch.manual_seed(0)
    args = tiny_args(mod, init_states=init_states, night_updates=5, dream_batch_size=3)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    replay = mod.Replay(500, 2)
    replay.add(rows(200))
    return args, wm, mod.Agent(wm.feat_dim, 15, args), replay


def test_no_transformation():
    args, wm, agent, replay = setup("random")
    batch, traj, mask, examples, transformed = mod.night_experience(wm, agent, replay, args, np.random.default_rng(0))
    assert transformed == dict(count=0) and examples == [] and traj["feat"].shape[:2] == (args.horizon, 15)


def test_real_starts_are_posterior_states_of_replayed_sequences(monkeypatch):
    args, wm, agent, replay = setup("real")
    starts = []
    dream = mod.dream
    monkeypatch.setattr(mod, "dream", lambda wm, agent, h, z, args, transform=None: starts.append((h, z)) or dream(
        wm, agent, h, z, args, transform))
    torch.manual_seed(7)
    mod.night_experience(wm, agent, replay, args, np.random.default_rng(3))
    (h, z), = starts
    assert h.shape == (15, args.deter)
    index = replay.sample(2, args.seq_len, np.random.default_rng(3))  # the same draw: ceil(15 / 8) = 2 sequences
    batch = replay.batch(index, "cpu")
    torch.manual_seed(7)  # the same posterior samples
    with torch.no_grad():
        h_ref, _, _, _ = wm.observe(wm.encode(batch["obs"]), batch["action"], batch["is_first"])
    assert torch.allclose(h, h_ref.flatten(0, 1)[:15], atol=1e-5)
