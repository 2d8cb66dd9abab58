"""Eq. 3: h moves by unit-variance noise; each categorical is resampled with probability p_swing."""
import torch

from conftest import load_script, tiny_args

mod = load_script("dream_ppo_rnd.py")


def test_random_swing_statistics():
    torch.manual_seed(0)
    args = tiny_args(mod, stoch=32, classes=32)
    n = 4000
    h = torch.randn(n, args.deter) * 3
    z = torch.nn.functional.one_hot(torch.randint(0, 32, (n, 32)), 32).float()
    h1, z1 = mod.random_swing(h, z, args)
    noise = h1 - h
    assert abs(noise.mean()) < 0.01 and abs(noise.std() - 1) < 0.01
    assert torch.equal(z1.sum(-1), torch.ones(n, 32)) and set(z1.unique().tolist()) == {0.0, 1.0}
    changed = (z1 != z).any(-1).float().mean().item()
    expected = 0.5 * 31 / 32
    assert abs(changed - expected) < 4 * (expected * (1 - expected) / (n * 32)) ** 0.5
    new_class = z1.argmax(-1)[(z1 != z).any(-1)]
    assert (torch.bincount(new_class, minlength=32).float() / len(new_class) - 1 / 32).abs().max() < 0.01


def test_p_swing_is_used():
    torch.manual_seed(0)
    args = tiny_args(mod, stoch=32, classes=32, p_swing=0.1)
    z = torch.nn.functional.one_hot(torch.randint(0, 32, (2000, 32)), 32).float()
    _, z1 = mod.random_swing(torch.zeros(2000, args.deter), z, args)
    assert abs((z1 != z).any(-1).float().mean() - 0.1 * 31 / 32) < 0.01


def test_night_transforms_about_one_state_in_h():
    torch.manual_seed(0)
    args = tiny_args(mod, night_updates=100, dream_batch_size=20, horizon=8)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    batch, traj, mask, examples, transformed = mod.night_experience(wm, agent, None, args, None)
    n = transformed["count"]
    assert traj["feat"].shape[:2] == (8, 2000) and abs(n / 16000 - 1 / 8) < 0.015 and len(examples) == 8
    # what the night logs: p_swing (J - 1) / J of the categoricals change, |N(0, 1)| = sqrt(2 / pi) on h
    assert abs(transformed["z_changed"] - 0.5 * 3 / 4) < 0.03
    assert abs(transformed["h_change"] - (2 / torch.pi) ** 0.5) < 0.03
    assert len(batch["feat"]) == 16000
