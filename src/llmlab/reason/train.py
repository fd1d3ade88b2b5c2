"""``llmlab reason train --task game24``: teach a small model the Game of 24 on a CPU in minutes -- SFT on
solver-made step-by-step solutions and value judgements, then GRPO with the exact checker as reward.
``--task arith`` does the same for arithmetic word problems (``tasks.arith_word``: worked CoT solutions and
direct answers of training-split problems; GRPO on CoT prompts).

    llmlab reason train --task game24 --out runs/game24 --threads 1   # ~25 CPU minutes by default
    llmlab reason train --task arith --out runs/arith --threads 1 --grpo-steps 0
    llmlab reason --model runs/game24 --task game24 --method tot --breadth 5 --puzzles game24.csv --ranks 901-1000

    from llmlab.reason.train import Game24TrainConfig, train_game24
    summary = train_game24(Game24TrainConfig(out="runs/game24", sft_steps=2000, grpo_steps=100))

Time: the defaults (113k conversations with worked value, answer and judge replies, 2500 SFT steps, 60 GRPO
steps) took 16 minutes on one thread of a shared 2-core CPU at load ~3 (SFT 12.5 min, GRPO 3 min, data and
checks the rest; 19 min for a run at load 4-6, 24 min for the one-word-value recipe; docs/LOG.md, issue 30).

The stages, each in its own folder under OUT (a finished stage is reused when the command runs again):

1. ``data/``: the conversations of ``tasks.game24_text.training_conversations`` (io, cot, propose, value,
   answer, judge; never a test game, never the validation puzzles) as JSONL, and GRPO's prompts. For arith,
   ``tasks.arith_word.training_conversations`` (train split only), plus ``val.txt`` and ``test.txt``: held-out
   problems one a line, ready for ``llmlab reason --puzzles``.
2. ``base/``: a byte-level BPE tokenizer trained on that text and a freshly initialised model (no
   pretraining: the task's own text is all it needs; the speedrun's Shakespeare would only cost minutes).
3. ``sft/``: ``llmlab.train.sft`` on the conversations (loss on the replies; packed rows).
4. ``grpo/``: ``llmlab.train.grpo`` on chain-of-thought and answer prompts of the training puzzles; the
   reward is 1 when the task's checker accepts the reply's answer, else 0.
5. OUT itself: the final model (a normal run folder) and ``summary.json`` with each stage's numbers and
   chain-of-thought success on the validation puzzles (game24: ranks 1001-1050; arith: the val split) before
   and after GRPO.

This module is the only glue to the training library: it calls ``llmlab.train.sft.run`` and
``llmlab.train.grpo.run`` with their typed stage configs (``llmlab.train.configs``) and a ``TrainConfig`` each,
so a change to those configs touches only this file.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.tasks.arith_word import ArithDataConfig
from llmlab.tasks.game24_text import Game24DataConfig

TRAIN_FORMAT = "llmlab-reason-train"


@dataclass
class Game24TrainConfig:
    out: str = "runs/game24"
    seed: int = 0
    task: str = "game24"  # game24 | arith (``reason.tasks.TASKS``); the data recipe and the reward's checker
    # model: the CPU speedrun's shape; every conversation fits in 256 tokens (the longest, cot and answer, ~100)
    vocab_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    max_seq_len: int = 256
    split_digits: bool = False  # tokenizer: every digit its own token (the "digits" split pattern)
    # SFT: a number of steps (not seconds), so a run on a busy shared CPU learns as much as on an idle one
    sft_steps: int = 2500
    sft_seconds: float = 0.0  # an optional cap on SFT training time (0 = none)
    sft_lr: float = 3e-3
    sft_batch: int = 16  # packed rows of max_seq_len tokens
    sft_optimizer: str = "muon"
    # GRPO
    grpo_steps: int = 60
    grpo_seconds: float = 0.0  # an optional cap on GRPO training time (0 = none)
    grpo_lr: float = 2e-4
    grpo_group: int = 8
    grpo_prompts: int = 16  # prompts per rollout
    grpo_max_new_tokens: int = 128
    grpo_kinds: tuple[str, ...] = ("cot", "answer")
    grpo_kl: float = 0.0
    threads: int = 0  # torch CPU threads (0 = torch's default)
    eval_puzzles: int = 50  # validation puzzles scored with greedy CoT before and after GRPO (0 = off)
    data: Game24DataConfig = field(default_factory=Game24DataConfig)
    arith: ArithDataConfig = field(default_factory=ArithDataConfig)  # task arith's data

    def validate(self) -> None:
        if self.task not in ("game24", "arith"):
            raise LlmlabError(f"reason train: unknown task {self.task!r}; choose game24, arith")
        self.data.validate() if self.task == "game24" else self.arith.validate()
        if self.sft_steps < 1 or min(self.grpo_steps, self.sft_seconds, self.grpo_seconds) < 0 \
                or self.grpo_group < 2 or self.grpo_prompts < 1:
            raise LlmlabError("invalid game24 training config: sft_steps >= 1, grpo_steps >= 0, seconds >= 0, "
                              "grpo_group >= 2, grpo_prompts >= 1")
        bad = set(self.grpo_kinds) - {"cot", "answer", "io"}
        if bad:
            raise LlmlabError(f"grpo_kinds: unknown kinds {sorted(bad)} (choose cot, answer, io)")


def _note(msg: str) -> None:
    print(f"llmlab reason train: {msg}", file=sys.stderr, flush=True)


def train_game24(cfg: Game24TrainConfig, *, progress: bool | None = None) -> dict:
    """Run the stages (see the module docstring); returns OUT/summary.json's content."""
    import torch

    from llmlab.runs import load_run, save_run_model
    from llmlab.utils.config import config_to_dict
    from llmlab.utils.io import read_json, write_json

    cfg.validate()
    out = Path(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    summary: dict = {"format": TRAIN_FORMAT, "version": 1, "config": config_to_dict(cfg)}

    data_info = _data_stage(cfg, out / "data")
    summary["data"] = data_info
    _base_stage(cfg, out / "data" / "train.jsonl", out / "base")

    sft_dir = out / "sft"
    if not (sft_dir / "summary.json").is_file():
        _note(f"SFT for {cfg.sft_steps} steps" + (f" (at most {cfg.sft_seconds:.0f} s)" if cfg.sft_seconds else ""))
        _sft_stage(cfg, out / "base", out / "data" / "train.jsonl", sft_dir, progress)
    else:
        _note(f"reusing {sft_dir}")
    summary["sft"] = _pick(read_json(sft_dir / "summary.json"), ("steps", "tokens", "seconds", "params", "val_loss",
                                                                  "final_loss"))
    final = sft_dir
    if cfg.eval_puzzles:
        summary["val_cot_sft"] = validation_cot(sft_dir, cfg.eval_puzzles, cfg.data, cfg.task, cfg.arith.events)
        _note(f"SFT model: greedy CoT solves {summary['val_cot_sft']:.0%} of {cfg.eval_puzzles} validation puzzles")
    if cfg.grpo_steps > 0:
        grpo_dir = out / "grpo"
        if not (grpo_dir / "summary.json").is_file():
            _note(f"GRPO for {cfg.grpo_steps} steps" + (f" (at most {cfg.grpo_seconds:.0f} s)" if cfg.grpo_seconds else ""))
            _grpo_stage(cfg, sft_dir, out / "data" / "grpo_prompts.jsonl", grpo_dir, progress)
        else:
            _note(f"reusing {grpo_dir}")
        summary["grpo"] = _pick(read_json(grpo_dir / "summary.json"), ("steps", "tokens", "seconds"))
        summary["grpo"].update(_reward_trend(grpo_dir / "metrics.jsonl"))
        final = grpo_dir
        if cfg.eval_puzzles:
            summary["val_cot_grpo"] = validation_cot(grpo_dir, cfg.eval_puzzles, cfg.data, cfg.task,
                                                     cfg.arith.events)
            _note(f"GRPO model: greedy CoT solves {summary['val_cot_grpo']:.0%} of the validation puzzles")
    model, tok = load_run(final)
    save_run_model(out, model, tok)
    summary["final_stage"] = final.name
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "summary.json", summary)
    return summary


def _pick(d: dict, keys) -> dict:
    return {k: d[k] for k in keys if k in d}


def _reward_trend(metrics: Path, k: int = 10) -> dict:
    """Mean sampled reward of GRPO's first and last ``k`` logged steps (the checker's verdicts on its rollouts)."""
    import json

    rewards = [r["reward_mean"] for r in map(json.loads, metrics.read_text().splitlines()) if "reward_mean" in r]
    if not rewards:
        return {}
    return {"reward_first": round(sum(rewards[:k]) / len(rewards[:k]), 4),
            "reward_last": round(sum(rewards[-k:]) / len(rewards[-k:]), 4)}


# ----------------------------------------------------------------------------------------------------------
# Stages


def _data_stage(cfg: Game24TrainConfig, data_dir: Path) -> dict:
    import random

    from llmlab.chat.data import write_conversations
    from llmlab.tasks.game24 import format_numbers, is_test, load_puzzles, solve
    from llmlab.tasks.game24_text import answer_messages, cot_messages, holdout_puzzles, io_messages, \
        training_conversations
    from llmlab.chat.pref_data import write_jsonl
    from llmlab.utils.io import read_json, write_json

    info_path = data_dir / "info.json"
    if info_path.is_file():
        return read_json(info_path)
    if cfg.task == "arith":
        return _arith_data_stage(cfg, data_dir)
    t = time.perf_counter()
    convs = training_conversations(cfg.data)
    write_conversations(data_dir / "train.jsonl", convs)
    # GRPO prompts: the trainable puzzles (never a test or validation game), each kind asked once per puzzle.
    holdout = holdout_puzzles(cfg.data)
    rng = random.Random(cfg.seed + 1)
    rows = []
    for p in load_puzzles():
        if is_test(p.numbers) or p.numbers in holdout:
            continue
        text = format_numbers(p.numbers)
        for kind in cfg.grpo_kinds:
            if kind == "answer":
                steps = solve(p.numbers, rng)
                msgs = answer_messages(p.numbers, steps)
            else:
                msgs = cot_messages(p.numbers) if kind == "cot" else io_messages(p.numbers)
            rows.append({"prompt": msgs, "puzzle": text, "kind": kind})
    write_jsonl(data_dir / "grpo_prompts.jsonl", rows)
    from collections import Counter

    info = {"conversations": len(convs), "by_kind": dict(Counter(c.meta["kind"] for c in convs)),
            "grpo_prompts": len(rows), "seconds": round(time.perf_counter() - t, 1)}
    write_json(info_path, info)
    _note(f"data: {len(convs)} conversations, {len(rows)} GRPO prompts ({info['seconds']} s)")
    return info


def _arith_data_stage(cfg: Game24TrainConfig, data_dir: Path) -> dict:
    """Arithmetic word problems: SFT conversations and GRPO's CoT prompts from the train split only, and the
    held-out problems (val, test) as puzzle files."""
    from collections import Counter

    from llmlab.chat.data import write_conversations
    from llmlab.chat.pref_data import write_jsonl
    from llmlab.tasks import arith_word as aw
    from llmlab.utils.io import write_json, write_text

    t = time.perf_counter()
    data = replace(cfg.arith, seed=cfg.seed)
    convs = aw.training_conversations(data)
    write_conversations(data_dir / "train.jsonl", convs)
    # GRPO: CoT prompts of other training problems (a fresh draw; the reward needs only the problem).
    rows = [{"prompt": aw.cot_messages(p), "puzzle": p.text, "kind": "cot", "task": "arith"}
            for p in aw.problems(4000, "train", cfg.seed + 1, events=data.events)]
    write_jsonl(data_dir / "grpo_prompts.jsonl", rows)
    for split, n in (("val", data.n_val), ("test", data.n_test)):
        held_out = aw.problems(n, split, 0, events=data.events)
        write_text(data_dir / f"{split}.txt", "".join(p.text + "\n" for p in held_out))
    info = {"conversations": len(convs), "by_kind": dict(Counter(c.meta["kind"] for c in convs)),
            "grpo_prompts": len(rows), "val": data.n_val, "test": data.n_test,
            "seconds": round(time.perf_counter() - t, 1)}
    write_json(data_dir / "info.json", info)
    _note(f"data: {len(convs)} conversations, {len(rows)} GRPO prompts, {data.n_val} val and {data.n_test} test "
          f"problems ({info['seconds']} s)")
    return info


def _base_stage(cfg: Game24TrainConfig, train_jsonl: Path, base_dir: Path) -> None:
    import torch

    from llmlab.chat.data import load_conversations
    from llmlab.chat.template import render_text
    from llmlab.runs import save_run_model
    from llmlab.model.gpt import GPT, ModelConfig
    from llmlab.tokenizer import Tokenizer

    if (base_dir / "model.safetensors").is_file():
        return
    convs, _ = load_conversations(train_jsonl)
    tok = Tokenizer.train([render_text(c.messages) for c in convs[:20000]], cfg.vocab_size,
                          pattern="digits" if cfg.split_digits else "gpt4")
    torch.manual_seed(cfg.seed)
    extra = {"task": cfg.task}
    if cfg.task == "arith":  # the held-out problems' shape, for benchmarks/bench_sc_arith.py
        extra["arith_events"] = list(cfg.arith.events)
    mcfg = ModelConfig(vocab_size=tok.vocab_size, n_layer=cfg.n_layer, n_head=cfg.n_head, n_kv_head=cfg.n_head,
                       d_model=cfg.d_model, max_seq_len=cfg.max_seq_len, extra=extra)
    save_run_model(base_dir, GPT(mcfg), tok)
    _note(f"base: tokenizer of {tok.vocab_size} tokens, {sum(p.numel() for p in GPT(mcfg).parameters()):,} "
          "parameters, freshly initialised")


def _sft_stage(cfg: Game24TrainConfig, base: Path, train_jsonl: Path, out: Path, progress) -> None:
    from llmlab.train.configs import SFTConfig
    from llmlab.train.sft import run

    tcfg = SFTConfig.train_config(lr=cfg.sft_lr, schedule="cosine", warmup_steps=20, min_lr_frac=0.1,
                                  batch_size=cfg.sft_batch, optimizer=cfg.sft_optimizer, seq_len=cfg.max_seq_len,
                                  max_steps=cfg.sft_steps, time_budget=cfg.sft_seconds, seed=cfg.seed,
                                  threads=cfg.threads, device="auto")
    scfg = SFTConfig(model=str(base), data=str(train_jsonl), out=str(out), val_fraction=0.01, eval_samples=0)
    result = run(scfg, tcfg, progress=progress)
    if result.interrupted:
        raise LlmlabError("SFT was interrupted; run the command again to redo it")


def checker_reward(prompt, response: str) -> float:
    """GRPO's reward: 1.0 when the reply's final answer solves the prompt's puzzle (``meta["puzzle"]``, of the
    task ``meta["task"]``, game24 when absent)."""
    from llmlab.reason.tasks import get_task

    task = get_task(prompt.meta.get("task", "game24"))
    answer = task.extract_answer(response)[1]
    if not answer:
        return 0.0
    puzzle = prompt.meta["puzzle"] if task.name == "game24" else task.parse_puzzle(prompt.meta["puzzle"])
    return 1.0 if task.check(puzzle, answer).ok else 0.0


def _grpo_stage(cfg: Game24TrainConfig, sft_dir: Path, prompts: Path, out: Path, progress) -> None:
    from llmlab.train.configs import GRPOConfig
    from llmlab.train.grpo import run

    tcfg = GRPOConfig.train_config(lr=cfg.grpo_lr, schedule="wsd", cooldown_frac=0.3, warmup_steps=5,
                                   seq_len=cfg.max_seq_len, max_steps=cfg.grpo_steps, time_budget=cfg.grpo_seconds,
                                   seed=cfg.seed, threads=cfg.threads, device="auto")
    gcfg = GRPOConfig(model=str(sft_dir), prompts=str(prompts), out=str(out), group_size=cfg.grpo_group,
                      rollout_prompts=cfg.grpo_prompts, max_new_tokens=cfg.grpo_max_new_tokens, kl_coef=cfg.grpo_kl,
                      dynamic_sampling=True)
    result = run(gcfg, tcfg, reward_fns=[checker_reward], progress=progress)
    if result.interrupted:
        raise LlmlabError("GRPO was interrupted; run the command again to redo it")


def validation_cot(run_dir, n: int, data_cfg: Game24DataConfig, task_name: str = "game24",
                   arith_events: tuple[int, ...] = (2, 3)) -> float:
    """Greedy chain-of-thought success on the first ``n`` validation puzzles (held out of training; arith: with
    ``arith_events`` events each, as the run's data)."""
    from llmlab.reason.generators import EngineGenerator
    from llmlab.reason.strategies import StrategyConfig, score, solve_batch
    from llmlab.reason.tasks import get_task

    if task_name == "arith":
        from llmlab.tasks.arith_word import problems

        puzzles = problems(n, "val", 0, events=arith_events)
    else:
        from llmlab.tasks.game24 import load_puzzles

        ranks = set(data_cfg.holdout_ranks)
        puzzles = [p.numbers for p in load_puzzles() if p.rank in ranks][:n]
    if not puzzles:
        return 0.0
    task = get_task(task_name)
    atts = solve_batch(EngineGenerator.from_run(run_dir), task, puzzles, StrategyConfig(method="cot"))
    score(task, atts)
    return sum(a.ok for a in atts) / len(atts)
