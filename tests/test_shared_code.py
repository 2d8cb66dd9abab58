"""The code the six scripts share is identical to the letter; each differs only in its own night."""
import os

import pytest

from conftest import METHOD_SCRIPTS, ROOT
from shared_code import drift, sections

TEMPLATE = "dream_ppo_value.py"


def read(script):
    with open(os.path.join(ROOT, script)) as f:
        return f.read()


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_shared_sections_are_identical(script):
    problems = drift(read(TEMPLATE), read(script))
    assert not problems, f"{script} drifted from {TEMPLATE} (fix it once, then run " \
                         f"`python tools/shared_code.py {TEMPLATE}`): " + "; ".join(problems)


@pytest.mark.parametrize("script", METHOD_SCRIPTS)
def test_each_script_has_one_method_section_before_evaluation(script):
    names = [(name, shared) for name, _, shared in sections(read(script))]
    own = [name for name, shared in names if not shared]
    assert own[:2] == ["docstring", "Args: this method's fields"] and len(own) == 3
    order = [name for name, _ in names]
    assert order.index(own[2]) == order.index("# --- dreaming: random starts, rollout") + 1
    assert order.index(own[2]) + 1 == order.index("# --- evaluation")


def test_a_changed_shared_line_is_named():
    template = read(TEMPLATE)
    line = "        return self.range.clamp(min=2.0)"
    changed = read("dream_ppo_rnd.py").replace("        return self.range.clamp(min=1.0)", line)
    assert drift(template, changed) == [
        f"section '# --- math helpers' differs at line {changed.splitlines().index(line) + 1}: {line!r}"]
    assert drift(template, changed.replace("# --- replay\n", "# --- the replay\n")) != []


def test_method_sections_differ():
    own = {script: [body for _, body, shared in sections(read(script)) if not shared][2] for script in METHOD_SCRIPTS}
    assert len(set(own.values())) == len(METHOD_SCRIPTS)
