"""Shared fixtures: a small random-weight policy (no warm-start)."""

from __future__ import annotations

import pytest
import torch

from sampo_ref.policy import Policy
from sampo_ref.tiny import TinyConfig, new_model, train_tokenizer

CORPUS = [
    "goal: find the coin and take it\nroom: kitchen\nhistory: hall > go east\nactions: go east; go west; take coin",
    "<action>go east</action> <action>take coin</action> <action>go west</action> look inventory",
] * 20


@pytest.fixture(scope="session")
def small_policy() -> Policy:
    """A random-weight 2-layer Llama over a BPE trained on a few lines (built in < 1 s)."""
    tok = train_tokenizer(CORPUS, vocab_size=300)
    cfg = TinyConfig(hidden_size=32, layers=2, heads=2, intermediate_size=64, seed=0)
    return Policy(new_model(cfg, tok).eval(), tok, torch.device("cpu"))
