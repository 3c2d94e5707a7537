"""The embedded default policy ``tiny``: built offline in about a minute, cached, deterministic.

Three steps, each a plain function:

1. ``train_tokenizer``: a byte-level BPE trained on toy-game prompts, with a chat template;
2. ``new_model``: a small Llama-architecture transformer (a Llama config, not Qwen2, so that
   ``AutoTokenizer`` reloads our BPE unchanged: transformers 5 maps a ``qwen2`` config to
   ``Qwen2Tokenizer``, whose digit-splitting pre-tokenizer would change the ids);
3. ``warm_start``: supervised imitation of (prompt, action) pairs, from one of two sources
   (``TinyConfig.warm_start``): ``teacher`` (the default on the toy tasks), the turns of the
   episodes that a generic, imperfect explorer won: rejection-sampled fine-tuning, ARLArena's RFT
   cold start in miniature (arXiv 2602.21534: a stronger model's successful trajectories);
   ``random``, uniformly random admissible actions, which teach the ``<action>…</action>`` format
   and nothing of the solution (the start on ALFWorld, where no teacher exists). The
   warm-started policy's own success is measured before RL starts (iteration 0), so what RL adds
   is visible.

The default mixes the two, half and half (``random_share = 0.5``): imitating the won episodes
alone gives a student that already wins 96-99 % of the held-out coin-4 games, leaving RL nothing
to do; half random play leaves a partly competent start (about 64 %) that names listed commands.
The imitation's learning rate is 1e-3: at 3e-3 the loss spiked at the one-cycle peak and the
student depended on how float sums rounded (held-out success 15-66 % over three build seeds, and
a different policy on another CPU); at 1e-3 the builds agree (docs/results.md#how-robust-the-warm-start-is).

The result is saved with ``save_pretrained`` under the cache, keyed by a hash of everything that
shapes it, and reloads like any Hugging Face model (``--model <that dir>`` works too). The SHA-256
of every file is recorded beside them (``sampo_ref.manifest``); a cached policy whose files do not
match (truncated, garbled, deleted) is built again, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from filelock import FileLock
from tqdm import tqdm

from sampo_ref.checks import ConfigError, check_fields
from sampo_ref.manifest import manifest_problem, write_manifest
from sampo_ref.policy import Policy, left_pad, right_pad, sequence_logprobs

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL = ["<|pad|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>"]


@dataclass(frozen=True)
class TinyConfig:
    """Everything that shapes the tiny policy; its hash names the cache directory."""

    vocab_size: int = 1000  # BPE vocabulary
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 384
    warm_start: str = "teacher"  # teacher: won episodes of the explorer teacher; random: uniformly random admissible actions
    teacher_noise: float = 0.5  # the teacher's share of uniformly random admissible commands
    random_share: float = 0.5  # with the teacher: this share of the examples comes from random play instead
    warm_start_games: int = 64  # the first training games; play on them gives the examples
    warm_start_examples: int = 18000  # (prompt, action) pairs
    warm_start_epochs: int = 2
    warm_start_lr: float = 1e-3  # the one-cycle peak; 3e-3 made the build depend on float rounding
    warm_start_batch: int = 64
    seed: int = 0

    def __post_init__(self):
        checks = [("warm_start", self.warm_start in ("teacher", "random"), "teacher or random"),
                  ("teacher_noise", 0 <= self.teacher_noise <= 1, "in [0, 1]"),
                  ("random_share", 0 <= self.random_share <= 1, "in [0, 1]"),
                  ("warm_start_lr", 0 < self.warm_start_lr < 1, "in (0, 1)")]
        checks += [(name, getattr(self, name) >= 1, "≥ 1") for name in (
            "vocab_size", "hidden_size", "layers", "heads", "intermediate_size", "warm_start_games",
            "warm_start_examples", "warm_start_epochs", "warm_start_batch")]
        check_fields(self, checks, prefix="tiny: ")


def tiny_config(overrides: Sequence[str] = (), **base) -> TinyConfig:
    """``TinyConfig(**base)`` changed by ``KEY=VALUE`` overrides (``["random_share=0.85", "seed=1"]``,
    the form of ``sampo-ref train --tiny``), each value read as its field's type; one line names a bad pair."""
    types = {f.name: type(f.default) for f in fields(TinyConfig)}
    values = dict(base)
    for pair in overrides:
        key, sep, text = pair.partition("=")
        if not sep or key not in types:
            raise ConfigError(f"tiny: {pair!r} is not allowed: expected KEY=VALUE with KEY one of {sorted(types)}")
        try:
            values[key] = types[key](text)
        except ValueError:
            raise ConfigError(f"tiny: {pair!r} is not allowed: {text!r} is not a valid {types[key].__name__}") from None
    return TinyConfig(**values)


def train_tokenizer(corpus: list[str], vocab_size: int):
    """Byte-level BPE on ``corpus``, wrapped as a transformers fast tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(corpus, trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<|pad|>", eos_token="<|eos|>", padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def new_model(cfg: TinyConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
        max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(config)


def warm_start(policy: Policy, examples: list[tuple[str, str]], cfg: TinyConfig, progress: bool = True) -> list[float]:
    """Imitate ``<action>{a}</action>`` for each (prompt, a); cross-entropy on response tokens only."""
    tok, model = policy.tokenizer, policy.model
    prompts = [policy.encode_prompt(p) for p, _ in examples]
    responses = [tok.encode(f"<action>{a}</action>", add_special_tokens=False) for _, a in examples]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.warm_start_lr, weight_decay=0.01)
    rng = random.Random(cfg.seed)
    steps = cfg.warm_start_epochs * ((len(examples) + cfg.warm_start_batch - 1) // cfg.warm_start_batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.warm_start_lr, total_steps=steps, pct_start=0.1)
    losses = []
    model.train()
    with tqdm(total=steps, desc="tiny: warm-start", unit="step", leave=False, disable=not progress) as bar:
        for _ in range(cfg.warm_start_epochs):
            order = list(range(len(examples)))
            rng.shuffle(order)
            for start in range(0, len(order), cfg.warm_start_batch):
                idx = order[start : start + cfg.warm_start_batch]
                p_ids, p_mask = left_pad([prompts[i] for i in idx], policy.pad_id)  # (b, P)
                r_ids, r_mask = right_pad([responses[i] for i in idx], policy.pad_id)  # (b, T)
                logp, _ = sequence_logprobs(model, p_ids, p_mask, r_ids, r_mask)  # (b, T)
                loss = -(logp * r_mask).sum() / r_mask.sum()
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{loss.item():.3f}")
                bar.update()
    model.eval()
    return losses


def cache_key(cfg: TinyConfig, data_id: dict) -> str:
    blob = json.dumps({"tiny": asdict(cfg), "data": data_id, "version": 2}, sort_keys=True)  # 2: built on one thread
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_tiny(cfg: TinyConfig, make_examples: Callable[[], tuple[list[tuple[str, str]], dict]], data_id: dict,
               cache_dir: Path, progress: bool = True) -> Path:
    """Build (or reuse) the tiny policy; returns its ``save_pretrained`` directory.

    ``make_examples()`` returns the warm-start (prompt, action) pairs and a dict describing them
    (kept in ``warm_start.json``); it is called only on a cache miss. Prompts and responses also
    train the tokenizer. ``data_id`` names the data (it enters the cache key). The directory
    appears atomically: a killed build leaves no half policy behind; a cached one that fails its
    hashes is replaced. ``progress``: the imitation's progress bar.
    """
    out = cache_dir / f"tiny-{cache_key(cfg, data_id)}"
    if out.exists() and manifest_problem(out) is None:
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(cache_dir / f"{out.name}.lock"):  # a second process that needs it waits, then reuses it
        return _build(cfg, make_examples, data_id, cache_dir, out, progress)


def _build(cfg: TinyConfig, make_examples: Callable[[], tuple[list[tuple[str, str]], dict]], data_id: dict,
           cache_dir: Path, out: Path, progress: bool) -> Path:
    problem = manifest_problem(out) if out.exists() else None
    if out.exists() and problem is None:
        return out
    if problem:
        tqdm.write(f"tiny policy cache {out}: {problem}; building it again")
    # building draws random numbers (weight init); the caller's random streams must not depend on
    # whether the policy was built now or loaded from the cache
    # one torch thread, whatever the machine, so that the weights do not depend on the core count
    # (float sums round by thread count; at the earlier imitation rate 3e-3 that alone changed the
    # student: docs/results.md#how-robust-the-warm-start-is); the CPU's kernels still round alike
    # only on the same kind of CPU, so the bits of a build are reproducible per CPU kind
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        try:
            examples, about = make_examples()
            tokenizer = train_tokenizer([f"{p}<action>{a}</action>" for p, a in examples], cfg.vocab_size)
            policy = Policy(new_model(cfg, tokenizer), tokenizer, torch.device("cpu"))
            losses = warm_start(policy, examples, cfg, progress)
        finally:
            torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-"))
    policy.save(tmp)
    (tmp / "warm_start.json").write_text(json.dumps({"config": asdict(cfg), "data": data_id, "examples": about,
                                                         "losses": losses}))
    write_manifest(tmp)
    if out.exists() and manifest_problem(out):  # the damaged copy goes (unless another process replaced it already)
        shutil.rmtree(out, ignore_errors=True)
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return out
