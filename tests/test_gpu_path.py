"""The GPU path, checked on the CPU: every tensor names its device, bf16 only where a device runs it natively; and,
where an NVIDIA GPU is present, a tiny run on it."""
import json
import os
import random

import numpy as np
import pytest
import torch

import diagnostics
import run_plumbing
from conftest import METHOD_SCRIPTS, TINY, load_script, run_script, tiny_args

CPU = torch.device("cpu")


def models_and_replay(mod):
    args = tiny_args(mod, env_id="coinrun", wm_batch_size=4, seq_len=8)
    wm = mod.WorldModel(args, 15)
    agent = mod.Agent(wm.feat_dim, 15, args)
    replay = mod.Replay(100, 2)
    replay.add(dict(obs=np.zeros((50, 2, 64, 64, 3), np.uint8), is_first=np.zeros((50, 2), bool),
                    action=np.zeros((50, 2), np.int64), reward=np.ones((50, 2), np.float32),
                    terminal=np.zeros((50, 2), bool), logp=np.zeros((50, 2), np.float32)))
    return args, wm, agent, replay


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_every_tensor_names_its_device(script):
    """With the models and data on the CPU and the default device 'meta', a tensor made without naming its device
    is a meta tensor, and any use of it beside the CPU's tensors fails: what on a GPU would be a CPU tensor in the
    middle of GPU work. The world-model update, the night's experience and PPO of every script; the shared day's
    acting, evaluation and diagnostics in the template."""
    mod = load_script(script)
    args, wm, agent, replay = models_and_replay(mod)
    rng = np.random.default_rng(0)
    with torch.device("meta"):
        metrics = mod.wm_metrics(mod.train_world_model(wm, torch.optim.Adam(wm.parameters()), replay, args, rng, CPU))
        wm.requires_grad_(False)
        batch, traj, mask, _, _ = mod.night_experience(wm, agent, replay, args, rng)
        losses = mod.ppo_update(agent, torch.optim.Adam(agent.parameters()), batch, args, mod.ReturnScale(0.99))
        assert np.isfinite(metrics["loss"]) and np.isfinite(losses["policy_loss"])
        if script == "dream_ppo_value.py":
            result, recording = mod.evaluate(wm, agent, args, 2, CPU, record=True)
            found = diagnostics.diagnose(mod, wm, agent, recording, args, 0.99, agent, dreams=(traj, mask))
            rows, _ = mod.play_day(wm, agent, mod.Runner(args, 200, 1), 10, CPU, lambda ret, length: None)
            assert np.isfinite(result["test_return"]) and "test_closed_loop_gap" in found and len(rows["obs"]) == 10


def test_the_guard_finds_a_tensor_made_on_the_default_device(mod):
    args, wm, agent, _ = models_and_replay(mod)
    with torch.device("meta"), pytest.raises((RuntimeError, NotImplementedError)):
        h = torch.randn(4, wm.deter)  # as if random_starts forgot device=
        wm.img_step(h, mod.random_starts(wm, 4)[1], torch.zeros(4, 15, device=CPU))


@pytest.mark.parametrize("capability, native", [((6, 1), False), ((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_bf16_only_on_gpus_that_run_it_natively(mod, monkeypatch, capability, native):
    """torch.cuda.is_bf16_supported() also counts emulation (slow on a T4 or V100, failing on a Pascal card)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    saved = dict(mod.BF16)
    try:
        mod.use_bf16(None)
        assert mod.BF16["cuda"] is native and mod.BF16["cpu"] is mod.native_bf16("cpu")
        mod.use_bf16(True)  # --bf16 forces it, --no-bf16 turns it off
        assert mod.BF16 == {"cuda": True, "cpu": True}
        mod.use_bf16(False)
        assert mod.BF16 == {"cuda": False, "cpu": False}
    finally:
        mod.BF16.update(saved)


NO_GPU = dict(condition=not torch.cuda.is_available(), reason="needs an NVIDIA GPU (checked by the device tool when "
              "one is lent; on the CPU, the tests above check the GPU path)")


@pytest.mark.skipif(**NO_GPU)
def test_a_world_model_update_never_waits_for_the_gpu(mod):
    """With CUDA's synchronisation debugging set to fail, two world-model updates run (their metrics stay on the GPU
    until logged, the batch is copied without blocking)."""
    args, wm, agent, replay = models_and_replay(mod)
    device = torch.device("cuda")
    wm.to(device)
    optimizer = torch.optim.Adam(wm.parameters())
    mod.train_world_model(wm, optimizer, replay, args, np.random.default_rng(0), device)  # set-up may wait
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metrics = mod.train_world_model(wm, optimizer, replay, args, np.random.default_rng(1), device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert np.isfinite(mod.wm_metrics(metrics)["loss"])


@pytest.mark.skipif(**NO_GPU)
def test_a_tiny_run_and_a_night_from_its_day_on_the_gpu(tmp_path):
    flags = [f for f in TINY if f != "--no-cuda"]
    out = run_script("dream_ppo_value.py", *flags, "--log-dir", str(tmp_path / "a"), "--run-name", "day",
                     "--save-checkpoint")
    assert out.returncode == 0, out.stderr[-3000:]
    with open(tmp_path / "a" / "day" / "summary.json") as f:
        assert json.load(f)["device"] == "cuda"
    night = run_script("dream_ppo_deepdream.py", *flags, "--log-dir", str(tmp_path / "b"), "--load-day-checkpoint",
                       os.path.join(tmp_path, "a", "day"), "--night-epochs", "1", CUDA_VISIBLE_DEVICES="0")
    assert night.returncode == 0, night.stderr[-3000:]


def test_a_checkpoint_keeps_the_random_state_of_the_gpu_in_use_only(monkeypatch):
    """A run saved on a machine with several GPUs resumes on one: the checkpoint holds the random state of the GPU in
    use, and an older checkpoint's list of every GPU's state gives back the first one's."""
    cuda, restored = torch.device("cuda"), []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda: torch.tensor([7], dtype=torch.uint8))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state: restored.append(state.tolist()))
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("read every GPU's random state"))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: pytest.fail("set every GPU's random state"))
    rng = np.random.default_rng(5)
    state = run_plumbing.random_state(rng, cuda)
    assert state["cuda"].tolist() == [7]

    def draws():
        return rng.random(2).tolist(), np.random.random(2).tolist(), torch.rand(2).tolist(), random.random()

    first = draws()
    run_plumbing.restore_random_state(state, rng, cuda)
    assert draws() == first and restored == [[7]]
    two_gpus = dict(state, cuda=[torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)])
    run_plumbing.restore_random_state(two_gpus, rng, cuda)
    assert restored == [[7], [1]]
    run_plumbing.restore_random_state(dict(state, cuda=None), rng, torch.device("cpu"))
    assert restored == [[7], [1]] and draws() == first
