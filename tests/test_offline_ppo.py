"""Offline PPO (GePPO): equal to PPO when the data is on-policy; truncated importance weights; replayed batches."""
import numpy as np
import torch

from conftest import load_script, tiny_args
from test_ppo import random_batch
from test_replay import rows

mod = load_script("offline_ppo.py")


def test_geppo_equals_ppo_when_the_behaviour_policy_is_the_current_one():
    args, agent, feat, action, logp, adv, target = random_batch(mod, 64)
    geppo, _ = mod.ppo_loss(agent, feat, action, logp, logp, adv, target, torch.ones(64), args)
    ratio = torch.ones(64)  # pi / pi_old at the start of an update
    l_clip = torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
    dist = agent.policy(feat)
    v_loss = mod.two_hot_loss(agent.critic(feat), target, agent.bins)
    assert torch.allclose(geppo, (-l_clip + 0.5 * v_loss - 0.001 * dist.entropy()).mean(), atol=1e-6)


def test_geppo_clips_around_the_current_ratio():
    args, agent, feat, action, logp, _, _ = random_batch(mod, 64)
    adv = torch.ones(64)
    logp_b = logp - 1.0  # behaviour policy less likely: pi / mu = e
    loss, stats = mod.ppo_loss(agent, feat, action, logp_b, logp, adv, torch.zeros(64), torch.ones(64), args)
    _, ppo_stats = mod.ppo_loss(agent, feat, action, logp, logp, adv, torch.zeros(64), torch.ones(64), args)
    # ratio e sits at the centre of its clip range [e - 0.2, e + 0.2]: nothing is clipped, the surrogate is -e
    assert stats[4] == 0 and torch.isclose(stats[0], torch.tensor(-np.e), atol=1e-5)
    assert torch.isclose(ppo_stats[0], torch.tensor(-1.0), atol=1e-6)


def test_importance_weights_are_truncated():
    logp_b = torch.log(torch.tensor([0.1, 0.5, 0.9]))
    logp = torch.log(torch.tensor([0.3, 0.25, 0.9]))
    assert torch.allclose(mod.truncated_importance_weights(logp, logp_b), torch.tensor([1.0, 0.5, 1.0]))


def test_night_batch_is_replayed_experience(monkeypatch):
    torch.manual_seed(0)
    args = tiny_args(mod, night_updates=3, dream_batch_size=2, horizon=4, burn_in=3)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    replay = mod.Replay(500, 2)
    data = rows(300)
    data["reward"][:] = np.arange(300)[:, None]  # reward = row index, to see which rows were used
    data["logp"][:] = -20.0  # a behaviour policy far less likely than the agent's: weights truncate to 1
    replay.add(data)
    seen = {}
    gae = mod.compute_gae
    monkeypatch.setattr(mod, "compute_gae", lambda *a: seen.update(trace=a[6]) or gae(*a))
    batch, traj, mask, examples, transformed = mod.night_experience(wm, agent, replay, args, np.random.default_rng(0))
    assert traj["reward"].shape == (4, 6) and len(batch["feat"]) == 24 and transformed == dict(count=0) and mask.all()
    assert (torch.diff(traj["reward"], dim=0) == 1).all()  # H consecutive real rows per sequence
    assert (traj["reward"][0] >= 3).all()  # after the burn-in
    assert torch.equal(seen["trace"], torch.ones(4, 6)) and torch.equal(batch["logp"], torch.full((24,), -20.0))
