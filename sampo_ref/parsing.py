"""The strict action parser: model text -> (action sent to the env, format-valid, valid).

docs/alfworld.md#2-the-testbed (ARLArena's ``alfworld_projection``). The whole response must be

    [ws] <think> … </think> [ws] <action> … </action> [ws]

with exactly one of each tag (case-insensitive) and no CJK character: ``think="required"``, the
rule for real LLMs on ALFWorld. Two relaxations of the think block, each a project choice
(docs/architecture.md#the-toy-prompt):

* ``think="none"``: the tiny policy answers ``<action>…</action>`` alone, and any think tag is a
  format error;
* ``think="optional"``: real LLMs on the toy tasks may think first (Qwen3 models do by default) or
  answer at once: one think block before the action, or none.

| case                                   | action sent to the env          | format_valid | valid          |
|----------------------------------------|---------------------------------|--------------|----------------|
| strict form holds                      | stripped, lower-cased action    | 1            | action ∈ admissible |
| not strict, but an action block exists | the first block, stripped/lower | 0            | 0              |
| no action block                        | last 30 characters of the text  | 0            | 0              |

The parser never raises: every model output, however malformed, gets a row and the
invalid-action penalty, and the episode goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_THINK_ACTION = re.compile(r"\s*<think>.*?</think>\s*<action>(.*?)</action>\s*", re.IGNORECASE | re.DOTALL)
_ACTION_ONLY = re.compile(r"\s*<action>(.*?)</action>\s*", re.IGNORECASE | re.DOTALL)
THINK_RULES = ("required", "optional", "none")  # the think block must be there / may be there / must not
_FIRST_ACTION = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_CJK = re.compile("[\u4e00-\u9fff]")


@dataclass(frozen=True)
class ParsedAction:
    action: str  # what the environment receives
    format_valid: bool  # the strict form holds
    valid: bool  # format_valid and the action is admissible (v_j in (S1))


def _count(tag: str, text: str) -> int:
    return len(re.findall(tag, text, re.IGNORECASE))


def parse_action(text: str, admissible: list[str], think: str = "required") -> ParsedAction:
    """Apply the strict rule of docs/alfworld.md#2-the-testbed to one response, with the think
    block ``required``, ``optional`` or ``none`` (THINK_RULES). Never raises."""
    thinks = think == "required" or (think == "optional" and _count("</?think>", text) > 0)
    tags = ["<action>", "</action>"] + (["<think>", "</think>"] if thinks else [])
    strict = _THINK_ACTION if thinks else _ACTION_ONLY
    match = strict.fullmatch(text)
    format_valid = (
        match is not None
        and all(_count(tag, text) == 1 for tag in tags)
        and (thinks or _count("</?think>", text) == 0)
        and not _CJK.search(text)
    )
    if format_valid:
        action = match.group(1).strip().lower()
        return ParsedAction(action, True, action in {a.strip().lower() for a in admissible})
    first = _FIRST_ACTION.search(text)
    action = first.group(1).strip().lower() if first else text[-30:]
    return ParsedAction(action, False, False)
