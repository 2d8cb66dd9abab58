"""ValDreamer: PPO on dreams transformed by value diversification (Franceschelli & Musolesi, 2024).

By day the agent plays ProcGen, a DreamerV3-style world model learns from the replay (Eq. 1) and
PPO trains the agent on the world model's latent states (Eqs. 6-9). By night the world model is
frozen and the agent trains on dreams that start from random latent states (Eq. 2); each dreamed
state is, with probability 1/H, pushed by gradient ascent towards a state whose value differs most
from its own (value diversification, Eq. 5), and the dream goes on from there.
"""
import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from tqdm import tqdm

from diagnostics import Recording  # what an evaluation played, measured by the run's diagnostics
from run_plumbing import Run  # everything of a run that is not the method


@dataclass
class Args:
    # experiment
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """the name of this experiment (defaults to the script's name)"""
    seed: int = 1
    """seed of python, numpy, torch and ProcGen"""
    cuda: bool = True
    """use CUDA when it is available (--no-cuda forces the CPU)"""
    bf16: Optional[bool] = None
    """bf16 autocast (default: on for CUDA and for CPUs with native bf16, where it measured 2x faster)"""
    track: bool = False
    """log to Weights & Biases as well as TensorBoard"""
    wandb_project_name: str = "electric-sheep"
    """the W&B project"""
    wandb_entity: Optional[str] = None
    """the W&B entity (team)"""
    log_dir: str = "runs"
    """folder that holds one sub-folder per run"""
    run_name: Optional[str] = None
    """name of the run folder (default: {env_id}__{exp_name}__{seed}__{unix time})"""
    save_checkpoint: bool = False
    """write checkpoint.pt after every epoch and day.pt at the end of the day"""
    resume: bool = False
    """continue the newest unfinished run of this env, exp_name and seed from its last epoch"""
    load_day_checkpoint: Optional[str] = None
    """skip the day: start the night from this day.pt (or a run folder holding one)"""
    replay_on_disk: bool = False
    """keep the replay's frames (12.3 GB at 1M) in a file in the run folder that the kernel pages in and out, not in
    memory, so that two 1M-step days fit in 24 GB; the run's numbers are the same (docs/speed.md#memory)"""
    image_every: int = 25
    """log decoded dreams and transformations as images every this many night epochs"""
    diagnostics: bool = True
    """at the day's last and every night evaluation, measure the world model against the evaluation's real episodes
    (logged as diagnostics/*, and to diagnostics.jsonl); they draw from their own random stream, so a run with them
    trains exactly as one without (docs/metrics.md)"""
    capture_video: bool = False
    """film evaluation episodes and the world model's dreams beside reality at the day's end and every --image-every
    night epochs (videos/*.mp4, TensorBoard's video/*: docs/metrics.md#videos), from a random stream of their own"""

    # environment
    env_id: str = "coinrun"
    """the ProcGen game"""
    num_envs: int = 5
    """parallelized environments, day and evaluation (Table 2)"""
    num_levels: int = 200
    """training levels (Sec. 5.1); evaluation also plays the full distribution"""
    start_level: int = 0
    """first training level"""
    distribution_mode: str = "easy"
    """ProcGen difficulty (Sec. 5.1)"""
    eval_episodes: int = 25
    """episodes per evaluation, on test levels and as many on training levels (Table 2: 5 envs x 5 test repetition)"""
    final_eval_episodes: Optional[int] = None
    """episodes of the evaluations that end the day and the night (default: --eval-episodes)"""
    day_eval_every: int = 1
    """evaluate every this many day epochs and at the day's end (the paper: every epoch)"""
    fail_penalty: Optional[float] = None
    """penalty for non-successful episodes (Table 2; default -10 for coinrun and caveflyer, else 0)"""
    reward_scale: Optional[float] = None
    """reward scaling factor, training only (Table 2; default 25 for chaser, else 1)"""

    # world model (Table 1)
    deter: int = 512
    """RNN hidden units: size of h (Table 1)"""
    stoch: int = 32
    """C: categoricals of z (Table 1)"""
    classes: int = 32
    """J: classes of each categorical (Table 1)"""
    units: int = 512
    """linear units of every MLP, 2 layers each (Table 1)"""
    cnn_depth: int = 32
    """convolution filters of the first layer: [32, 64, 128, 256] and deconvolutions [128, 64, 32, 3] at 32 (Table 1)"""
    wm_lr: float = 5e-4
    """world-model learning rate during the day (Table 1)"""
    kl_dyn_scale: float = 0.5
    """beta_1: dynamics loss factor (Table 1)"""
    kl_rep_scale: float = 0.1
    """beta_2: representation loss factor (Table 1)"""
    free_nats: float = 1.0
    """free bits: KL below this many nats is not penalised (Sec. 3.1)"""
    reward_bins: int = 255
    """K: reward/return bins (Table 1)"""
    bins_extreme: float = 20.0
    """bins extremes: the bins span [-x, +x] in symlog space (Table 1)"""
    unimix: float = 0.01
    """uniform mixture of the latent categoricals (Sec. 3.1)"""
    wm_grad_clip: float = 1000.0
    """world-model global gradient-norm clip (DreamerV3)"""
    reward_priority: float = 0.5
    """fraction of each batch drawn among sequences with a non-zero reward (Sec. 4.2)"""

    # agent and PPO (Table 1)
    day_lr: float = 5e-4
    """agent learning rate during the day (Table 1)"""
    night_lr: float = 1e-4
    """agent learning rate at night (Table 1)"""
    gamma: float = 0.99
    """gamma: GAE discount during the day; at night it is 1 - 1/H (Table 1)"""
    gae_lambda: float = 0.95
    """lambda: GAE parameter (Table 1)"""
    clip_coef: float = 0.2
    """epsilon: PPO clip factor (Table 1)"""
    vf_coef: float = 0.5
    """c_v: critic loss factor (Table 1)"""
    ent_coef: float = 0.001
    """c_e: entropy loss factor (Table 1)"""
    update_epochs: int = 4
    """PPO iterations per epoch (Table 1)"""
    max_grad_norm: float = 0.5
    """PPO gradient clip factor (Table 1)"""
    return_decay: float = 0.99
    """decay of the EMA of the 5th-95th return percentile range (DreamerV3)"""

    # day (Algorithm 1, Table 2)
    seed_episodes: int = 5
    """S: seed episodes of a random policy that fill the replay first (Table 2)"""
    day_epochs: int = 200
    """E_d: day epochs (Table 2)"""
    day_steps: int = 5000
    """T_d: day steps per epoch, over all parallel envs (Table 2)"""
    wm_updates: int = 20
    """U_w: world-model update steps per day epoch (Table 2)"""
    wm_batch_size: int = 100
    """B_w: world batch size, in sequences (Table 2)"""
    seq_len: int = 25
    """L: sequence length (Table 2)"""

    # night (Algorithm 1, Table 2)
    night_epochs: int = 200
    """E_n: night epochs (Table 2)"""
    night_eval_every: int = 1
    """evaluate every this many night epochs and at the night's end (the paper: every epoch)"""
    night_updates: int = 26
    """U_a: imagination update steps per night epoch; B_a * U_a dreams per epoch (Table 2)"""
    dream_batch_size: int = 12
    """B_a: imagination batch size; B_a * H transitions per PPO minibatch, day and night (Table 2)"""
    horizon: int = 16
    """H: imagination horizon (Table 2)"""
    eps_dream: Optional[float] = None
    """eps_dream: probability that a dreamed state is transformed; default 1/H (Sec. 4.1)"""
    night_gamma: Optional[float] = None
    """GAE discount at night; default 1 - 1/H (Table 1); DreamerV3's is 0.997 (docs/choices.md)"""
    transform_credit: Literal["transformed", "untransformed"] = "transformed"
    """what the transition into a transformed state earns: r, c and v read from the transformed state (default), or
    from the untransformed one, the transformed state starting a new segment of the dream (docs/choices.md)"""

    # this method's transformation: value diversification (Eq. 5, Table 2)
    vd_steps: int = 10
    """value maximization optimization steps (Table 2)"""
    vd_step_size: float = 0.5
    """value maximization step size (Table 2)"""


# --- math helpers
def symlog(x):
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x):
    return torch.sign(x) * torch.expm1(torch.abs(x))


def two_hot(x, bins):
    """Encode x (already in symlog space) on the sorted bins: two neighbours share the weight."""
    x = x.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, x.contiguous(), right=True).clamp(1, len(bins) - 1)
    below = above - 1
    w_above = (x - bins[below]) / (bins[above] - bins[below])
    out = torch.zeros(*x.shape, len(bins), device=x.device)
    out.scatter_(-1, below.unsqueeze(-1), (1 - w_above).unsqueeze(-1))
    return out.scatter_add(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))


def two_hot_loss(logits, target, bins):
    """Cross-entropy against two-hot(symlog(target)) (Eq. 8)."""
    return -(two_hot(symlog(target), bins) * F.log_softmax(logits.float(), -1)).sum(-1)


def two_hot_mean(logits, bins):
    return symexp((F.softmax(logits.float(), -1) * bins).sum(-1))


def unimix_logits(logits, unimix):
    """Log-probabilities of 99% softmax + 1% uniform (Sec. 3.1)."""
    probs = F.softmax(logits.float(), -1)
    return torch.log((1 - unimix) * probs + unimix / probs.shape[-1])


def sample_index(probs):
    """Categorical samples along the last axis, by inverse CDF (on the CPU about 10x faster than torch.multinomial)."""
    u = torch.rand(*probs.shape[:-1], 1, device=probs.device)
    return (probs.float().cumsum(-1) < u).sum(-1).clamp(max=probs.shape[-1] - 1)


def sample_one_hot(logits):
    """One-hot sample with straight-through gradients."""
    probs = F.softmax(logits, -1)
    one_hot = F.one_hot(sample_index(probs), probs.shape[-1]).float()
    return one_hot + (probs - probs.detach()) if probs.requires_grad else one_hot  # exactly one-hot forward


def kl_categorical(logits_p, logits_q):
    """KL(p || q) summed over the C categoricals; logits are log-probabilities, shape (..., C, J)."""
    return (logits_p.exp() * (logits_p - logits_q)).sum((-2, -1))


def kl_loss(post, prior, args):
    """beta_1 max(1, KL(sg(post) || prior)) + beta_2 max(1, KL(post || sg(prior))), per (b, t) (Eq. 1)."""
    kl_dyn = kl_categorical(post.detach(), prior)
    kl_rep = kl_categorical(post, prior.detach())
    loss = args.kl_dyn_scale * kl_dyn.clamp(min=args.free_nats) + args.kl_rep_scale * kl_rep.clamp(min=args.free_nats)
    return loss, kl_dyn, kl_rep


def compute_gae(reward, value, cont, bootstrap, gamma, lam, trace=None, next_value=None):
    """Eq. 9 on (T, N) tensors: reward[t] = r_{t+1}, cont[t] = 0 where the episode ended at t, value[t] = v(s_t).

    trace[t] multiplies the recursion (truncated importance weights, GePPO; 0 cuts it); None means on-policy.
    next_value[t], where given, is the value the transition t ends at, in place of value[t + 1] (a transition that
    ends at a state other than the next one trained on: the untransformed credit reading, docs/choices.md).
    """
    advantage = torch.zeros_like(reward)
    next_v, next_adv = bootstrap, torch.zeros_like(bootstrap)
    for t in reversed(range(reward.shape[0])):
        if next_value is not None:
            next_v = next_value[t]
        delta = reward[t] + gamma * cont[t] * next_v - value[t]
        next_adv = delta + gamma * lam * cont[t] * next_adv * (1.0 if trace is None else trace[t])
        advantage[t], next_v = next_adv, value[t]
    return advantage


class ReturnScale:
    """P: EMA of the 95th minus the 5th percentile of returns; advantages are divided by max(1, P). P is kept on the
    returns' device in float64 (the numbers of Python floats), so that updating it never waits for the device."""

    def __init__(self, decay):
        self.decay, self.range = decay, 0.0

    def update(self, returns, mask):
        """max(1, P) after the returns where mask > 0; P stays where there are none (every step of a minibatch may
        come after a dreamed terminal)."""
        q = torch.tensor([0.05, 0.95], device=returns.device)
        low, high = torch.nanquantile(torch.where(mask > 0, returns.float(), torch.nan), q)
        moved = self.decay * torch.as_tensor(self.range, dtype=torch.float64, device=returns.device) + (
            1 - self.decay) * (high - low).double()
        self.range = torch.where(moved.isnan(), self.range, moved)
        return self.range.clamp(min=1.0)


# --- environment
ENV_NAMES = ("bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot",
             "heist", "jumper", "leaper", "maze", "miner", "ninja", "plunder", "starpilot")
FAIL_PENALTY = {"coinrun": -10.0, "caveflyer": -10.0}  # Table 2; every other game: 0
REWARD_SCALE = {"chaser": 25.0}  # Table 2; every other game: 1
EPISODE_LIMIT = 1000  # ProcGen ends every episode after this many steps (a timeout)


def shaping(args):
    """(fail penalty, reward scale) of this game: Table 2's unless the flags say otherwise."""
    return (FAIL_PENALTY.get(args.env_id, 0.0) if args.fail_penalty is None else args.fail_penalty,
            REWARD_SCALE.get(args.env_id, 1.0) if args.reward_scale is None else args.reward_scale)


def successes(info):
    """Whether each env's episode that ended at this step completed its level."""
    return np.array([i.get("prev_level_complete", 0) for i in info], bool)


def shape(reward, done, success, fail_penalty, reward_scale):
    """The training reward: scaled, with the failure penalty on an episode that ended without success."""
    return reward * reward_scale + fail_penalty * (done & ~success)


def make_envs(args, num_envs, num_levels, rand_seed):
    """Vectorised ProcGen envs; rand_seed fixes the sequence of levels each env plays."""
    from procgen import ProcgenEnv

    return ProcgenEnv(num_envs=num_envs, env_name=args.env_id, num_levels=num_levels, start_level=args.start_level,
                      distribution_mode=args.distribution_mode, rand_seed=rand_seed)


def close_envs(envs):
    """Close ProcGen's envs now: the baselines wrapper's close() does nothing, and an env left to the garbage
    collector closes itself whenever it is collected, which inside cffi's library lookup (another env being made)
    hangs the process."""
    envs.env.close()


class Runner:
    """The training envs and what acting carries between steps: last frame, is_first, latent, returns."""

    def __init__(self, args, num_levels, rand_seed):
        self.envs = make_envs(args, args.num_envs, num_levels, rand_seed)
        self.fail_penalty, self.reward_scale = shaping(args)
        self.obs = self.envs.reset()["rgb"]  # (E, 64, 64, 3) uint8
        self.is_first = np.ones(args.num_envs, bool)
        self.h_next = None  # world-model h for the next step, set by play_day()
        self.ep_return = np.zeros(args.num_envs)
        self.ep_length = np.zeros(args.num_envs, np.int64)

    def step(self, action):
        """Step all envs; returns this step's replay row and (env, raw return, length) of finished episodes."""
        next_obs, reward, done, info = self.envs.step(action)
        shaped = shape(reward, done, successes(info), self.fail_penalty, self.reward_scale)
        row = dict(obs=self.obs, is_first=self.is_first, action=action, reward=shaped.astype(np.float32),
                   terminal=done.copy())
        self.ep_return += reward
        self.ep_length += 1
        finished = [(i, self.ep_return[i], self.ep_length[i]) for i in np.flatnonzero(done)]
        self.ep_return[done], self.ep_length[done] = 0, 0
        self.obs, self.is_first = next_obs["rgb"], done.copy()
        return row, finished

    def state_dict(self):
        return dict(env=self.envs.env.callmethod("get_state"), obs=self.obs, is_first=self.is_first,
                    h_next=self.h_next, ep_return=self.ep_return, ep_length=self.ep_length)

    def load_state_dict(self, state, device):
        self.envs.env.callmethod("set_state", state.pop("env"))
        self.__dict__.update(state)
        if self.h_next is not None:
            self.h_next = self.h_next.to(device)


# --- replay
class Replay:
    """Real experience as (time, env) streams: rows (o_t, a_t, r_{t+1}, c_{t+1}), frames kept as uint8.

    Arrays are allocated at full size but untouched pages take no memory, so the resident size grows
    with what is stored (12.3 GB at 1M frames). Sequences may cross episodes: is_first resets the state.
    A loaded replay is read at its first use: a night that never samples it (from random starts) never holds it.
    """

    FIELDS = dict(obs=np.uint8, is_first=bool, action=np.int64, reward=np.float32, terminal=bool,
                  logp=np.float32)

    def __init__(self, capacity, num_envs, folder=None):
        self.capacity, self.rows, self.saved_rows = capacity, 0, 0
        frames = (capacity, num_envs, 64, 64, 3)
        if folder is None:
            self.data = {"obs": np.zeros(frames, self.FIELDS["obs"])}
        else:  # --replay-on-disk: the frames in a nameless file of `folder`, gone when the run ends
            os.makedirs(folder, exist_ok=True)
            self.data = {"obs": np.memmap(tempfile.TemporaryFile(dir=folder), self.FIELDS["obs"], "w+", shape=frames)}
        self.data.update({k: np.zeros((capacity, num_envs), dtype) for k, dtype in self.FIELDS.items() if k != "obs"})
        self.rewarded = np.zeros((0, 2), np.int64)  # (time, env) of every row with a non-zero reward
        self.unread = []  # the chunk files load() leaves for the first use

    def add(self, rows):
        self.read()
        n = len(rows["obs"])
        if self.rows + n > self.capacity:
            raise RuntimeError(f"replay is full ({self.capacity} rows per env)")
        self.put(self.rows, rows)
        self.rows += n

    def put(self, start, rows):
        for k in self.FIELDS:
            self.data[k][start:start + len(rows["obs"])] = rows[k]
        self.rewarded = np.concatenate([self.rewarded, np.argwhere(rows["reward"] != 0) + [start, 0]])

    def sample(self, batch, length, rng, priority=0.0, low=0):
        """(B, L) index arrays; a `priority` fraction of sequences contains a non-zero reward (Sec. 4.2)."""
        self.read()
        high = self.rows - length  # last valid start
        start = rng.integers(low, high + 1, batch)
        env = rng.integers(0, self.data["obs"].shape[1], batch)
        hits = self.rewarded[self.rewarded[:, 0] >= low]
        n_hit = int(round(priority * batch)) if len(hits) else 0
        if n_hit:
            pick = hits[rng.integers(0, len(hits), n_hit)]
            start[:n_hit] = np.clip(pick[:, 0] - rng.integers(0, length, n_hit), low, high)
            env[:n_hit] = pick[:, 1]
        return start[:, None] + np.arange(length), env[:, None].repeat(length, 1)

    def batch(self, index, device):
        """The rows at (B, L) `index` as tensors on `device`; for a GPU, from pinned memory without waiting."""
        time_index, env_index = index
        cuda = torch.device(device).type == "cuda"
        out = {k: torch.from_numpy(v[time_index, env_index]) for k, v in self.data.items()}
        out = {k: (v.pin_memory() if cuda else v).to(device, non_blocking=cuda) for k, v in out.items()}
        out["obs"] = out["obs"].permute(0, 1, 4, 2, 3)  # (B, L, 3, 64, 64) uint8
        return out

    def save(self, folder):
        """Append the rows added since the last save as one chunk file (written whole, then renamed)."""
        if self.rows > self.saved_rows:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, f"{self.saved_rows:09d}.npz")
            with open(path + ".tmp", "wb") as f:  # compressed: 12x smaller on coinrun's frames, about 1 s an epoch
                np.savez_compressed(f, **{k: v[self.saved_rows:self.rows] for k, v in self.data.items()})
            os.replace(path + ".tmp", path)
            self.saved_rows = self.rows

    def load(self, folder, rows):
        """The chunks that hold the first `rows` rows (a chunk newer than the checkpoint is ignored), each opened
        and measured now, their rows read at the replay's first use (read).

        A missing or damaged chunk ends the run with one line; no file is touched.
        """
        previous = None  # the chunk measured last
        while self.rows < rows:
            path = os.path.join(folder, f"{self.rows:09d}.npz")
            self.rows += len(read_chunk(path, ("terminal",), previous)["terminal"])
            self.unread.append(path)
            previous = path
        self.saved_rows = self.rows

    def read(self):
        """Read the rows of the chunks that load() left (a damaged one ends the run with one line)."""
        start = 0
        for path in self.unread:
            rows = read_chunk(path, self.FIELDS)
            self.put(start, rows)
            start += len(rows["terminal"])
        self.unread = []


def read_chunk(path, fields, previous=None):
    """The arrays `fields` of a replay chunk, or one line that says what is wrong with it, and exit."""
    try:
        with np.load(path) as chunk:
            return {k: chunk[k] for k in fields}
    except Exception as e:
        problem = "is missing" if isinstance(e, FileNotFoundError) else f"is damaged ({type(e).__name__})"
        folder = os.path.dirname(path)
        if previous and isinstance(e, FileNotFoundError) and any(
                n.endswith(".npz") and n > os.path.basename(previous) for n in os.listdir(folder)):
            problem += f", yet later chunks are there: {previous} was replaced by one of another length"
        sys.exit(f"error: replay chunk {path} {problem}, and the checkpoint's replay needs it: put back a "
                 "good copy, or make the day again with --save-checkpoint (in a new run folder)")


# --- world model
class Norm(nn.LayerNorm):
    """LayerNorm (eps 1e-3, DreamerV3's). Under CUDA's autocast it runs in bf16 (its kernel still accumulates in
    float32), not in autocast's float32, which would make every norm's output a float32 copy; CPUs unchanged."""

    def __init__(self, size):
        super().__init__(size, eps=1e-3)

    def forward(self, x):
        if x.is_cuda and x.dtype == torch.bfloat16:
            with torch.autocast("cuda", enabled=False):
                return F.layer_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)
        return super().forward(x)


class ChannelNorm(Norm):
    """LayerNorm over the channels of an NCHW tensor (kept channels_last, so the permutes copy nothing)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NCHWConv2d(nn.Conv2d):
    """A convolution kept in the NCHW layout (the encoder's last, 8x8 -> 4x4: oneDNN's channels_last kernel for it
    took 1.5x as long at 5 to 50 frames on the 2-core CPU, and no longer at 400)."""

    def forward(self, x):
        return super().forward(x.contiguous())


def mlp(inp, units, out, layers=2, zero_init=False):
    net = []
    for i in range(layers):
        net += [nn.Linear(inp if i == 0 else units, units, bias=False), Norm(units), nn.SiLU()]
    net.append(nn.Linear(units, out))
    if zero_init:
        nn.init.zeros_(net[-1].weight), nn.init.zeros_(net[-1].bias)
    return nn.Sequential(*net)


class GRUCell(nn.Module):
    """DreamerV3's LayerNorm GRU: one bias-free Linear on [x, h], LayerNorm, update gate biased by -1."""

    def __init__(self, inp, size):
        super().__init__()
        self.linear = nn.Linear(inp + size, 3 * size, bias=False)
        self.norm = Norm(3 * size)

    def forward(self, x, h):
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], -1))).float().chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        return torch.lerp(h, cand, torch.sigmoid(update - 1))  # h + u (cand - h)


class WorldModel(nn.Module):
    """RSSM with encoder, decoder, reward and continue heads (Sec. 3.1, DreamerV3 2023)."""

    def __init__(self, args, num_actions):
        super().__init__()
        d, self.C, self.J, self.num_actions = args.cnn_depth, args.stoch, args.classes, num_actions
        self.deter, self.unimix = args.deter, args.unimix
        self.feat_dim = args.deter + args.stoch * args.classes
        chans = [3, d, 2 * d, 4 * d, 8 * d]
        self.encoder = nn.Sequential(*[m for i in range(4) for m in (
            (NCHWConv2d if i == 3 else nn.Conv2d)(chans[i], chans[i + 1], 4, 2, 1, bias=False),
            ChannelNorm(chans[i + 1]), nn.SiLU())])
        embed = 8 * d * 4 * 4
        self.img_in = nn.Sequential(nn.Linear(self.C * self.J + num_actions, args.units, bias=False),
                                    Norm(args.units), nn.SiLU())
        self.gru = GRUCell(args.units, args.deter)
        self.prior_net = mlp(args.deter, args.units, self.C * self.J, layers=1)
        self.post_net = mlp(args.deter + embed, args.units, self.C * self.J, layers=1)
        self.dec_in = nn.Linear(self.feat_dim, 8 * d * 4 * 4)
        self.decoder = nn.Sequential(*[m for i in (4, 3, 2) for m in (
            nn.ConvTranspose2d(chans[i], chans[i - 1], 4, 2, 1, bias=False), ChannelNorm(chans[i - 1]),
            nn.SiLU())], nn.ConvTranspose2d(d, 3, 4, 2, 1))
        self.reward_head = mlp(self.feat_dim, args.units, args.reward_bins, zero_init=True)
        self.cont_head = mlp(self.feat_dim, args.units, 1)
        self.register_buffer("bins", torch.linspace(-args.bins_extreme, args.bins_extreme, args.reward_bins))
        self.encoder[:-3].to(memory_format=torch.channels_last), self.decoder.to(memory_format=torch.channels_last)

    def encode(self, obs):
        """(..., 3, 64, 64) uint8 -> (..., 4096) embedding of obs/255 - 0.5."""
        x = (obs.reshape(-1, *obs.shape[-3:]).float() / 255 - 0.5).contiguous(memory_format=torch.channels_last)
        return self.encoder(x).reshape(*obs.shape[:-3], -1)

    def decode(self, feat):
        """(..., F) -> (..., 3, 64, 64) image in [0, 1]."""
        x = self.dec_in(feat.reshape(-1, feat.shape[-1])).reshape(-1, self.dec_in.out_features // 16, 4, 4)
        return (self.decoder(x).float() + 0.5).reshape(*feat.shape[:-1], 3, 64, 64)

    def img_step(self, h, z, action):
        """h_t = f(h_{t-1}, z_{t-1}, a_{t-1}); z is (B, C, J) one-hot, action (B,) or (B, A) one-hot."""
        if action.dim() == 1:
            action = F.one_hot(action, self.num_actions).float()
        return self.gru(self.img_in(torch.cat([z.flatten(-2), action], -1)), h)

    def prior(self, h):
        return unimix_logits(self.prior_net(h).reshape(*h.shape[:-1], self.C, self.J), self.unimix)

    def posterior(self, h, embed):
        logits = self.post_net(torch.cat([h, embed], -1))
        return unimix_logits(logits.reshape(*h.shape[:-1], self.C, self.J), self.unimix)

    def initial_h(self, n):
        """h after an episode start: f applied to the all-zero state and action."""
        zeros = torch.zeros(1, self.deter, device=self.bins.device)
        z, action = zeros.new_zeros(1, self.C, self.J), zeros.new_zeros(1, self.num_actions)
        h = self.img_step(zeros, z, action)
        return h.expand(n, -1)

    def heads(self, feat):
        """Reward (decoded from two-hot) and continue logit of a state."""
        return two_hot_mean(self.reward_head(feat), self.bins), self.cont_head(feat).squeeze(-1).float()

    def observe(self, embed, action, is_first):
        """Posterior filtering over (B, L) sequences; every sequence starts from the initial state.

        Also returns h_next[t] = f(h_t, z_t, a_t) without the episode reset: the state from which the
        reward r_{t+1} and continue c_{t+1} of row t are predicted, as a dream step does.
        """
        B, L = is_first.shape
        h_start = self.initial_h(B)
        hs, posts, zs, h_nexts = [], [], [], []
        h_next = h_start
        for t in range(L):
            h = torch.where(is_first[:, t, None], h_start, h_next) if t else h_start
            post = self.posterior(h, embed[:, t])
            z = sample_one_hot(post)
            h_next = self.img_step(h, z, action[:, t])
            hs.append(h), posts.append(post), zs.append(z), h_nexts.append(h_next)
        return torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(posts, 1), torch.stack(h_nexts, 1)

    def loss(self, batch, args):
        """Eq. 1: prediction + beta_1 max(1, KL_dyn) + beta_2 max(1, KL_rep), free bits per (b, t)."""
        embed = self.encode(batch["obs"])
        h, z, post, h_next = self.observe(embed, batch["action"], batch["is_first"])
        prior = self.prior(h)
        recon = self.decode(feature(h, z))
        target = batch["obs"].float() / 255
        recon_loss = ((recon - target) ** 2).sum((-3, -2, -1))
        z_next = sample_one_hot(self.prior(h_next))
        reward_pred_logits = self.reward_head(feature(h_next, z_next))
        reward_loss = two_hot_loss(reward_pred_logits, batch["reward"], self.bins)
        cont_logit = self.cont_head(feature(h_next, z_next)).squeeze(-1).float()
        cont_loss = F.binary_cross_entropy_with_logits(cont_logit, 1.0 - batch["terminal"].float(), reduction="none")
        kl, kl_dyn, kl_rep = kl_loss(post, prior, args)
        loss = (recon_loss + reward_loss + cont_loss + kl).mean()
        reward_pred = two_hot_mean(reward_pred_logits.detach(), self.bins)
        metrics = dict(loss=loss, recon_loss=recon_loss.mean(), reward_loss=reward_loss.mean(),
                       cont_loss=cont_loss.mean(), kl_dyn=kl_dyn.mean(), kl_rep=kl_rep.mean(),
                       post_entropy=-(post.exp() * post).sum((-2, -1)).mean(),
                       prior_entropy=-(prior.exp() * prior).sum((-2, -1)).mean(),
                       reward_pred_abs_err=(reward_pred - batch["reward"]).abs().mean())
        return loss, dict({k: v.detach() for k, v in metrics.items()}, reward_pred=reward_pred, reward=batch["reward"])


def wm_metrics(metrics):
    """A world-model loss's metrics as floats, with the mean predicted reward where the real one is > 0, < 0 and
    = 0 (where there are any). Done only for what is logged: each number waits for the device."""
    out = {k: v.item() for k, v in metrics.items() if k not in ("reward_pred", "reward")}
    reward = metrics["reward"]
    for name, where in (("pos", reward > 0), ("neg", reward < 0), ("zero", reward == 0)):
        if where.any():
            out[f"reward_pred_on_{name}"] = metrics["reward_pred"][where].mean().item()
    return out


def feature(h, z):
    """Agent and head input s = (h, z): (..., deter + C*J)."""
    return torch.cat([h, z.flatten(-2)], -1)


BF16 = {"cuda": True, "cpu": False}  # Run sets both from --bf16 (use_bf16)


def autocast(device):
    """bf16 autocast (the paper trains in mixed precision). Distributions and losses are computed in float32;
    LayerNorm statistics too (in float32 under CUDA autocast; PyTorch's bf16 CPU kernel accumulates in float32)."""
    device = torch.device(device)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=BF16.get(device.type, False))


def use_bf16(flag):
    """BF16 from --bf16: by default on where bf16 is native (native_bf16), else as the flag says."""
    BF16.update({kind: native_bf16(kind) if flag is None else flag for kind in BF16})


def native_bf16(kind):
    """Whether bf16 runs natively: on a GPU of compute capability 8.0 or more (torch.cuda.is_bf16_supported also
    counts emulation, slow on a T4 or V100), on a CPU with bf16 instructions (AVX512-BF16 or AMX)."""
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train_world_model(wm, optimizer, replay, args, rng, device):
    batch = replay.batch(replay.sample(args.wm_batch_size, args.seq_len, rng, args.reward_priority), device)
    with autocast(device):
        loss, metrics = wm.loss(batch, args)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    metrics["grad_norm"] = nn.utils.clip_grad_norm_(wm.parameters(), args.wm_grad_clip)
    optimizer.step()
    return metrics


# --- agent and PPO
class Agent(nn.Module):
    """Actor and two-hot critic on the detached latent state s = (h, z) (Sec. 4.2)."""

    def __init__(self, feat_dim, num_actions, args):
        super().__init__()
        self.actor = mlp(feat_dim, args.units, num_actions)
        self.critic = mlp(feat_dim, args.units, args.reward_bins, zero_init=True)
        self.register_buffer("bins", torch.linspace(-args.bins_extreme, args.bins_extreme, args.reward_bins))

    def policy(self, feat):
        return torch.distributions.Categorical(logits=self.actor(feat).float(), validate_args=False)  # no sync

    def sample(self, feat):
        """a ~ pi(s) and log pi(a | s) for acting and dreaming, without the cost of a distribution object."""
        logp = F.log_softmax(self.actor(feat).float(), -1)
        action = sample_index(logp.exp())
        return action, logp.gather(-1, action[..., None]).squeeze(-1)

    def value(self, feat):
        return two_hot_mean(self.critic(feat), self.bins)


def masked_mean(x, mask):
    return (x * mask).sum() / mask.sum().clamp(min=1)


def ppo_update(agent, optimizer, batch, args, return_scale):
    """Eqs. 6-8 on flat (N, ...) tensors, in minibatches of B_a * H transitions.

    The ratio is taken against the behaviour policy that produced the data and clipped around the
    ratio of the policy at the start of the update (GePPO); on-policy both are the same, giving PPO.
    P is updated on every minibatch's returns before its gradient step, as DreamerV3 does at every step
    (updated once per update, P would reach 26% of the returns' range after 30 epochs).
    """
    feat, action, logp_b, adv, target, mask = (batch[k] for k in ("feat", "action", "logp", "advantage",
                                                                  "target", "mask"))
    with torch.no_grad(), autocast(feat.device):
        logp_start = agent.policy(feat).log_prob(action)
    stats = []
    n_minibatches = max(1, len(feat) // (args.dream_batch_size * args.horizon))
    for _ in range(args.update_epochs):
        for idx in torch.randperm(len(feat), device=feat.device).chunk(n_minibatches):
            scale = return_scale.update(target[idx], mask[idx])
            loss, minibatch_stats = ppo_loss(agent, feat[idx], action[idx], logp_b[idx], logp_start[idx],
                                             adv[idx] / scale, target[idx], mask[idx], args)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
            optimizer.step()
            stats.append(minibatch_stats)
    stats = torch.stack(stats).mean(0).tolist()
    return dict(zip(("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac"), stats),
                return_scale=return_scale.range)


def ppo_loss(agent, feat, action, logp_b, logp_start, adv, target, mask, args):
    """-L_clip + c_v L_VF - c_e H (Eq. 6), averaged over the unmasked transitions."""
    with autocast(feat.device):
        dist, critic_logits = agent.policy(feat), agent.critic(feat)
    logp = dist.log_prob(action)
    ratio = (logp - logp_b).exp()
    centre = (logp_start - logp_b).exp()
    pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, centre - args.clip_coef, centre + args.clip_coef))
    v_loss = two_hot_loss(critic_logits, target, agent.bins)
    entropy = dist.entropy()
    loss = masked_mean(pg_loss + args.vf_coef * v_loss - args.ent_coef * entropy, mask)
    with torch.no_grad():
        log_r = logp - logp_start
        stats = torch.stack([masked_mean(pg_loss, mask), masked_mean(v_loss, mask), masked_mean(entropy, mask),
                             masked_mean(log_r.exp() - 1 - log_r, mask),
                             masked_mean(((ratio - centre).abs() > args.clip_coef).float(), mask)])
    return loss, stats


@contextlib.contextmanager
def acting(device, *models):
    """no_grad and autocast around a whole acting loop, so that each weight is cast to bf16 once per loop rather
    than at every step: autocast keeps its casts of weights that require grad until its context ends. Frozen
    weights (the world model at night) are marked as requiring grad for the loop; under no_grad nothing else changes.
    """
    frozen = [p for model in models for p in model.parameters() if not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with torch.no_grad(), autocast(device):
            yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


def act(wm, agent, obs, h):
    """s_t = (h_t, z_t ~ q(h_t, o_t)) of (N, 64, 64, 3) uint8 frames, a_t ~ pi(s_t), and h_{t+1} = f(h_t, z_t, a_t)."""
    z = sample_one_hot(wm.posterior(h, wm.encode(torch.as_tensor(obs, device=h.device).permute(0, 3, 1, 2))))
    feat = feature(h, z)
    action, logp = agent.sample(feat)
    return feat.float(), action, logp, wm.img_step(h, z, action).float()


def play_day(wm, agent, runner, steps, device, on_episode):
    """T_d / num_envs steps of every env: replay rows (T, E, ...) and the PPO batch with GAE (gamma=0.99)."""
    rows, feats, logps = [], [], []
    with acting(device, wm, agent):
        h_start = wm.initial_h(len(runner.obs)).float()  # the state at an episode start, once per epoch
        for t in bar(steps + 1, "acting"):  # the state after the last step only bootstraps the value
            if runner.h_next is None or runner.is_first.all():
                h = h_start
            elif runner.is_first.any():
                h = torch.where(torch.as_tensor(runner.is_first, device=device)[:, None], h_start, runner.h_next)
            else:
                h = runner.h_next
            feat, action, logp, h_next = act(wm, agent, runner.obs, h)
            feats.append(feat)
            if t == steps:
                break
            runner.h_next = h_next
            row, finished = runner.step(action.cpu().numpy())
            row["logp"] = logp.cpu().numpy()
            rows.append(row), logps.append(logp)
            for _, ret, length in finished:
                on_episode(ret, length)
        value = agent.value(torch.stack(feats))  # (T + 1, E): the critic once, for every state of the epoch
    rows = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return rows, dict(feat=torch.stack(feats[:-1]), logp=torch.stack(logps), value=value[:-1],
                      action=torch.as_tensor(rows["action"], device=device),
                      reward=torch.as_tensor(rows["reward"], device=device),
                      cont=torch.as_tensor(~rows["terminal"], device=device).float(), bootstrap=value[-1])


def night_gamma(args):
    """The night's GAE discount: 1 - 1/H (Table 1) unless --night-gamma says otherwise."""
    return 1 - 1 / args.horizon if args.night_gamma is None else args.night_gamma


def ppo_batch(traj, gamma, args, mask=None, trace=None):
    """Flatten a (T, N) trajectory into the PPO batch, with GAE advantages and V_target = A + v_old(s).

    A trajectory may carry its own trace and next_value (the untransformed credit reading): see compute_gae."""
    advantage = compute_gae(traj["reward"], traj["value"], traj["cont"], traj["bootstrap"], gamma,
                            args.gae_lambda, traj.get("trace") if trace is None else trace, traj.get("next_value"))
    mask = torch.ones_like(advantage) if mask is None else mask
    return dict(feat=traj["feat"].flatten(0, 1), action=traj["action"].flatten(), logp=traj["logp"].flatten(),
                advantage=advantage.flatten(), target=(advantage + traj["value"]).flatten(), mask=mask.flatten())


# --- dreaming: random starts, rollout
def random_starts(wm, n):
    """Eq. 2: h_init ~ N(0, I), z_init uniform one-hot, a_init = 0; h_0 = f(h_init, z_init, a_init), z_0 ~ p(h_0)."""
    device = wm.bins.device
    h_init = torch.randn(n, wm.deter, device=device)
    z_init = F.one_hot(torch.randint(0, wm.J, (n, wm.C), device=device), wm.J).float()
    h0 = wm.img_step(h_init, z_init, torch.zeros(n, wm.num_actions, device=device))
    return h0, sample_one_hot(wm.prior(h0))


def dream(wm, agent, h, z, args, transform=None, actions=None):
    """Dream H steps from (B,) start states with the actor; each state is transformed with probability
    eps_dream before the agent sees it, and the dream continues from the transformed state.

    The transition into a transformed state is credited as --transform-credit says: by default its reward,
    continue and bootstrap value are read from the transformed state; `untransformed` reads them from the state
    the world model dreamed, and the transformed state starts a new segment (GAE's trace is cut there, and a
    dreamed terminal before it no longer masks the steps after it). `actions` (H, B), where given, replaces the
    actor's choices (an open-loop dream of recorded actions; its logp is then meaningless).

    Returns the trajectory (H, B, ...), the mask of steps before a dreamed terminal, up to 8 (before, after)
    pairs of transformed states for pictures, and what the transformation did: the number of transformed
    states and their mean change (the fraction of z's categoricals that changed class, |delta h| and
    |v(s') - v(s)|).
    """
    eps = 1 / args.horizon if args.eps_dream is None else args.eps_dream
    feats, actions_taken, logps = [], [], []
    dreamed, was_transformed = [], []  # each step's state before any transformation, and whether it had one
    examples, changes = [], []
    with acting(h.device, wm, agent):  # each weight cast to bf16 once per dream (a transformation's ascent included)
        for t in range(args.horizon):
            dreamed.append(feature(h, z))
            was_transformed.append(torch.zeros(len(h), dtype=torch.bool, device=h.device))
            if transform is not None:
                chosen = torch.rand(len(h), device=h.device) < eps
                was_transformed[-1] = chosen
                if chosen.any():
                    h_in, z_in = h[chosen], z[chosen]
                    h, z = h.clone(), z.clone()
                    h[chosen], z[chosen] = transform(h_in, z_in)
                    before, after = feature(h_in, z_in), feature(h[chosen], z[chosen])
                    examples += list(zip(before, after))[: 8 - len(examples)]
                    value_change = (agent.value(after) - agent.value(before)).abs()
                    changes.append(torch.stack([(z[chosen].argmax(-1) != z_in.argmax(-1)).float().mean(-1),
                                                (h[chosen] - h_in).abs().mean(-1), value_change], -1))
            feat = feature(h, z)
            action, logp = agent.sample(feat) if actions is None else (actions[t], torch.zeros(len(h), device=h.device))
            h = wm.img_step(h, z, action).float()
            z = sample_one_hot(wm.prior(h))
            feats.append(feat.float()), actions_taken.append(action), logps.append(logp)
        feats.append(feature(h, z))
        all_feat = torch.stack(feats)  # (H + 1, B, F): heads and critic once, for all H + 1 states of every dream
        reward, cont_logit = wm.heads(all_feat[1:])  # r_{t+1}, c_{t+1} read from s_{t+1}
        value = agent.value(all_feat)
    traj = dict(feat=all_feat[:-1], action=torch.stack(actions_taken), logp=torch.stack(logps), value=value[:-1],
                reward=reward, cont=(cont_logit > 0).float(), bootstrap=value[-1],
                transformed=torch.stack(was_transformed))
    # A step is trained on while no earlier step of its dream ended (the terminal step itself counts).
    mask = torch.cat([torch.ones_like(traj["cont"][:1]), torch.cumprod(traj["cont"], 0)[:-1]])
    if args.transform_credit == "untransformed" and transform is not None:
        mask = untransformed_credit(wm, agent, traj, torch.stack(dreamed[1:] + feats[-1:]))
    changes = torch.cat(changes) if changes else h.new_zeros(0, 3)
    transformed = dict(count=len(changes), **(dict(zip(("z_changed", "h_change", "value_change"),
                                                        changes.mean(0).tolist())) if len(changes) else {}))
    return traj, mask, examples, transformed


def untransformed_credit(wm, agent, traj, next_dreamed):
    """The other reading of a transformed transition: the transition t ends at the state the world model dreamed,
    next_dreamed[t] (H, B, F), with that state's reward, continue and value; where s_{t+1} was then transformed
    (traj["transformed"][t + 1]), the transformed state starts a new segment: GAE's trace is cut at t, and the mask
    restarts. Updates traj in place and returns the mask."""
    was_transformed = traj["transformed"]
    new_start = torch.cat([was_transformed[1:], torch.zeros_like(was_transformed[:1])]).float()  # (H, B), at t
    with torch.no_grad(), autocast(next_dreamed.device):
        reward, cont_logit = wm.heads(next_dreamed)
        next_value = agent.value(next_dreamed)
    keep = 1 - new_start
    traj["reward"] = keep * traj["reward"] + new_start * reward
    traj["cont"] = keep * traj["cont"] + new_start * (cont_logit > 0).float()
    traj["next_value"] = keep * torch.cat([traj["value"][1:], traj["bootstrap"][None]]) + new_start * next_value
    traj["trace"] = keep
    mask = [torch.ones_like(keep[0])]
    for t in range(1, len(keep)):  # valid while no terminal since the segment's start
        mask.append(torch.where(was_transformed[t], torch.ones_like(mask[-1]), mask[-1] * traj["cont"][t - 1]))
    return torch.stack(mask)


# --- value diversification (Eq. 5)
METHOD = "ValDreamer"


def gradient_ascent(objective, h, z, steps, step_size):
    """Ascend objective(h, z, step) -> (B,) over the state s = (h, z) for `steps` steps of `step_size`.

    - Each step is divided by the mean absolute value of its gradient (per state), as DeepDream does,
      so that the step size means the same whatever the scale of the objective.
    - z is optimised as real numbers but always evaluated as one-hot: each categorical is projected
      to its argmax, with a straight-through gradient, so the state stays valid after every step.
    """
    h, z_real = h.detach().clone(), z.detach().clone()
    for step in range(steps):
        with torch.enable_grad():
            h.requires_grad_(True), z_real.requires_grad_(True)
            with autocast(h.device):
                value = objective(h, project_one_hot(z_real), step).float().sum()
            grad_h, grad_z = torch.autograd.grad(value, (h, z_real))
        scale = torch.cat([grad_h, grad_z.flatten(1)], 1).abs().mean(1, keepdim=True).clamp(min=1e-8)
        h = (h + step_size * grad_h / scale).detach()
        z_real = (z_real + step_size * grad_z / scale[:, :, None]).detach()
    return h, project_one_hot(z_real).detach()


def project_one_hot(z):
    """Argmax one-hot of each categorical, with the gradient of the identity."""
    return F.one_hot(z.argmax(-1), z.shape[-1]).float() + (z - z.detach())


def value_diversification(agent, h, z, args):
    """Eq. 5: ascend (v(s) - v(s_inp))^2 for vd_steps steps of vd_step_size.

    Its gradient is exactly zero at the start (s = s_inp), so the first step ascends sign * v(s) instead,
    with a random sign per state: the objective then grows whichever way v moves. The paper's 10 steps of 0.5
    rewrite nearly the whole state: on coinrun's nights 85% of z's categoricals change class (docs/choices.md).
    """
    with torch.no_grad(), autocast(h.device):
        v_inp = agent.value(feature(h, z)).float()
    sign = torch.randint(0, 2, v_inp.shape, device=h.device) * 2.0 - 1

    def objective(h, z, step):
        value = agent.value(feature(h, z))
        return sign * value if step == 0 else (value - v_inp) ** 2

    return gradient_ascent(objective, h, z, args.vd_steps, args.vd_step_size)


def transformation(wm, agent, args):
    """The night's transform(h, z) -> (h, z): value diversification."""
    return lambda h, z: value_diversification(agent, h, z, args)


def night_experience(wm, agent, replay, args, rng):
    """B_a * U_a dreams of H steps from random starts (Eq. 2), transformed by value diversification."""
    h, z = random_starts(wm, args.dream_batch_size * args.night_updates)
    traj, mask, examples, transformed = dream(wm, agent, h, z, args, transform=transformation(wm, agent, args))
    return ppo_batch(traj, night_gamma(args), args, mask), traj, mask, examples, transformed


# --- evaluation
EVAL_SEED = 3_000_000  # the evaluation's actions draw from --seed + this (its levels: + 1M train, + 2M test levels)
RECORDED_FRAMES = 10  # episodes of each split whose frames an evaluation's recording keeps (held-out model loss)


@contextlib.contextmanager
def own_random_stream(device, seed=None):
    """Torch's draws inside come from a stream of their own (seeded by `seed`, if given): the run's own stream is
    left exactly as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        yield


def evaluate(wm, agent, args, episodes, device, record=False):
    """Raw returns of `episodes` episodes on the full level distribution (test) and as many on the training
    levels (train), played at once: one fresh env per episode, only its first episode counted, and the frames of
    every env still in its first episode go through the world model and the actor in one call per step. The
    envs' levels follow from --seed alone, so every evaluation of a run plays the same levels, and the agent's draws
    come from a random stream of their own (seeded by --seed + EVAL_SEED), so an evaluation is a function of the
    weights and leaves the run's stream as it was (--eval-episodes and --night-eval-every change no training
    number). Also the shares of episodes that completed their level, timed out or failed otherwise (died), and
    their mean length.

    record=True also returns what was played, for the diagnostics (diagnostics.py): every step's (env, s_t, h_{t+1},
    a_t, r_{t+1} shaped as by day, done) and the frames of the first RECORDED_FRAMES episodes of each split. Recording
    draws nothing."""
    envs = (make_envs(args, episodes, 0, args.seed + 2_000_000),
            make_envs(args, episodes, args.num_levels, args.seed + 1_000_000))
    obs = np.concatenate([e.reset()["rgb"] for e in envs])  # (2 * episodes, 64, 64, 3): test envs, then train
    returns, playing = np.zeros(2 * episodes), np.ones(2 * episodes, bool)
    lengths, success = np.zeros(2 * episodes, np.int64), np.zeros(2 * episodes, bool)
    action = np.zeros(2 * episodes, np.int64)  # a finished env keeps getting its last action; nothing counts
    steps_played = []
    framed = np.arange(2 * episodes) % episodes < RECORDED_FRAMES  # the envs whose frames a recording keeps
    finished = bar(2 * episodes, "evaluation")  # counts the episodes played to their end
    with own_random_stream(device, args.seed + EVAL_SEED), acting(device, wm, agent):
        h = wm.initial_h(2 * episodes).float()  # (envs still playing, deter)
        while playing.any():
            active = np.flatnonzero(playing)
            feat, active_action, _, h_next = act(wm, agent, obs[active], h)
            action[active] = active_action.cpu().numpy()
            steps = [e.step(part) for e, part in zip(envs, np.split(action, 2))]
            reward, done = (np.concatenate([s[i] for s in steps]) for i in (1, 2))
            ended = successes([i for s in steps for i in s[3]])
            if record:
                shaped = shape(reward[active], done[active], ended[active], *shaping(args)).astype(np.float32)
                steps_played.append(dict(env=active, feat=feat.cpu(), h_next=h_next.cpu(), action=active_action.cpu(),
                                         reward=shaped, done=done[active], obs=obs[active[framed[active]]]))
            obs = np.concatenate([s[0]["rgb"] for s in steps])
            returns[active] += reward[active]
            lengths[active] += 1
            success[active] = ended[active] & done[active]
            playing[active] = ~done[active]
            h = h_next[torch.as_tensor(~done[active], device=device)]
            finished.update(int(done[active].sum()))
    finished.close()
    for e in envs:
        close_envs(e)
    result = {}
    timeout = lengths >= EPISODE_LIMIT
    for split, part in (("test", slice(0, episodes)), ("train", slice(episodes, None))):
        r = returns[part]
        se = float(r.std(ddof=1) / np.sqrt(episodes)) if episodes > 1 else None  # standard error of the mean
        result.update({f"{split}_return": float(r.mean()), f"{split}_return_std": float(r.std()),
                       f"{split}_return_se": se, f"{split}_success": float(success[part].mean()),
                       f"{split}_timeout": float((timeout[part] & ~success[part]).mean()),
                       f"{split}_death": float((~timeout[part] & ~success[part]).mean()),
                       f"{split}_length": float(lengths[part].mean())})
    return (result, Recording(steps_played, episodes, framed)) if record else result


def image_grid(frames):
    """(rows, cols, 3, 64, 64) in [0, 1] -> (rows*64, cols*64, 3) uint8 picture."""
    rows, cols = frames.shape[:2]
    frames = frames.clamp(0, 1).permute(0, 3, 1, 4, 2).reshape(rows * 64, cols * 64, 3)
    return (frames * 255).byte().cpu().numpy()


def bar(steps, desc):
    """A progress bar over range(steps), or an iterable, on a terminal; nothing elsewhere (CI, benchmark logs)."""
    return tqdm(range(steps) if isinstance(steps, int) else steps, desc=desc, leave=False, disable=None)


# --- the run: Algorithm 1
def main(args):
    """Algorithm 1: a day of real play, then a night of dreams. What keeps the run resumable and reports it (its
    folder, seeding, checkpoints, logs, the duration estimate, the summary) is Run's, in run_plumbing.py."""
    run = Run(args, sys.modules[__name__])
    if run.finished:
        return
    wm, agent, replay, runner, rng, device = run.wm, run.agent, run.replay, run.runner, run.rng, run.device

    # Day: S random seed episodes, then E_d epochs of world-model updates, acting, PPO and evaluation.
    if not run.progress["seed_done"]:
        play_seed_episodes(runner, replay, args, run.real_step)
        run.evaluate("seed")
    while run.progress["day_epoch"] < args.day_epochs:
        run.start_epoch("day")
        for _ in bar(args.wm_updates, "world model"):  # U_w updates of Eq. 1 on replayed sequences
            run.world_model_updated(train_world_model(wm, run.wm_opt, replay, args, rng, device))
        run.start_acting()
        rows, traj = play_day(wm, agent, runner, args.day_steps // args.num_envs, device, run.on_episode)
        run.acted()
        run.agent_opt.param_groups[0]["lr"] = args.day_lr
        run.log("losses", ppo_update(agent, run.agent_opt, ppo_batch(traj, args.gamma, args), args, run.return_scale))
        rows_before = replay.rows
        replay.add(rows)
        run.log("world_model/heldout", heldout_metrics(wm, replay, args, rng, rows_before, device))
        run.evaluate("day")
        run.end_epoch()
    run.end_day()

    # Night: E_n epochs of PPO on dreams of the frozen world model.
    wm.requires_grad_(False)
    run.agent_opt.param_groups[0]["lr"] = args.night_lr
    while run.progress["night_epoch"] < args.night_epochs:
        run.start_epoch("night")
        batch, traj, mask, examples, transformed = night_experience(wm, agent, replay, args, rng)
        run.dreamed(traj, mask, examples, transformed)
        run.log("losses", ppo_update(agent, run.agent_opt, batch, args, run.return_scale))
        run.evaluate("night", dreams=(traj, mask))  # every --night-eval-every epochs and the last
        run.end_epoch(mask.numel())
    run.finish()


def play_seed_episodes(runner, replay, args, on_step):
    """S episodes of a random policy fill the replay first (at least L rows, and no more than it leaves room for);
    on_step(finished episodes) after every step."""
    episodes, num_actions = 0, 15
    while episodes < args.seed_episodes or replay.rows < args.seq_len:
        if replay.rows + 1 > replay.capacity - args.day_epochs * (args.day_steps // args.num_envs):
            break
        row, finished = runner.step(np.random.randint(0, num_actions, args.num_envs))
        row["logp"] = np.full(args.num_envs, -np.log(num_actions), np.float32)
        replay.add({k: v[None] for k, v in row.items()})
        on_step(finished)
        episodes += len(finished)


def heldout_metrics(wm, replay, args, rng, since, device):
    """The world-model loss (Eq. 1) on sequences of the rows added from row `since` on, not trained on yet (None
    when there are too few)."""
    if since < args.seq_len or args.day_steps // args.num_envs < args.seq_len:
        return None
    with torch.no_grad(), autocast(device):
        batch = replay.batch(replay.sample(args.wm_batch_size, args.seq_len, rng, args.reward_priority, low=since),
                             device)
        return wm_metrics(wm.loss(batch, args)[1])


if __name__ == "__main__":
    main(tyro.cli(Args))
