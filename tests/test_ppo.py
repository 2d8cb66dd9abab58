"""Eqs. 6-8 against a plain reference, and the update's minibatching."""
import numpy as np
import pytest
import torch

from conftest import tiny_args
from test_math import reference_two_hot


def reference_loss(logits, critic_logits, action, logp_old, adv, target, bins, clip=0.2, c_v=0.5, c_e=0.001):
    logp_all = torch.log_softmax(logits, -1)
    logp = logp_all.gather(1, action[:, None])[:, 0]
    ratio = torch.exp(logp - logp_old)
    l_clip = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
    sym = torch.sign(target) * torch.log(1 + target.abs())
    two_hot = torch.tensor(np.stack([reference_two_hot(v, bins.numpy()) for v in sym.tolist()]), dtype=torch.float32)
    l_vf = -(two_hot * torch.log_softmax(critic_logits, -1)).sum(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return (-l_clip + c_v * l_vf - c_e * entropy).mean()


def test_loss_matches_plain_ppo(mod):
    torch.manual_seed(0)
    args = tiny_args(mod)
    agent = mod.Agent(20, 15, args)
    torch.nn.init.normal_(agent.critic[-1].weight, std=0.3)
    feat, action = torch.randn(64, 20), torch.randint(0, 15, (64,))
    with torch.no_grad():
        logp_old = agent.policy(feat).log_prob(action) + torch.randn(64) * 0.3  # ratios inside and outside the clip
    adv, target = torch.randn(64) * 3, torch.randn(64) * 5
    loss, stats = mod.ppo_loss(agent, feat, action, logp_old, logp_old, adv, target, torch.ones(64), args)
    expected = reference_loss(agent.actor(feat), agent.critic(feat), action, logp_old, adv, target, agent.bins)
    assert torch.allclose(loss, expected, atol=1e-5)
    assert 0 < stats[4] < 1  # some ratios were clipped, some not


def random_batch(module, n):
    """A small agent and n random on-policy transitions: args, agent, feat, action, logp, advantage, target."""
    torch.manual_seed(0)
    args = tiny_args(module)
    agent = module.Agent(20, 15, args)
    feat, action, adv, target = torch.randn(n, 20), torch.randint(0, 15, (n,)), torch.randn(n), torch.randn(n)
    with torch.no_grad():
        logp = agent.policy(feat).log_prob(action)
    return args, agent, feat, action, logp, adv, target


def test_masked_transitions_do_not_count(mod):
    args, agent, feat, action, logp, adv, target = random_batch(mod, 10)
    mask = torch.tensor([1.0] * 6 + [0.0] * 4)
    masked, _ = mod.ppo_loss(agent, feat, action, logp, logp, adv, target, mask, args)
    first, _ = mod.ppo_loss(agent, feat[:6], action[:6], logp[:6], logp[:6], adv[:6], target[:6], torch.ones(6), args)
    assert torch.allclose(masked, first)


def test_update_improves_the_surrogate_and_uses_b_a_times_h_minibatches(mod, monkeypatch):
    torch.manual_seed(0)
    args = tiny_args(mod, dream_batch_size=12, horizon=16, update_epochs=1)
    agent = mod.Agent(20, 15, args)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)
    feat, action = torch.randn(4992, 20), torch.randint(0, 15, (4992,))
    with torch.no_grad():
        logp = agent.policy(feat).log_prob(action)
    adv = torch.where(action == 3, 1.0, -0.1)
    batch = dict(feat=feat, action=action, logp=logp, advantage=adv, target=adv, mask=torch.ones(4992))
    sizes = []
    loss = mod.ppo_loss
    monkeypatch.setattr(mod, "ppo_loss", lambda agent, feat, *a: sizes.append(len(feat)) or loss(agent, feat, *a))
    stats = mod.ppo_update(agent, optimizer, batch, args, mod.ReturnScale(0.99))
    assert sizes == [192] * 26
    with torch.no_grad():
        assert agent.policy(feat).probs[:, 3].mean() > 1.5 / 15
    assert set(stats) == {"policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "return_scale"}


def test_return_scale_is_updated_on_every_minibatch(mod):
    """DreamerV3 updates P at every gradient step: after 4 iterations x 26 minibatches of returns spanning 0..10,
    P = 10 (1 - 0.99^104), not the 10 (1 - 0.99) of one update per PPO update."""
    args, agent, feat, action, logp, adv, _ = random_batch(mod, 4992)
    target = (torch.arange(4992) % 2 * 10).float()  # every minibatch's 5th-95th percentile range is 10
    batch = dict(feat=feat, action=action, logp=logp, advantage=adv, target=target, mask=torch.ones(4992))
    args.dream_batch_size, args.horizon = 12, 16
    scale = mod.ReturnScale(0.99)
    stats = mod.ppo_update(agent, torch.optim.Adam(agent.parameters()), batch, args, scale)
    assert stats["return_scale"] == pytest.approx(10 * (1 - 0.99 ** (4 * 26)), rel=1e-5)
    empty = dict(batch, mask=torch.zeros(4992))  # nothing to train on: P stays as it was
    assert mod.ppo_update(agent, torch.optim.Adam(agent.parameters()), empty, args, scale)["return_scale"] == \
        stats["return_scale"]
