"""What torch.compile does on this device: the world-model update and the acting step, eager against compiled.

    python tools/compile_benchmark.py              # the quick configuration's model (README), one thread
    python tools/compile_benchmark.py --paper      # the paper's model size (Table 1)

Each repeat times the eager and the compiled call one after the other, so that their ratio sees one machine speed
(these machines vary by 1.5-2x from one hour to the next); rows are min / median / max of the repeats, after the
compilation (its seconds printed too). Compiled: WorldModel.loss (encoder, RSSM over L steps, decoder, heads and
Eq. 1; its backward is compiled with it) and act() (the encoder, the posterior step and the actor, at 5 envs).
The scripts stay eager: docs/speed.md has the measured numbers and why.
"""
import argparse
import statistics
import time

import numpy as np
import torch

from shared_code import load_script
from speed_benchmark import fill

QUICK = dict(wm_batch_size=16, deter=256, units=256, cnn_depth=16, stoch=16, classes=16)


def seconds(fn):
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="the paper's model size, not the quick configuration's")
    parser.add_argument("--repeats", type=int, default=10, help="timed pairs of calls (default: 10)")
    parser.add_argument("--no-cuda", action="store_true", help="time the CPU even when CUDA is there")
    cli = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not cli.no_cuda else "cpu")
    m = load_script("dream_ppo_value")
    m.use_bf16(None)
    args = m.Args(env_id="coinrun", **({} if cli.paper else QUICK))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    replay = m.Replay(20_000, args.num_envs)
    fill(replay, 50_000, rng)
    wm = m.WorldModel(args, 15).to(device)
    agent = m.Agent(wm.feat_dim, 15, args).to(device)
    wm_opt = torch.optim.Adam(wm.parameters(), lr=args.wm_lr, eps=1e-8)
    runner = m.Runner(args, args.num_levels, 1)
    h = wm.initial_h(args.num_envs).float()

    def update():
        m.train_world_model(wm, wm_opt, replay, args, rng, device)

    def acting():
        with m.acting(device, wm, agent):
            m.act(wm, agent, runner.obs, h)[1].cpu()

    eager_loss, eager_act = wm.loss, m.act
    compiled_loss, compiled_act = torch.compile(wm.loss), torch.compile(m.act)

    def use(compiled):
        wm.loss = compiled_loss if compiled else eager_loss
        m.act = compiled_act if compiled else eager_act

    print(f"device {device}, {torch.get_num_threads()} threads, bf16 {m.BF16[device.type]}, "
          f"{'paper' if cli.paper else 'quick'} model, torch {torch.__version__}")
    for name, fn in (("world-model update", update), ("acting step, 5 envs", acting)):
        use(True)
        first = seconds(fn) + seconds(fn)  # compilation (a second call: a recompile for the cast weights, if any)
        use(False)
        fn()
        pairs = []
        for _ in range(cli.repeats):
            use(False)
            eager = seconds(fn)
            use(True)
            pairs.append((eager, seconds(fn)))
        use(False)
        for label, values in (("eager, s", [e for e, _ in pairs]), ("compiled, s", [c for _, c in pairs]),
                              ("eager / compiled", [e / c for e, c in pairs])):
            values = sorted(values)
            print(f"{name + ', ' + label:<40} {values[0]:>9.4f} {statistics.median(values):>9.4f} "
                  f"{values[-1]:>9.4f}")
        print(f"{name + ', compiling (2 calls), s':<40} {first:>9.1f}")
    m.close_envs(runner.envs)


if __name__ == "__main__":
    main()
