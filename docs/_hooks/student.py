"""MkDocs hook: the student edition of the site hides the code of the nine exercise functions.

With ``SAMPO_REF_STUDENT_EDITION=1`` (``make handout`` sets it to build ``build/handout/site``),
every code block that pulls in the implementation of an exercise of ``tutorials/exercises`` is
replaced by a note; the equations, derivations and everything else stay. Without it the hook
changes nothing.
"""

from __future__ import annotations

import os
import re

HIDDEN = {  # the snippet sections that hold an exercise's answer
    "sampo_ref/algos/grpo.py:grpo_advantages", "sampo_ref/algos/common.py:group_stats",
    "sampo_ref/algos/grpo.py:token_clip", "sampo_ref/algos/gspo.py:seq_log_ratio", "sampo_ref/algos/gspo.py:gspo_token",
    "sampo_ref/algos/gigpo.py:step_returns", "sampo_ref/algos/gigpo.py:step_groups",
    "sampo_ref/algos/gigpo.py:step_advantages", "sampo_ref/algos/gigpo.py:gigpo_advantages",
    "sampo_ref/algos/common.py:aggregate", "sampo_ref/algos/common.py:k3_kl",
}
FENCE = re.compile(r'```python\n--8<-- "([^"]+)"\n```')
NOTE = ('!!! note "Student edition"\n    The code of `{}` is one of the exercises (`exercises/exercises.py`); '
        'it is hidden in this edition of the docs.')


def student_edition() -> bool:
    return os.environ.get("SAMPO_REF_STUDENT_EDITION") == "1"


def hide_answers(markdown: str) -> str:
    return FENCE.sub(lambda m: NOTE.format(m[1].split(":")[1]) if m[1] in HIDDEN else m[0], markdown)


def on_page_markdown(markdown, **kwargs):
    """MkDocs event, before a page's markdown is rendered."""
    return hide_answers(markdown) if student_edition() else markdown
