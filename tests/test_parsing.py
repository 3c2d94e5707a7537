"""The strict parse rule of docs/alfworld.md#2-the-testbed and its never-raise guarantee."""

import pytest

from sampo_ref.parsing import THINK_RULES, parse_action

ADMISSIBLE = ["go east", "take coin", "help"]


@pytest.mark.parametrize(
    "text, action, format_valid, valid",
    [
        ("<think>east looks open</think><action>go east</action>", "go east", True, True),
        ("  <THINK>\nmulti\nline</THINK>\n <Action> Go East </Action>\n", "go east", True, True),
        ("<think>x</think><action>help</action>", "help", True, True),  # help is in the validity pool
        ("<think>x</think><action>go west</action>", "go west", True, False),  # not admissible
        ("<action>go east</action>", "go east", False, False),  # no think block
        ("<think>a</think><think>b</think><action>go east</action>", "go east", False, False),
        ("<think>x</think><action>go east</action><action>take coin</action>", "go east", False, False),
        ("<think>漢字</think><action>go east</action>", "go east", False, False),  # CJK
        ("I go east", "I go east", False, False),  # no block: the last 30 characters
    ],
)
def test_strict_rule_with_think(text, action, format_valid, valid):
    parsed = parse_action(text, ADMISSIBLE, think="required")
    assert (parsed.action, parsed.format_valid, parsed.valid) == (action, format_valid, valid)


@pytest.mark.parametrize(
    "text, format_valid, valid",
    [
        ("<action>take coin</action>", True, True),
        (" <action>take coin</action> \n", True, True),
        ("<think>x</think><action>take coin</action>", False, False),  # toy rule: no think block
        ("<action>take coin", False, False),  # unclosed
        ("take coin</action>", False, False),
        ("<action>take coin</action> and more", False, False),
        ("", False, False),
    ],
)
def test_toy_rule_without_think(text, format_valid, valid):
    parsed = parse_action(text, ADMISSIBLE, think="none")
    assert (parsed.format_valid, parsed.valid) == (format_valid, valid)


@pytest.mark.parametrize(
    "text",
    ["", "no tags at all", "<action>a</action><action>b</action>", "<action>unclosed",
     "\x00\xff\u2603 ÿ garbage \ud7ff", "x" * 10_000, "<action>" + "y" * 10_000 + "</action>", "\\\\\\"],
)
def test_malformed_outputs_take_the_invalid_path(text):
    for think in THINK_RULES:
        parsed = parse_action(text, ADMISSIBLE, think)
        assert not parsed.valid
        assert isinstance(parsed.action, str)
        assert len(parsed.action) <= max(30, len(text))


def test_no_block_sends_last_30_characters():
    text = "a" * 50 + "the last thirty characters!!!!"
    assert parse_action(text, ADMISSIBLE).action == text[-30:]


@pytest.mark.parametrize("text, think, format_valid", [
    ("<think>the coin is east</think>\n<action>take coin</action>", "optional", True),  # a thinking LLM
    ("<action>take coin</action>", "optional", True),  # an LLM that answers at once
    ("<think>a</think><think>b</think><action>take coin</action>", "optional", False),
    ("<action>take coin</action><think>after</think>", "optional", False),  # thinking comes first
    ("<think>unclosed <action>take coin</action>", "optional", False),
    ("<think>x</think><action>take coin</action>", "none", False),  # the tiny policy never thinks
])
def test_real_llms_on_toy_tasks_may_think_first(text, think, format_valid):
    assert parse_action(text, ADMISSIBLE, think).format_valid == format_valid


def test_toy_task_rule_follows_the_model():
    assert {instruction: _toy_think(instruction) for instruction in (True, False)} == {True: "optional", False: "none"}


def _toy_think(instruction: bool) -> str:
    """The think rule a ToyTask sets for a real LLM (instruction=True) or the tiny policy, without making games."""
    from unittest.mock import patch

    from sampo_ref.envs.toy import ToyTask

    with patch("sampo_ref.envs.toy.ensure_games", lambda family, level, seeds, progress: [f"g{s}" for s in seeds]):
        return ToyTask("coin", 1, 2, 1, instruction=instruction).think


# --- fuzzing: generated outputs against an independent reading of the rule -----------------------

_TAGS = ["<think>", "</think>", "<action>", "</action>"]
_PIECES = ["<action", "action>", "</act", "<think", "think>", "<", ">", "/", "</", "<action/>", "<<action>>"]
_SPACES = [" ", "  ", "\n", "\t", "\r\n", "\u00a0", "\u3000", "\u2003", ""]
_WORDS = ["go east", " Go East ", "GO EAST", "go  east", "take coin", "help", "go west", "look", "I think",
          "east looks open", "漢字", "行", "🙂", "\x00", "ÿ", "é", "Ω", "\\", "'", '"', "{}", "$x$", "...", "30"]


def _case(rng, tag: str) -> str:
    return "".join(c.upper() if rng.random() < 0.25 else c for c in tag)


def _generate(rng) -> str:
    """One output: mostly near the well-formed answer (so every branch of the rule is exercised),
    with tags dropped, doubled, reordered, re-cased or cut, and noise between and around them."""
    if rng.random() < 0.3:  # free-form: random pieces
        parts = [rng.choice(_TAGS + _PIECES + _SPACES + _WORDS) for _ in range(rng.randrange(0, 9))]
        return "".join(_case(rng, p) if p in _TAGS else p for p in parts)
    parts = [rng.choice(_SPACES)]
    if rng.random() < 0.6:
        parts += [_case(rng, "<think>"), rng.choice(_WORDS + _SPACES), _case(rng, "</think>"), rng.choice(_SPACES)]
    parts += [_case(rng, "<action>"), rng.choice(_WORDS), _case(rng, "</action>"), rng.choice(_SPACES)]
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # perturbations
        i = rng.randrange(len(parts) + 1)
        kind = rng.randrange(4)
        if kind == 0 and parts:
            del parts[min(i, len(parts) - 1)]
        elif kind == 1:
            parts.insert(i, _case(rng, rng.choice(_TAGS)))
        elif kind == 2:
            parts.insert(i, rng.choice(_WORDS + _PIECES))
        elif len(parts) > 1:
            j = rng.randrange(len(parts))
            parts[min(i, len(parts) - 1)], parts[j] = parts[j], parts[min(i, len(parts) - 1)]
    return "".join(parts)


def _rule(text: str, admissible: list[str], think: str) -> tuple[str, bool, bool]:
    """The rule read directly, by finding the tags (no regular expression): the oracle of the fuzz test."""
    low = text.lower()
    assert len(low) == len(text)  # the generator uses no character whose lower case changes length
    count = {tag: low.count(tag) for tag in _TAGS}
    has_think = count["<think>"] + count["</think>"] > 0
    thinks = think == "required" or (think == "optional" and has_think)
    blank = lambda s: s == "" or s.isspace()  # noqa: E731
    a0, a1 = low.find("<action>"), low.find("</action>")
    ok = count["<action>"] == count["</action>"] == 1 and not any("\u4e00" <= c <= "\u9fff" for c in text)
    if thinks:
        t0, t1 = low.find("<think>"), low.find("</think>")
        ok = ok and count["<think>"] == count["</think>"] == 1 and t0 < t1 < a0 < a1
        ok = ok and blank(text[:t0]) and blank(text[t1 + len("</think>") : a0])
    else:
        ok = ok and not has_think and a0 < a1 and blank(text[:a0])
    ok = ok and blank(text[a1 + len("</action>") :])
    first_close = low.find("</action>", a0 + len("<action>")) if a0 >= 0 else -1
    action = text[a0 + len("<action>") : first_close].strip().lower() if first_close >= 0 else text[-30:]
    return action, ok, ok and action in {a.strip().lower() for a in admissible}


def test_fuzz_ten_thousand_outputs_follow_the_rule():
    """10,000 generated outputs × the three think rules: no exception, and every outcome (action sent,
    format_valid, valid) equals the rule read independently. Each outcome kind occurs often."""
    import random

    rng = random.Random(13)
    kinds = {"valid": 0, "format only": 0, "invalid with a block": 0, "no block": 0}
    for _ in range(10_000):
        text = _generate(rng)
        for think in THINK_RULES:
            parsed = parse_action(text, ADMISSIBLE, think)
            assert (parsed.action, parsed.format_valid, parsed.valid) == _rule(text, ADMISSIBLE, think), (text, think)
            kind = ("valid" if parsed.valid else "format only" if parsed.format_valid
                    else "invalid with a block" if "<action>" in text.lower() and "</action>" in text.lower()
                    else "no block")
            kinds[kind] += 1
    assert min(kinds.values()) > 1000, kinds
