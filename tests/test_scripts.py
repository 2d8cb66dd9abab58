"""Each script as a user runs it: a tiny day and night, a killed run resumed, a night from a day checkpoint,
videos, bad input."""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import av
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import run_plumbing
from conftest import METHOD_SCRIPTS, ROOT, TINY, run_script

SUMMARY_KEYS = ("method", "env_id", "seed", "day_end_test_return", "day_end_train_return", "night_end_test_return",
                "night_end_train_return", "day_seconds", "night_seconds", "day_env_steps_per_s",
                "night_transitions_per_s", "wm_update_ms", "peak_rss_mb")


def only_run(log_dir):
    runs = glob.glob(os.path.join(log_dir, "*"))
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """tiny_runs(script) -> (run folder, summary, stdout) of one tiny run with checkpoints, made once per script."""
    cache = {}

    def get(script):
        if script not in cache:
            log_dir = tmp_path_factory.mktemp("runs")
            out = run_script(script, *TINY, "--log-dir", str(log_dir), "--save-checkpoint")
            assert out.returncode == 0, out.stderr[-3000:]
            run_dir = only_run(log_dir)
            with open(os.path.join(run_dir, "summary.json")) as f:
                cache[script] = run_dir, json.load(f), out.stdout
        return cache[script]

    return get


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_tiny_run_finishes_day_and_night(tiny_runs, script):
    run_dir, summary, stdout = tiny_runs(script)
    # the estimated duration comes before the first epoch ends; under an hour, no quick command is suggested
    assert 0 <= stdout.index("estimated duration of this run on cpu: ") < stdout.index("[day 1/2]")
    assert "quick configuration" not in stdout
    for key in SUMMARY_KEYS:
        assert summary[key] is not None, key
    assert summary["day_epochs"] == 2 and summary["night_epochs"] == 2 and summary["env_id"] == "chaser"
    assert summary["eval_episodes"] == summary["final_eval_episodes"] == 2
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    scalars, images = events.Tags()["scalars"], events.Tags()["images"]
    for tag in ("eval/test_return", "eval/train_return", "charts/episodic_return", "charts/SPS",
                "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl", "losses/clipfrac",
                "world_model/loss", "world_model/kl_dyn", "world_model/reward_loss", "dream/reward_mean",
                "dream/transformed_fraction"):
        assert tag in scalars, tag
    assert len(events.Scalars("eval/test_return")) == 1 + 2 + 2  # untrained agent, every day and night epoch
    steps = [e.step for e in events.Scalars("eval/test_return")]
    assert steps == sorted(steps) and steps[-1] == summary["global_step"]
    assert "dream/trajectories" in images
    transforms = script not in ("dreamer_baseline.py", "offline_ppo.py")
    assert ("dream/transformation_before_after" in images) == transforms
    for change in ("z_changed", "h_change", "value_change"):  # what the transformation did to the states
        assert (f"dream/transform_{change}" in scalars) == transforms
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]
    assert os.path.isfile(os.path.join(run_dir, "day.pt")) and os.path.isfile(os.path.join(run_dir, "checkpoint.pt"))
    weights = torch.load(os.path.join(run_dir, "weights.pt"), weights_only=False)  # every run's models, small
    assert set(weights) == {"method", "args", "world_model", "agent", "progress"}
    assert weights["progress"]["night_epoch"] == 2 and weights["method"] == summary["method"]
    # the diagnostics: the day's last evaluation and every night evaluation, in TensorBoard and one line each
    lines = diagnostics_lines(run_dir)
    assert [(d["day_epoch"], d["night_epoch"]) for d in lines] == [(1, 0), (2, 1), (2, 2)]
    assert [d["global_step"] for d in lines] == steps[-3:]
    for tag in ("test_closed_loop_gap", "test_open_loop_gap", "train_reward_recall", "test_terminal_recall",
                "test_value_error", "test_entropy", "heldout_loss"):
        assert f"diagnostics/{tag}" in scalars, tag
    assert "test_kl_to_day" not in lines[0] and all(d["test_kl_to_day"] >= 0 for d in lines[1:])
    assert all(len(d["dream_reward_by_step"]) == 4 for d in lines[1:])
    assert all(d["test_success"] + d["test_death"] + d["test_timeout"] == 1 for d in lines)
    # the code that made it: this checkout's commit, whether its tracked files were changed, the library versions,
    # and the CPU it ran on
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert summary["commit"] == head and isinstance(summary["dirty"], bool)
    assert summary["torch"] == torch.__version__ and summary["procgen"].count(".") == 2
    assert summary["cpu"] == run_plumbing.cpu_name() and summary["cpu"]
    assert summary["code"] == [dict(commit=head, dirty=summary["dirty"], torch=torch.__version__,
                                    procgen=summary["procgen"], cpu=summary["cpu"], from_step=0)]


def diagnostics_lines(run_dir):
    with open(os.path.join(run_dir, "diagnostics.jsonl")) as f:
        return [json.loads(line) for line in f]


def scalars_of(run_dir, prefixes):
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
            if tag.startswith(prefixes)}


TRAINING = ("losses/", "dream/", "world_model/", "charts/episodic")  # every number that training makes


@pytest.mark.parametrize("flags, same", [
    (["--no-diagnostics"], TRAINING + ("eval/",)),  # the diagnostics change nothing, the evaluations included
    (["--eval-episodes", "3", "--night-eval-every", "2"], TRAINING),  # evaluations draw from a stream of their own
    (["--capture-video"], TRAINING + ("eval/", "diagnostics/")),  # and so do the videos
    (["--replay-on-disk"], TRAINING + ("eval/", "diagnostics/")),  # the same frames, from a file
])
def test_diagnostics_evaluations_and_videos_leave_the_run_exactly_as_it_was(tiny_runs, tmp_path, flags, same):
    """A run trains to the last digit as the reference tiny run, and evaluates and diagnoses so too where `same`
    says; --capture-video's films are all there."""
    run_dir, reference, _ = tiny_runs("dream_ppo_value.py")
    out = run_script("dream_ppo_value.py", *TINY, "--log-dir", str(tmp_path), *flags)
    assert out.returncode == 0, out.stderr[-3000:]
    other = only_run(tmp_path)
    assert os.path.exists(os.path.join(other, "diagnostics.jsonl")) == ("--no-diagnostics" not in flags)
    mine, theirs = scalars_of(run_dir, same), scalars_of(other, same)
    assert len(mine) > 25 and mine == theirs
    if "--capture-video" in flags:
        films_are_complete(other)


def films_are_complete(run_dir):
    """--capture-video at the day's last evaluation and every night picture epoch's (TINY: each): both evaluation
    episodes of each split, one after the other, and 4 real states' H real frames | dream | transformed dream, as
    H.264 files and TensorBoard GIFs."""
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("eval/test_return")][-3:]  # the day's last, night 1, night 2
    played = {split: {e.step: e.value for e in events.Scalars(f"eval/{split}_length")} for split in ("test", "train")}
    films = {}
    for step in steps:
        for split in ("test", "train"):  # --eval-episodes 2: both episodes, their mean length each
            films[f"eval_{split}_{step}.mp4"] = (int(2 * played[split][step]), 64, 64)
        films[f"dream_{step}.mp4"] = (4, 4 * 64, 3 * 64)  # H frames; a row per start, 3 columns
    assert sorted(os.listdir(os.path.join(run_dir, "videos"))) == sorted(films)
    for name, (frames, height, width) in films.items():
        with av.open(os.path.join(run_dir, "videos", name)) as video:
            assert video.streams.video[0].codec_context.name == "h264"
            shapes = [frame.to_ndarray(format="rgb24").shape for frame in video.decode(video=0)]
        assert shapes == [(height, width, 3)] * frames, name
    for tag in ("video/eval_test", "video/eval_train", "video/dream"):
        images = events.Images(tag)
        assert [image.step for image in images] == steps and images[0].encoded_image_string.startswith(b"GIF")


def test_world_model_audit_writes_json_and_a_row(tiny_runs, tmp_path):
    run_dir, _, _ = tiny_runs("dreamer_baseline.py")
    command = [sys.executable, os.path.join(ROOT, "tools", "wm_audit.py"), run_dir, "--episodes", "3",
               "--out", str(tmp_path), "--figure"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    name = os.path.basename(run_dir)
    row = [line for line in out.stdout.splitlines() if line.startswith(f"| {name}/checkpoint |")]
    assert len(row) == 1 and row[0].count("|") == out.stdout.splitlines()[0].count("|")
    with open(os.path.join(tmp_path, f"wm_audit_{name}_checkpoint.json")) as f:
        audit = json.load(f)
    assert audit["method"] == "Dreamer" and audit["episodes"] == 3 and audit["night_epoch"] == 2
    assert os.path.getsize(os.path.join(tmp_path, f"wm_audit_{name}_checkpoint.png")) > 0  # chaser rewards often
    assert len(audit["random_start_h_outside_by_step"]) == 4 == len(audit["real_start_terminal_by_step"])
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.stdout == out.stdout  # seeded: the same episodes and draws
    missing = subprocess.run([*command[:2], str(tmp_path / "nothing")], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1].startswith("error: no checkpoint at")


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_killed_run_resumes_from_its_last_epoch(tiny_runs, script, tmp_path):
    _, reference, _ = tiny_runs(script)
    flags = [*TINY, "--day-epochs", "3", "--log-dir", str(tmp_path), "--save-checkpoint"]
    env = dict(os.environ, WANDB_MODE="disabled")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, script), *flags], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not glob.glob(os.path.join(tmp_path, "*", "checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = only_run(tmp_path)
    assert not os.path.exists(os.path.join(run_dir, "summary.json"))
    # as if the killed attempt had run other code, of before the CPU was recorded: the summary names both, each
    # from the step it began
    checkpoint = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=False)
    killed_at = checkpoint["progress"]["global_step"]
    older = {k: v for k, v in checkpoint["progress"]["code"][0].items() if k != "cpu"} | dict(commit="0" * 40)
    checkpoint["progress"]["code"] = [older]
    torch.save(checkpoint, os.path.join(run_dir, "checkpoint.pt"))
    out = run_script(script, *flags, "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    with open(os.path.join(only_run(tmp_path), "summary.json")) as f:
        summary = json.load(f)
    assert summary["day_epochs"] == 3 and summary["night_epochs"] == 2
    assert summary["code"] == [older, dict(older, commit=summary["commit"], cpu=summary["cpu"], from_step=killed_at)]
    steps_per_epoch = 100
    assert summary["replay_frames"] == reference["replay_frames"] + steps_per_epoch  # one more day epoch, nothing lost
    assert summary["global_step"] == reference["global_step"] + steps_per_epoch
    events = EventAccumulator(only_run(tmp_path), size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("eval/test_return")]
    assert len(steps) == 1 + 3 + 2 and steps == sorted(steps)  # the killed attempt's evaluations kept, once each
    assert [d["global_step"] for d in diagnostics_lines(only_run(tmp_path))] == steps[-3:]  # and its diagnostics
    again = run_script(script, *flags, "--resume")  # a finished run is left as it is
    assert again.returncode == 0 and "nothing to do" in again.stdout


# every script's night from another script's day, offline PPO (which reads the replay) both ways
PAIRS = [("dream_ppo_value.py", "offline_ppo.py"), ("offline_ppo.py", "dream_ppo_value.py"),
         ("dream_ppo_rnd.py", "dreamer_baseline.py"), ("dreamer_baseline.py", "dream_ppo_deepdream.py"),
         ("dream_ppo_deepdream.py", "dream_ppo_full.py"), ("dream_ppo_full.py", "dream_ppo_rnd.py")]


@pytest.mark.parametrize("day_script, night_script", PAIRS)
def test_night_starts_from_a_day_checkpoint(tiny_runs, day_script, night_script, tmp_path):
    run_dir, reference, _ = tiny_runs(day_script)
    out = run_script(night_script, *TINY, "--log-dir", str(tmp_path), "--load-day-checkpoint", run_dir,
                     "--night-epochs", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[day" not in out.stdout and "[night 1/1]" in out.stdout
    assert out.stdout.index("estimated duration of this run on cpu: ") < out.stdout.index("[night 1/1]")
    with open(os.path.join(only_run(tmp_path), "summary.json")) as f:
        summary = json.load(f)
    assert summary["day_end_test_return"] == reference["day_end_test_return"]
    assert summary["replay_frames"] == reference["replay_frames"] and summary["night_epochs"] == 1


def test_a_night_resumed_writes_no_day_checkpoint(tiny_runs, tmp_path):
    """day.pt is the day's state: a night from a day checkpoint, killed after its last epoch and resumed, must not
    leave its own night's state under that name (a night started from its folder would start mid-night)."""
    run_dir, _, _ = tiny_runs("dream_ppo_value.py")
    flags = [*TINY, "--log-dir", str(tmp_path), "--night-epochs", "1", "--save-checkpoint"]
    assert run_script("dreamer_baseline.py", *flags, "--load-day-checkpoint", run_dir).returncode == 0
    night_dir = only_run(tmp_path)
    os.remove(os.path.join(night_dir, "summary.json"))  # as if killed after its last checkpoint
    out = run_script("dreamer_baseline.py", *flags, "--resume")
    assert out.returncode == 0, out.stderr[-3000:]
    assert os.path.isfile(os.path.join(night_dir, "summary.json"))
    assert not os.path.exists(os.path.join(night_dir, "day.pt"))


def test_eval_every_evaluates_every_nth_day_and_night_epoch_and_the_last(tmp_path):
    out = run_script("dream_ppo_value.py", *TINY, "--log-dir", str(tmp_path), "--day-epochs", "3",
                     "--night-epochs", "3", "--night-eval-every", "2", "--day-eval-every", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[night 1/3]" in out.stdout  # before the night's first evaluation the line shows the day's last one
    run_dir = only_run(tmp_path)
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    steps = [e.step for e in events.Scalars("eval/test_return")]
    epoch_steps = [e.step for e in events.Scalars("perf/epoch_seconds")]  # one per day and night epoch
    assert len(epoch_steps) == 6
    # the untrained agent, day epochs 2 and 3 (the day's end), then night epochs 2 and 3 (the night's end)
    assert steps[1:] == [epoch_steps[i] for i in (1, 2, 4, 5)]
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["night_end_test_return"] == pytest.approx(events.Scalars("eval/test_return")[-1].value)  # float32


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
@pytest.mark.parametrize("flags, message", [
    (["--env-id", "pong"], "unknown --env-id 'pong'; choose one of: bigfish"),
    (["--wm-batch-size", "0"], "--wm-batch-size must be positive"),
    (["--horizon", "-3"], "--horizon must be positive"),
    (["--eval-episodes", "0"], "--eval-episodes must be positive, got 0"),
    (["--final-eval-episodes", "-2"], "--final-eval-episodes must be positive, got -2"),
    (["--day-steps", "101"], "must be a multiple of --num-envs"),
    (["--distribution-mode", "exploration"], "unsupported --distribution-mode 'exploration'; use easy or hard"),
    (["--load-day-checkpoint", "/nonexistent/day.pt"], "no checkpoint at /nonexistent/day.pt"),
    (["--resume"], "nothing to resume"),
])
def test_bad_input_is_one_clear_line(script, flags, message, tmp_path):
    ends_in_one_clear_line(run_script(script, *TINY, "--log-dir", str(tmp_path / "runs"), *flags), message, tmp_path)


def test_capture_video_without_pyav_is_one_clear_line(tmp_path):
    (tmp_path / "sitecustomize.py").write_text("import sys\n\nsys.modules['av'] = None  # as if PyAV were missing\n")
    out = run_script("dream_ppo_value.py", *TINY, "--log-dir", str(tmp_path / "runs"), "--capture-video",
                     PYTHONPATH=str(tmp_path))
    ends_in_one_clear_line(out, "--capture-video needs PyAV (av): pip install -r requirements.txt", tmp_path)


def ends_in_one_clear_line(out, message, tmp_path):
    """The run stopped with one line, `error: ...message...`, before writing anything."""
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr[-2000:]
    assert not os.path.exists(tmp_path / "runs")  # nothing written


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_mismatched_or_damaged_checkpoint_is_refused_and_kept(tiny_runs, script, tmp_path):
    run_dir, _, _ = tiny_runs(script)
    day = os.path.join(run_dir, "day.pt")
    before = sha(day)
    out = run_script(script, *TINY, "--deter", "64", "--log-dir", str(tmp_path), "--load-day-checkpoint", day)
    assert out.returncode != 0 and out.stderr.strip().splitlines() == [
        f"error: checkpoint {day} was made with --deter 32 (this run: 64); pass the same flags"]
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"not a checkpoint")
    out = run_script(script, *TINY, "--log-dir", str(tmp_path / "runs"), "--load-day-checkpoint", str(damaged))
    assert out.returncode != 0 and "damaged or not a checkpoint" in out.stderr
    # an unfinished run is never started over: its checkpoint stays as it was
    unfinished = tmp_path / "runs2" / "mine"
    unfinished.mkdir(parents=True)
    (unfinished / "checkpoint.pt").write_bytes(open(day, "rb").read())
    out = run_script(script, *TINY, "--log-dir", str(tmp_path / "runs2"), "--run-name", "mine")
    assert out.returncode != 0 and "add --resume" in out.stderr
    assert sha(unfinished / "checkpoint.pt") == before == sha(day)
    assert sorted(os.listdir(unfinished)) == ["checkpoint.pt"]


def folder_hashes(folder):
    return {path: sha(path) for path in glob.glob(os.path.join(folder, "**"), recursive=True) if os.path.isfile(path)}


@pytest.mark.parametrize("flag, damage", [
    ("--resume", "truncate chunk"), ("--resume", "remove chunk"), ("--resume", "truncate checkpoint.pt"),
    ("--load-day-checkpoint", "garbage chunk"), ("--load-day-checkpoint", "remove chunk"),
    ("--load-day-checkpoint", "truncate day.pt"),
])
def test_damaged_or_missing_file_ends_the_run_in_one_line_and_changes_nothing(tiny_runs, flag, damage, tmp_path):
    source, _, _ = tiny_runs("dream_ppo_value.py")  # the code that reads checkpoints and replays is shared
    run_dir = tmp_path / "runs" / "mine"
    shutil.copytree(source, run_dir)
    os.remove(run_dir / "summary.json")  # unfinished, so that --resume continues it
    action, name = damage.split()
    path = str(run_dir / name) if name.endswith(".pt") else sorted(glob.glob(str(run_dir / "replay" / "*.npz")))[1]
    if action == "remove":
        os.remove(path)
    else:
        data = open(path, "rb").read()
        open(path, "wb").write(data[: len(data) // 2] if action == "truncate" else os.urandom(len(data)))
    before = folder_hashes(run_dir)
    where = ["--log-dir", str(tmp_path / "runs"), "--run-name", "mine"] if flag == "--resume" else \
        ["--log-dir", str(tmp_path / "night"), flag, str(run_dir)]
    out = run_script("dream_ppo_value.py", *TINY, *where, *([flag] if flag == "--resume" else []))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and path in lines[0], out.stderr[-2000:]
    assert ("is missing" if action == "remove" else "damaged") in lines[0] and "--save-checkpoint" in lines[0]
    assert folder_hashes(run_dir) == before and not os.path.exists(tmp_path / "night")
