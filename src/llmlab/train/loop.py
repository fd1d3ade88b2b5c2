"""The one training loop. Pretraining, SFT, the reward model, DPO, PPO and GRPO all run through it and differ
only in their data and their loss.

    from llmlab.train.loop import TrainConfig, train

    def loss_fn(model, batch):                    # batch: dict of tensors, already on the device
        logits = model(batch["input_ids"])          # (B, T, vocab)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch["targets"].flatten(), ignore_index=-1)
        return loss, {}                             # (scalar loss, extra metrics: name -> float/0-d tensor)

    result = train(model, TrainConfig(lr=3e-3, max_steps=500), batches, loss_fn, out_dir="runs/x",
                   eval_fn=lambda model, final: {"val_loss": ...}, tokenizer=tok)

What a stage provides
---------------------
* ``model``: any ``nn.Module`` (the loop wraps it for DDP/FSDP/compile itself; ``loss_fn`` receives the
  wrapped module and must call it, not ``unwrap(model)``, so gradients are synchronised). If it has
  ``flops_per_token()`` the loop reports MFU.
* ``batches``: a *batch source*, any object with ``next_batch() -> dict[str, Tensor]`` (CPU tensors; the loop
  moves them to the device) and ``state_dict()`` / ``load_state_dict(state)`` so the data position is resumed
  exactly. Under DDP each rank has its own source (build it with ``rank, world_size = dist_info()`` and give
  each rank different data). Tokens are counted as ``batch["input_ids"].numel()`` (or
  ``batch["num_tokens"]`` if present).
* ``loss_fn(model, batch) -> (loss, metrics)``: the mean loss of one micro-batch. The loop divides by the
  gradient-accumulation count, runs backward, averages the metrics over micro-batches and ranks and logs
  them. Run it under ``torch.autocast`` (the loop does that when ``dtype="bf16"``).
* ``eval_fn(model, final) -> dict[str, float]`` (optional): called on every rank every ``eval_every`` steps
  (``final=False``) and at the end (``final=True``), under ``torch.no_grad()`` with the model in eval mode; it gets the *unwrapped* model and must reduce
  across ranks itself if it shards work (``all_reduce_sum`` helps). Its numbers go to metrics.jsonl and
  summary.json.
* ``extra_state`` (optional): ``{name: object with state_dict()/load_state_dict()}`` saved in checkpoints too
  (a frozen reference model needs none; a running reward normaliser would).
* ``save_fn(model_unwrapped, out_dir)`` (optional): writes the final weights; default ``save_run_model`` (GPT +
  tokenizer). ``param_groups`` (optional): replaces the default AdamW grouping.

What the loop does
------------------
Gradient accumulation; clipping; LR schedule (linear warmup, then ``cosine`` / ``wsd`` (warmup-stable-decay) /
``constant``, over progress = max(step / max_steps, tokens / max_tokens, elapsed / time_budget), so a
time-boxed run decays on time); AdamW (decoupled weight decay on matrices only, never on embeddings, norms or
biases) or Muon for the hidden matrices plus AdamW for the rest; bf16 autocast; optional ``torch.compile``;
DDP or FSDP2 under ``torchrun`` (gloo on CPU, NCCL on GPU; rank 0 logs and checkpoints); ``metrics.jsonl``
(step, tokens, loss, lr, grad_norm, tokens_per_sec, mfu, eval numbers); a tqdm bar on stderr;
checkpoints in ``OUT/checkpoints/last.pt`` every ``save_every`` steps and on Ctrl-C / SIGTERM (model,
optimizer, step/tokens/elapsed, RNG states and data position of every rank, atomic write); ``resume=True``
continues exactly where the checkpoint left off; a NaN/inf loss or gradient stops with a clear error;
at the end ``summary.json``, ``loss.png``, the final weights and ``config.json``.

Time accounting: ``elapsed`` counts training steps only (not evaluation, checkpointing or start-up), so
``time_budget`` is a budget of training time, as in the usual speedrun rules.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from llmlab.errors import LlmlabError
from llmlab.model.kernels import convert
from llmlab.train.configs import TrainConfig
from llmlab.utils.config import RUN_CONFIG_FORMAT, RUN_CONFIG_VERSION, config_from_dict, config_to_dict
from llmlab.utils.device import fast_bf16_matmul, keep_freed_memory, resolve_device  # noqa: F401 (stages use it)
from llmlab.utils.dist import all_reduce_sum, init_distributed
from llmlab.utils.io import atomic_path, write_json

CHECKPOINT_FORMAT = "llmlab-train-checkpoint"
CHECKPOINT_VERSION = 1

# Peak dense bf16 throughput (FLOP/s) by GPU name, for MFU. CPUs have no useful public figure: MFU is left
# out there unless TrainConfig.peak_flops is set.
_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


# ----------------------------------------------------------------------------------------------------------
# What a stage gives the loop (TrainConfig itself lives in configs.py, beside every stage's recipe)


class BatchSource(Protocol):
    def next_batch(self) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], "tuple[torch.Tensor, dict[str, Any]]"]


@dataclass
class TrainResult:
    summary: dict
    interrupted: bool = False
    out_dir: Path | None = None
    model: nn.Module | None = None  # unwrapped, trained
    history: list[dict] = field(default_factory=list)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


def prefer_native_bf16(config: "TrainConfig") -> "TrainConfig":
    """For the token-stream stages (pretraining, SFT): ``dtype="auto"`` also means bf16 autocast on a CPU whose
    matmuls run bf16 natively (AVX512-BF16 / AMX, through oneDNN), not only on GPUs. Measured on a Zen 5 (1
    thread, the 180 s CPU speedrun): 1662 vs 1361 steps, 2.077 vs 2.097 bits per byte (docs/LOG.md session 8).
    The RL stages keep float32 on CPUs: their rollouts and reference log-probs are computed outside autocast,
    so bf16 training passes would add precision noise to every ratio and KL estimate."""
    from dataclasses import replace

    device = resolve_device(config.device)
    if config.dtype == "auto" and device.type == "cpu" and fast_bf16_matmul(device):
        return replace(config, dtype="bf16")
    return config


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------
# Optimizer and schedule


def default_param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices (dim >= 2) except embeddings; none on embeddings, norms, biases.
    A tied embedding/head is one parameter and is listed once (as the embedding: no decay)."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizers(model: nn.Module, cfg: TrainConfig, device: torch.device, param_groups=None) -> list:
    """One AdamW, or Muon (hidden 2-D matrices of the transformer blocks) + AdamW (everything else)."""
    # The fused AdamW kernel exists for CUDA and CPU; on CPU it is 7x faster than the foreach one (0.84 vs
    # 6.0 ms a step for the `cpu` preset, 1 thread: docs/LOG.md).
    fused = device.type in ("cuda", "cpu")
    adam_kw = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused)
    if cfg.optimizer == "adamw":
        groups = param_groups if param_groups is not None else default_param_groups(model, cfg.weight_decay)
        return [torch.optim.AdamW([g for g in groups if g["params"]], **adam_kw)]
    muon, rest, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        hidden_matrix = p.dim() == 2 and "embed" not in name and "lm_head" not in name and "layers." in name
        (muon if hidden_matrix else rest).append(p)
    adam_groups = [{"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0},
                   {"params": [p for p in rest if p.dim() >= 2], "weight_decay": 0.0}]
    opts = [torch.optim.AdamW([g for g in adam_groups if g["params"]], **adam_kw)]
    if muon:
        from llmlab.train.muon import Muon  # torch's algorithm; Newton-Schulz in float32 where bf16 is slow

        opts.append(Muon(muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay, momentum=0.95))
    return opts


def lr_factor(cfg: TrainConfig, step: int, progress: float) -> float:
    """Multiplier on the peak lr: linear warmup over warmup_steps, then the schedule over progress in [0, 1]."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    p = min(max(progress, 0.0), 1.0)
    lo = cfg.min_lr_frac
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * p))
    # wsd: flat, then a linear decay over the last cooldown_frac of progress
    start = 1.0 - cfg.cooldown_frac
    if p <= start or cfg.cooldown_frac <= 0:
        return 1.0
    return lo + (1 - lo) * max(0.0, (1.0 - p) / cfg.cooldown_frac)


def progress_of(cfg: TrainConfig, step: int, tokens: int, elapsed: float) -> float:
    parts = []
    if cfg.max_steps > 0:
        parts.append(step / cfg.max_steps)
    if cfg.max_tokens > 0:
        parts.append(tokens / cfg.max_tokens)
    if cfg.time_budget > 0:
        parts.append(elapsed / cfg.time_budget)
    return max(parts)


# ----------------------------------------------------------------------------------------------------------
# RNG state (numpy's legacy state is turned into plain lists so torch.load(weights_only=True) accepts it)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuplify(x):
    return tuple(_tuplify(i) for i in x) if isinstance(x, (list, tuple)) else x


# ----------------------------------------------------------------------------------------------------------
# The trainer


class Trainer:
    """Owns one training run. ``Trainer(...).fit()`` or the ``train(...)`` shortcut; see the module docstring."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: BatchSource,
        loss_fn: LossFn,
        out_dir: str | Path,
        *,
        eval_fn: Callable[[nn.Module, bool], dict] | None = None,
        tokenizer=None,
        run_config: dict | None = None,
        extra_state: dict | None = None,
        save_fn: Callable[[nn.Module, Path], None] | None = None,
        param_groups: list[dict] | None = None,
        resume: bool = False,
        progress: bool | None = None,
    ):
        config.validate()
        self.cfg = config
        self.batches, self.loss_fn, self.eval_fn = batches, loss_fn, eval_fn
        self.out = Path(out_dir)
        self.tokenizer, self.run_config = tokenizer, run_config or {}
        self.extra_state, self.save_fn = extra_state or {}, save_fn
        self.resume, self.progress_bar = resume, progress

        if config.threads > 0:
            torch.set_num_threads(config.threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.device = resolve_device(config.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # no page faults on re-touched activations every step (utils/device.py)
        self.rank, self.world = init_distributed(self.device)
        self.master = self.rank == 0
        self.amp_dtype = resolve_dtype(config.dtype, self.device)

        if config.fsdp and self.world > 1 and config.optimizer == "muon":
            # torch's Muon would orthogonalise each rank's shard of a matrix separately: a different update.
            raise LlmlabError("--optimizer muon does not work with --fsdp (sharded matrices); use --optimizer adamw")
        self.raw_model = convert(model.to(self.device), self.device)  # the device's kernels (model/kernels)
        self.model = self._wrap(self.raw_model)
        self.optimizers = build_optimizers(self.raw_model, config, self.device, param_groups)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["base_lr"] = g["lr"]

        self.step, self.tokens, self.elapsed = 0, 0, 0.0
        self.history: list[dict] = []
        self._stop_signal: int | None = None

    # -- wrapping -------------------------------------------------------------------------------------------

    def _wrap(self, model: nn.Module) -> nn.Module:
        """Parallelism and compilation wrap the model from outside; the model file knows nothing of them."""
        if self.world > 1 and self.cfg.fsdp:
            from torch.distributed.fsdp import fully_shard

            # Shard each transformer block, then the root (embedding, final norm, head).
            for block in getattr(model, "layers", []):
                fully_shard(block)
            fully_shard(model)
        if self.cfg.compile:
            model = torch.compile(model)
        if self.world > 1 and not self.cfg.fsdp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return model

    def _no_sync(self, last_micro: bool):
        """Skip the gradient all-reduce on every micro-batch but the last of a step."""
        if self.world == 1 or last_micro:
            return contextlib.nullcontext()
        if self.cfg.fsdp:
            self.raw_model.set_requires_gradient_sync(False)
            return _restore_sync(self.raw_model)
        return self.model.no_sync()

    def _autocast(self):
        if self.amp_dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # -- checkpoints ----------------------------------------------------------------------------------------

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    def _gather(self, obj):
        """The list of every rank's ``obj`` (a one-element list for one process)."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def _model_and_optim_state(self):
        if self.cfg.fsdp and self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            msd, osd = get_state_dict(self.raw_model, self.optimizers, options=opts)
            return msd, [osd]
        return self.raw_model.state_dict(), [o.state_dict() for o in self.optimizers]

    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly: every rank's data position and RNG, rank 0 writes."""
        data_states = self._gather(self.batches.state_dict())
        rng_states = self._gather(_rng_state())
        extra = {k: v.state_dict() for k, v in self.extra_state.items()}
        msd, osd = self._model_and_optim_state()
        if self.master:
            ckpt = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "step": self.step,
                "tokens": self.tokens,
                "elapsed": self.elapsed,
                "world_size": self.world,
                "train_config": config_to_dict(self.cfg),
                "model": msd,
                "optimizers": osd,
                "data": data_states,
                "rng": rng_states,
                "extra": extra,
            }
            with atomic_path(self.ckpt_path) as tmp:
                torch.save(ckpt, tmp)
        self._barrier()

    def load_checkpoint(self) -> None:
        path = self.ckpt_path
        if not path.is_file():
            raise LlmlabError(f"{path}: no checkpoint to resume from (was the run started with this --out?)")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises assorted types for a torn/garbage file
            raise LlmlabError(f"{path}: corrupt checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise LlmlabError(f"{path}: not an llmlab training checkpoint")
        if ckpt["world_size"] != self.world:
            raise LlmlabError(f"{path}: saved with {ckpt['world_size']} processes, resuming with {self.world}; "
                              "resume with the same --nproc_per_node")
        try:
            if self.cfg.fsdp and self.world > 1:
                from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

                set_state_dict(self.raw_model, self.optimizers, model_state_dict=ckpt["model"],
                               optim_state_dict=ckpt["optimizers"][0],
                               options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=False))
            else:
                self.raw_model.load_state_dict(ckpt["model"])
                if len(ckpt["optimizers"]) != len(self.optimizers):
                    raise ValueError("optimizer kind differs (adamw vs muon)")
                for opt, sd in zip(self.optimizers, ckpt["optimizers"]):
                    opt.load_state_dict(sd)
        except (RuntimeError, ValueError, KeyError) as e:
            raise LlmlabError(f"{path}: checkpoint does not match this model/optimizer ({str(e).splitlines()[0][:160]})") from None
        for g in (g for o in self.optimizers for g in o.param_groups):
            g.setdefault("base_lr", g["lr"])
        self.step, self.tokens, self.elapsed = ckpt["step"], ckpt["tokens"], ckpt["elapsed"]
        self.batches.load_state_dict(ckpt["data"][self.rank])
        _set_rng_state(ckpt["rng"][self.rank])
        saved_extra = ckpt.get("extra", {})
        if set(saved_extra) != set(self.extra_state):  # e.g. a reward model resumed with another --dev-frac
            raise LlmlabError(f"{path}: saved with extra state {sorted(saved_extra)}, resuming with "
                              f"{sorted(self.extra_state)}; resume with the options the run started with")
        for k, v in self.extra_state.items():
            v.load_state_dict(saved_extra[k])
        self._truncate_metrics()

    def _truncate_metrics(self) -> None:
        """Drop metrics logged after the checkpoint (the killed run got further than it saved)."""
        path = self.out / "metrics.jsonl"
        if not self.master or not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by the kill
            if rec.get("step", 0) <= self.step:
                kept.append(rec)
        self.history = kept
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    # -- signals --------------------------------------------------------------------------------------------

    def _install_signals(self):
        """Ctrl-C / SIGTERM finish the current step, checkpoint and stop; a second Ctrl-C aborts at once."""
        if threading_main() is False:
            return {}
        previous = {}

        def handler(signum, frame):
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signum
            if self.master:
                try:  # the reader of stderr may be gone already (a killed parent): still checkpoint
                    print(f"\nllmlab: {signal.Signals(signum).name} received: saving a checkpoint after this step",
                          file=sys.stderr)
                except (OSError, ValueError):
                    pass

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    # -- the loop -------------------------------------------------------------------------------------------

    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        if self.master:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def _run_eval(self, final: bool = False) -> dict:
        if self.eval_fn is None:
            return {}
        self.raw_model.eval()
        try:
            with torch.no_grad():
                res = self.eval_fn(self.raw_model, final)
        finally:
            self.raw_model.train()
        return {k: float(v) for k, v in (res or {}).items()}

    def _peak_flops(self) -> float:
        if self.cfg.peak_flops > 0:
            return self.cfg.peak_flops
        if self.device.type == "cuda":
            name = torch.cuda.get_device_name(self.device)
            for key, val in _PEAK_FLOPS.items():
                if key in name:
                    return val
        return 0.0

    def _write_run_config(self) -> None:
        if not self.master:
            return
        cfg = {"format": RUN_CONFIG_FORMAT, "version": RUN_CONFIG_VERSION, "train": config_to_dict(self.cfg),
               "world_size": self.world, "device": str(self.device)}
        model_cfg = getattr(self.raw_model, "config", None)
        if model_cfg is not None and hasattr(model_cfg, "__dataclass_fields__"):
            cfg["model"] = config_to_dict(model_cfg)
        cfg.update(self.run_config)
        write_json(self.out / "config.json", cfg)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed + self.rank)
        if self.resume:
            self.load_checkpoint()
        elif self.master:
            (self.out / "metrics.jsonl").write_text("")
        self._write_run_config()
        self._barrier()

        fpt = self.raw_model.flops_per_token(cfg.seq_len) if hasattr(self.raw_model, "flops_per_token") else 0.0
        peak = self._peak_flops()
        bar = self._make_bar()
        previous_handlers = self._install_signals()
        interrupted = False
        self.raw_model.train()
        try:
            while True:
                progress = progress_of(cfg, self.step, self.tokens, self.elapsed)
                stop = progress >= 1.0
                if self.world > 1:
                    # Ranks must agree on stopping (time budget, signals): one tiny all-reduce per step.
                    flag = torch.tensor([float(stop), float(self._stop_signal is not None)], device=self.device)
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    stop, interrupted_now = bool(flag[0]), bool(flag[1])
                else:
                    interrupted_now = self._stop_signal is not None
                if interrupted_now:
                    interrupted = True
                    self.save_checkpoint()
                    break
                if stop:
                    break
                rec = self._train_step(progress, fpt, peak)
                evaluated = bool(cfg.eval_every) and self.step % cfg.eval_every == 0
                if evaluated:
                    rec.update(self._run_eval())
                if self.step % cfg.log_every == 0 or evaluated:
                    self._log(rec)
                if bar is not None:
                    self._update_bar(bar, rec)
                if cfg.save_every and self.step % cfg.save_every == 0:
                    self.save_checkpoint()
        finally:
            for sig, h in previous_handlers.items():
                signal.signal(sig, h)
            if bar is not None:
                bar.close()
        if interrupted:
            if self.master:
                print(f"llmlab: stopped at step {self.step}; checkpoint {self.ckpt_path}; continue with --resume",
                      file=sys.stderr)
            return TrainResult({"step": self.step, "interrupted": True}, True, self.out, self.raw_model, self.history)
        return self._finish(fpt)

    def _train_step(self, progress: float, fpt: float, peak: float) -> dict:
        cfg = self.cfg
        factor = lr_factor(cfg, self.step, progress)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * factor
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        step_tokens = 0
        for micro in range(cfg.grad_accum):
            batch = self.batches.next_batch()
            n_tok = int(batch["num_tokens"]) if "num_tokens" in batch else batch["input_ids"].numel()
            step_tokens += n_tok
            batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            with self._no_sync(micro == cfg.grad_accum - 1):
                with self._autocast():
                    loss, metrics = self.loss_fn(self.model, batch)
                (loss / cfg.grad_accum).backward()
            sums["loss"] = sums.get("loss", 0.0) + loss.detach().float()
            for k, v in (metrics or {}).items():
                v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v))
                sums[k] = sums.get(k, 0.0) + v.to(self.device)
        grad_norm = None
        if cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip)
            if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor; the norm is already global
                grad_norm = grad_norm.full_tensor()
        # Average the micro-batch metrics over micro-batches and ranks (one all-reduce), then check for NaN
        # before the update so a diverged step never reaches the weights or a checkpoint.
        keys = sorted(sums)
        vec = torch.stack([sums[k].reshape(()).to(self.device) for k in keys]) / cfg.grad_accum
        if grad_norm is not None:
            vec = torch.cat([vec, grad_norm.detach().float().reshape(1).to(self.device)])
        vec = all_reduce_sum(vec) / self.world
        vals = vec.tolist()
        if not all(math.isfinite(v) for v in vals):
            bad = dict(zip(keys + ["grad_norm"], vals))
            raise LlmlabError(
                f"step {self.step + 1}: training diverged (loss {bad.get('loss')}, grad norm {bad.get('grad_norm')}); "
                f"stopped before the update. Lower --lr or use --dtype fp32; the last checkpoint is {self.ckpt_path}"
            )
        for opt in self.optimizers:
            opt.step()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - t0
        self.step += 1
        global_tokens = step_tokens * self.world
        self.tokens += global_tokens
        if self.world > 1:
            # Every rank uses rank 0's clock so the time budget ends all of them on the same step.
            t = torch.tensor([dt], dtype=torch.float64, device=self.device)
            dist.broadcast(t, 0)
            dt = float(t)
        self.elapsed += dt
        tps = global_tokens / dt
        rec = {"step": self.step, "tokens": self.tokens, "elapsed": round(self.elapsed, 3)}
        rec.update({k: v for k, v in zip(keys, vals)})
        if grad_norm is not None:
            rec["grad_norm"] = vals[-1]
        rec["lr"] = self.cfg.lr * factor
        rec["tokens_per_sec"] = round(tps, 1)
        if fpt:
            rec["tflops"] = round(fpt * tps / 1e12, 4)
            if peak:
                rec["mfu"] = round(fpt * tps / (peak * self.world), 4)
        return rec

    # -- progress bar ---------------------------------------------------------------------------------------

    def _make_bar(self):
        if not self.master or self.progress_bar is False:
            return None
        from tqdm import tqdm

        return tqdm(total=1000, file=sys.stderr, dynamic_ncols=True, mininterval=0.5, leave=True,
                    disable=None if self.progress_bar is None else False,
                    bar_format="{l_bar}{bar}| {postfix}")

    def _update_bar(self, bar, rec: dict) -> None:
        p = progress_of(self.cfg, self.step, self.tokens, self.elapsed)
        bar.n = min(1000, int(p * 1000))
        left = self.elapsed * (1 - p) / p if p > 0 else float("nan")
        bar.set_postfix_str(f"step {self.step} loss {rec['loss']:.4f} {rec['tokens_per_sec']:.0f} tok/s "
                            f"left {left:.0f}s", refresh=False)
        bar.refresh()

    # -- the end --------------------------------------------------------------------------------------------

    def _finish(self, fpt: float) -> TrainResult:
        final_eval = self._run_eval(final=True)
        if final_eval:
            self._log({"step": self.step, "tokens": self.tokens, "elapsed": round(self.elapsed, 3), **final_eval})
        losses = [r["loss"] for r in self.history if "loss" in r]
        summary = {
            "steps": self.step,
            "tokens": self.tokens,
            "seconds": round(self.elapsed, 2),
            "tokens_per_sec": round(self.tokens / self.elapsed, 1) if self.elapsed > 0 else 0.0,
            "params": sum(p.numel() for p in {id(p): p for p in self.raw_model.parameters()}.values()),
            "final_loss": losses[-1] if losses else None,
            "world_size": self.world,
            "device": str(self.device),
            "dtype": str(self.amp_dtype).replace("torch.", ""),
            **final_eval,
        }
        if self.cfg.fsdp and self.world > 1:
            msd, _ = self._model_and_optim_state()  # gathers the full weights (a collective: every rank)
            if self.master:
                self.raw_model = _materialise_full(self.raw_model, msd)
        if self.master:
            if self.save_fn is not None:
                self.save_fn(self.raw_model, self.out)
            else:
                from llmlab.runs import save_run_model

                save_run_model(self.out, self.raw_model, self.tokenizer)
            write_json(self.out / "summary.json", summary)
            plot_loss(self.history, self.out / "loss.png")
        self._barrier()
        return TrainResult(summary, False, self.out, self.raw_model, self.history)


@contextlib.contextmanager
def _restore_sync(module):
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def _materialise_full(sharded_model: nn.Module, full_state: dict) -> nn.Module:
    """A plain (unsharded) copy of an FSDP2 model on CPU holding the gathered full weights, for saving."""
    import copy

    # fully_shard swapped the class for a generated FSDP<Name> subclass: build the original class again.
    cls = next(c for c in type(sharded_model).__mro__[1:] if issubclass(c, nn.Module) and not c.__name__.startswith("FSDP"))
    model = cls(copy.deepcopy(sharded_model.config))
    model.load_state_dict(full_state)
    return model


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def plot_loss(history: list[dict], path: Path) -> None:
    """Training loss (and any val_loss points) against tokens seen, as a PNG (matplotlib, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["tokens"], r["loss"]) for r in history if "loss" in r]
    val = [(r["tokens"], r["val_loss"]) for r in history if "val_loss" in r]
    if not train:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(*zip(*train), label="train loss", lw=1)
    if val:
        ax.plot(*zip(*val), "o-", label="val loss")
    ax.set_xlabel("tokens")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def train(model: nn.Module, config: TrainConfig, batches: BatchSource, loss_fn: LossFn, out_dir, **kw) -> TrainResult:
    """Shortcut for ``Trainer(model, config, batches, loss_fn, out_dir, **kw).fit()``."""
    return Trainer(model, config, batches, loss_fn, out_dir, **kw).fit()


def load_train_config(data: dict) -> TrainConfig:
    return config_from_dict(TrainConfig, data, source="train config")


def cross_entropy_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Next-token loss: batch has ``input_ids`` (B, T) and ``targets`` (B, T) (-1 = not scored)."""
    # The model computes the loss with its output head chunk by chunk (never the whole logits tensor).
    return model(batch["input_ids"], targets=batch["targets"]), {}
