"""The sections the method scripts share, and a command that copies them from one script to the others.

Every script has the same shape: a docstring, imports, `Args` (whose last group holds this method's own
fields), then sections that start with a `# --- name` comment. All of it is shared, to the letter,
except the docstring, the method's Args fields and the method's own section (the one `# --- ` marker
that is not in SHARED_MARKERS).

    python tools/shared_code.py dream_ppo_value.py   # copy its shared sections into the other scripts
"""
import importlib.util
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("dream_ppo_value.py", "dream_ppo_rnd.py", "dream_ppo_deepdream.py", "dream_ppo_full.py",
           "dreamer_baseline.py", "offline_ppo.py")
SHARED_MARKERS = ("# --- math helpers", "# --- environment", "# --- replay", "# --- world model",
                  "# --- agent and PPO", "# --- dreaming: random starts, rollout", "# --- evaluation",
                  "# --- the run: Algorithm 1")


def load_script(name):
    """Import a script by file name, once (importing runs nothing)."""
    stem = name[:-3] if name.endswith(".py") else name
    if ROOT not in sys.path:  # the scripts import run_plumbing and diagnostics from their folder
        sys.path.insert(0, ROOT)
    if stem not in sys.modules:
        spec = importlib.util.spec_from_file_location(stem, os.path.join(ROOT, stem + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[stem] = module
        spec.loader.exec_module(module)
    return sys.modules[stem]


def sections(text):
    """[(name, text, shared)] in file order; their texts joined give the file back."""
    cuts = [(0, "docstring", False), (text.index('"""\n', 3) + 4, "imports", True),
            (text.index("@dataclass"), "Args", True),
            (text.index("    # this method's"), "Args: this method's fields", False)]
    cuts += [(m.start(), m.group(), m.group() in SHARED_MARKERS) for m in re.finditer(r"^# --- .*$", text, re.M)]
    cuts.sort()
    ends = [start for start, _, _ in cuts[1:]] + [len(text)]
    return [(name, text[start:end], shared) for (start, name, shared), end in zip(cuts, ends)]


def drift(reference, text):
    """Messages naming each shared section of `text` that differs from `reference`, with its first differing line."""
    ref = {name: body for name, body, shared in sections(reference) if shared}
    messages = []
    for name, body, shared in sections(text):
        if not shared:
            continue
        if name not in ref:
            messages.append(f"section '{name}' is not in the reference")
        elif body != ref[name]:
            mine, theirs = body.splitlines(), ref.pop(name).splitlines()
            line = next(i for i, (a, b) in enumerate(zip(mine + [""], theirs + [""])) if a != b)
            offset = text[: text.index(body)].count("\n") + line + 1
            shown = mine[line] if line < len(mine) else "<end>"
            messages.append(f"section '{name}' differs at line {offset}: {shown!r}")
        else:
            ref.pop(name)
    messages += [f"section '{name}' is missing" for name in ref]
    return messages


def sync(source):
    reference = sections(open(os.path.join(ROOT, source)).read())
    shared = {name: body for name, body, is_shared in reference if is_shared}
    for script in SCRIPTS:
        path = os.path.join(ROOT, script)
        text = open(path).read()
        new = "".join(shared[name] if is_shared else body for name, body, is_shared in sections(text))
        if new != text:
            with open(path, "w") as f:
                f.write(new)
            print(f"updated {script}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SCRIPTS:
        sys.exit(f"usage: python tools/shared_code.py SCRIPT  (one of {', '.join(SCRIPTS)})")
    sync(sys.argv[1])
