"""What the agent's credit rests on: the night's gamma in every script, the advantages divided by max(1, P), the value
target A + v_old(s) (Eq. 8), and the two readings of a transformed transition (docs/choices.md)."""
import numpy as np
import pytest
import torch

from conftest import METHOD_SCRIPTS, load_script, tiny_args
from test_ppo import random_batch
from test_replay import rows


def night_of(script, **overrides):
    """A script's module, tiny models and a replay, ready for night_experience."""
    mod = load_script(script)
    torch.manual_seed(0)
    args = tiny_args(mod, **overrides)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    replay = mod.Replay(400, 2)
    replay.add(rows(300))
    return mod, args, wm, mod.Agent(wm.feat_dim, 15, args), replay


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_the_nights_gamma_is_one_minus_one_over_h_unless_the_flag_says_otherwise(script, monkeypatch):
    mod, args, wm, agent, replay = night_of(script, horizon=4)
    used = []
    gae = mod.compute_gae
    monkeypatch.setattr(mod, "compute_gae", lambda *a: used.append(a[4]) or gae(*a))
    for night_gamma, expected in ((None, 0.75), (0.997, 0.997)):
        args.night_gamma = night_gamma
        batch, traj = mod.night_experience(wm, agent, replay, args, np.random.default_rng(0))[:2]
        assert used[-1] == expected and expected != args.gamma
        if "trace" not in traj and script != "offline_ppo.py":  # a dream's advantages are GAE at that gamma
            advantage = gae(traj["reward"], traj["value"], traj["cont"], traj["bootstrap"], expected, args.gae_lambda)
            assert torch.equal(batch["advantage"], advantage.flatten())


def test_the_value_target_is_the_advantage_plus_the_old_value(mod):
    torch.manual_seed(0)
    args = tiny_args(mod)
    traj = dict(feat=torch.randn(5, 3, 8), action=torch.randint(0, 15, (5, 3)), logp=torch.randn(5, 3),
                value=torch.randn(5, 3) * 4, reward=torch.randn(5, 3), cont=torch.ones(5, 3),
                bootstrap=torch.randn(3))
    batch = mod.ppo_batch(traj, 0.9, args)
    assert torch.equal(batch["target"], batch["advantage"] + traj["value"].flatten())
    assert not torch.allclose(batch["target"], batch["advantage"])


@pytest.mark.parametrize("p, divisor", [(10.0, 10.0), (0.5, 1.0)])
def test_advantages_are_divided_by_max_1_p(mod, p, divisor):
    """An update at return scale P equals an update on advantages / max(1, P) at a scale of 1."""
    args, agent, feat, action, logp, adv, target = random_batch(mod, 400)
    adv = adv * 20
    results = []
    for advantage, range_ in ((adv, p), (adv / divisor, 0.0)):
        torch.manual_seed(1)
        copy = mod.Agent(20, 15, args)
        copy.load_state_dict(agent.state_dict())
        scale = mod.ReturnScale(1.0)  # decay 1: P stays where it was put
        scale.range = range_
        batch = dict(feat=feat, action=action, logp=logp, advantage=advantage, target=target, mask=torch.ones(400))
        mod.ppo_update(copy, torch.optim.Adam(copy.parameters(), lr=1e-3), batch, args, scale)
        results.append(torch.cat([q.flatten() for q in copy.actor.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)
    assert not torch.allclose(results[0], torch.cat([q.flatten() for q in agent.actor.parameters()]))


def dream_both_ways(mod, args, wm, agent):
    """The same dream (same draws) under both credit readings, a transformation that shifts h by 0.5."""
    out = {}
    for credit in ("transformed", "untransformed"):
        args.transform_credit = credit
        torch.manual_seed(3)
        h, z = mod.random_starts(wm, 64)
        out[credit] = mod.dream(wm, agent, h, z, args, transform=lambda h, z: (h + 0.5, z))[:2]
    return out


def test_a_transformed_transition_is_credited_as_each_reading_says(mod):
    args, wm, agent = night_of("dream_ppo_value.py", horizon=6, eps_dream=0.3)[1:4]
    args.night_gamma = 0.8
    for head in (wm.reward_head[-1], agent.critic[-1]):  # zero-initialised: give the readings something to tell apart
        torch.nn.init.normal_(head.weight, std=0.5)
    runs = dream_both_ways(load_script("dream_ppo_value.py"), args, wm, agent)
    (traj, mask), (split, split_mask) = runs["transformed"], runs["untransformed"]
    assert torch.equal(traj["feat"], split["feat"]) and torch.equal(traj["transformed"], split["transformed"])
    was = traj["transformed"]  # (H, B): state t was transformed before the agent saw it
    assert 0.15 < was.float().mean() < 0.45
    # the untransformed state the world model dreamed at t + 1: the transformed one, less the shift
    h, z = traj["feat"][..., :wm.deter], traj["feat"][..., wm.deter:]
    dreamed = torch.cat([h - 0.5 * was[..., None], z], -1)[1:]  # (H - 1, B, F): the next state of t < H - 1
    ends_at = torch.cat([was[1:], torch.zeros_like(was[:1])])  # transition t ends at a transformed state
    with torch.no_grad():
        reward_t, cont_t = wm.heads(traj["feat"][1:])
        reward_d, cont_d = wm.heads(dreamed)
        value_d = agent.value(dreamed)
    last = slice(0, len(was) - 1)  # transitions whose next state is inside the dream
    # default: r, c and the bootstrap value read from the transformed state
    assert torch.allclose(traj["reward"][last], reward_t, atol=1e-5)
    # the other reading: from the dreamed state where the next state was transformed, as before elsewhere
    expected = torch.where(ends_at[last], reward_d, reward_t)
    assert torch.allclose(split["reward"][last], expected, atol=1e-5)
    assert not torch.allclose(split["reward"][last][ends_at[last]], reward_t[ends_at[last]], atol=1e-5)
    assert torch.equal(split["cont"][last], torch.where(ends_at[last], (cont_d > 0).float(), (cont_t > 0).float()))
    # GAE: the transition into a transformed state bootstraps from the dreamed state's value and cuts the trace
    gamma, lam = 0.8, args.gae_lambda
    next_value = torch.cat([split["value"][1:], split["bootstrap"][None]])
    next_value[last] = torch.where(ends_at[last], value_d, next_value[last])
    advantage, carry = torch.zeros_like(split["reward"]), torch.zeros(64)
    for t in reversed(range(len(was))):
        delta = split["reward"][t] + gamma * split["cont"][t] * next_value[t] - split["value"][t]
        carry = delta + gamma * lam * split["cont"][t] * (~ends_at[t]).float() * carry
        advantage[t] = carry
    batch = mod.ppo_batch(split, gamma, args, split_mask)
    assert torch.allclose(batch["advantage"], advantage.flatten(), atol=1e-5)
    # the mask restarts at a transformed state; otherwise a step counts while no earlier step of its segment ended
    for t in range(1, len(was)):
        expected = torch.where(was[t], torch.ones(64), split_mask[t - 1] * split["cont"][t - 1])
        assert torch.equal(split_mask[t], expected)
    assert torch.equal(mask, torch.cat([torch.ones(1, 64), torch.cumprod(traj["cont"], 0)[:-1]]))


def test_without_a_transformation_both_readings_are_the_same_dream():
    mod, args, wm, agent, _ = night_of("dreamer_baseline.py", horizon=5)
    out = {}
    for credit in ("transformed", "untransformed"):
        args.transform_credit = credit
        torch.manual_seed(3)
        out[credit] = mod.dream(wm, agent, *mod.random_starts(wm, 16), args)
    assert all(torch.equal(a, b) for a, b in zip(out["transformed"][0].values(), out["untransformed"][0].values()))
    assert torch.equal(out["transformed"][1], out["untransformed"][1])
