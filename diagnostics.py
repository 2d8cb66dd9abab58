"""Diagnostics of a run: what the world model predicts against what the agent meets, measured on the real episodes
of an evaluation (--diagnostics, on by default; docs/metrics.md names every field), and the films of --capture-video.

Shared by every method script (evaluate(record=True) makes the Recording; the run calls diagnose and videos).
Each function that dreams or acts takes the script `m` whose world model, agent and dream() it measures.
"""
import numpy as np
import torch
import torch.nn.functional as F

DIAGNOSED_STATES = 1024  # real states of each split dreamed from for the predicted returns


class Recording:
    """What an evaluation played (evaluate(record=True)), as flat arrays with each episode's steps together and in
    order: s_t, h_{t+1}, a_t, r_{t+1} (the training reward, shaped as by day), done, and the frames of the episodes
    that kept theirs."""

    def __init__(self, steps, episodes, framed):
        env = np.concatenate([s["env"] for s in steps])
        order = np.argsort(env, kind="stable")
        frame_of_row = np.cumsum(framed[env]) - 1  # row (in play order) -> its frame, where it has one
        self.env, self.episodes = env[order], episodes
        self.feat, self.h_next, self.action = (torch.cat([s[k] for s in steps])[torch.from_numpy(order)]
                                               for k in ("feat", "h_next", "action"))
        self.reward, self.done = (np.concatenate([s[k] for s in steps])[order] for k in ("reward", "done"))
        self.framed = framed[self.env]
        self.frames = np.concatenate([s["obs"] for s in steps])[frame_of_row[order][self.framed]]
        self.is_first = np.r_[True, self.env[1:] != self.env[:-1]]

    def returns(self, reward, gamma, horizon=None):
        """The discounted return from each step to its episode's end, or over its next `horizon` steps."""
        out, future = np.zeros(len(reward)), np.zeros(len(reward) + 1)
        if horizon is None:
            for i in reversed(range(len(reward))):
                out[i] = future[i] = reward[i] + gamma * future[i + 1] * (not self.done[i])
            return out
        alive = np.ones(len(reward), bool)
        for k in range(horizon):
            index = np.minimum(np.arange(len(reward)) + k, len(reward) - 1)
            out += alive * gamma ** k * reward[index]
            alive &= ~self.done[index]
        return out

    def future_actions(self, rows, horizon):
        """(horizon, len(rows)) actions played from each row on, 0 past its episode's end."""
        index = np.minimum(rows[None] + np.arange(horizon)[:, None], len(self.done) - 1)
        ended = np.cumsum(np.concatenate([np.zeros((1, len(rows)), bool), self.done[index[:-1]]]), 0) > 0
        return torch.where(torch.from_numpy(ended), 0, self.action[torch.from_numpy(index)])


def split_state(wm, feat):
    """(h, z) of flat (..., deter + C*J) features."""
    return feat[..., :wm.deter], feat[..., wm.deter:].reshape(*feat.shape[:-1], wm.C, wm.J)


def predicted_return(traj, mask, gamma):
    """The discounted return a dream credits (what PPO at night maximises): sum_t gamma^t r_{t+1} over its mask."""
    discount = gamma ** torch.arange(len(mask), device=mask.device, dtype=torch.float32)[:, None]
    return (discount * traj["reward"] * mask).sum(0)


def by_step(x, mask):
    """Mean over the dreams of each step index (H values), among the valid steps."""
    return ((x * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist()


def state_diagnostics(m, wm, agent, rec, rows, args, value_gamma, day_agent, gen):
    """The world model's heads, the critic (against the return discounted by value_gamma) and the policy on the
    real states `rows` of one split, and the H-step return the world model predicts from a sample of them (closed
    loop: the policy acting; open loop: the recorded actions) against the return really earned over the same H
    steps, both discounted by the night's gamma (the return the night maximises)."""
    device = wm.bins.device
    feat, h_next = rec.feat[rows].to(device), rec.h_next[rows].to(device)
    reward = rec.reward[rows]
    rewarded, done = reward != 0, rec.done[rows]
    z_next = m.sample_one_hot(wm.prior(h_next))
    pred_reward, cont_logit = (x.cpu().numpy() for x in wm.heads(m.feature(h_next, z_next)))
    threshold = 0.5 * np.median(np.abs(reward[rewarded])) if rewarded.any() else 0.5
    predicted = np.abs(pred_reward) >= threshold
    logits = F.log_softmax(agent.actor(feat).float(), -1)
    out = dict(reward_precision=float((predicted & rewarded).sum() / predicted.sum()) if predicted.any() else None,
               reward_recall=float((predicted & rewarded).sum() / rewarded.sum()) if rewarded.any() else None,
               reward_pred_at_reward=float(pred_reward[rewarded].mean()) if rewarded.any() else None,
               reward_pred_elsewhere=float(pred_reward[~rewarded].mean()) if (~rewarded).any() else None,
               terminal_recall=float((cont_logit[done] <= 0).mean()) if done.any() else None,
               false_terminal_rate=float((cont_logit[~done] <= 0).mean()) if (~done).any() else None,
               real_reward_rate=float(rewarded.mean()), real_reward_mean=float(reward.mean()),
               real_terminal_rate=float(done.mean()),
               value_mean=float(agent.value(feat).float().mean()),
               return_mean=float(rec.returns(rec.reward, value_gamma)[rows].mean()),
               entropy=float(-(logits.exp() * logits).sum(-1).mean()))
    out["value_error"] = out["value_mean"] - out["return_mean"]
    if day_agent is not None:
        day_logits = F.log_softmax(day_agent.actor(feat).float(), -1)
        out["kl_to_day"] = float((logits.exp() * (logits - day_logits)).sum(-1).mean())
    sample = np.sort(gen.choice(rows, min(DIAGNOSED_STATES, len(rows)), replace=False))
    h, z = split_state(wm, rec.feat[sample].to(device))
    gamma = m.night_gamma(args)
    real = float(rec.returns(rec.reward, gamma, args.horizon)[sample].mean())
    for name, actions in (("closed_loop", None), ("open_loop", rec.future_actions(sample, args.horizon).to(device))):
        traj, mask, _, _ = m.dream(wm, agent, h, z, args, actions=actions)
        out[f"{name}_predicted_return"] = float(predicted_return(traj, mask, gamma).mean())
        out[f"{name}_gap"] = out[f"{name}_predicted_return"] - real
    out["real_h_step_return"] = real
    return out


def heldout_diagnostics(m, wm, rec, args):
    """The world-model loss (Eq. 1) and its parts on the recorded episodes' frames, every window of L steps once
    (no reward priority): data the world model never trained on."""
    rows = np.flatnonzero(rec.framed)
    windows = len(rows) // args.seq_len
    if not windows:
        return {}
    rows = rows[: windows * args.seq_len].reshape(windows, args.seq_len)
    device = wm.bins.device
    totals, counts = {}, {}
    for part in np.array_split(rows, max(1, windows // 32)):
        frame_index = np.searchsorted(np.flatnonzero(rec.framed), part)
        batch = dict(obs=torch.as_tensor(rec.frames[frame_index], device=device).permute(0, 1, 4, 2, 3),
                     action=rec.action[torch.from_numpy(part)].to(device),
                     is_first=torch.as_tensor(rec.is_first[part], device=device),
                     reward=torch.as_tensor(rec.reward[part], device=device),
                     terminal=torch.as_tensor(rec.done[part], device=device))
        for k, v in m.wm_metrics(wm.loss(batch, args)[1]).items():
            totals[k], counts[k] = totals.get(k, 0.0) + v * len(part), counts.get(k, 0) + len(part)
    return {f"heldout_{k}": totals[k] / counts[k] for k in totals}


def diagnose(m, wm, agent, rec, args, value_gamma, day_agent=None, dreams=None):
    """Diagnostics of the world model and the policy on an evaluation's recording (evaluate(record=True)):
    per split (test, train) see state_diagnostics; heldout_* the world-model loss on the recorded frames;
    with dreams=(traj, mask) of the night's epoch, their reward and terminal rates by step index. They draw from
    a random stream of their own, seeded by --seed, so the run's own stream is left exactly as it was."""
    device = wm.bins.device
    models = [wm, agent] + ([day_agent] if day_agent is not None else [])
    with m.own_random_stream(device, args.seed), m.acting(device, *models):
        gen = np.random.default_rng(args.seed)
        out = {}
        for split, rows in (("test", np.flatnonzero(rec.env < rec.episodes)),
                            ("train", np.flatnonzero(rec.env >= rec.episodes))):
            out.update({f"{split}_{k}": v for k, v in
                        state_diagnostics(m, wm, agent, rec, rows, args, value_gamma, day_agent, gen).items()})
        out.update(heldout_diagnostics(m, wm, rec, args))
        if dreams is not None:
            traj, mask = dreams
            out.update(dream_reward_by_step=by_step(traj["reward"], mask),
                       dream_terminal_by_step=by_step(1 - traj["cont"], mask))
    return out


VIDEO_EPISODES = 2  # --capture-video films the first episodes of each split
DREAM_STARTS = 4  # and the dreams from this many real states


def videos(m, wm, agent, rec, args, transform=None):
    """--capture-video's films of an evaluation's recording, (T, height, width, 3) uint8: eval_test, eval_train, the
    first VIDEO_EPISODES episodes of the split one after the other (T = their lengths' sum); dream (T = H), a row for
    each of DREAM_STARTS real states spread over the recorded frames: the real frames from it (black past its
    episode's end), those the world model dreams from it open loop (the actions played) and, given the night's
    transformation, from the transformed state. Draws from a random stream of its own."""
    device, framed = wm.bins.device, np.flatnonzero(rec.framed)
    out = {f"eval_{split}": rec.frames[(rec.env[framed] >= first) & (rec.env[framed] < first + VIDEO_EPISODES)]
           for split, first in (("test", 0), ("train", rec.episodes))}
    rows = framed[np.linspace(0, max(len(framed) - args.horizon, 0), DREAM_STARTS).astype(int)]
    index = np.minimum(rows + np.arange(args.horizon)[:, None], framed[-1] + 1)  # (H, starts)
    real = rec.frames[np.minimum(np.searchsorted(framed, index), len(framed) - 1)]
    real *= (np.r_[rec.env, -1][index] == rec.env[rows])[..., None, None, None]  # black past the episode's end
    columns = [torch.as_tensor(real).permute(0, 1, 4, 2, 3) / 255]
    with m.own_random_stream(device, args.seed), m.acting(device, wm, agent):
        h, z = split_state(wm, rec.feat[rows].to(device))
        actions = rec.future_actions(rows, args.horizon).to(device)
        for h, z in [(h, z)] + ([transform(h, z)] if transform is not None else []):
            columns.append(wm.decode(m.dream(wm, agent, h, z, args, actions=actions)[0]["feat"]).cpu())
    out["dream"] = np.stack([m.image_grid(step) for step in torch.stack(columns, 2)])
    return out
