"""Every training stage's recipe, stated once: the loop's ``TrainConfig`` and one config per stage.

    from llmlab.train.configs import RMConfig
    from llmlab.train.rm import run
    result = run(RMConfig(model="runs/sft", data="pairs.jsonl", out="runs/rm"), RMConfig.train_config(max_steps=50))

    llmlab rm --model runs/sft --data pairs.jsonl --out runs/rm --max-steps 50      # the same run
    llmlab rm --config rm.toml --out runs/rm2                                        # [rm] and [train] sections
    llmlab rm --config runs/rm/config.json --out runs/rm_again                       # a run, reproduced

A stage's config holds its own settings with their defaults, help text and checks (building one with a bad
value raises ``ConfigError``), and, as ``train_defaults``, the training-loop settings in which the stage's recipe
differs from ``TrainConfig``'s defaults (``StageConfig.train_config`` applies them). The CLI's flags are derived
from these classes (``llmlab.utils.config.add_config_flags``), so a flag's default is the field's; settings
layer as dataclass defaults < ``--config FILE`` < explicit flags; the speedrun builds these configs and states
only what differs. ``tests/train/test_configs.py`` fails when a CLI default, a library default or a speedrun
value disagrees with them.

This module imports no torch: ``llmlab --help`` builds every stage's flags from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from llmlab.errors import LlmlabError
from llmlab.tasks.synth import SynthConfig
from llmlab.utils.config import Checked, option

SCHEDULES = ("cosine", "wsd", "constant")
OPTIMIZERS = ("adamw", "muon")
DTYPES = ("auto", "fp32", "bf16")
HORIZON = ("max_steps", "max_tokens", "time_budget")  # training stops at whichever is reached first


# ----------------------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainConfig(Checked):
    """The shared training loop's settings (``llmlab.train.loop``); every stage's ``train_defaults`` start here.
    Choices are checked when one is built; ``validate()`` (the loop calls it) checks that it can train."""

    # optimisation
    lr: float = option(3e-3, "peak learning rate")
    schedule: str = option("wsd", "learning-rate schedule after warmup", choices=SCHEDULES)
    warmup_steps: int = option(20, "linear warmup steps")
    cooldown_frac: float = option(0.4, "wsd: final fraction of the run spent decaying the lr")
    min_lr_frac: float = option(0.0, "final learning rate as a fraction of the peak")
    weight_decay: float = option(0.1, "decoupled weight decay on matrices")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.95, "AdamW beta2")
    eps: float = option(1e-8, "AdamW epsilon")
    grad_clip: float = option(1.0, "max gradient norm (0 = off)")
    optimizer: str = option("adamw", "adamw, or muon for hidden matrices + adamw", choices=OPTIMIZERS)
    muon_lr: float = option(0.02, "Muon learning rate (with --optimizer muon)")
    # batch
    batch_size: int = option(16, "sequences per micro-batch per process")
    grad_accum: int = option(1, "micro-batches per optimizer step")
    seq_len: int = option(256, "tokens per training sequence (also the model's context; sft: 0 = the base model's)")
    # horizon: training stops at whichever is reached first (at least one must be set)
    max_steps: int = option(0, "stop after this many optimizer steps")
    max_tokens: int = option(0, "stop after this many training tokens")
    time_budget: float = option(0.0, "seconds of training (the schedule decays on time)")
    # bookkeeping
    eval_every: int = option(0, "evaluate every N steps (and at the end; 0 = only at the end)")
    save_every: int = option(0, "checkpoint every N steps (also on Ctrl-C / SIGTERM; 0 = only then)")
    log_every: int = option(1, "write metrics.jsonl every N steps")
    seed: int = option(1337, "random seed (weights, data order)")
    # hardware
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    dtype: str = option("auto", "bf16 = autocast; auto = bf16 on GPU (pretrain and sft: also on CPUs with native "
                        "bf16 matmuls, AVX512-BF16/AMX), else fp32", choices=DTYPES)
    compile: bool = option(False, "torch.compile the model")
    fsdp: bool = option(False, "FSDP2 instead of DDP under torchrun")
    deterministic: bool = option(False, "deterministic algorithms (bit-exact resume on the same machine)")
    threads: int = option(0, "torch CPU threads (0 = default)")
    peak_flops: float = option(0.0, "peak FLOP/s for MFU on hardware the loop does not know (0 = look up / leave out)")

    def validate(self) -> None:
        problems = []
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule {self.schedule!r} (choose {', '.join(SCHEDULES)})")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} (choose {', '.join(OPTIMIZERS)})")
        if self.dtype not in DTYPES:
            problems.append(f"dtype {self.dtype!r} (choose {', '.join(DTYPES)})")
        if self.lr <= 0 or self.batch_size < 1 or self.grad_accum < 1 or self.seq_len < 2:
            problems.append("lr, batch_size, grad_accum must be positive and seq_len >= 2")
        if not (self.max_steps > 0 or self.max_tokens > 0 or self.time_budget > 0):
            problems.append("no horizon: set max_steps, max_tokens or time_budget")
        if problems:
            raise LlmlabError("invalid training config: " + "; ".join(problems))


class StageConfig(Checked):
    """Base of a training stage's config. ``name``: its command and its section in config files and in the
    run's config.json; ``train_defaults``: where the stage's recipe for the loop differs from TrainConfig."""

    name: ClassVar[str] = ""
    train_defaults: ClassVar[dict] = {}

    @classmethod
    def train_config(cls, **changes) -> TrainConfig:
        """The stage's TrainConfig with ``changes`` applied. Any horizon among them (max_steps, max_tokens,
        time_budget) replaces a default time budget: ``--max-steps 50`` means 50 steps, not 50 steps or 180 s."""
        base = dict(cls.train_defaults)
        if any(k in changes for k in HORIZON):
            base.pop("time_budget", None)
        return TrainConfig(**{**base, **changes})


def _out(what: str = "run folder to write") -> str:
    return option("", what, required=True, from_file=False)


def _model(what: str = "run folder to start from (the SFT model); also the reference") -> str:
    return option("", what, required=True)


def _layers_flag(value: str) -> int:
    """A layer count for --head-layers: a positive int, or 'all' (0: every layer of the model)."""
    import argparse

    if value == "all":
        return 0
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of layers or 'all'")
    return n


# ----------------------------------------------------------------------------------------------------------
# Pretraining and SFT


@dataclass
class PretrainConfig(StageConfig):
    """``llmlab pretrain`` (``llmlab.train.pretrain``): a base model from text."""

    name: ClassVar[str] = "pretrain"
    # The CPU speedrun's winning configuration (docs/LOG.md, "CPU speedrun"): the cpu preset with Muon at lr 6e-3
    # (AdamW groups) and 0.02 (Muon), 4 x 256-token rows a step, a wsd schedule after 20 warmup steps; with no
    # horizon the run is time-boxed to 180 s of training.
    train_defaults: ClassVar[dict] = dict(batch_size=4, seq_len=256, lr=6e-3, optimizer="muon", muon_lr=0.02,
                                          time_budget=180.0, schedule="wsd", warmup_steps=20)

    data: str = option("bundled", "text/JSONL file, folder, or 'bundled' (the bundled train split)")
    val_data: str = option("", "validation text (default: the bundled val split with --data bundled, else none)")
    out: str = _out("run folder")
    preset: str = option("cpu", "model preset: tiny, cpu, gpt2-small, gpt2-medium, 1b, depth-N")
    tokenizer: str = option("", "tokenizer folder (default: train one, kept in OUT/tokenizer)")
    vocab_size: int = option(2048, "vocabulary of a tokenizer trained here")
    tokenizer_train_bytes: int = option(50_000_000, "train the tokenizer on at most this many characters of the data")
    sampling: str = option("random", "training windows", choices=("random", "sequential"))
    bos_windows: bool = option(True, "every training row starts with <|bos|> (as bits-per-byte windows do)")
    eval_max_bytes: int = option(0, "bytes of val text scored by periodic evals (0 = all; the final eval scores all)")
    samples: int = option(3, "generated samples at the end")
    sample_tokens: int = option(120, "tokens per generated sample")
    # model shape: None = the preset's
    n_layer: int | None = option(None, "transformer blocks", group="model shape (override the preset)")
    d_model: int | None = option(None, "width", group="model shape (override the preset)")
    n_head: int | None = option(None, "attention heads", group="model shape (override the preset)")
    n_kv_head: int | None = option(None, "key/value heads (grouped-query attention when fewer than --n-head; "
                                   "default: --n-head)", group="model shape (override the preset)")
    tie_embeddings: bool | None = option(None, "share the input embedding and the output head",
                                         group="model shape (override the preset)")

    def problems(self) -> list[str]:
        shape = [v for v in (self.n_layer, self.d_model, self.n_head, self.n_kv_head) if v is not None]
        out = [] if all(v >= 1 for v in shape) else ["--n-layer, --d-model, --n-head and --n-kv-head must be positive"]
        if self.samples < 0 or self.eval_max_bytes < 0:
            out.append("--samples and --eval-max-bytes must be at least 0")
        return out

    def model_overrides(self) -> dict:
        """The shape fields that were set, for ``ModelConfig.preset`` (--n-head alone sets --n-kv-head too)."""
        shape = {k: getattr(self, k) for k in ("n_layer", "d_model", "n_head", "n_kv_head", "tie_embeddings")
                 if getattr(self, k) is not None}
        if "n_head" in shape and "n_kv_head" not in shape:
            shape["n_kv_head"] = shape["n_head"]
        return shape


@dataclass
class SFTConfig(StageConfig):
    """``llmlab sft`` (``llmlab.train.sft``): a base model becomes an assistant."""

    name: ClassVar[str] = "sft"
    # Fine-tuning a CPU-speedrun base (docs/LOG.md, "SFT on the bundled conversations"): the pretraining peak lr
    # with a cosine decay; 1e-3 left the answers half-learned (val loss 2.60 vs 1.99 at 3e-3, same 83 steps).
    # seq_len 0: the base model's context. With no horizon the run makes --epochs passes over the data.
    train_defaults: ClassVar[dict] = dict(batch_size=16, lr=3e-3, schedule="cosine", warmup_steps=10, min_lr_frac=0.1,
                                          seq_len=0)

    model: str = _model("base run folder (from llmlab pretrain)")
    data: str = option("bundled", "JSONL of {'messages': [...]} or {'prompt', 'completion'} lines, or 'bundled' "
                       "(the generated conversations, llmlab chat synth)")
    val_data: str = option("", "held-out JSONL (default: the generator's held-out set, or a seeded share of --data)")
    out: str = _out("run folder for the fine-tuned model")
    packing: bool = option(True, "pack conversations into full rows (document-masked) instead of padding each")
    skip_bad: bool = option(False, "skip malformed JSONL lines (and count them) instead of stopping at the first")
    # 4 passes beat 2 over a 4,000-conversation file (val loss 1.69 vs 1.99); the bundled set is 40,000, one pass.
    epochs: float = option(0.0, "passes over the data when no other horizon is set (0 = 4 over --data FILE, 1 over "
                           "bundled)")
    val_fraction: float = option(0.05, "share of --data held out without --val-data")
    n_train: int = option(SynthConfig.n_train, "--data bundled: conversations generated for training")
    n_val: int = option(SynthConfig.n_val, "--data bundled: held-out conversations")
    synth_seed: int = option(SynthConfig.seed, "--data bundled: generator seed")
    eval_samples: int = option(200, "held-out conversations generated at the end for format rate / exact match "
                               "(0 = off)")
    max_new_tokens: int = option(64, "answer length limit of that evaluation")

    def problems(self) -> list[str]:
        if self.epochs < 0 or not 0 <= self.val_fraction < 1 or min(self.n_train, self.n_val, self.eval_samples) < 0:
            return ["--epochs must be at least 0, --val-fraction in [0, 1), --n-train, --n-val and --eval-samples "
                    "at least 0"]
        return []


# ----------------------------------------------------------------------------------------------------------
# Preference learning and RL


@dataclass
class RMConfig(StageConfig):
    """``llmlab rm`` (``llmlab.train.rm``): a reward model on preference pairs (Bradley-Terry)."""

    name: ClassVar[str] = "rm"
    # lr 6e-4 beat 1e-4 and 3e-4 on the speedrun's pairs (held-out accuracy 69% / 80% / 82%, docs/LOG.md 2026-11-23).
    train_defaults: ClassVar[dict] = dict(lr=6e-4, max_steps=600, batch_size=16, warmup_steps=10, schedule="cosine",
                                          weight_decay=0.0, min_lr_frac=0.1)

    model: str = _model()
    data: str = option("", "preference pairs JSONL {prompt, chosen, rejected}", required=True)
    val: str = option("", "held-out pairs JSONL (pairwise accuracy)")
    out: str = _out()
    bucket_batches: int = option(32, "draw batches length-sorted within chunks of this many batches (less padding); "
                                 "1 = random")
    shared_prompt: bool = option(True, "one row per pair, [prompt, chosen, rejected], the prompt computed once (same "
                                 "scores)")
    lm_coef: float = option(0.0, "add this times the chosen answers' next-token loss (LM regulariser; 0 = off)")
    logprob_coef: float = option(0.0, "the reward adds this times the answer's log-likelihood under the model's own "
                                 "LM head")
    train_layers: int = option(-1, "train only the top N transformer blocks and the head, the embedding and lower "
                               "blocks frozen (-1 = train everything)")
    backbone_lr_scale: float = option(1.0, "the backbone's learning rate as a fraction of --lr (the head's)")
    head_layers: int = option(1, "the head reads the last token's state at the top N layers (concatenated), not the "
                              "top one alone; 'all' = every layer", type=_layers_flag,
                              show=lambda n: "all" if n == 0 else str(n))
    dev_frac: float = option(0.0, "hold this fraction of the training pairs out (by prompt) and keep the weights that "
                             "score best on them, checked every --eval-every steps (early stopping; 0 = off)")

    def problems(self) -> list[str]:
        out = []
        if self.bucket_batches < 1 or self.lm_coef < 0 or self.logprob_coef < 0:
            out.append("--bucket-batches must be at least 1, --lm-coef and --logprob-coef at least 0")
        if self.train_layers < -1 or self.backbone_lr_scale < 0 or not 0 <= self.dev_frac < 1:
            out.append("--train-layers must be -1 or more, --backbone-lr-scale at least 0, --dev-frac in [0, 1)")
        if self.head_layers < 0:
            out.append("--head-layers must be positive (0 = all)")
        return out


@dataclass
class DPOConfig(StageConfig):
    """``llmlab dpo`` (``llmlab.train.dpo``): Direct Preference Optimisation on preference pairs."""

    name: ClassVar[str] = "dpo"
    train_defaults: ClassVar[dict] = dict(lr=5e-5, max_steps=200, batch_size=16, warmup_steps=10, schedule="cosine",
                                          weight_decay=0.0, min_lr_frac=0.1)

    model: str = _model()
    data: str = option("", "preference pairs JSONL {prompt, chosen, rejected}", required=True)
    val: str = option("", "held-out pairs JSONL")
    out: str = _out()
    beta: float = option(0.1, "strength of the implicit KL to the reference")
    nll_coef: float = option(0.0, "weight of the chosen answers' per-token NLL added to the DPO loss (RPO; 0 = plain "
                             "DPO)")

    def problems(self) -> list[str]:
        out = [] if self.beta > 0 else ["--beta must be positive"]
        return out + ([] if self.nll_coef >= 0 else ["--nll-coef must be >= 0"])


LOGPROB_REWARDS = ("token", "answer")  # where a log-likelihood RM's coef x log p(answer) is paid
BASELINES = ("none", "greedy")  # what each PPO answer's reward is measured against (greedy: ReMax)


@dataclass
class PPOConfig(StageConfig):
    """``llmlab ppo`` (``llmlab.train.ppo``): PPO against a reward model (RLHF)."""

    name: ClassVar[str] = "ppo"
    # lr 1e-4 and 300 steps (with --kl-coef 0.05) won 67-71% of held-out prompts against SFT under two
    # independently trained judges, where 2e-5 / 120 steps tied (docs/LOG.md 2026-11-23).
    train_defaults: ClassVar[dict] = dict(lr=1e-4, max_steps=300, batch_size=16, warmup_steps=5, schedule="constant",
                                          weight_decay=0.0)

    model: str = _model()
    reward_model: str = option("", "run folder from llmlab rm", required=True)
    prompts: str = option("", "prompts JSONL {prompt}", required=True)
    out: str = _out()
    # 64 rather than 32: the same steps from twice the answers won 73.4 / 71.9% vs 64.9 / 66.6% (LOG session 12)
    rollout_prompts: int = option(64, "prompts answered per rollout")
    epochs: int = option(2, "passes over each rollout")
    minibatch: int = option(32, "answers per optimizer step")
    kl_coef: float = option(0.05, "per-token KL penalty coefficient")
    kl_estimator: str = option("k1", "per-token KL estimator", choices=("k1", "k3"))
    kl_target: float | None = option(None, "steer the KL coefficient (starting at --kl-coef) after each rollout toward "
                                     "this KL to the reference, nats per answer (adaptive KL controller; default: a "
                                     "fixed coefficient)")
    kl_horizon: float = option(500.0, "with --kl-target: answers over which the coefficient moves by at most ~20%")
    clip: float = option(0.2, "policy ratio clip")
    value_clip: float = option(0.2, "value clip")
    vf_coef: float = option(0.1, "value loss weight")
    gamma: float = option(1.0, "discount")
    lam: float = option(0.95, "GAE lambda")
    max_new_tokens: int = option(48, "answer length limit in rollouts")
    temperature: float = option(1.0, "rollout sampling temperature")
    unfinished_penalty: float = option(0.0, "subtracted from the score of answers that hit the length limit")
    logprob_reward: str = option("token", "with a log-likelihood reward model (rm --logprob-coef): pay coef x log p of "
                                 "each answer token as it is generated (token) or all of it at the answer's end "
                                 "(answer); same total", choices=LOGPROB_REWARDS)
    baseline: str = option("none", "greedy: subtract the score of the policy's greedy answer to the same prompt from "
                           "each answer's reward (ReMax; a per-prompt constant, one more generation per rollout)",
                           choices=BASELINES)
    check_coef: float = option(0.0, "prompts with a checkable answer: add this to the reward of an exactly right "
                               "answer and subtract it from a wrong one (0 = the reward model alone)")

    def problems(self) -> list[str]:
        out = []
        if min(self.rollout_prompts, self.epochs, self.minibatch, self.max_new_tokens) < 1:
            out.append("--rollout-prompts, --epochs, --minibatch and --max-new-tokens must be at least 1")
        if self.kl_target is not None and (self.kl_target <= 0 or self.kl_horizon <= 0):
            out.append(f"adaptive KL needs a positive target and horizon, got {self.kl_target} and {self.kl_horizon}")
        if self.kl_target is not None and self.kl_coef <= 0:  # a multiplicative controller cannot move zero
            out.append(f"a KL target needs a positive KL coefficient to start from, got {self.kl_coef}")
        return out


@dataclass
class GRPOConfig(StageConfig):
    """``llmlab grpo`` (``llmlab.train.grpo``): GRPO on verifiable tasks."""

    name: ClassVar[str] = "grpo"
    # With 32 prompts x 4 answers, dynamic sampling, kl 0.1: lr 5e-4 decaying to 0 over the last 30% of 800 steps
    # (the policy settles before the end) gained +10.8 to +17.3 points of held-out exact match over four SFT models,
    # a constant 3e-4 +11.9 to +15.2, a constant 5e-4 less (docs/LOG.md session 11; the constant-lr history:
    # 2026-11-23 GRPO ceiling, session 10). 1200 steps, not 800: from runs/s11's SFT model +15.7 vs +14.7 and +12.9
    # (two seeds); from runs/s9's +19.2 vs +11.5 at lr 3e-4 (LOG session 11).
    train_defaults: ClassVar[dict] = dict(lr=5e-4, max_steps=1200, batch_size=16, warmup_steps=5, schedule="wsd",
                                          cooldown_frac=0.3, weight_decay=0.0)

    model: str = _model("run folder to start from (the SFT model); also the KL reference")
    prompts: str = option("", "tasks JSONL {prompt, answer}", required=True)
    val: str = option("", "held-out tasks JSONL (exact match before/after)")
    out: str = _out()
    # The SFT model solves 20-50% of the tasks, so exact match alone gives groups a signal (docs/LOG.md 2026-11-23).
    reward: str = option("exact", "comma-separated reward functions (summed): exact, partial, digits, brevity")
    # 32 x 4 rather than 16 x 8: twice the prompts per step for the same answers trained. From a 54.5% SFT model,
    # 800 steps: 67.0% vs 61.0% after 1000 steps of 16 x 8 (which dipped to 53.5% on the way; LOG session 10).
    group_size: int = option(4, "samples per prompt (G)")
    rollout_prompts: int = option(32, "prompts per rollout")
    epochs: int = option(1, "passes over each rollout")
    minibatch: int | None = option(None, "answers per optimizer step (default: the rollout)")
    clip: float = option(0.2, "policy ratio clip")
    # From a strong SFT model (39% exact match) 400 steps without it lost 3.5 points, with 0.1 gained 0.5; from a
    # weak one (22.5%) +6.5 either way (LOG sessions 5 and 8).
    kl_coef: float = option(0.1, "k3 KL-to-reference penalty weight (0 = off)")
    max_new_tokens: int = option(48, "answer length limit")
    temperature: float = option(1.0, "rollout sampling temperature")
    unfinished_reward: float | None = option(None, "reward of answers that hit the length limit (default: as scored)")
    # Groups whose answers all score alike carry no signal (docs/LOG.md 2026-11-23).
    dynamic_sampling: bool = option(True, "DAPO: drop groups whose rewards all agree, sample more prompts to refill "
                                    "the rollout")
    max_draws: int = option(4, "with --dynamic-sampling: at most this many prompt batches sampled per rollout")
    advantage: str = option("grpo", "grpo: (r - mean) / std, token-mean loss; drgrpo: r - mean, loss / (rows x "
                            "max-new-tokens)", choices=("grpo", "drgrpo"))
    clip_high: float | None = option(None, "upper ratio clip (DAPO clip-higher; default = --clip); matters with "
                                     "epochs/minibatches")

    def reward_names(self) -> list[str]:
        return [n.strip() for n in self.reward.split(",") if n.strip()]

    def problems(self) -> list[str]:
        from llmlab.tasks.rewards import REWARD_FUNCTIONS

        out = []
        unknown = [n for n in self.reward_names() if n not in REWARD_FUNCTIONS]
        if unknown or not self.reward_names():
            out.append(f"--reward: unknown reward function(s) {unknown}; choose from {', '.join(REWARD_FUNCTIONS)}")
        if self.group_size < 2:
            out.append("--group-size must be at least 2 (advantages are relative to the group)")
        if min(self.rollout_prompts, self.epochs, self.max_draws, self.max_new_tokens, self.minibatch or 1) < 1:
            out.append("--rollout-prompts, --epochs, --minibatch, --max-draws and --max-new-tokens must be at least 1")
        return out


AGAINST = ("worst", "greedy")  # which answer a ranked pair rejects


@dataclass
class RankedPairsConfig(Checked):
    """``llmlab ranked-pairs`` (``llmlab.train.ranked_pairs``): preference pairs from the policy's own samples."""

    model: str = option("", "run folder whose answers are sampled (the policy DPO starts from)", required=True)
    reward_model: str = option("", "run folder from llmlab rm", required=True)
    prompts: str = option("", "prompts JSONL {prompt} (training prompts)", required=True)
    out: str = option("", "pairs JSONL to write", required=True, from_file=False)
    n: int | None = option(None, "use the first N prompts (default: all)", short="-n")
    samples: int = option(4, "answers sampled per prompt")
    temperature: float = option(1.0, "sampling temperature")
    max_new_tokens: int = option(64, "answer length limit")
    min_margin: float = option(0.5, "keep pairs whose reward gap is at least this")
    against: str = option("worst", "reject the worst-scored sample, or (greedy) the model's greedy answer whenever a "
                          "sample scores above it", choices=AGAINST)
    check_answers: bool = option(False, "prompts with a checkable answer: a right answer (exact match) beats a wrong "
                                 "one whatever the reward model says; the judge ranks within each")
    seed: int = option(0, "sampling seed")
    device: str = option("cpu", "cpu | cuda | auto")

    def problems(self) -> list[str]:
        return [] if self.samples >= 2 else ["--samples must be at least 2 (a pair needs two answers)"]


STAGE_CONFIGS = (PretrainConfig, SFTConfig, RMConfig, DPOConfig, PPOConfig, GRPOConfig)
