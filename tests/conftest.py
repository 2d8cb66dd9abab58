"""Shared helpers: import a method script as a module, and run one as a user would.

Unit tests of the shared code run on the template, dream_ppo_value.py: test_shared_code.py proves every
other script holds the same code to the letter. Each method's own section has its own test file, and
the scripts' runs (smoke, resume, bad input) are tested for every script.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools")]  # the shared modules, then the tools
from shared_code import SCRIPTS as METHOD_SCRIPTS, load_script  # noqa: E402,F401

# A run small enough for a 2-core CPU: every part of day and night runs, at toy size.
TINY = ["--env-id", "chaser", "--num-envs", "2", "--seed-episodes", "1", "--day-epochs", "2", "--day-steps", "100",
        "--wm-updates", "2", "--wm-batch-size", "4", "--seq-len", "8", "--night-epochs", "2", "--night-updates", "2",
        "--dream-batch-size", "4", "--horizon", "4", "--deter", "32", "--stoch", "4", "--classes", "4",
        "--units", "32", "--cnn-depth", "4", "--eval-episodes", "2", "--image-every", "1", "--no-cuda"]


def run_script(script, *flags, timeout=600, **env):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1", **env}
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *flags], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.fixture
def mod():
    """The template script, for the code that every script shares."""
    return load_script("dream_ppo_value.py")


def tiny_args(module, **overrides):
    """The TINY configuration as an Args object, for unit tests."""
    base = dict(env_id="chaser", num_envs=2, deter=32, stoch=4, classes=4, units=32, cnn_depth=4, wm_batch_size=4,
                seq_len=8, horizon=4, dream_batch_size=4, night_updates=2)
    base.update(overrides)
    return module.Args(**base)
