"""Eq. 4: DeepDream raises the mean activation of the encoder's last convolutional layer; z stays one-hot."""
import torch

from conftest import load_script, tiny_args

mod = load_script("dream_ppo_deepdream.py")


def setup(**overrides):
    torch.manual_seed(0)
    args = tiny_args(mod, **overrides)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    h, z = mod.random_starts(wm, 64)
    return args, wm, h, z


def activation(wm, h, z):
    with torch.no_grad():
        return wm.encoder(wm.decode(mod.feature(h, z)) - 0.5).flatten(1).mean(1)


def test_objective_rises_with_steps():
    args, wm, h, z = setup()
    means = []
    for steps in (0, 2, 10):
        args.dd_steps = steps
        h1, z1 = mod.deep_dream(wm, h, z, args)
        means.append(activation(wm, h1, z1).mean().item())
    assert means[0] < means[1] < means[2]
    args.dd_steps = 10
    h1, z1 = mod.deep_dream(wm, h, z, args)
    assert (activation(wm, h1, z1) > activation(wm, h, z)).float().mean() > 0.9


def test_the_objective_is_the_last_conv_layer_on_the_decoded_image(monkeypatch):
    args, wm, h, z = setup(dd_steps=1)
    seen = []
    wm.encoder[-1].register_forward_hook(lambda m, inp, out: seen.append(out.shape))
    decode = wm.decode
    decoded = []
    monkeypatch.setattr(wm, "decode", lambda feat: decoded.append(feat.shape) or decode(feat))
    mod.deep_dream(wm, h, z, args)
    assert decoded == [(64, wm.feat_dim)] and seen == [(64, 8 * args.cnn_depth, 4, 4)]


def test_z_stays_one_hot():
    args, wm, h, z = setup()
    h1, z1 = mod.deep_dream(wm, h, z, args)
    assert torch.equal(z1.sum(-1), torch.ones(64, args.stoch)) and set(z1.unique().tolist()) <= {0.0, 1.0}
    assert ((h1 - h).abs().sum(1) > 0).all()
