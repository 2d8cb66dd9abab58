"""Per-game reward shaping; returns stay raw."""
import numpy as np
import pytest

from conftest import tiny_args


class FakeEnvs:
    def __init__(self, reward, done, complete):
        self.reward, self.done = np.array(reward), np.array(done)
        self.info = [{"prev_level_complete": c} for c in complete]

    def step(self, action):
        return {"rgb": np.zeros((len(self.done), 64, 64, 3), np.uint8)}, self.reward, self.done, self.info


@pytest.mark.parametrize("game, reward, done, complete, shaped", [
    ("coinrun", [10.0, 0.0, 0.0], [True, True, False], [1, 0, 0], [10.0, -10.0, 0.0]),  # penalty on failure only
    ("caveflyer", [0.0, 0.0, 0.0], [True, False, False], [0, 0, 0], [-10.0, 0.0, 0.0]),
    ("chaser", [1.0, 0.0, 0.0], [True, False, False], [0, 0, 0], [25.0, 0.0, 0.0]),  # x25, no penalty
    ("plunder", [1.0, 0.0, 0.0], [True, False, False], [0, 0, 0], [1.0, 0.0, 0.0]),
])
def test_shaping_defaults(mod, game, reward, done, complete, shaped):
    runner = mod.Runner(tiny_args(mod, env_id=game, num_envs=3), 200, 1)
    mod.close_envs(runner.envs)
    runner.envs = FakeEnvs(reward, done, complete)
    row, finished = runner.step(np.zeros(3, int))
    assert row["reward"].tolist() == shaped
    assert [(i, r) for i, r, _ in finished] == [(i, reward[i]) for i in np.flatnonzero(done)]  # raw returns
    assert row["terminal"].tolist() == done and runner.is_first.tolist() == done


def test_shaping_flags_override_the_defaults(mod):
    runner = mod.Runner(tiny_args(mod, env_id="coinrun", num_envs=2, fail_penalty=-3.0, reward_scale=2.0), 200, 1)
    mod.close_envs(runner.envs)
    runner.envs = FakeEnvs([10.0, 0.0], [True, True], [1, 0])
    assert runner.step(np.zeros(2, int))[0]["reward"].tolist() == [20.0, -3.0]


def test_env_state_round_trip(mod):
    runner = mod.Runner(tiny_args(mod, env_id="coinrun", num_envs=2), 200, 7)
    for _ in range(5):
        runner.step(np.ones(2, int))
    state = runner.state_dict()
    frames = [runner.step(np.full(2, 2))[0]["obs"].copy() for _ in range(5)]
    runner.load_state_dict(state, "cpu")
    assert all(np.array_equal(runner.step(np.full(2, 2))[0]["obs"], f) for f in frames)
    mod.close_envs(runner.envs)
