"""Log-probs: the padded, batched computation equals a direct log-softmax of the model's logits."""

from __future__ import annotations

import torch

from sampo_ref.policy import left_pad, right_pad, sequence_logprobs

PROMPTS = [
    "goal: find the coin and take it\nroom: kitchen\nactions: go east; take coin",
    "room: hall",
    "goal: find the coin\nroom: kitchen\nhistory: hall > go east\nactions: go west; go east; take coin; look",
]


def direct_logprobs(model, prompt_ids: list[int], response_ids: list[int], temperature: float) -> torch.Tensor:
    """One row, no padding at all: log_softmax(logits / temperature) at the response tokens."""
    ids = torch.tensor([prompt_ids + response_ids])
    logits = model(input_ids=ids).logits[0].float() / temperature  # (L, V)
    logp = torch.log_softmax(logits, -1)
    P = len(prompt_ids)
    return torch.stack([logp[P - 1 + t, tok] for t, tok in enumerate(response_ids)])


@torch.no_grad()
def test_logprobs_equal_direct_log_softmax_with_left_padding(small_policy):
    pol = small_policy
    prompts = [pol.encode_prompt(p) for p in PROMPTS]
    responses = [pol.tokenizer.encode(r, add_special_tokens=False)
                 for r in ["<action>go east</action>", "<action>go west now</action> ok", "x"]]
    assert len({len(p) for p in prompts}) == 3 and len({len(r) for r in responses}) == 3  # ragged both ways
    p_ids, p_mask = left_pad(prompts, pol.pad_id)
    r_ids, r_mask = right_pad(responses, pol.pad_id)
    for temperature in (1.0, 0.7):
        logp, ent = sequence_logprobs(pol.model, p_ids, p_mask, r_ids, r_mask, temperature, with_entropy=True)
        for i, (p, r) in enumerate(zip(prompts, responses)):
            expected = direct_logprobs(pol.model, p, r, temperature)
            torch.testing.assert_close(logp[i, : len(r)], expected, atol=1e-5, rtol=1e-5)
        assert ent.shape == logp.shape and (ent[r_mask.bool()] > 0).all()


@torch.no_grad()
def test_sampling_logprobs_match_recomputed(small_policy):
    """What generate() sampled from is what the trainer recomputes (the mismatch diagnostic is ~0)."""
    pol = small_policy
    torch.manual_seed(0)
    gens = pol.generate(PROMPTS, max_new_tokens=10, temperature=0.8, record_logp=True)
    p_ids, p_mask = left_pad([g.prompt_ids for g in gens], pol.pad_id)
    r_ids, r_mask = right_pad([g.response_ids for g in gens], pol.pad_id)
    logp, _ = sequence_logprobs(pol.model, p_ids, p_mask, r_ids, r_mask, temperature=0.8)
    for i, g in enumerate(gens):
        assert 1 <= len(g.response_ids) <= 10
        torch.testing.assert_close(logp[i, : len(g.response_ids)], torch.tensor(g.sample_logp), atol=1e-4, rtol=1e-4)


def test_generation_stops_at_the_closing_tag(small_policy):
    """A response ends with the token that completes </action> (nothing after it)."""
    pol = small_policy
    tokens = pol.tokenizer.encode("<action>go east</action><action>look", add_special_tokens=False)
    n, hit_limit = pol._response_length(tokens)
    assert pol.tokenizer.decode(tokens[:n]).endswith("</action>") and not hit_limit
    assert "</action>" not in pol.tokenizer.decode(tokens[: n - 1])
    n, hit_limit = pol._response_length(pol.tokenizer.encode("<action>go", add_special_tokens=False))
    assert hit_limit


def test_a_saved_model_directory_loads_and_generates(small_policy, tmp_path):
    """--model <local dir>: any causal LM with a chat template, reloaded through transformers' Auto classes."""
    from sampo_ref.policy import load_policy

    small_policy.save(tmp_path / "m")
    pol = load_policy(str(tmp_path / "m"), torch.device("cpu"))
    torch.manual_seed(0)
    a = pol.generate(PROMPTS[:2], max_new_tokens=6)
    torch.manual_seed(0)
    b = small_policy.generate(PROMPTS[:2], max_new_tokens=6)
    assert [g.response_ids for g in a] == [g.response_ids for g in b]


def test_an_unknown_model_gives_a_clear_error(tmp_path, monkeypatch):
    import pytest

    from sampo_ref.config import ConfigError
    from sampo_ref.policy import load_policy

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="model='.*no-such-model'"):
        load_policy(str(tmp_path / "no-such-model"), torch.device("cpu"))
