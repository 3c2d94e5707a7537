"""The strict parse rule of docs/alfworld.md#2-the-testbed and its never-raise guarantee."""

import pytest

from sampo_ref.parsing import parse_action

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
    parsed = parse_action(text, ADMISSIBLE, require_think=True)
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
    parsed = parse_action(text, ADMISSIBLE, require_think=False)
    assert (parsed.format_valid, parsed.valid) == (format_valid, valid)


@pytest.mark.parametrize(
    "text",
    ["", "no tags at all", "<action>a</action><action>b</action>", "<action>unclosed",
     "\x00\xff\u2603 ÿ garbage \ud7ff", "x" * 10_000, "<action>" + "y" * 10_000 + "</action>", "\\\\\\"],
)
def test_malformed_outputs_take_the_invalid_path(text):
    for require_think in (True, False):
        parsed = parse_action(text, ADMISSIBLE, require_think)
        assert not parsed.valid
        assert isinstance(parsed.action, str)
        assert len(parsed.action) <= max(30, len(text))


def test_no_block_sends_last_30_characters():
    text = "a" * 50 + "the last thirty characters!!!!"
    assert parse_action(text, ADMISSIBLE).action == text[-30:]
