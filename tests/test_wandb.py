"""--track: W&B records the run's config, every scalar, the films and the code; offline here, so no network or
account is needed."""
import glob
import json
import os
import subprocess
import sys

import pytest

from conftest import TINY, run_script


def test_track_records_config_and_scalars_offline(tmp_path):
    wandb_env = dict(WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_CACHE_DIR=str(tmp_path / "cache"),
                     WANDB_CONFIG_DIR=str(tmp_path / "config"), WANDB_DATA_DIR=str(tmp_path / "data"))
    out = run_script("dream_ppo_value.py", *TINY, "--day-epochs", "1", "--night-epochs", "1", "--log-dir",
                     str(tmp_path / "runs"), "--track", "--capture-video", **wandb_env)
    assert out.returncode == 0, out.stderr[-3000:]
    (log,) = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "*.wandb"))
    # W&B's own reader of its transaction log: one JSON record a line
    records = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", log], capture_output=True,
                             text=True, check=True, env={**os.environ, **wandb_env}).stdout.splitlines()
    records = [json.loads(line) for line in records]
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    config = run["config"]["update"]
    assert (config["env_id"], config["day_epochs"], config["deter"], config["track"]) == ("chaser", 1, 32, True)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    test_returns = [item["eval/test_return"] for item in history if "eval/test_return" in item]
    assert len(test_returns) == 3  # the untrained agent, the day's epoch, the night's
    names = {name for item in history for name in item}
    films = [item[f"video/{name}.format"] for item in history for name in ("eval_test", "eval_train", "dream")
             if f"video/{name}.format" in item]
    assert films == ["gif"] * 6  # --capture-video's films, synced from TensorBoard: the day's end and the night's
    assert {"eval/train_return", "charts/episodic_return", "losses/policy_loss", "world_model/loss",
            "dream/reward_mean", "global_step"} <= names
    with open(os.path.join(glob.glob(str(tmp_path / "runs" / "*"))[0], "summary.json")) as f:
        assert test_returns[-1] == pytest.approx(json.load(f)["night_end_test_return"])
    # the run's code: the script and the two modules beside it that it imports
    (code,) = [r["artifact"] for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "code"]
    assert {f["path"] for f in code["manifest"]["contents"]} == {"dream_ppo_value.py", "run_plumbing.py",
                                                                 "diagnostics.py"}
    assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [0]  # the run was finished
