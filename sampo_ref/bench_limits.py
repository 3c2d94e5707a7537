"""Speed against the hardware's limit: randomly initialised Qwen-architecture models on a GPU.

    sampo-ref bench limits                                  # Qwen 0.5B, 1.5B, 4B on CUDA, bf16
    sampo-ref bench limits --models smoke --device cpu --dtype float32 --peak-tflops 1   # the code path in seconds

Two fractions per model, each measured against a bound computed from the model's shapes:

* **decode**: generated tokens/s ÷ the memory-bandwidth bound. A decode step must read every
  weight once and every sequence's KV cache once, so it takes at least
  ``(weight bytes + B · context · KV bytes per token) / bandwidth`` seconds for B tokens. The
  bandwidth is measured here, by a device-to-device copy (bytes read + bytes written ÷ time).
* **training**: model FLOP/s utilisation (MFU) of the project's update path (``sequence_logprobs``
  forward + backward, as the trainer runs it) ÷ the device's peak bf16 FLOP/s (H200: 989 TFLOP/s
  dense). FLOPs per row: ``6 · N_body · S + 6 · N_head · (T + 1) + 12 · L · H · d_h · S²`` — the
  6N rule for the transformer body over all S = P + T positions, the LM head only over the T + 1
  positions whose logits the loss keeps, and attention's score and value products (PaLM's
  appendix B count, no discount for the causal mask).

The weights are random (built from a config: nothing is downloaded); speed does not depend on
them. Decode is greedy with a fixed length (``min_new_tokens``), so every run generates the same
number of tokens. ``--caches dynamic static vllm`` compares transformers' growing KV cache with its
preallocated static cache, which ``generate`` compiles (``torch.compile``) on CUDA, and with the
vLLM engine of ``--engine vllm`` (``sampo_ref.engine``: paged KV cache, CUDA graphs) on the same
weights: the levers aimed at decode's gap to the bound (per-token Python and kernel-launch overhead).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from sampo_ref.bench import markdown_table
from sampo_ref.policy import STOP, pick_device, sequence_logprobs

H200_BF16_TFLOPS = 989.0  # NVIDIA H200 SXM, dense bf16 tensor-core peak (no sparsity)

_QWEN_COMMON = dict(vocab_size=151936, tie_word_embeddings=True, rms_norm_eps=1e-6, max_position_embeddings=32768)
QWEN = {
    # name: (model_type, config fields), shapes as in the published config.json of each model
    "0.5b": ("qwen2", dict(_QWEN_COMMON, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                           num_attention_heads=14, num_key_value_heads=2)),  # Qwen2.5-0.5B
    "1.5b": ("qwen2", dict(_QWEN_COMMON, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                           num_attention_heads=12, num_key_value_heads=2)),  # Qwen2.5-1.5B
    "4b": ("qwen3", dict(_QWEN_COMMON, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128)),  # Qwen3-4B
    "smoke": ("qwen3", dict(vocab_size=512, tie_word_embeddings=True, hidden_size=64, intermediate_size=128,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                            max_position_embeddings=1024)),  # a few seconds on a CPU: tests the code path
}
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class LimitsBench:
    """Decode against the bandwidth bound and training against peak FLOP/s, per model size."""

    models: list[str] = field(default_factory=lambda: ["0.5b", "1.5b", "4b"])
    """Model sizes: 0.5b (Qwen2.5-0.5B shapes), 1.5b (Qwen2.5-1.5B), 4b (Qwen3-4B), smoke (tiny)."""
    caches: list[str] = field(default_factory=lambda: ["dynamic", "static"])
    """Decoders to compare: generate's dynamic (grows per token) and static (preallocated, compiled on CUDA) KV caches, and vllm (the vLLM engine, sampo_ref.engine; needs vLLM)."""
    batch: int = 64
    """B: sequences decoded at once."""
    prompt_len: int = 512
    """P: prompt tokens per sequence (decode and training)."""
    new_tokens: int = 128
    """Tokens generated per sequence in decode; T, the response length, in training."""
    train_batch: int = 8
    """Rows per forward + backward in training."""
    dtype: str = "bfloat16"
    """Weights and activations: bfloat16, float16 or float32."""
    device: str = "auto"
    """auto, cuda or cpu."""
    peak_tflops: float = 0.0
    """Peak FLOP/s of the device in TFLOP/s for MFU; 0 = the H200's 989 (dense bf16), CUDA only."""
    repeats: int = 2
    """Timed runs of each measurement after one warm-up; the best counts."""
    copy_mib: int = 1024
    """Size of the bandwidth-measuring copy."""
    engine_memory: float = 0.4
    """With vllm among the caches: the share of the GPU's memory the engine takes (weights and KV cache)."""


def model_config(name: str):
    """The transformers config of a ``QWEN`` entry."""
    from transformers import Qwen2Config, Qwen3Config

    if name not in QWEN:
        raise ValueError(f"models={name!r} is not allowed: expected one of {sorted(QWEN)}")
    kind, fields = QWEN[name]
    return {"qwen2": Qwen2Config, "qwen3": Qwen3Config}[kind](**fields)


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def matmul_params(model) -> int:
    """Parameters a token's forward pass reads: all of them, less the input embedding unless it is
    also the LM head (its rows are gathered, not multiplied)."""
    total = sum(p.numel() for p in model.parameters())
    tied = model.get_input_embeddings().weight is model.get_output_embeddings().weight
    return total if tied else total - model.get_input_embeddings().weight.numel()


def kv_bytes_per_token(config, dtype_bytes: int) -> int:
    """KV-cache bytes one cached position holds: keys and values of every layer."""
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim(config) * dtype_bytes


def decode_bound(weight_bytes: int, kv_per_token: int, batch: int, context: float, bandwidth: float) -> float:
    """Tokens/s if a decode step did nothing but read the weights and the B sequences' KV caches once."""
    step_bytes = weight_bytes + batch * context * kv_per_token
    return batch * bandwidth / step_bytes


def train_flops_per_row(config, n_matmul: int, prompt_len: int, response_len: int) -> float:
    """Forward + backward FLOPs of ``sequence_logprobs`` on one row of S = P + T tokens (module docstring)."""
    seq = prompt_len + response_len
    n_head = config.vocab_size * config.hidden_size  # the LM head's matrix
    attention = 12 * config.num_hidden_layers * config.num_attention_heads * head_dim(config) * seq * seq
    return 6 * (n_matmul - n_head) * seq + 6 * n_head * (response_len + 1) + attention


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn, device: torch.device, repeats: int) -> float:
    """One warm-up call (allocation, compilation), then the fastest of ``repeats`` timed calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure_bandwidth(device: torch.device, nbytes: int, repeats: int = 5) -> float:
    """Bytes/s of a device-to-device copy, counting the bytes read and the bytes written."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    seconds = _best_seconds(lambda: dst.copy_(src), device, repeats)
    return 2 * nbytes / seconds


def measure_decode(model, batch: int, prompt_len: int, new_tokens: int, cache: str, repeats: int) -> float:
    """Seconds per decode step: (time for ``new_tokens`` − time for 1) / (new_tokens − 1), prefill cancels."""
    device = model.device
    ids = torch.randint(model.config.vocab_size, (batch, prompt_len), device=device)

    def generate(n: int):
        return lambda: model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
            do_sample=False, cache_implementation=cache, pad_token_id=0,
        )

    return (_best_seconds(generate(new_tokens), device, repeats) - _best_seconds(generate(1), device, repeats)) / (
        new_tokens - 1)


def measure_decode_vllm(model, batch: int, prompt_len: int, new_tokens: int, repeats: int, memory: float) -> float:
    """``measure_decode`` on the vLLM engine, started on the weights of ``model`` (random ids in and
    out: the engine's tokenizer, a small one, is never used)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    from sampo_ref.engine import VllmEngine
    from sampo_ref.tiny import train_tokenizer

    engine = VllmEngine(model, train_tokenizer(["random weights, random ids"], vocab_size=300), STOP, set(), memory)
    prompts = [TokensPrompt(prompt_token_ids=row) for row in torch.randint(model.config.vocab_size, (batch, prompt_len)).tolist()]

    def generate(n: int):
        params = SamplingParams(temperature=0.0, max_tokens=n, min_tokens=n, ignore_eos=True, detokenize=False)
        return lambda: engine.llm.generate(prompts, params, use_tqdm=False)

    device = model.device
    step = (_best_seconds(generate(new_tokens), device, repeats) - _best_seconds(generate(1), device, repeats)) / (
        new_tokens - 1)
    engine.close()
    return step


def measure_train(model, batch: int, prompt_len: int, response_len: int, repeats: int) -> float:
    """Seconds of one forward + backward of the mean response log-prob (the update's model work)."""
    device = model.device
    prompt = torch.randint(model.config.vocab_size, (batch, prompt_len), device=device)
    response = torch.randint(model.config.vocab_size, (batch, response_len), device=device)
    ones_p, ones_r = torch.ones_like(prompt), torch.ones_like(response)

    def step():
        model.zero_grad(set_to_none=True)
        logp, _ = sequence_logprobs(model, prompt, ones_p, response, ones_r)  # (B, T)
        (-logp.float().mean()).backward()

    return _best_seconds(step, device, repeats)


def bench_limits(cfg: LimitsBench) -> dict:
    """Measure every model and print the two tables; returns the rows."""
    from transformers import AutoModelForCausalLM

    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype={cfg.dtype!r} is not allowed: expected one of {sorted(DTYPES)}")
    if cfg.new_tokens < 2:
        raise ValueError(f"new_tokens={cfg.new_tokens} is not allowed: expected ≥ 2 (decode time is a difference)")
    for name in cfg.models:
        model_config(name)  # a bad name fails before any measurement
    for cache in cfg.caches:
        if cache not in ("dynamic", "static", "vllm"):
            raise ValueError(f"caches={cache!r} is not allowed: expected dynamic, static or vllm")
    device = pick_device(cfg.device)
    if cfg.peak_tflops <= 0 and device.type != "cuda":
        raise ValueError(f"peak_tflops={cfg.peak_tflops} is not allowed on {device.type}: give the device's peak TFLOP/s")
    peak = (cfg.peak_tflops or H200_BF16_TFLOPS) * 1e12
    dtype = DTYPES[cfg.dtype]
    dtype_bytes = torch.empty((), dtype=dtype).element_size()
    bandwidth = measure_bandwidth(device, cfg.copy_mib * 2**20)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\nlimits on {device_name}: measured copy bandwidth {bandwidth / 1e9:.0f} GB/s, "
          f"peak {peak / 1e12:.4g} TFLOP/s assumed, {cfg.dtype}, best of {cfg.repeats}")
    decode_rows, train_rows, results = [], [], []
    for name in cfg.models:
        config = model_config(name)
        torch.manual_seed(0)
        with device:  # initialised where it runs
            model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
        n = matmul_params(model)
        kv = kv_bytes_per_token(config, dtype_bytes)
        context = cfg.prompt_len + cfg.new_tokens / 2  # mean cached positions over the decode steps
        bound = decode_bound(n * dtype_bytes, kv, cfg.batch, context, bandwidth)
        with torch.no_grad():
            for cache in cfg.caches:
                step = (measure_decode_vllm(model, cfg.batch, cfg.prompt_len, cfg.new_tokens, cfg.repeats, cfg.engine_memory)
                        if cache == "vllm" else
                        measure_decode(model, cfg.batch, cfg.prompt_len, cfg.new_tokens, cache, cfg.repeats))
                tokens_per_s = cfg.batch / step
                decode_rows.append([name, f"{n / 1e6:.0f}", cache, cfg.batch, f"{context:.0f}",
                                    f"{tokens_per_s:.0f}", f"{bound:.0f}", f"{tokens_per_s / bound:.1%}"])
                results.append({"model": name, "cache": cache, "decode_tokens_per_s": tokens_per_s,
                                "bound_tokens_per_s": bound})
        model.train()
        seconds = measure_train(model, cfg.train_batch, cfg.prompt_len, cfg.new_tokens, cfg.repeats)
        flops = cfg.train_batch * train_flops_per_row(config, n, cfg.prompt_len, cfg.new_tokens)
        tokens_per_s = cfg.train_batch * (cfg.prompt_len + cfg.new_tokens) / seconds
        mfu = flops / seconds / peak
        train_rows.append([name, f"{n / 1e6:.0f}", f"{cfg.train_batch}×{cfg.prompt_len + cfg.new_tokens}",
                           f"{tokens_per_s:.0f}", f"{flops / seconds / 1e12:.3g}", f"{mfu:.1%}"])
        results.append({"model": name, "train_tokens_per_s": tokens_per_s, "mfu": mfu})
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"\ndecode: B = {cfg.batch}, prompt {cfg.prompt_len}, {cfg.new_tokens} new tokens; "
          "bound = B · bandwidth ÷ (weight bytes + B · context · KV bytes per token)")
    print(markdown_table(["model", "params (M)", "KV cache", "B", "mean context", "tokens/s", "bound tokens/s",
                          "fraction of bound"], decode_rows))
    print(f"\ntraining: forward + backward of sequence_logprobs (prompt {cfg.prompt_len}, response {cfg.new_tokens})")
    print(markdown_table(["model", "params (M)", "rows × tokens", "tokens/s", "model TFLOP/s", "MFU"], train_rows))
    return {"bandwidth": bandwidth, "peak": peak, "rows": results}
