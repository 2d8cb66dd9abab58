"""Eq. 5: the objective (v(s) - v(s_inp))^2 rises, z stays one-hot after every step, the zero-gradient tie is broken."""
import torch

from conftest import tiny_args


def setup(mod, **overrides):
    torch.manual_seed(0)
    args = tiny_args(mod, **overrides)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    torch.nn.init.normal_(agent.critic[-1].weight, std=0.5)  # a critic whose value varies over states
    h, z = mod.random_starts(wm, 256)
    return args, agent, h, z


def objective(mod, agent, h, z, h0, z0):
    with torch.no_grad():
        return (agent.value(mod.feature(h, z)) - agent.value(mod.feature(h0, z0))) ** 2


def test_objective_rises_with_more_steps(mod):
    args, agent, h, z = setup(mod)
    gains = []
    for steps in (1, 3, 10):
        args.vd_steps = steps
        torch.manual_seed(1)
        h1, z1 = mod.value_diversification(agent, h, z, args)
        gains.append(objective(mod, agent, h1, z1, h, z).mean().item())
    assert 0 < gains[0] < gains[1] < gains[2]
    # gradient ascent beats a random move of the same size in h
    torch.manual_seed(1)
    h1, z1 = mod.value_diversification(agent, h, torch.zeros_like(z) + z, args)
    step = (h1 - h).norm(dim=1, keepdim=True)
    noise = torch.randn_like(h)
    random_move = objective(mod, agent, h + noise / noise.norm(dim=1, keepdim=True) * step, z, h, z).mean()
    assert objective(mod, agent, h1, z, h, z).mean() > 2 * random_move


def test_z_stays_one_hot_after_every_step(mod, monkeypatch):
    args, agent, h, z = setup(mod)
    seen = []
    value = agent.value
    monkeypatch.setattr(agent, "value", lambda feat: seen.append(feat.detach()) or value(feat))
    h1, z1 = mod.value_diversification(agent, h, z, args)
    assert len(seen) == 1 + args.vd_steps
    for feat in seen + [mod.feature(h1, z1)]:
        zs = feat[:, args.deter:].reshape(len(h), args.stoch, args.classes)
        assert torch.equal(zs.sum(-1), torch.ones(len(h), args.stoch)) and set(zs.unique().tolist()) <= {0.0, 1.0}
    assert (z1 != z).any()  # categoricals do change


def test_first_step_breaks_the_tie_with_a_random_sign(mod):
    args, agent, h, z = setup(mod, vd_steps=1)
    h1, z1 = mod.value_diversification(agent, h, z, args)
    assert ((h1 - h).abs().sum(1) > 0).all()  # the zero gradient at s = s_inp did not stop the ascent
    with torch.no_grad():
        moved = agent.value(mod.feature(h1, z1)) - agent.value(mod.feature(h, z))
    up = (moved > 0).float().mean()
    assert 0.35 < up < 0.65  # as often down as up: the first step follows +/- grad v


def test_steps_are_normalised_by_the_mean_absolute_gradient(mod):
    args, agent, h, z = setup(mod, vd_steps=1)
    h1, _ = mod.value_diversification(agent, h, z, args)
    feat = mod.feature(h, z).requires_grad_()
    grad, = torch.autograd.grad(agent.value(feat).sum(), feat)
    expected = args.vd_step_size * grad[:, : args.deter].abs() / grad.abs().mean(1, keepdim=True)
    assert torch.allclose((h1 - h).abs(), expected, rtol=1e-4, atol=1e-6)
