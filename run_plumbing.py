"""Everything of a run that is not the method: its folder, seeding, resume, checkpoints, logs, the duration estimate,
progress lines, films and the summary. Shared by every method script, whose main() builds one Run and calls it between
the steps of Algorithm 1; the Run builds the script's own models, replay and envs (it is given the script, `m`)."""
import contextlib
import copy
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict

import numpy as np
import torch
from PIL import Image
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import diagnostics

GIF_FRAMES = 250  # at most, in TensorBoard's films (the files keep every frame)


class Run:
    """Everything of a run that is not the method, called by main() between the steps of Algorithm 1. Building
    one checks the flags and the run folder, seeds, builds the models, optimisers, replay and envs and restores them
    (--resume, --load-day-checkpoint) in an order that keeps a run's random stream the same however it starts."""

    def __init__(self, args, m):
        check_args(args, m)
        self.m = m
        if args.resume:
            args.run_name = find_resumable(args)
        self.args = args
        self.run_name = args.run_name or f"{args.env_id}__{args.exp_name}__{args.seed}__{int(time.time())}"
        self.run_dir = run_dir = os.path.join(args.log_dir, self.run_name)
        self.finished = os.path.isfile(os.path.join(run_dir, "summary.json"))
        if self.finished:
            print(f"{run_dir} has finished (summary.json exists); nothing to do")
            return
        if not args.resume and os.path.isfile(os.path.join(run_dir, "checkpoint.pt")):
            sys.exit(f"error: {run_dir} holds an unfinished run; add --resume to continue it or pick another "
                     "--run-name")
        resume_state = load_checkpoint(os.path.join(run_dir, "checkpoint.pt"), args) if args.resume else None
        self.day_state = day_state = load_checkpoint(args.load_day_checkpoint, args) if args.load_day_checkpoint \
            else None
        state = resume_state or day_state

        random.seed(args.seed), np.random.seed(args.seed), torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.device = device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        m.use_bf16(args.bf16)
        torch.backends.cudnn.benchmark = device.type == "cuda"  # the fastest convolutions for these fixed shapes
        num_actions = 15
        self.wm = m.WorldModel(args, num_actions).to(device)
        self.agent = m.Agent(self.wm.feat_dim, num_actions, args).to(device)
        self.wm_opt = torch.optim.Adam(self.wm.parameters(), lr=args.wm_lr, eps=1e-8)
        self.agent_opt = torch.optim.Adam(self.agent.parameters(), lr=args.day_lr, eps=1e-5)
        self.return_scale = m.ReturnScale(args.return_decay)
        self.day_agent = None  # the policy at the day's end, for the night's diagnostics (KL to it)
        steps_per_env = args.day_steps // args.num_envs
        loaded_rows = state["replay_rows"] if state is not None else 0  # a night may read a longer day
        self.replay = m.Replay(max(args.day_epochs * steps_per_env + 4096, loaded_rows), args.num_envs,  # 4096: seeds
                               run_dir if args.replay_on_disk else None)
        # a night started from a day checkpoint reads that day's replay; read before anything starts or is written
        self.replay_dir = state["replay_dir"] if state is not None else os.path.abspath(os.path.join(run_dir,
                                                                                                      "replay"))
        if state is not None:
            self.replay.load(self.replay_dir, state["replay_rows"])
        self.runner = m.Runner(args, args.num_levels, args.seed)
        self.progress = progress = dict(
            day_epoch=0, night_epoch=0, global_step=0, seed_done=False, day_seconds=0.0, night_seconds=0.0,
            day_env_steps=0, wm_update_seconds=0.0, wm_updates=0, night_transitions=0, eval_seconds=0.0, evals=0,
            day_end=None, night_end=None, code=[])
        if state is not None:
            self.restore(state, resume_state is not None)
        if day_state is not None:
            progress.update(day_epoch=args.day_epochs, seed_done=True)
        version = code_version()  # each process that works on the run adds the code it runs, if it differs
        if not progress["code"] or {k: progress["code"][-1].get(k) for k in version} != version:
            progress["code"] = progress["code"] + [dict(version, from_step=progress["global_step"])]

        os.makedirs(run_dir, exist_ok=True)
        if args.track:
            import wandb

            run = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, sync_tensorboard=True,
                             config=vars(args), name=self.run_name, save_code=True, resume="allow", id=self.run_name)
            # the code tab holds the script only; the run's code is the script and the two modules it imports
            code = {os.path.abspath(f) for f in (m.__file__, __file__, diagnostics.__file__)}
            run.log_code(os.path.dirname(os.path.abspath(m.__file__)), include_fn=lambda p: os.path.abspath(p) in code)
        # a resumed run hides what its killed attempt logged after the checkpoint's step (kept: that step's own
        # evaluation, and the killed epoch's first world-model metrics, logged at the same step)
        self.writer = SummaryWriter(run_dir, purge_step=progress["global_step"] + 1 if state is not None else None)
        self.diagnostics_path = os.path.join(run_dir, "diagnostics.jsonl")  # one line per diagnosed evaluation
        if resume_state is not None and os.path.isfile(self.diagnostics_path):  # drop the killed attempt's lines
            with open(self.diagnostics_path) as f:
                kept = [line for line in f if json.loads(line)["global_step"] <= progress["global_step"]]
            with open(self.diagnostics_path, "w") as f:
                f.writelines(kept)
        table = "\n".join(f"|{k}|{v}|" for k, v in vars(args).items())
        self.writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + table)
        print(f"{m.METHOD} on {args.env_id}, seed {args.seed}, device {device}, logging to {run_dir}", flush=True)
        self.start = time.time()
        self.epoch_lengths = []  # lengths of the training episodes finished in this day epoch
        self.estimated, self.updates_here = False, 0  # the estimate is printed once (see estimate)
        self.phase = None

    def restore(self, state, resumed):
        """Models, optimisers, P, progress and every random generator from a checkpoint; the envs too if resumed
        within the day."""
        self.wm.load_state_dict(state["world_model"]), self.agent.load_state_dict(state["agent"])
        self.wm_opt.load_state_dict(state["wm_opt"]), self.agent_opt.load_state_dict(state["agent_opt"])
        self.return_scale.range = state["return_scale"]
        self.progress.update(state["progress"])
        restore_random_state(state["rng"], self.rng, self.device)
        if resumed and state["runner"] is not None:
            self.runner.load_state_dict(state["runner"], self.device)
        if state.get("day_agent") is not None:
            self.day_agent = self.m.Agent(self.wm.feat_dim, 15, self.args).to(self.device)
            self.day_agent.load_state_dict(state["day_agent"])

    def log(self, prefix, metrics):
        for k, v in (metrics or {}).items():
            if v is not None:
                self.writer.add_scalar(f"{prefix}/{k}", v, self.progress["global_step"])

    def on_episode(self, ret, length):
        """A finished training episode (raw return)."""
        self.log("charts", dict(episodic_return=ret, episodic_length=length))
        self.epoch_lengths.append(length)

    def real_step(self, finished):
        """A seed-episode step of every env, and the episodes it finished."""
        for _, ret, length in finished:
            self.on_episode(ret, length)
        self.progress["global_step"] += self.args.num_envs

    def start_epoch(self, phase):
        if self.phase != phase:  # a phase's first epoch in this process: its ETA counts from here
            self.phase, self.phase_start, self.first_epoch = phase, time.time(), self.progress[f"{phase}_epoch"]
        self.epoch = self.progress[f"{phase}_epoch"] + 1  # counted from 1
        self.epoch_start = self.mark = time.time()

    def world_model_updated(self, metrics):
        """One world-model update done: timed, its metrics kept (the epoch's last are logged). The process's second
        update times the estimate (the first carries one-off set-up: cuDNN's, cuBLAS's or oneDNN's choice of
        kernels), so on a GPU the first two wait for their work to be done; the others run on (see start_acting)."""
        if self.device.type == "cuda" and self.updates_here < 2:
            torch.cuda.synchronize(self.device)
        seconds = time.time() - self.mark
        self.progress["wm_update_seconds"] += seconds
        self.progress["wm_updates"] += 1
        self.wm_metrics, self.updates_here = metrics, self.updates_here + 1
        if self.updates_here == 2:
            self.estimate(wm_seconds=seconds)
        self.mark = time.time()

    def start_acting(self):
        if self.device.type == "cuda":  # the epoch's world-model work still queued on the GPU counts as its own
            torch.cuda.synchronize(self.device)
            self.progress["wm_update_seconds"] += time.time() - self.mark
        self.estimate()
        if self.args.wm_updates:
            self.log("world_model", self.m.wm_metrics(self.wm_metrics))
        self.mark = time.time()
        self.epoch_lengths.clear()

    def acted(self):
        """T_d real steps played: their count, speed, and the share of episodes that ran into the timeout."""
        if self.epoch_lengths:  # an agent that stalls runs into the timeout (under a failure penalty, waiting can pay)
            timeouts = np.array(self.epoch_lengths) >= self.m.EPISODE_LIMIT
            self.log("charts", dict(timeout_fraction=float(np.mean(timeouts))))
        self.progress["day_env_steps"] += self.args.day_steps
        self.progress["global_step"] += self.args.day_steps
        self.writer.add_scalar("charts/SPS", self.args.day_steps / (time.time() - self.mark),
                               self.progress["global_step"])

    def dreamed(self, traj, mask, examples, transformed):
        """A night epoch's dreams: counted (the x-axis), summarised (dream/*) and, every --image-every epochs and at
        the night's first and last, decoded into pictures."""
        progress = self.progress
        progress["night_transitions"] += mask.numel()
        progress["global_step"] += mask.numel()
        self.log("dream", dict(reward_mean=self.m.masked_mean(traj["reward"], mask).item(),
                               terminal_rate=self.m.masked_mean(1 - traj["cont"], mask).item(),
                               valid_fraction=mask.mean().item(),
                               transformed_fraction=transformed.pop("count") / mask.numel(),
                               value_mean=self.m.masked_mean(traj["value"], mask).item(),
                               **{f"transform_{k}": v for k, v in transformed.items()}))
        if self.images_due():
            with torch.no_grad():
                self.writer.add_image("dream/trajectories",
                                      self.m.image_grid(self.wm.decode(traj["feat"][:, :4]).transpose(0, 1)),
                                      progress["global_step"], dataformats="HWC")
                if examples:
                    pairs = torch.stack([torch.stack(p) for p in examples], 1)  # (2, n, F): before, after
                    self.writer.add_image("dream/transformation_before_after", self.m.image_grid(self.wm.decode(pairs)),
                                          progress["global_step"], dataformats="HWC")

    def images_due(self):
        """Whether this night epoch logs pictures and films: every --image-every epochs, the night's first and last."""
        return self.epoch % self.args.image_every == 0 or self.epoch in (1, self.args.night_epochs)

    def video(self, name, frames, fps):
        """(T, height, width, 3) uint8 frames as videos/{name}_{step}.mp4 (H.264) and as video/{name} in TensorBoard's
        images, an animated GIF (which W&B syncs as a video) of at most GIF_FRAMES: every k-th of a longer film."""
        import av

        step, (height, width) = self.progress["global_step"], frames.shape[1:3]
        os.makedirs(os.path.join(self.run_dir, "videos"), exist_ok=True)
        with av.open(os.path.join(self.run_dir, "videos", f"{name}_{step}.mp4"), "w") as file:
            stream = file.add_stream("h264", rate=fps, height=height, width=width, pix_fmt="yuv420p")
            for frame in frames:
                file.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            file.mux(stream.encode())  # flush
        every, gif = -(-len(frames) // GIF_FRAMES), io.BytesIO()
        first, *rest = [Image.fromarray(frame).quantize(method=Image.Quantize.FASTOCTREE) for frame in frames[::every]]
        first.save(gif, "GIF", save_all=True, append_images=rest, duration=1000 * every // fps, loop=0)
        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=gif.getvalue())
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=f"video/{name}", image=image)]),
                                                   step)

    def evaluate(self, phase, dreams=None):
        """The evaluation after the seed episodes, and after every --day-eval-every-th day epoch and
        --night-eval-every-th night epoch and each phase's last (before it, the night's first epoch prints the
        estimate). The evaluations that end the day and the night play final_eval_episodes; with --diagnostics they
        and every night evaluation also diagnose the world model on the episodes played (diagnostics/*, and a line
        of diagnostics.jsonl); with --capture-video, the day's last and every picture epoch's are filmed."""
        args, progress = self.args, self.progress
        if phase == "night":
            self.estimate(night_seconds=time.time() - self.epoch_start)
        if phase != "seed" and not evaluates(self.epoch, args, phase):
            return
        if phase == "night":
            progress["night_epoch"] = self.epoch  # the diagnostics' line names the epoch it ends
        final = dict(seed=args.day_epochs == 0, day=progress["day_epoch"] + 1 == args.day_epochs,
                     night=progress["night_epoch"] == args.night_epochs)[phase]
        gamma = dict(seed=None, day=args.gamma if final else None, night=self.m.night_gamma(args))[phase]
        start = time.time()
        episodes = final_episodes(args) if final else args.eval_episodes
        recorded = gamma is not None and args.diagnostics
        filmed = args.capture_video and (self.images_due() if phase == "night" else final)
        result = self.m.evaluate(self.wm, self.agent, args, episodes, self.device, record=recorded or filmed)
        if recorded or filmed:
            result, recording = result
        progress["eval_seconds"] += time.time() - start
        progress["evals"] += 1
        self.log("eval", result)
        if recorded:
            found = diagnostics.diagnose(self.m, self.wm, self.agent, recording, args, gamma, self.day_agent, dreams)
            self.log("diagnostics", {k: v for k, v in found.items() if not isinstance(v, list)})
            with open(self.diagnostics_path, "a") as f:
                f.write(json.dumps(dict(global_step=progress["global_step"], day_epoch=progress["day_epoch"],
                                        night_epoch=progress["night_epoch"], episodes=episodes, **result, **found))
                        + "\n")
        if filmed:
            for name, frames in diagnostics.videos(self.m, self.wm, self.agent, recording, args,
                                       self.m.transformation(self.wm, self.agent, args)).items():
                self.video(name, frames, fps=4 if name == "dream" else 20)
        progress["night_end" if phase == "night" else "day_end"] = result
        if phase == "seed":
            progress["seed_done"] = True

    def estimate(self, night_seconds=0.0, wm_seconds=None):
        """Print the run's estimated duration, once: after this process's second world-model update (with acting
        timed aside), else when its first epoch starts acting, or in a run with no day left, before the first night
        epoch's evaluation (see remaining_seconds for what it counts)."""
        if self.estimated:
            return
        progress = self.progress
        day_left = progress["day_epoch"] < self.args.day_epochs
        rates = dict(eval=progress["eval_seconds"] / max(progress["evals"], 1),
                     wm=wm_seconds or progress["wm_update_seconds"] / max(progress["wm_updates"], 1),
                     act=time_acting(self.m, self.wm, self.agent, self.runner, self.device) if day_left else 0.0,
                     night=night_seconds)
        seconds = self.epoch_start - self.start + remaining_seconds(self.args, progress, rates)
        with tqdm.external_write_mode():
            print(estimate_line(self.args, seconds, rates, self.device, os.path.basename(self.m.__file__)), flush=True)
        self.estimated = True

    def end_epoch(self, transitions=None):
        """The epoch counted and timed, its line printed (the last evaluation, the time elapsed and the phase's ETA)
        and, with --save-checkpoint, the checkpoint written; a night epoch's speed is its dreamed `transitions`."""
        progress, phase, epoch, now = self.progress, self.phase, self.epoch, time.time()
        progress[f"{phase}_epoch"] = epoch
        progress[f"{phase}_seconds"] += now - self.epoch_start
        self.log("perf", dict(epoch_seconds=now - self.epoch_start, **(
            dict(replay_rows=self.replay.rows * self.args.num_envs) if transitions is None else
            dict(transitions_per_s=transitions / (now - self.epoch_start)))))
        total, result = getattr(self.args, f"{phase}_epochs"), progress["night_end"] or progress["day_end"]
        eta = (now - self.phase_start) / max(epoch - self.first_epoch, 1) * (total - epoch)
        print(f"[{phase} {epoch}/{total}] step {progress['global_step']} | test {result['test_return']:.2f} "
              f"train {result['train_return']:.2f} | elapsed {hms(now - self.start)} | {phase} eta {hms(eta)}",
              flush=True)
        if self.args.save_checkpoint:
            self.checkpoint()

    def end_day(self):
        """day.pt (a copy of the day's last checkpoint), once, by a run that made its day (a night resumed has a
        night epoch done and no day.pt of its own); the day's envs closed; the day's policy kept."""
        day_pt = os.path.join(self.run_dir, "day.pt")
        made_day = self.day_state is None and self.progress["night_epoch"] == 0
        if self.args.save_checkpoint and made_day and not os.path.exists(day_pt):
            self.checkpoint()
            shutil.copyfile(os.path.join(self.run_dir, "checkpoint.pt"), day_pt)
        self.m.close_envs(self.runner.envs)
        if self.args.diagnostics and self.day_agent is None and self.progress["night_epoch"] == 0:
            self.day_agent = copy.deepcopy(self.agent).requires_grad_(False)  # for the night's KL to it

    def checkpoint(self, name="checkpoint.pt"):
        self.writer.flush()  # the logs are on disk up to every checkpoint, so a killed run loses none of them
        self.replay.save(self.replay_dir)
        save_checkpoint(os.path.join(self.run_dir, name), dict(
            method=self.m.METHOD, args=asdict(self.args), world_model=self.wm.state_dict(),
            agent=self.agent.state_dict(), wm_opt=self.wm_opt.state_dict(), agent_opt=self.agent_opt.state_dict(),
            return_scale=float(self.return_scale.range), progress=self.progress, replay_rows=self.replay.rows,
            replay_dir=self.replay_dir, rng=random_state(self.rng, self.device),
            day_agent=self.day_agent.state_dict() if self.day_agent is not None else None,
            runner=self.runner.state_dict() if self.progress["day_epoch"] < self.args.day_epochs else None))

    def finish(self):
        """weights.pt (the world model and the agent, for evaluate.py, tools/wm_audit.py and reuse) and summary.json,
        each written whole, then renamed; the summary printed too."""
        args, progress = self.args, self.progress
        save_checkpoint(os.path.join(self.run_dir, "weights.pt"), dict(
            method=self.m.METHOD, args=asdict(args), world_model=self.wm.state_dict(), agent=self.agent.state_dict(),
            progress=progress))
        day_end, night_end = progress["day_end"] or {}, progress["night_end"] or {}
        summary = dict(
            method=self.m.METHOD, exp_name=args.exp_name, env_id=args.env_id, seed=args.seed, run_name=self.run_name,
            day_epochs=progress["day_epoch"], night_epochs=progress["night_epoch"],
            global_step=progress["global_step"], replay_frames=self.replay.rows * args.num_envs,
            eval_episodes=args.eval_episodes, final_eval_episodes=final_episodes(args),
            **{f"{phase}_end_{split}_return{stat}": end.get(f"{split}_return{stat}") for phase, end in
               (("day", day_end), ("night", night_end)) for split in ("test", "train") for stat in ("", "_se")},
            day_seconds=progress["day_seconds"], night_seconds=progress["night_seconds"],
            day_env_steps_per_s=progress["day_env_steps"] / max(progress["day_seconds"], 1e-9),
            night_transitions_per_s=progress["night_transitions"] / max(progress["night_seconds"], 1e-9),
            wm_update_ms=1000 * progress["wm_update_seconds"] / max(progress["wm_updates"], 1),
            peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, device=str(self.device),
            **{k: v for k, v in progress["code"][-1].items() if k != "from_step"},  # the code that finished it
            code=progress["code"])  # and every code that worked on it: a day loaded by a night, a resumed run
        path = os.path.join(self.run_dir, "summary.json")
        with open(path + ".tmp", "w") as f:
            json.dump(summary, f, indent=2)
        os.replace(path + ".tmp", path)
        self.writer.close()
        if args.track:
            import wandb

            wandb.finish()
        print(json.dumps(summary, indent=2))


def random_state(rng, device):
    """Every random generator's state: Python's, NumPy's global and the run's own `rng`, torch's, and on a GPU the
    state of the GPU in use only (a run saved on a machine with 4 GPUs resumes on one)."""
    return dict(python=random.getstate(), numpy=np.random.get_state(), torch=torch.get_rng_state(),
                generator=rng.bit_generator.state, cuda=torch.cuda.get_rng_state() if device.type == "cuda" else None)


def restore_random_state(state, rng, device):
    """Put back what random_state() saved; an older checkpoint's list of every GPU's state gives the first GPU's."""
    random.setstate(state["python"]), np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["generator"]
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"][0] if isinstance(state["cuda"], list) else state["cuda"])


def check_args(args, m):
    """One clear line for input that cannot run."""
    if args.env_id not in m.ENV_NAMES:
        sys.exit(f"error: unknown --env-id {args.env_id!r}; choose one of: {', '.join(m.ENV_NAMES)}")
    positive = ("num_envs", "eval_episodes", "final_eval_episodes", "deter", "stoch", "classes", "units", "cnn_depth",
                "reward_bins", "update_epochs", "seed_episodes", "day_steps", "wm_batch_size", "seq_len",
                "night_updates", "dream_batch_size", "horizon", "image_every", "day_eval_every", "night_eval_every")
    for name in positive:
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            sys.exit(f"error: --{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("day_epochs", "wm_updates", "night_epochs", "num_levels", "start_level"):
        if getattr(args, name) < 0:
            sys.exit(f"error: --{name.replace('_', '-')} must be zero or more, got {getattr(args, name)}")
    if args.day_steps % args.num_envs:
        sys.exit(f"error: --day-steps ({args.day_steps}) must be a multiple of --num-envs ({args.num_envs})")
    if args.distribution_mode not in ("easy", "hard", "extreme", "memory"):  # exploration: no level range to train on
        sys.exit(f"error: unknown or unsupported --distribution-mode {args.distribution_mode!r}; use easy or hard")
    if args.resume and args.load_day_checkpoint:
        sys.exit("error: use either --resume or --load-day-checkpoint, not both")
    if args.capture_video and importlib.util.find_spec("av") is None:
        sys.exit("error: --capture-video needs PyAV (av): pip install -r requirements.txt")


MODEL_KEYS = ("env_id", "deter", "stoch", "classes", "units", "cnn_depth", "reward_bins", "num_envs")


def load_checkpoint(path, args):
    """Read a checkpoint and check that its model matches these flags (one clear line if not)."""
    if os.path.isdir(path):
        path = os.path.join(path, "day.pt")
    if not os.path.isfile(path):
        sys.exit(f"error: no checkpoint at {path}; pass the day.pt written by a run with --save-checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        sys.exit(f"error: cannot read checkpoint {path} ({type(e).__name__}); it is damaged or not a checkpoint: "
                 "put back a good copy, or make it again with --save-checkpoint (in a new run folder)")
    if not isinstance(state, dict) or "world_model" not in state:
        sys.exit(f"error: {path} is not a checkpoint of these scripts")
    diff = [f"--{k.replace('_', '-')} {state['args'][k]} (this run: {getattr(args, k)})"
            for k in MODEL_KEYS if state["args"][k] != getattr(args, k)]
    if diff:
        sys.exit(f"error: checkpoint {path} was made with " + ", ".join(diff) + "; pass the same flags")
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), "replay")
    if os.path.isdir(beside):  # a run folder that was moved or copied still finds its replay
        state["replay_dir"] = beside
    return state


def find_resumable(args):
    pattern = f"{args.env_id}__{args.exp_name}__{args.seed}__"
    names = [args.run_name] if args.run_name else sorted(
        (n for n in os.listdir(args.log_dir) if n.startswith(pattern)) if os.path.isdir(args.log_dir) else [],
        key=lambda n: os.path.getmtime(os.path.join(args.log_dir, n)))
    names = [n for n in names if os.path.isfile(os.path.join(args.log_dir, n, "checkpoint.pt"))]
    if not names:
        sys.exit(f"error: nothing to resume: no {args.log_dir}/{args.run_name or pattern + '*'}/checkpoint.pt; "
                 "start without --resume (and with --save-checkpoint)")
    return names[-1]


def save_checkpoint(path, state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def code_version():
    """The code this process runs: the git commit of the script's folder (None outside a git checkout), whether
    tracked files differ from it (dirty; untracked files do not count), the torch and procgen versions, and the CPU
    it runs on (PyTorch picks its kernels by the CPU's instruction set, so two kinds of CPU round differently and
    the same run parts between them: docs/budget.md)."""
    git, commit, dirty = ["git", "-C", os.path.dirname(os.path.abspath(__file__))], None, None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(git + ["diff", "--quiet", "HEAD"], capture_output=True).returncode != 0
    procgen = "procgen2" if sys.version_info >= (3, 11) else "procgen"  # requirements.txt's package for procgen
    return dict(commit=commit, dirty=dirty, torch=torch.__version__, procgen=importlib.metadata.version(procgen),
                cpu=cpu_name())


def cpu_name():
    """The CPU's model name as Linux gives it (/proc/cpuinfo), else as Python's platform module does."""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def hms(seconds):
    """H:MM:SS, hours past 24 included."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# The README's quick configuration: day and night in minutes on 2 CPU cores, at reduced length and model size and
# without the failure penalty, which at 150k real steps teaches the coinrun agent to wait for the timeout
# (docs/day_agent).
QUICK_FLAGS = ("--day-epochs 30 --night-epochs 30 --wm-batch-size 16 --deter 256 --units 256 --cnn-depth 16 "
               "--stoch 16 --classes 16 --fail-penalty 0")


def evaluates(epoch, args, phase):
    """Whether day or night epoch `epoch` (counted from 1) ends with an evaluation: every --day-eval-every-th or
    --night-eval-every-th, and the phase's last."""
    every, total = (args.day_eval_every, args.day_epochs) if phase == "day" else (args.night_eval_every,
                                                                                args.night_epochs)
    return epoch % every == 0 or epoch == total


def final_episodes(args):
    """Episodes of the evaluations that end the day and the night: --final-eval-episodes, else --eval-episodes."""
    return args.final_eval_episodes or args.eval_episodes


def remaining_seconds(args, progress, rates):
    """Seconds of work from the current epoch to the run's end at the measured `rates`: seconds per evaluation
    (eval; final_eval_episodes count as that many times longer, an upper bound), world-model update (wm), acting step
    of all envs (act) and night epoch without evaluation (night; 0 until timed). Not counted: the day's PPO update
    (about 1 s an epoch next to 20 world-model updates of 4 s) and procgen's steps (a tenth of acting)."""
    days = range(progress["day_epoch"] + 1, args.day_epochs + 1)
    nights = range(progress["night_epoch"] + 1, args.night_epochs + 1)
    evaluations = sum(evaluates(e, args, "day") for e in days) + sum(evaluates(e, args, "night") for e in nights)
    evaluations += ((len(days) > 0) + (len(nights) > 0)) * (final_episodes(args) / args.eval_episodes - 1)
    day_epoch = args.wm_updates * rates["wm"] + args.day_steps // args.num_envs * rates["act"]
    return evaluations * rates["eval"] + len(days) * day_epoch + len(nights) * rates["night"]


def estimate_line(args, seconds, rates, device, script):
    """The run's estimated duration and what it is made of; past about an hour on a CPU, the README's quick command."""
    names = dict(eval="evaluation {:.1f} s", wm="world-model update {:.2f} s", act="acting step {:.3f} s",
                 night="night epoch without evaluation {:.1f} s")
    timed = ", ".join(name.format(rates[k]) for k, name in names.items() if rates[k])
    line = f"estimated duration of this run on {device}: {hms(seconds)} ({timed})"
    if device.type == "cpu" and seconds > 3600:
        line += (f"\nfor a run of minutes on this CPU, the README's quick configuration: "
                 f"python {script} --env-id {args.env_id} --seed {args.seed} {QUICK_FLAGS}")
    return line


def time_acting(m, wm, agent, runner, device, calls=3):
    """Seconds per acting step of all envs: act() on the runner's frames after one untimed call (set-up), with the
    random state restored afterwards, so that the run goes on exactly as it would have without it."""
    with m.own_random_stream(device), m.acting(device, wm, agent):
        h = wm.initial_h(len(runner.obs)).float()
        m.act(wm, agent, runner.obs, h)[1].cpu()
        start = time.time()
        for _ in range(calls):
            m.act(wm, agent, runner.obs, h)[1].cpu()
        return (time.time() - start) / calls
