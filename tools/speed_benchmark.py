"""Time this project's own code at the paper's model size on the current device; print a table, write JSON.

    python tools/speed_benchmark.py                 # everything, about 10 minutes on 2 CPU cores
    python tools/speed_benchmark.py --quick         # shorter acting, no 200 + 200 evaluation, no 1M-frame replay

Every row is the min / median / max of 3 repeats after a warm-up (these machines vary by 1.5-2x from one hour to
the next), at the paper's model size with a replay of 50k frames: one world-model update at 16 x 25 and
100 x 25 frames; one PPO update over 5,000 latent transitions; one night's dreams (312 starts x 16 steps, with
the actor) for the baseline and each transformation; acting in ProcGen with the world model's encoding at 5
envs (env steps/s); one evaluation of 25 + 25 and of 200 + 200 coinrun episodes (test and training levels) by
the untrained agent, whose episodes are about as long as a random policy's (coinrun: 650 steps on average).
Then it fills the replay to 1M synthetic frames, reports its resident size, times a 100 x 25 update drawing
from it, and reports the peak resident memory of the whole process.
"""
import argparse
import json
import os
import resource
import statistics
import time

import numpy as np
import torch

from shared_code import load_script



def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timed(fn, repeats=3, warmup=1):
    """Seconds of each of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def fill(replay, frames, rng):
    """Synthetic rows in chunks of 1,000: random frames (one chunk, written again and again), 10% rewarded."""
    e = replay.data["obs"].shape[1]
    chunk = rng.integers(0, 256, (1000, e, 64, 64, 3), np.uint8)
    while replay.rows * e < frames:
        n = min(1000, frames // e - replay.rows)
        replay.add(dict(obs=chunk[:n], is_first=rng.random((n, e)) < 0.005, action=rng.integers(0, 15, (n, e)),
                        reward=(rng.random((n, e)) < 0.1).astype(np.float32), terminal=rng.random((n, e)) < 0.005,
                        logp=np.full((n, e), -2.7, np.float32)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a 50k-frame replay")
    parser.add_argument("--out", default="speed.json", help="where to write the results as JSON")
    parser.add_argument("--no-cuda", action="store_true", help="time the CPU even when CUDA is there")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="autocast as the scripts' --bf16 flag: auto = bf16 on CUDA and on CPUs with native bf16")
    cli = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not cli.no_cuda else "cpu")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    modules = {name: load_script(name) for name in ("dreamer_baseline", "dream_ppo_rnd", "dream_ppo_deepdream",
                                             "dream_ppo_value", "dream_ppo_full")}
    m = modules["dream_ppo_value"]
    bf16 = {"auto": None, "bf16": True, "fp32": False}[cli.precision]
    for module in modules.values():
        if hasattr(module, "BF16"):
            module.use_bf16(bf16)
    args = m.Args(env_id="coinrun")
    results = dict(device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
                   torch=torch.__version__, threads=torch.get_num_threads(),
                   bf16=getattr(m, "BF16", {"cpu": False, "cuda": True})[device.type])

    def report(name, values, unit):
        """One row: min / median / max of the repeats' values."""
        values = sorted(values)
        results[name] = dict(min=values[0], median=statistics.median(values), max=values[-1], unit=unit)
        print(f"{name:<52} {values[0]:>10.2f} {statistics.median(values):>10.2f} {values[-1]:>10.2f}  {unit}",
              flush=True)

    print(f"{'':<52} {'min':>10} {'median':>10} {'max':>10}")

    replay = m.Replay(1_000_000 // args.num_envs + 1, args.num_envs)
    fill(replay, 50_000, rng)
    wm = m.WorldModel(args, 15).to(device)
    agent = m.Agent(wm.feat_dim, 15, args).to(device)
    wm_opt = torch.optim.Adam(wm.parameters(), lr=args.wm_lr, eps=1e-8)

    def wm_update(batch):
        args.wm_batch_size = batch
        return timed(lambda: m.train_world_model(wm, wm_opt, replay, args, rng, device))

    for batch in (16, 100):
        report(f"world-model update, {batch} x 25 frames", wm_update(batch), "s")

    feat = torch.randn(5000, wm.feat_dim, device=device)
    batch = dict(feat=feat, action=torch.randint(0, 15, (5000,), device=device), logp=torch.full((5000,), -2.7,
                 device=device), advantage=torch.randn(5000, device=device), target=torch.randn(5000, device=device),
                 mask=torch.ones(5000, device=device))
    agent_opt = torch.optim.Adam(agent.parameters(), lr=args.day_lr, eps=1e-5)
    ppo = timed(lambda: m.ppo_update(agent, agent_opt, batch, args, m.ReturnScale(0.99)))
    report("PPO update, 5,000 transitions x 4 iterations", ppo, "s")

    wm.requires_grad_(False)
    torch.nn.init.normal_(agent.critic[-1].weight, std=0.01)  # value diversification needs a non-zero critic
    night = {}
    transitions = args.dream_batch_size * args.night_updates * args.horizon
    for name, module in modules.items():
        night[name] = timed(lambda: module.night_experience(wm, agent, replay, module.Args(env_id="coinrun"), rng))
        report(f"dreams 312 x 16, {module.METHOD}", [transitions / s for s in night[name]], "transitions/s")
    for name in ("dream_ppo_deepdream", "dream_ppo_value"):  # repeat by repeat, so the ratio sees one machine speed
        pairs = list(zip(night[name], night["dreamer_baseline"], ppo))
        report(f"{modules[name].METHOD} / Dreamer, dreams", [a / b for a, b, _ in pairs], "x")
        report(f"{modules[name].METHOD} / Dreamer, dreams + PPO", [(a + p) / (b + p) for a, b, p in pairs], "x")

    runner = m.Runner(args, args.num_levels, 1)
    steps = 200 if cli.quick else 1000
    seconds = timed(lambda: m.play_day(wm, agent, runner, steps, device, lambda *a: None))
    report(f"acting in ProcGen with encoding, {args.num_envs} envs", [steps * args.num_envs / s for s in seconds],
           "env steps/s")
    for episodes in (25,) if cli.quick else (25, 200):
        report(f"one evaluation, coinrun, {episodes} + {episodes} episodes",
               timed(lambda: m.evaluate(wm, agent, args, episodes, device), warmup=0), "s")

    frames = 50_000 if cli.quick else 1_000_000
    base_rss = rss_mb()
    fill(replay, frames, rng)
    report(f"replay filled to {frames:,} frames, resident", [(rss_mb() - base_rss) / 1024 + 50_000 * 12288 / 2**30],
           "GB")
    wm.requires_grad_(True)
    report(f"world-model update, 100 x 25, {frames:,}-frame replay", wm_update(100), "s")
    report("peak resident memory, whole benchmark", [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20], "GB")

    with open(cli.out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {cli.out}")


if __name__ == "__main__":
    main()
