"""The fast path (bf16 autocast, channels_last) against a plain float32 evaluation of the same batch.

Tolerances: world-model loss terms within 2% (the KL terms, near the 1-nat free bits, within 0.05 nats),
gradients with cosine similarity above 0.95 (bf16 keeps 8 bits of mantissa), values and policies
within 0.02.
"""
import numpy as np
import pytest
import torch

from conftest import tiny_args
from test_world_model import make_batch


@pytest.fixture
def precision(mod):
    """Run a block in float32 or bf16, and put the script's setting back afterwards."""
    saved = dict(mod.BF16)

    def set_bf16(on):
        mod.BF16["cpu"] = on

    yield set_bf16
    mod.BF16.update(saved)


def world_model_pass(mod, wm, args, batch):
    torch.manual_seed(3)
    wm.zero_grad()
    with mod.autocast("cpu"):
        loss, metrics = wm.loss(batch, args)
    loss.backward()
    return mod.wm_metrics(metrics), torch.cat([p.grad.flatten() for p in wm.parameters() if p.grad is not None])


def test_world_model_loss_and_gradients_match_float32(mod, precision):
    torch.manual_seed(0)
    args = tiny_args(mod, deter=64, units=64, cnn_depth=8, stoch=8, classes=8)
    wm = mod.WorldModel(args, 15)
    batch = make_batch(B=4, L=8)
    precision(False)
    exact, grad32 = world_model_pass(mod, wm, args, batch)
    precision(True)
    fast, grad16 = world_model_pass(mod, wm, args, batch)
    for key in ("loss", "recon_loss", "reward_loss", "cont_loss"):
        assert fast[key] == pytest.approx(exact[key], rel=0.02), key
    for key in ("kl_dyn", "kl_rep"):
        assert fast[key] == pytest.approx(exact[key], abs=0.05), key
    assert torch.nn.functional.cosine_similarity(grad32, grad16, dim=0) > 0.95


def test_acting_and_dreaming_match_float32(mod, precision):
    torch.manual_seed(0)
    args = tiny_args(mod, deter=64, units=64, cnn_depth=8, stoch=8, classes=8)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    torch.nn.init.normal_(agent.critic[-1].weight, std=0.05)
    h, z = mod.random_starts(wm, 64)
    results = []
    for on in (False, True):
        precision(on)
        with torch.no_grad(), mod.autocast("cpu"):
            feat = mod.feature(wm.img_step(h, z, torch.zeros(64, dtype=torch.long)), z)
            embed = wm.encode(make_batch(B=2, L=32)["obs"].flatten(0, 1))
            results.append((agent.policy(feat).probs, agent.value(feat), wm.heads(feat)[0], embed.float()))
    (p32, v32, r32, e32), (p16, v16, r16, e16) = results
    assert (p32 - p16).abs().max() < 0.02
    assert torch.allclose(v32, v16, atol=0.02) and torch.allclose(r32, r16, atol=0.02)
    assert torch.nn.functional.cosine_similarity(e32.flatten(), e16.flatten(), dim=0) > 0.99
    assert not np.allclose(e32.numpy(), e16.numpy(), atol=1e-6)  # the fast path did run in bf16
