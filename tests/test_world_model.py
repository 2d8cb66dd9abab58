"""RSSM filtering, episode resets, the reward/continue alignment and learning on a fixed batch."""
import numpy as np
import torch

from conftest import tiny_args


def make_batch(B=3, L=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    colour = torch.randint(0, 256, (B, L, 3, 1, 1), generator=g, dtype=torch.uint8)
    obs = colour.expand(B, L, 3, 64, 64).clone()
    obs[..., 20:40, 20:40] = 255 - obs[..., 20:40, 20:40]  # a square in the middle
    is_first = torch.zeros(B, L, dtype=torch.bool)
    is_first[0, 3] = True
    reward = (colour[:, :, 0, 0, 0] > 128).float()  # r_{t+1} follows from o_t: learnable from z_t
    return dict(obs=obs, action=torch.randint(0, 15, (B, L), generator=g), is_first=is_first, reward=reward,
                terminal=is_first.roll(-1, 1))


def test_observe_resets_at_episode_starts_and_aligns_h_next(mod):
    torch.manual_seed(0)
    wm = mod.WorldModel(tiny_args(mod), 15)
    batch = make_batch()
    with torch.no_grad():
        h, z, post, h_next = wm.observe(wm.encode(batch["obs"]), batch["action"], batch["is_first"])
        h_start = wm.initial_h(1)[0]
    assert torch.allclose(h[:, 0], h_start.expand(3, -1))  # every sequence starts from the initial state
    assert torch.allclose(h[0, 3], h_start) and not torch.allclose(h[1, 3], h_start)
    keep = ~batch["is_first"][:, 1:]
    assert torch.allclose(h_next[:, :-1][keep], h[:, 1:][keep])  # f(h_t, z_t, a_t) is the next h
    assert not torch.allclose(h_next[0, 2], h[0, 3])  # ... except across an episode start
    assert torch.allclose(z.sum(-1), torch.ones(3, 8, wm.C)) and ((z - z.round()).abs() < 1e-6).all()


def test_world_model_loss_falls_on_a_fixed_batch(mod):
    torch.manual_seed(0)
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15)
    optimizer = torch.optim.Adam(wm.parameters(), lr=5e-3)  # high, so that 150 steps show learning
    batch = make_batch()
    losses = []
    for _ in range(150):
        loss, metrics = wm.loss(batch, args)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(mod.wm_metrics(metrics))
    assert losses[-1]["loss"] < 0.6 * losses[0]["loss"]
    assert losses[-1]["reward_loss"] < losses[0]["reward_loss"]
    # the reward head separates once z has learnt the frames (about 100 steps here); averaged over the last 20
    pos, zero = (np.mean([m[f"reward_pred_on_{k}"] for m in losses[-20:]]) for k in ("pos", "zero"))
    assert pos > zero + 0.3
    for key in ("recon_loss", "cont_loss", "kl_dyn", "kl_rep", "post_entropy", "prior_entropy"):
        assert np.isfinite(losses[-1][key])


def test_reward_head_reads_the_successor_state(mod):
    """Row t's reward r_{t+1} is predicted from f(h_t, z_t, a_t), the state a dream step would reach."""
    torch.manual_seed(0)
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15)
    seen = []
    wm.reward_head.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    batch = make_batch()
    torch.manual_seed(1)
    wm.loss(batch, args)
    torch.manual_seed(1)
    with torch.no_grad():
        h, z, post, h_next = wm.observe(wm.encode(batch["obs"]), batch["action"], batch["is_first"])
    assert torch.allclose(seen[0][..., : args.deter], h_next, atol=1e-6)


def test_decoder_and_encoder_shapes(mod):
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15)
    assert wm.encode(torch.zeros(2, 5, 3, 64, 64, dtype=torch.uint8)).shape == (2, 5, 8 * args.cnn_depth * 16)
    assert wm.decode(torch.zeros(2, 5, wm.feat_dim)).shape == (2, 5, 3, 64, 64)
    full = mod.WorldModel(mod.Args(), 15)
    assert full.feat_dim == 512 + 32 * 32
    assert full.encode(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)).shape == (1, 4096)
    assert [m.out_channels for m in full.encoder if isinstance(m, torch.nn.Conv2d)] == [32, 64, 128, 256]
    assert [m.out_channels for m in full.decoder if isinstance(m, torch.nn.ConvTranspose2d)] == [128, 64, 32, 3]
    assert (full.reward_head[-1].weight == 0).all() and full.bins[0] == -20 and full.bins[-1] == 20


def test_encoder_memory_layouts_leave_the_embedding_unchanged(mod):
    """The encoder runs channels_last except its last convolution (NCHW): the same numbers as plain NCHW."""
    wm = mod.WorldModel(tiny_args(mod), 15)
    convs = [m for m in wm.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs] == [True, True, True, False]
    obs = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    x = obs.float() / 255 - 0.5
    for layer in wm.encoder:
        if isinstance(layer, torch.nn.Conv2d):
            x = torch.nn.functional.conv2d(x.contiguous(), layer.weight.contiguous(), stride=2, padding=1)
        else:
            x = layer(x)
    assert torch.allclose(wm.encode(obs), x.flatten(1), atol=1e-5)


def test_gru_matches_dreamerv3s_layernorm_gru_with_update_gate_bias_minus_one(mod):
    """h' = u * tanh(sigmoid(r) * c) + (1 - u) * h, u = sigmoid(g - 1), [r, c, g] = LN(W [x, h])."""
    torch.manual_seed(0)
    gru = mod.GRUCell(6, 4)
    torch.nn.init.normal_(gru.norm.weight), torch.nn.init.normal_(gru.norm.bias)
    x, h = torch.randn(5, 6), torch.randn(5, 4)
    parts = torch.nn.functional.layer_norm(torch.cat([x, h], -1) @ gru.linear.weight.T, (12,), gru.norm.weight,
                                           gru.norm.bias, eps=1e-3)
    reset, cand, update = parts.split(4, -1)
    update = 1 / (1 + torch.exp(-(update - 1)))
    expected = update * torch.tanh(torch.sigmoid(reset) * cand) + (1 - update) * h
    assert torch.allclose(gru(x, h), expected, atol=1e-6)
    with torch.no_grad():  # all gates at zero: the state keeps 1 - sigmoid(-1) = 73% of itself
        gru.linear.weight.zero_(), gru.norm.bias.zero_()
    assert torch.allclose(gru(x, h), (1 - torch.sigmoid(torch.tensor(-1.0))) * h, atol=1e-6)
