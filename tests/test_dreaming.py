"""Random starts (Eq. 2), the transformation probability 1/H, continuing from the transformed state, terminal masks."""
import pytest
import torch

from conftest import tiny_args


def models(mod, **overrides):
    torch.manual_seed(0)
    args = tiny_args(mod, **overrides)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    return args, wm, mod.Agent(wm.feat_dim, 15, args)


def test_random_starts_follow_eq2(mod, monkeypatch):
    args, wm, _ = models(mod)
    calls = []
    img_step = wm.img_step
    monkeypatch.setattr(wm, "img_step", lambda h, z, a: calls.append((h, z, a)) or img_step(h, z, a))
    h0, z0 = mod.random_starts(wm, 20000)
    (h_init, z_init, a_init), = calls
    assert abs(h_init.mean()) < 0.01 and abs(h_init.std() - 1) < 0.01  # h_init ~ N(0, I)
    assert torch.equal(z_init.sum(-1), torch.ones(20000, wm.C))  # one-hot
    freq = z_init.mean((0, 1))
    assert (freq - 1 / wm.J).abs().max() < 0.01  # uniform classes
    assert not a_init.any()  # a_init = 0
    assert torch.allclose(h0, img_step(h_init, z_init, a_init))  # h_0 = f(h_init, z_init, a_init)
    assert torch.allclose(z0.sum(-1), torch.ones(20000, wm.C)) and ((z0 - z0.round()).abs() < 1e-6).all()


def test_each_state_is_transformed_with_probability_one_over_h(mod):
    args, wm, agent = models(mod, horizon=8)
    for eps, expected in ((None, 1 / 8), (0.5, 0.5)):
        args.eps_dream = eps
        h, z = mod.random_starts(wm, 2000)
        seen = []
        traj, mask, examples, transformed = mod.dream(wm, agent, h, z, args,
                                                      transform=lambda h, z: seen.append(len(h)) or (h, z))
        total, n = 2000 * 8, transformed["count"]
        assert n == sum(seen) and transformed["z_changed"] == transformed["h_change"] == 0  # the identity
        assert abs(n / total - expected) < 4 * (expected * (1 - expected) / total) ** 0.5
        assert len(examples) == 8 and traj["feat"].shape == (8, 2000, wm.feat_dim)


def test_the_dream_goes_on_from_the_transformed_state(mod):
    args, wm, agent = models(mod, horizon=3, eps_dream=1.0)
    before = []

    def transform(h, z):
        before.append(h.clone())
        return h + 1.0, torch.roll(z, 1, -1)

    h, z = mod.random_starts(wm, 6)
    traj, mask, examples, transformed = mod.dream(wm, agent, h, z, args, transform)
    # every categorical moved to the next class, every unit of h by 1: what the night logs as dream/transform_*
    assert transformed["count"] == 6 * 3 and transformed["z_changed"] == 1.0
    assert transformed["h_change"] == pytest.approx(1.0) and transformed["value_change"] >= 0
    assert torch.allclose(traj["feat"][0], mod.feature(h + 1.0, torch.roll(z, 1, -1)))  # the agent saw the new state
    h_after = traj["feat"][0, :, : args.deter]
    z_after = traj["feat"][0, :, args.deter:].reshape(6, wm.C, wm.J)
    with torch.no_grad():
        assert torch.allclose(before[1], wm.img_step(h_after, z_after, traj["action"][0]), atol=1e-6)
    assert len(examples) == 8 and torch.allclose(examples[0][1], traj["feat"][0, 0])


def test_steps_after_a_dreamed_terminal_are_masked(mod, monkeypatch):
    args, wm, agent = models(mod, horizon=6)
    def heads(feat):  # (H, B, F): the dream ends after step 2 for the first half of the batch
        cont = torch.ones(feat.shape[:-1])
        cont[2, : feat.shape[1] // 2] = -1
        return torch.zeros(feat.shape[:-1]), cont

    monkeypatch.setattr(wm, "heads", heads)
    h, z = mod.random_starts(wm, 10)
    traj, mask, _, _ = mod.dream(wm, agent, h, z, args)
    assert mask[:, :5].tolist() == [[1.0] * 5] * 3 + [[0.0] * 5] * 3  # steps 0-2 train, 3-5 do not
    assert mask[:, 5:].all() and traj["cont"][2, :5].eq(0).all() and traj["cont"][:, 5:].eq(1).all()
    batch = mod.ppo_batch(traj, 1 - 1 / args.horizon, args, mask)
    assert batch["mask"].sum() == 10 * 6 - 5 * 3
