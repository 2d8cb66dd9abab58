"""FullDreamer: each transformed state gets one of the three transformations, with equal frequency."""
import torch

from conftest import load_script, tiny_args

mod = load_script("dream_ppo_full.py")


def test_all_three_with_equal_frequency(monkeypatch):
    torch.manual_seed(0)
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    counts = {}
    for name in ("random_swing", "deep_dream", "value_diversification"):
        def counted(*a, name=name):
            h, z = a[-3], a[-2]
            counts[name] = counts.get(name, 0) + len(h)
            return h + 1, z  # marks the states it touched
        monkeypatch.setattr(mod, name, counted)
    h, z = mod.random_starts(wm, 3000)
    h1, z1 = mod.any_transformation(wm, agent, h, z, args)
    assert sum(counts.values()) == 3000 and torch.allclose(h1, h + 1)
    for name, count in counts.items():
        assert abs(count - 1000) < 4 * (3000 * (1 / 3) * (2 / 3)) ** 0.5, (name, count)


def test_the_real_transformations_run_together():
    torch.manual_seed(0)
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    torch.nn.init.normal_(agent.critic[-1].weight, std=0.5)  # a zero critic gives value diversification no gradient
    h, z = mod.random_starts(wm, 30)
    h1, z1 = mod.any_transformation(wm, agent, h, z, args)
    assert ((h1 - h).abs().sum(1) > 0).all() and torch.equal(z1.sum(-1), torch.ones(30, args.stoch))
