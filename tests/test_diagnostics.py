"""The diagnostics' arithmetic on a hand-made recording, and what they find in states no posterior reaches."""
import numpy as np
import torch

import diagnostics
from conftest import tiny_args
from wm_audit import reward_figure, reward_windows, start_diagnostics


def recording(mod, episodes=1, feat=6, deter=2):
    """Two episodes played in lockstep: env 0 (test) for 3 steps, env 1 (train) for 5; rewards 1, every frame kept;
    states of `feat` units, h_next of `deter`."""
    steps = []
    for t in range(5):
        env = np.array([0, 1]) if t < 3 else np.array([1])
        n = len(env)
        steps.append(dict(env=env, feat=torch.full((n, feat), float(t)), h_next=torch.zeros(n, deter),
                          action=torch.tensor([10 + t, 20 + t][-n:]), reward=np.ones(n),
                          done=np.array([t == 2, t == 4][-n:]), obs=np.full((n, 64, 64, 3), t, np.uint8)))
    return diagnostics.Recording(steps, episodes, np.ones(2 * episodes, bool))


def test_a_recording_holds_each_episode_in_order(mod):
    rec = recording(mod)
    assert rec.env.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    assert rec.action.tolist() == [10, 11, 12, 20, 21, 22, 23, 24]
    assert rec.is_first.tolist() == [True, False, False, True, False, False, False, False]
    assert rec.frames[:, 0, 0, 0].tolist() == [0, 1, 2, 0, 1, 2, 3, 4]  # each row's own frame


def test_returns_to_the_end_and_over_h_steps(mod):
    rec = recording(mod)
    reward = np.arange(1.0, 9.0)  # 1..3 for env 0, 4..8 for env 1
    assert np.allclose(rec.returns(reward, 0.5), [1 + 1 + 0.75, 2 + 1.5, 3, 4 + 2.5 + 1.5 + 0.875 + 0.5,
                                                  5 + 3 + 1.75 + 1, 6 + 3.5 + 2, 7 + 4, 8])
    assert np.allclose(rec.returns(reward, 0.5, horizon=2), [2, 3.5, 3, 6.5, 8, 9.5, 11, 8])


def test_future_actions_stop_at_the_episode_end(mod):
    rec = recording(mod)
    actions = rec.future_actions(np.array([1, 3, 6]), 3)
    assert actions.T.tolist() == [[11, 12, 0], [20, 21, 22], [23, 24, 0]]


def test_random_starts_leave_the_range_of_posterior_states(mod):
    """A posterior h is a GRU state, inside (-1, 1); Eq. 2's h_init ~ N(0, I) is not, and the audit says so."""
    torch.manual_seed(0)
    args = tiny_args(mod, horizon=4)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    agent = mod.Agent(wm.feat_dim, 15, args)
    h, z = mod.random_starts(wm, 256)
    starts = start_diagnostics(mod, wm, agent, h, z, args)
    assert starts["h_outside_by_step"][0] > 0.1 and len(starts["terminal_by_step"]) == 4
    embed = wm.encode(torch.randint(0, 256, (16, 6, 3, 64, 64), dtype=torch.uint8))
    h_real, z_real, _, _ = wm.observe(embed, torch.randint(0, 15, (16, 6)), torch.zeros(16, 6, dtype=torch.bool))
    real = start_diagnostics(mod, wm, agent, h_real[:, -1], z_real[:, -1], args)
    assert real["h_outside_by_step"] == [0.0] * 4


def test_the_reward_figure_draws_the_frames_up_to_each_rewarded_step(mod, tmp_path):
    import matplotlib.pyplot as plt

    torch.manual_seed(0)
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15).requires_grad_(False)
    rec = recording(mod, feat=wm.feat_dim, deter=wm.deter)
    rec.reward = np.zeros(8)
    rec.reward[[2, 7]] = 10.0  # env 0's reward comes at its third step: too early for a window of 5
    assert reward_windows(rec).tolist() == [[3, 4, 5, 6, 7]]
    assert reward_windows(rec, steps=3).tolist() == [[0, 1, 2], [5, 6, 7]]
    assert reward_windows(rec, events=1, steps=3).tolist() == [[0, 1, 2]]
    assert reward_figure(mod, wm, rec, args, tmp_path / "one.png", "tiny") == 1
    assert plt.imread(tmp_path / "one.png").shape[:2] == (288, 680)  # one event: 2 rows (real, reconstructed) of 5 frames
    rec.framed[3:] = False  # env 1 kept no frames
    assert reward_windows(rec).shape == (0, 5)
    assert reward_figure(mod, wm, rec, args, tmp_path / "none.png", "tiny") == 0
    assert not (tmp_path / "none.png").exists()


def test_the_predicted_return_is_the_discounted_reward_inside_the_mask(mod):
    traj = dict(reward=torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    assert diagnostics.predicted_return(traj, mask, 0.5).tolist() == [2.5, 2.0]
    assert diagnostics.by_step(traj["reward"], mask) == [1.5, 3.0, 0.0]


def test_night_study_draws_every_night_against_its_day(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT

    def run(name, exp_name, seed, epochs):
        folder = tmp_path / "logs" / name
        folder.mkdir(parents=True)
        summary = dict(exp_name=exp_name, method="ValDreamer", env_id=name.split("__")[0], seed=seed,
                       day_end_test_return=5.0, day_end_train_return=6.0, night_end_test_return=3.0)
        (folder / "summary.json").write_text(json.dumps(summary))
        lines = [dict(night_epoch=e, test_return=5.0 - e / 100, train_return=6.0, test_closed_loop_gap=e / 50,
                      test_entropy=1.5, test_kl_to_day=e / 100, dream_reward_by_step=[0.5, 1.5], test_length=100,
                      test_timeout=0.25) for e in epochs]
        (folder / "diagnostics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    run("coinrun__day__1", "day", 1, [0])
    run("coinrun__value__1", "dream_ppo_value", 1, [10, 100, 200])
    out = subprocess.run([sys.executable, "tools/night_study.py", str(tmp_path / "logs"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "o" / "nights.md").read_text().splitlines()
    # day end, night end, gain, lowest point, gap at the first point (epoch 10) and at the end, entropy, KL,
    # dreamed / real reward, timeouts:
    # the real reward a step is the return over the length, (4.9 + 4.0 + 3.0) / 100 over three evaluations
    ratio = 3 * 1.0 / ((4.9 + 4.0 + 3.0) / 100)
    assert table[2] == (f"| ValDreamer | coinrun | 1 | 5.00 | 3.00 | -2.00 | 3.00 (200) | +0.20 | +4.00 | 1.50 | 2.00 | "
                        f"{ratio:.1f} | 0.25 |")
    assert (tmp_path / "o" / "diagnostics.png").stat().st_size > 10_000
    run("caveflyer__value__2", "dream_ppo_value", 2, [10, 200])  # a second game: its own rows and figure
    out = subprocess.run([sys.executable, "tools/night_study.py", str(tmp_path / "logs"), "--out", str(tmp_path / "t")],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    rows = [line.split(" | ")[:3] for line in (tmp_path / "t" / "nights.md").read_text().splitlines()[2:]]
    assert rows == [["| ValDreamer", "caveflyer", "2"], ["| ValDreamer", "coinrun", "1"]]
    assert sorted(os.listdir(tmp_path / "t")) == ["audits.md", "diagnostics_caveflyer.png", "diagnostics_coinrun.png",
                                                  "nights.md"]
    empty = subprocess.run([sys.executable, "tools/night_study.py", str(tmp_path / "o"), "--out", str(tmp_path)],
                           capture_output=True, text=True, cwd=ROOT)
    assert empty.returncode == 1 and empty.stderr.startswith("error: no finished run with diagnostics.jsonl")
