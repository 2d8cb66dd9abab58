"""What a run tells its user while it runs: the estimated duration (with the quick command when it is long on a
CPU), and progress bars on a terminal only."""
import io
import os
import time
import types

import numpy as np
import torch

from conftest import ROOT, tiny_args
from run_plumbing import QUICK_FLAGS, Run, estimate_line, remaining_seconds, time_acting

RATES = dict(eval=10.0, wm=1.0, act=0.01, night=2.0)


def test_remaining_seconds_counts_the_work_still_to_come(mod):
    args = tiny_args(mod, day_epochs=3, night_epochs=5, night_eval_every=2, wm_updates=4, day_steps=100)
    progress = dict(day_epoch=1, night_epoch=0)
    # 2 day epochs of 4 updates and 50 acting steps, 2 + 3 evaluations (night epochs 2, 4 and the last), 5 nights
    assert remaining_seconds(args, progress, RATES) == 5 * 10 + 2 * (4 * 1 + 50 * 0.01) + 5 * 2
    night = dict(day_epoch=3, night_epoch=2)
    assert remaining_seconds(args, night, RATES) == 2 * 10 + 3 * 2
    assert remaining_seconds(args, dict(day_epoch=3, night_epoch=5), RATES) == 0
    # the evaluations that end the day and the night play 3x the episodes: counted 3x as long
    longer_ends = tiny_args(mod, day_epochs=3, night_epochs=5, night_eval_every=2, wm_updates=4, day_steps=100,
                            eval_episodes=10, final_eval_episodes=30)
    assert remaining_seconds(longer_ends, progress, RATES) == 5 * 10 + 2 * 2 * 10 + 2 * (4 * 1 + 50 * 0.01) + 5 * 2
    # a day that evaluates every 2nd epoch and its last: epochs 2 and 3 left to evaluate of 2 and 3
    sparse_day = tiny_args(mod, day_epochs=3, night_epochs=5, night_eval_every=2, wm_updates=4, day_steps=100,
                           day_eval_every=2)
    assert remaining_seconds(sparse_day, progress, RATES) == remaining_seconds(args, progress, RATES)
    assert remaining_seconds(sparse_day, dict(day_epoch=0, night_epoch=0), RATES) == (
        remaining_seconds(args, dict(day_epoch=0, night_epoch=0), RATES) - 10)  # epoch 1 does not evaluate


def test_estimate_line_gives_the_quick_command_past_an_hour_on_a_cpu(mod):
    args = tiny_args(mod, env_id="plunder", seed=7)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    short = estimate_line(args, 3500, RATES, cpu, "dream_ppo_value.py")
    assert short.startswith("estimated duration of this run on cpu: 0:58:20 (evaluation 10.0 s,") and "\n" not in short
    long = estimate_line(args, 40000, dict(RATES, night=0.0), cpu, "dream_ppo_value.py").splitlines()
    assert long[0].startswith("estimated duration of this run on cpu: 11:06:40") and "night" not in long[0]
    assert long[1].endswith(f"python dream_ppo_value.py --env-id plunder --seed 7 {QUICK_FLAGS}")
    assert "\n" not in estimate_line(args, 40000, RATES, cuda, "dream_ppo_value.py")


def test_the_readme_shows_the_same_quick_command(mod):
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = " ".join(f.read().replace("\\\n", " ").split())
    assert f"python dream_ppo_value.py --env-id coinrun --seed 1 {QUICK_FLAGS}" in readme


def test_timing_acting_leaves_the_run_as_it_was(mod):
    args = tiny_args(mod)
    wm = mod.WorldModel(args, 15)
    agent = mod.Agent(wm.feat_dim, 15, args)
    h_next = torch.zeros(2, args.deter)
    runner = types.SimpleNamespace(obs=np.zeros((2, 64, 64, 3), np.uint8), is_first=np.zeros(2, bool), h_next=h_next)
    rng = torch.get_rng_state()
    assert time_acting(mod, wm, agent, runner, torch.device("cpu")) > 0
    assert runner.h_next is h_next and torch.equal(torch.get_rng_state(), rng)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_shows_on_a_terminal_only(mod, monkeypatch, capsys):
    assert list(mod.bar(3, "world model")) == [0, 1, 2] and list(mod.bar("ab", "acting")) == ["a", "b"]
    assert capsys.readouterr() == ("", "")  # not a terminal: nothing
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    for _ in mod.bar(3, "world model"):
        time.sleep(0.15)  # slower than tqdm's refresh interval: every step is shown
    shown = terminal.getvalue().split("\r")
    assert [line.split("|")[-1].split()[0] for line in shown if line.startswith("world model:")] == \
        ["0/3", "1/3", "2/3", "3/3"]


def test_the_estimate_times_the_second_world_model_update(mod):
    """The first update of a process carries one-off set-up (kernel choice by cuDNN, cuBLAS or oneDNN): the estimate
    waits for the second and takes its time."""
    calls = []
    run = types.SimpleNamespace(device=torch.device("cpu"), progress=dict(wm_update_seconds=0.0, wm_updates=0),
                                updates_here=0, estimate=lambda **kw: calls.append(kw))
    for seconds in (5.0, 0.5, 0.7):
        run.mark = time.time() - seconds
        Run.world_model_updated(run, {"loss": torch.tensor(1.0)})
    assert len(calls) == 1 and abs(calls[0]["wm_seconds"] - 0.5) < 0.1
    assert run.progress["wm_updates"] == 3 and abs(run.progress["wm_update_seconds"] - 6.2) < 0.3
