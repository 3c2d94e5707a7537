"""The policy: any Hugging Face causal LM with a chat template, batched generation and log-probs.

Two operations touch the model, and both must agree token for token:

* ``generate``: batched sampling for all active environments at once, stopping at ``</action>``,
  EOS or ``max_new_tokens``; with ``model.generate`` (prompts **left-padded**, KV cache on) or on
  the vLLM engine (``use_engine``, ``sampo_ref.engine``), token ids in either way;
* ``sequence_logprobs``: log π(y_t | x, y_<t) of each response token, recomputed after the
  rollout from the same (left-padded prompt ‖ right-padded response) layout, at the sampling
  temperature (docs/rollout.md#where-it-sits-in-an-iteration: old log-probs are recomputed; sampling-time log-probs are kept only
  for a mismatch diagnostic).

Shapes: B rows, P prompt tokens (left-padded), T response tokens (right-padded), V vocabulary.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from sampo_ref.algos.common import entropy_from_logits

STOP = "</action>"


@dataclass
class Generation:
    prompt_ids: list[int]
    response_ids: list[int]  # up to and including the token that completed </action> (or EOS)
    text: str  # decoded response
    sample_logp: list[float] | None  # log-probs under the sampling distribution (diagnostic)
    hit_limit: bool  # stopped by max_new_tokens, not by </action> or EOS


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA if present, else CPU (MPS is opt-in: ``--device mps``)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad id lists into (ids, mask), both (B, P)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r)
            mask[i, width - len(r) :] = 1
    return ids, mask


def right_pad(rows: list[list[int]], pad_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into (ids, mask), both (B, T)."""
    width = width or max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


class Policy:
    """A causal LM plus its tokenizer, with the two operations the trainer needs."""

    def __init__(self, model, tokenizer, device: torch.device):
        self.model = model.to(device)
        self.tokenizer = tokenizer
        self.device = device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self.engine = None  # a VllmEngine after use_engine(); None: model.generate

    def encode_prompt(self, text: str) -> list[int]:
        """One user message through the chat template, generation prompt added (docs/alfworld.md#2-the-testbed)."""
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
        )

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        do_sample: bool = True,
        record_logp: bool = True,
        use_cache: bool = True,
    ) -> list[Generation]:
        """Sample one response per prompt: all prompts in one batch, on the engine (``engine``: vLLM)
        or with ``model.generate`` (left-padded, KV cache; ``use_cache=False`` recomputes the whole
        sequence at every token: the benchmark's comparison)."""
        prompt_ids = [self.encode_prompt(p) for p in prompts]
        if self.engine is not None:
            raw = self.engine.generate(prompt_ids, max_new_tokens, temperature, top_p, top_k, do_sample, record_logp)
        else:
            raw = self._generate_hf(prompt_ids, max_new_tokens, temperature, top_p, top_k, do_sample, record_logp,
                                    use_cache)
        gens = []
        for p, (tokens, logp) in zip(prompt_ids, raw):
            n, hit_limit = self._response_length(tokens)
            resp = tokens[:n]
            text = self.tokenizer.decode(resp, skip_special_tokens=True)
            gens.append(Generation(p, resp, text, logp[:n] if logp is not None else None, hit_limit))
        return gens

    def _generate_hf(self, prompt_ids: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                     top_k: int, do_sample: bool, record_logp: bool, use_cache: bool
                     ) -> list[tuple[list[int], list[float] | None]]:
        """``model.generate`` on the left-padded batch: (generated ids, their log-probs or None) per row."""
        ids, mask = left_pad(prompt_ids, self.pad_id)  # (B, P)
        sampling = dict(temperature=temperature, top_p=top_p, top_k=top_k or None) if do_sample else {}
        out = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            stop_strings=[STOP],
            tokenizer=self.tokenizer,
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            use_cache=use_cache,
            return_dict_in_generate=True,
            output_scores=record_logp,
            **sampling,
        )
        new = out.sequences[:, ids.shape[1] :].cpu()  # (B, T_gen)
        logp = None
        if record_logp:  # scores are the processed logits actually sampled from
            scores = torch.stack(out.scores, dim=1).float().cpu()  # (B, T_gen, V)
            logp = scores.log_softmax(-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # (B, T_gen)
        return [(new[i].tolist(), logp[i].tolist() if logp is not None else None) for i in range(len(prompt_ids))]

    def use_engine(self, memory: float = 0.4, seed: int = 0, dtype: torch.dtype | None = None) -> None:
        """Generate with vLLM from now on (``sampo_ref.engine``); ``memory``: its share of the GPU."""
        from sampo_ref.engine import VllmEngine

        self.engine = VllmEngine(self.model, self.tokenizer, STOP, self.eos_ids, memory, seed, dtype)

    def updating(self):
        """A context around every change of the weights: with an engine, it gets the new weights after."""
        return self.engine.updating(self.model) if self.engine is not None else nullcontext()

    def _response_length(self, tokens: list[int]) -> tuple[int, bool]:
        """Tokens up to the first EOS or the token that completes </action>; else all of them."""
        end = next((k + 1 for k, t in enumerate(tokens) if t in self.eos_ids), len(tokens))
        text = self.tokenizer.decode(tokens[:end])
        if STOP not in text:
            return end, end == len(tokens) and not any(t in self.eos_ids for t in tokens)
        lo, hi = 1, end  # smallest prefix whose text contains the stop string (monotone in length)
        while lo < hi:
            mid = (lo + hi) // 2
            if STOP in self.tokenizer.decode(tokens[:mid]):
                hi = mid
            else:
                lo = mid + 1
        return lo, False

    def save(self, path: str | Path, state_dict: dict | None = None) -> None:
        """save_pretrained of model and tokenizer; ``state_dict``: the full weights of a sharded model."""
        with _quiet_transformers():  # a local write of seconds at most: the trainer shows its own progress
            self.model.save_pretrained(path, state_dict=state_dict)
            self.tokenizer.save_pretrained(path)


@contextmanager
def _quiet_transformers():
    """transformers' own progress bars off ("Loading weights", "Writing model shards"), then back on."""
    from transformers.utils import logging

    was_on = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            logging.enable_progress_bar()


def sequence_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    response_ids: torch.Tensor,
    response_mask: torch.Tensor,
    temperature: float = 1.0,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(y_t | x, y_<t) for every response token, and optionally the full-vocabulary entropy.

    Returns (logp (B, T), entropy (B, T) or None); values at padded positions are meaningless
    and must be masked by the caller. Position ids count only real tokens, as in generation.
    """
    input_ids = torch.cat([prompt_ids, response_ids], dim=1)  # (B, P+T)
    attn = torch.cat([prompt_mask, response_mask], dim=1)  # (B, P+T)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, P+T)
    T = response_ids.shape[1]
    logits = model(
        input_ids=input_ids, attention_mask=attn, position_ids=position_ids, logits_to_keep=T + 1
    ).logits[:, :-1].float()  # (B, T, V): position P-1+t predicts response token t
    logits = logits / temperature
    logp = F.log_softmax(logits, dim=-1).gather(-1, response_ids.unsqueeze(-1)).squeeze(-1)  # (B, T)
    entropy = entropy_from_logits(logits) if with_entropy else None  # (B, T)
    return logp, entropy


def load_policy(name: str, device: torch.device, dtype: str = "float32") -> Policy:
    """Load ``name``: a local directory or a hub id (the ``tiny`` default is built by ``sampo_ref.tiny``).

    Whatever is wrong (a folder that is not a model, a truncated weights file, a garbled tokenizer)
    gives one line naming it: a ``ConfigError``, never a traceback from deep inside transformers.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sampo_ref.checks import ConfigError, model_problem

    problem = model_problem(name)
    if problem:
        raise ConfigError(f"model={name!r} is not allowed: expected {problem}")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    part = "tokenizer"
    local = Path(name).is_dir()  # a local directory loads in seconds; a hub download keeps its progress bars
    try:
        with _quiet_transformers() if local else nullcontext():
            tokenizer = AutoTokenizer.from_pretrained(name)
            part = "model"
            model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype)
    except Exception as err:  # noqa: BLE001 -- transformers raises many types; the user needs one line
        reason = " ".join(str(err).split())[:300]
        raise ConfigError(f"model={name!r}: its {part} could not be loaded ({type(err).__name__}: {reason}); expected a "
                          "complete save_pretrained directory, or a hub id that is cached or reachable") from None
    if tokenizer.chat_template is None:
        raise ConfigError(f"model={name!r}: its tokenizer has no chat template; expected a chat (instruct) model")
    tokenizer.padding_side = "left"
    return Policy(model, tokenizer, device)
