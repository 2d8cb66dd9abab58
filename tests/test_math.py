"""symlog, two-hot, unimix, KL balancing with free bits, GAE and the return scale, each against a plain reference."""
import numpy as np
import pytest
import torch

from conftest import tiny_args


def reference_two_hot(x, bins):
    out = np.zeros(len(bins))
    x = min(max(x, bins[0]), bins[-1])
    k = min(np.searchsorted(bins, x, side="right") - 1, len(bins) - 2)
    w = (x - bins[k]) / (bins[k + 1] - bins[k])
    out[k], out[k + 1] = 1 - w, w
    return out


def test_symlog_symexp(mod):
    x = torch.tensor([-1000.0, -3.0, -0.5, 0.0, 0.5, 3.0, 1000.0])
    assert torch.allclose(mod.symlog(x), torch.sign(x) * torch.log(torch.abs(x) + 1))
    assert torch.allclose(mod.symexp(mod.symlog(x)), x, rtol=1e-5)


def test_two_hot_matches_reference_and_decodes(mod):
    bins = torch.linspace(-20, 20, 255)
    x = torch.tensor([-25.0, -20.0, -3.3, 0.0, 0.01, 7.77, 20.0, 31.0])
    encoded = mod.two_hot(x, bins)
    for row, value in zip(encoded, x.tolist()):
        assert np.allclose(row.numpy(), reference_two_hot(value, bins.numpy()), atol=1e-6)
        assert (row > 0).sum() <= 2 and torch.isclose(row.sum(), torch.tensor(1.0))
    assert torch.allclose((encoded * bins).sum(-1), x.clamp(-20, 20), atol=1e-5)


def test_two_hot_loss_and_mean_recover_a_target(mod):
    bins = torch.linspace(-20, 20, 255)
    target = torch.tensor([-12.0, 0.0, 3.5, 250.0])
    logits = torch.log(mod.two_hot(mod.symlog(target), bins) + 1e-12)
    assert torch.allclose(mod.two_hot_mean(logits, bins), target, rtol=1e-4)
    worse = mod.two_hot_loss(torch.zeros_like(logits), target, bins)
    assert (mod.two_hot_loss(logits, target, bins) < worse).all()


def test_unimix(mod):
    logits = torch.randn(3, 32, 32) * 10
    probs = mod.unimix_logits(logits, 0.01).exp()
    assert torch.allclose(probs, 0.99 * torch.softmax(logits, -1) + 0.01 / 32, atol=1e-6)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 32)) and probs.min() >= 0.01 / 32 - 1e-7


def test_kl_matches_torch_and_sums_over_categoricals(mod):
    p, q = torch.log_softmax(torch.randn(5, 8, 6), -1), torch.log_softmax(torch.randn(5, 8, 6), -1)
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=p),
                                            torch.distributions.Categorical(logits=q)).sum(-1)
    assert torch.allclose(mod.kl_categorical(p, q), ref, atol=1e-5)


def test_kl_balance_and_free_bits(mod):
    args = tiny_args(mod)
    raw = torch.randn(64, 4, 4) * 3
    post = torch.log_softmax(raw, -1).requires_grad_()
    noise = torch.randn(64, 4, 4) * torch.linspace(0.01, 3, 64)[:, None, None]  # from near-equal to far apart
    prior = torch.log_softmax(raw + noise, -1).requires_grad_()
    loss, kl_dyn, kl_rep = mod.kl_loss(post, prior, args)
    kl = mod.kl_categorical(post, prior)
    assert torch.allclose(kl_dyn, kl) and torch.allclose(kl_rep, kl)
    assert torch.allclose(loss, 0.5 * kl.clamp(min=1) + 0.1 * kl.clamp(min=1))
    # beta_1 trains only the prior, beta_2 only the posterior, and steps under 1 nat train neither.
    above = (kl > 1).float()
    loss.sum().backward()
    g_post, g_prior = torch.autograd.grad((kl * above).sum(), (post, prior))
    assert torch.allclose(post.grad, 0.1 * g_post, atol=1e-5)
    assert torch.allclose(prior.grad, 0.5 * g_prior, atol=1e-5)
    assert (kl < 1).any() and (kl > 1).any()


def reference_gae(reward, value, cont, bootstrap, gamma, lam):
    T, N = reward.shape
    values = np.concatenate([value, bootstrap[None]])
    delta = reward + gamma * cont * values[1:] - values[:-1]
    adv = np.zeros((T, N))
    for t in range(T):
        for n in range(N):
            weight = 1.0
            for i in range(t, T):
                adv[t, n] += weight * delta[i, n]
                weight *= gamma * lam * cont[i, n]
    return adv


def test_gae_matches_the_plain_sum(mod):
    rng = np.random.default_rng(0)
    reward, value = rng.normal(size=(12, 5)), rng.normal(size=(12, 5))
    cont, bootstrap = (rng.random((12, 5)) > 0.2).astype(float), rng.normal(size=5)
    got = mod.compute_gae(*(torch.tensor(a) for a in (reward, value, cont, bootstrap)), 0.99, 0.95)
    assert np.allclose(got.numpy(), reference_gae(reward, value, cont, bootstrap, 0.99, 0.95))


def test_return_scale_is_an_ema_of_the_percentile_range(mod):
    scale = mod.ReturnScale(0.99)
    returns, every = torch.arange(101.0), torch.ones(101)  # 5th percentile 5, 95th 95
    first = 0.99 * 0.0 + (1 - 0.99) * 90.0
    assert scale.update(returns, every) == max(1.0, first)
    assert scale.update(returns, every) == 0.99 * first + (1 - 0.99) * 90.0  # Python's float arithmetic, exactly
    for _ in range(1000):
        value = scale.update(returns, every)
    assert value == pytest.approx(90, rel=1e-3)
    assert mod.ReturnScale(0.99).update(torch.zeros(10), torch.ones(10)) == 1.0
    # only the returns inside the mask count; with none, P stays
    masked = torch.cat([returns, torch.full((50,), 1e6)])
    assert mod.ReturnScale(0.0).update(masked, torch.cat([every, torch.zeros(50)])) == 90
    assert scale.update(returns, torch.zeros(101)) == value


def test_sample_index_draws_from_the_categorical(mod):
    torch.manual_seed(0)
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3], [0.0, 0.0, 0.0, 1.0]])
    draws = mod.sample_index(probs.expand(20000, 2, 4))  # (20000, 2)
    assert draws.shape == (20000, 2) and draws.min() >= 0 and draws.max() <= 3
    freq = torch.stack([(draws[:, 0] == k).float().mean() for k in range(4)])
    assert torch.allclose(freq, probs[0], atol=0.015) and freq[1] == 0  # a zero-probability class never comes
    assert (draws[:, 1] == 3).all()


def test_sample_one_hot_is_exactly_one_hot_and_straight_through(mod):
    torch.manual_seed(0)
    logits = torch.randn(6, 4, 5, requires_grad=True)
    z = mod.sample_one_hot(logits)
    assert torch.equal(z.detach(), torch.nn.functional.one_hot(z.detach().argmax(-1), 5).float())
    (z * torch.randn_like(z)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0  # gradients pass through the softmax
    with torch.no_grad():
        assert not mod.sample_one_hot(logits).requires_grad


def test_agent_sample_agrees_with_the_policy_distribution(mod):
    args = tiny_args(mod)
    torch.manual_seed(0)
    agent = mod.Agent(40, 6, args)
    torch.nn.init.normal_(agent.actor[-1].weight, std=1.0)  # a policy far from uniform
    feat = torch.randn(3, 40)
    with torch.no_grad():
        action, logp = agent.sample(feat.expand(20000, 3, 40))
        dist = agent.policy(feat)
    assert action.shape == logp.shape == (20000, 3)
    assert torch.allclose(logp, dist.log_prob(action), atol=1e-5)
    freq = torch.stack([(action == k).float().mean(0) for k in range(6)], -1)  # (3, 6)
    assert torch.allclose(freq, dist.probs, atol=0.015)
