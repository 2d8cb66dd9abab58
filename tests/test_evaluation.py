"""Evaluation: N first episodes on test levels and N on training levels, played at once, the same levels every time."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import TINY, run_script, tiny_args


class ScriptedEnvs:
    """Env i ends an episode every lengths[i] steps; its first episode scores first[i], every later one 100."""

    def __init__(self, lengths, first):
        self.lengths, self.first, self.t = np.array(lengths), np.array(first, float), 0
        self.env = self  # what close_envs closes

    def reset(self):
        return {"rgb": np.zeros((len(self.lengths), 64, 64, 3), np.uint8)}

    def step(self, action):
        self.t += 1
        done = self.t % self.lengths == 0
        reward = np.where(done, np.where(self.t == self.lengths, self.first, 100.0), 0.0)
        return self.reset(), reward, done, [{}] * len(done)

    def close(self):
        pass


def small_model(mod, args):
    wm = mod.WorldModel(args, 15)
    return wm, mod.Agent(wm.feat_dim, 15, args)


def test_each_env_counts_its_first_episode_only_and_all_envs_act_in_one_call(mod, monkeypatch):
    args = tiny_args(mod, fail_penalty=-10.0, reward_scale=1.0)
    scripted = {0: ScriptedEnvs([1, 3, 2], [1.0, 2.0, 3.0]),  # test levels (num_levels=0)
                args.num_levels: ScriptedEnvs([4, 1, 2], [10.0, 20.0, 30.0])}  # training levels
    monkeypatch.setattr(mod, "make_envs", lambda args, n, num_levels, seed: scripted[num_levels])
    batch_sizes = []
    act = mod.act
    monkeypatch.setattr(mod, "act", lambda wm, agent, obs, h: batch_sizes.append(len(obs)) or act(wm, agent, obs, h))
    result, recording = mod.evaluate(*small_model(mod, args), args, 3, torch.device("cpu"), record=True)
    assert result["test_return"] == pytest.approx(2.0) and result["train_return"] == pytest.approx(20.0)
    assert result["test_return_std"] == pytest.approx(np.std([1, 2, 3]))
    assert result["train_return_se"] == pytest.approx(np.std([10, 20, 30], ddof=1) / np.sqrt(3))
    # one call per step, with the frames of every env still in its first episode: ends at steps 1, 1, 2, 2, 3, 4
    assert batch_sizes == [6, 4, 2, 1]
    # the recording, each env's first episode in order, keeps the training reward: no env here completes its level,
    # so each episode's end pays the failure penalty
    assert recording.env.tolist() == [0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 5, 5]
    assert recording.reward.tolist() == [-9, 0, 0, -8, 0, -7, 0, 0, 0, 0, 10, 0, 20]


def test_the_same_levels_come_back_at_every_evaluation_and_differ_between_seeds(mod, monkeypatch):
    starts = []
    make_envs = mod.make_envs

    def recording(args, n, num_levels, seed):
        envs = make_envs(args, n, num_levels, seed)
        reset = envs.reset
        envs.reset = lambda: starts.append(reset()["rgb"].copy()) or {"rgb": starts[-1]}
        return envs

    monkeypatch.setattr(mod, "make_envs", recording)
    args = tiny_args(mod, env_id="coinrun")
    wm, agent = small_model(mod, args)
    first, again = (mod.evaluate(wm, agent, args, 4, torch.device("cpu")) for _ in range(2))
    other_seed = mod.evaluate(wm, agent, tiny_args(mod, env_id="coinrun", seed=2), 4, torch.device("cpu"))
    assert len(starts) == 6 and all(s.shape == (4, 64, 64, 3) for s in starts)
    assert np.array_equal(starts[0], starts[2]) and np.array_equal(starts[1], starts[3])  # test, train levels
    assert not np.array_equal(starts[0], starts[1])  # the full distribution is not the training levels
    assert not np.array_equal(starts[0], starts[4]) and not np.array_equal(starts[1], starts[5])
    for result in (first, again, other_seed):
        for split in ("test", "train"):  # coinrun scores 0 or 10 an episode
            assert result[f"{split}_return"] * 4 / 10 == pytest.approx(round(result[f"{split}_return"] * 4 / 10))


def test_eval_episodes_and_the_final_evaluations_size_are_in_the_summary(tmp_path):
    out = run_script("dream_ppo_value.py", *TINY, "--log-dir", str(tmp_path), "--day-epochs", "1", "--night-epochs",
                     "1", "--eval-episodes", "12", "--final-eval-episodes", "30")
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = os.listdir(tmp_path)
    with open(tmp_path / run / "summary.json") as f:
        summary = json.load(f)
    assert summary["eval_episodes"] == 12 and summary["final_eval_episodes"] == 30
    for phase in ("day", "night"):
        for split in ("test", "train"):
            assert summary[f"{phase}_end_{split}_return_se"] > 0
