"""A run's trained models, read back: the checkpoint of a run folder, the script that made it, and its world model
and agent built from the checkpoint's own flags. Shared by evaluate.py and tools/wm_audit.py; every bad input ends
with one line `error: ...`.
"""
import dataclasses
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shared_code import SCRIPTS, load_script  # noqa: E402

NUM_ACTIONS = 15  # ProcGen's full action set, as every script builds its models


def checkpoint_path(path, names=("checkpoint.pt", "day.pt")):
    """A checkpoint file, or the first of `names` that a run folder holds."""
    if os.path.isdir(path):
        for name in names:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        sys.exit(f"error: {path} holds no {', '.join(names[:-1])} or {names[-1]}; pass a run made with "
                 "--save-checkpoint")
    if not os.path.isfile(path):
        sys.exit(f"error: no checkpoint at {path}; pass a {', a '.join(reversed(names))} or a run folder holding one")
    return path


def script_of(method):
    """The script that made a checkpoint of `method` (its evaluation and diagnostics are that script's own)."""
    for name in SCRIPTS:
        module = load_script(name)
        if module.METHOD == method:
            return module
    sys.exit(f"error: no script makes method {method!r}; choose a checkpoint of one of: {', '.join(SCRIPTS)}")


def read(path):
    """The checkpoint's dict: method, args, world_model, agent (and, but for weights.pt, progress and the rest)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        sys.exit(f"error: cannot read checkpoint {path} ({type(e).__name__}); it is damaged or not a checkpoint")
    if not isinstance(state, dict) or "world_model" not in state or "args" not in state:
        sys.exit(f"error: {path} is not a checkpoint of these scripts")
    return state


def build(path, state, seed=None, cuda=True, **overrides):
    """(script module, Args, world model, agent, device) from a checkpoint's flags and weights, frozen; `seed` (None:
    the run's) and `overrides` (Args fields) replace the run's flags. Seeds torch's generator with the seed."""
    mod = script_of(state.get("method"))
    fields = {f.name for f in dataclasses.fields(mod.Args)}
    args = mod.Args(**{k: v for k, v in state["args"].items() if k in fields})
    args.seed = args.seed if seed is None else seed
    for k, v in overrides.items():
        setattr(args, k, v)
    device = torch.device("cuda" if torch.cuda.is_available() and cuda else "cpu")
    mod.use_bf16(args.bf16)
    wm = mod.WorldModel(args, NUM_ACTIONS).to(device)
    agent = mod.Agent(wm.feat_dim, NUM_ACTIONS, args).to(device)
    try:
        wm.load_state_dict(state["world_model"]), agent.load_state_dict(state["agent"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f"error: the weights in {path} do not fit the model its flags describe in {mod.__name__}.py "
                 f"({first}); pass a checkpoint made by this version of the scripts")
    wm.requires_grad_(False), agent.requires_grad_(False)
    torch.manual_seed(args.seed)
    return mod, args, wm, agent, device
