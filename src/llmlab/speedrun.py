"""The main job: one command from raw text to a chatting assistant, with a report card.

    scripts/speedrun.sh                  # = llmlab speedrun: the bundled corpus, CPU, ~28 minutes
    llmlab speedrun --quick              # a ~3-minute first look
    llmlab speedrun --fresh              # start over instead of resuming finished stages
    llmlab speedrun --data my_corpus/ --out runs/mine       # your own text
    llmlab speedrun --preset gpt2-small --pretrain-seconds 3600   # bigger; torchrun on all GPUs when present

Stages, each a subcommand run in its own process (so a crash in one leaves the others' results intact and a
re-run resumes): data preparation -> tokenizer -> pretraining -> SFT -> reward model -> preference tuning
(DPO on the SFT model's own answers ranked by the reward model, and/or GRPO) -> evaluation (chat, the task
suite, win rates) -> report (``report.md``, ``report.json`` and PNGs in the run folder). A stage
whose result file exists is skipped on a re-run; an interrupted training stage resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmlab.errors import LlmlabError


@dataclass
class SpeedrunConfig:
    out: str = "runs/speedrun"
    quick: bool = False
    fresh: bool = False
    data: list[str] = field(default_factory=list)  # user inputs for `data prepare`; empty = the bundled corpus
    val_data: str = ""  # held-out text for validation bits per byte with --data (the bundled corpus has its own)
    preset: str = "cpu"
    vocab_size: int = 0  # 0 = pretrain's default
    pretrain_seconds: float = 0.0  # 0 = by mode (see BUDGETS)
    sft_seconds: float = 0.0
    preference: str = "all"  # dpo | grpo | ppo | both (= dpo + grpo) | all (= dpo + grpo + ppo)
    nproc: int = 0  # processes for torchrun (0 = one per GPU when there are several, else 1)
    device: str = "auto"
    seed: int = 0


# Seconds of training per stage: (default, quick). The whole default run takes ~28 minutes on 2 CPU cores
# (1148 and 1193 s of stage time in session 11's fresh runs; 1366 s in session 12's, with 400 PPO steps of 64 prompts
# and the win rates on 1000 prompts; 1661 s on 2026-12-05 with the task-suite and tool stages added).
BUDGETS = {
    "pretrain": (420.0, 60.0),
    "sft": (150.0, 30.0),
    "rm": (160.0, 15.0),  # a cap: 1200 steps (3 passes over 6000 pairs) bind, ~155 s on 1 thread since shared-prompt
                          # rows and length buckets (~450 s before); 80-82% on 1000 held-out pairs as a plain RM (LOG
                          # 2026-11-23 s3, s4), 85.7-88.0% with the stage's flags below (fresh runs, sessions 9-12)
    "dpo": (90.0, 15.0),
    "grpo": (480.0, 20.0),  # 1200 steps of 32 prompts x 4 answers (its cap): 800 took 281-335 s on the Zen 5's 2 cores
                            # (~400-460 s on 1 busy thread); held-out exact match climbs through 1200 with the lr
                            # cooldown (LOG session 11)
    "ppo": (150.0, 20.0),  # 400 steps of 64 prompts: ~150 s on 1 busy thread (300 of 32: 38 s on 2 cores; LOG s. 12)
    "grpo-tools": (120.0, 15.0),  # GRPO on calculator and document tasks through the tool loop (docs/LOG.md, tools)
}
PREFERENCE = {"both": ("dpo", "grpo"), "all": ("dpo", "grpo", "ppo")}  # else the one algorithm named
EVAL_N = (200, 40)  # held-out conversations scored by the evaluation stage: (default, quick)
PREF_PAIRS = (6000, 600)  # generated preference pairs for training: (default, quick)
# Held-out pairs that score the reward model: 1000 put one standard error at ~1.2 points (200 gave ~2.8, and a
# 600-step RM read 81.0% on the first 200 but 79.7% on 1000; docs/LOG.md 2026-11-23 session 3).
PREF_VAL_PAIRS = (1000, 200)
# Held-out verifiable tasks (GRPO's before/after exact match) and chat prompts (the win rates read them all):
# 1000 put one standard error of exact match at ~1.5 points; on 200, a model's score moved by 3-6
# points against the 1000 (docs/LOG.md session 10).
PREF_VAL_TASKS = (1000, 40)
# Verifiable tasks for GRPO: 20,000. From a strong SFT model (50% exact match) 2,000 tasks, drawn ~10 times each by
# the old 16 x 8 stage, were memorised and lost 1.5-3.5 held-out points; 20,000 gained 3.5 and 7.0 over two seeds
# (docs/LOG.md session 8). The 32 x 4 stage samples ~128 prompts a step to keep ~32 informative ones, so its 1200
# steps draw each task ~7 times, mostly ones it already answers alike every time; held-out exact match still
# rose through step 1200 (LOG session 11). Chat prompts (PPO, DPO's ranked pairs): 2,000.
PREF_TASKS = (20000, 400)
# GRPO's training tasks by kind (the rest in the generator's proportions); held-out tasks keep the generator's mix.
# Arithmetic 55% (the generator's: 26%), the kind this model can learn by RL: from a 54.5% SFT model 70.0 / 68.5%
# over two seeds vs 67.0 / 61.5% (docs/LOG.md session 10). Parity and compare at about their held-out shares (8%, 7%;
# with arithmetic at 55% alone they fell to 3.4% and 4.7%): parity, a one-word answer, flipped between 33% and 93%
# from one eval to the next and ended at 40% in one seed; at 8% it ended at 91% in both (LOG session 11).
GRPO_TASK_SHARES = {"arithmetic": 0.55, "parity": 0.08, "compare": 0.07}
PREF_CHAT_PROMPTS = (2000, 400)
SUITE_N = 20  # --quick: items per task of the evaluation suite (default: each task's own size, 200-ish)
# Tools (issues 28, 29): calculator tasks for GRPO through the tool loop (train, held out), and what `eval tools`
# scores: held-out arithmetic questions, document questions (a quarter unanswerable) over made-up documents.
TOOL_TASKS = ((10000, 4000, 300), (400, 100, 40))  # calculator tasks, document tasks, held out of each
TOOL_EVAL = ((300, 300), (40, 40))


@dataclass
class Stage:
    name: str
    folder: str  # relative to the run folder
    done_file: str  # relative to the run folder: present = stage finished
    argv: list[str]
    train: bool = False  # a training stage (resumable with --resume, may run under torchrun)
    distributed: bool = False
    config: Any = None  # the stage's config (argv holds its differences from the command's defaults)
    train_config: Any = None  # a training stage's TrainConfig


def stage_argv(command: list[str], config, train_config=None) -> list[str]:
    """``command`` plus the flags that turn the command's defaults into ``config`` (and ``train_config``): what
    differs, and every horizon that is set (a horizon flag replaces a default time budget, so they travel
    together)."""
    from llmlab.utils.config import config_to_argv

    cls = type(config)
    argv = [*command, *config_to_argv(config, cls())]
    if train_config is not None:
        from llmlab.train.configs import HORIZON

        argv += config_to_argv(train_config, cls.train_config(),
                               always=tuple(h for h in HORIZON if getattr(train_config, h)))
    return argv


class Speedrun:
    def __init__(self, cfg: SpeedrunConfig):
        self.cfg = cfg
        self.run = Path(cfg.out)
        self.mode = 1 if cfg.quick else 0
        self.t_start = time.time()
        self.timings: dict[str, float] = {}

    # --------------------------------------------------------------------------------------------------------
    def budget(self, stage: str) -> float:
        explicit = {"pretrain": self.cfg.pretrain_seconds, "sft": self.cfg.sft_seconds}.get(stage, 0.0)
        return explicit or BUDGETS[stage][self.mode]

    def train_stage(self, name: str, folder: str, config, *, distributed: bool = False, **train) -> Stage:
        """A training stage: ``config``, and its TrainConfig with ``train``'s changes to the stage's recipe plus
        the speedrun's budget, seed and device."""
        c = self.cfg
        tcfg = type(config).train_config(time_budget=self.budget(name), seed=c.seed, device=c.device, **train)
        return Stage(name, folder, f"{folder}/summary.json", stage_argv([type(config).name], config, tcfg),
                     train=True, distributed=distributed, config=config, train_config=tcfg)

    def stages(self) -> list[Stage]:
        """The pipeline. Each stage's config states only what the speedrun changes in the command's defaults
        (``llmlab.train.configs``), each change with its reason."""
        from llmlab.tasks.pref_synth import RLDataConfig
        from llmlab.train.configs import (DPOConfig, GRPOConfig, PPOConfig, PretrainConfig, RankedPairsConfig, RMConfig,
                                          SFTConfig)

        c, r, q = self.cfg, self.run, self.mode
        if c.data:
            data_argv = ["data", "prepare", "--out", str(r / "data"), "--overwrite", "--seed", str(c.seed)]
            for p in c.data:
                data_argv += ["--input", p]
            train_text, val_text = str(r / "data"), c.val_data
        else:
            data_argv = ["data", "prepare", "--bundled", "--out", str(r / "data"), "--overwrite", "--seed", str(c.seed)]
            train_text, val_text = "bundled", ""
        stages = [Stage("data", "data", "data/report.json", data_argv)]
        tok_argv = ["tokenizer", "train", "--out", str(r / "tokenizer")]
        tok_argv += ["--input", "bundled"] if not c.data else ["--input", str(r / "data")]
        tok_argv += ["--vocab-size", str(c.vocab_size or PretrainConfig.vocab_size)]
        stages.append(Stage("tokenizer", "tokenizer", "tokenizer/summary.json", tok_argv))
        stages.append(self.train_stage("pretrain", "base", PretrainConfig(
            data=train_text, val_data=val_text, out=str(r / "base"), preset=c.preset,
            tokenizer=str(r / "tokenizer")), distributed=True))  # the tokenizer stage's: trained outside the budget
        stages.append(self.train_stage("sft", "sft", SFTConfig(
            model=str(r / "base"), out=str(r / "sft"),
            eval_samples=0), distributed=True))  # the eval stage scores the SFT model
        pref = r / "prefdata"
        rl_data = RLDataConfig(out=str(pref), seed=c.seed, n_pairs=PREF_PAIRS[q], n_val_pairs=PREF_VAL_PAIRS[q],
                               n_tasks=PREF_TASKS[q], n_val_tasks=PREF_VAL_TASKS[q],
                               n_chat_prompts=PREF_CHAT_PROMPTS[q],
                               task_shares=GRPO_TASK_SHARES)  # the counts' and shares' reasons: beside the constants
        stages.append(Stage("prefdata", "prefdata", "prefdata/summary.json", stage_argv(["rl-data"], rl_data),
                            config=rl_data))
        stages.append(self.train_stage("rm", "rm", RMConfig(
            model=str(r / "sft"), data=str(pref / "pairs_train.jsonl"), val=str(pref / "pairs_val.jsonl"),
            out=str(r / "rm"),
            # every layer's last state, not the top one alone: 81.0 / 81.5% vs 78.8 / 79.4% over two seeds (LOG s7)
            head_layers=0,
            # + 0.04 x the answer's log-likelihood: 88.1 / 88.4% vs 85.7% at 0.03 from runs/s12's SFT model; 0.05 is
            # more accurate (88.7%) but DPO and PPO win less under it (LOG sessions 9 and 12)
            logprob_coef=0.04,
            lm_coef=1.0),  # an LM loss on the chosen answers keeps its LM head a language model (LOG s9)
            max_steps=1200))  # 3 passes over 6000 pairs, ~155 s on 1 thread (LOG 2026-11-23 s3, s4)
        algos = PREFERENCE.get(c.preference, (c.preference,))
        if "dpo" in algos:
            # DPO's pairs: the SFT model's own answers to training prompts, best vs worst by the reward model
            # (offline pairs lost to SFT: 38-54% win rate, docs/LOG.md 2026-11-22 and 2026-11-23).
            pairs = RankedPairsConfig(
                model=str(r / "sft"), reward_model=str(r / "rm"), prompts=str(pref / "chat_prompts_train.jsonl"),
                out=str(r / "dpo_pairs" / "pairs.jsonl"), seed=c.seed, device=c.device,
                samples=8,  # best vs worst of 8, not 4: clearer pairs; DPO won 67-68% vs 63-64% (LOG session 5)
                against="greedy",  # reject the greedy answer when a sample beats it: 65.5% vs 64.7% (LOG session 9)
                min_margin=(0.5, 1e-6)[q])  # quick mode's RM may get only a few steps on a busy machine: any gap
            stages.append(Stage("dpo-pairs", "dpo_pairs", "dpo_pairs/summary.json",
                                stage_argv(["ranked-pairs"], pairs), config=pairs))
            stages.append(self.train_stage("dpo", "dpo", DPOConfig(
                model=str(r / "sft"), data=pairs.out, val=str(pref / "pairs_val.jsonl"), out=str(r / "dpo"),
                nll_coef=1.0),  # holds the chosen answers up: KL 17 -> 0.6 nats (LOG 2026-11-23)
                # 4e-4, not 5e-5: 66-68% vs 60% win at 2e-4 (LOG session 3); 64.7 / 62.7% vs 63.2% at 4e-4 vs 2e-4
                # under the log-likelihood RM (LOG session 9)
                lr=4e-4))
        if "grpo" in algos:
            stages.append(self.train_stage("grpo", "grpo", GRPOConfig(
                model=str(r / "sft"), prompts=str(pref / "tasks_train.jsonl"), val=str(pref / "tasks_val.jsonl"),
                out=str(r / "grpo"),
                max_new_tokens=16)))  # the tasks' answers are a few tokens
        if "ppo" in algos:
            # PPO against the reward model with a per-token KL penalty to SFT, which keeps it from exploiting the
            # judge: against the plain RM, kl 0.05 won 86.5% at KL 5.2 nats while exact match fell 24.5% -> 13%.
            stages.append(self.train_stage("ppo", "ppo", PPOConfig(
                model=str(r / "sft"), reward_model=str(r / "rm"), prompts=str(pref / "chat_prompts_train.jsonl"),
                out=str(r / "ppo"),
                kl_coef=0.1,  # against the log-likelihood RM: 65.0 / 65.7% at KL 2.0-2.4 (0.05: exact match 52 -> 35%)
                max_new_tokens=32,  # the length every PPO run in docs/LOG.md measured (2026-11-23 on)
                check_coef=0.5),  # +-0.5 for right / wrong checkable answers: 69.4 / 69.1%, exact match 41% (LOG s12)
                max_steps=400))  # 400 steps, not 300: 70.5 / 71.4%, KL 1.9 (LOG session 12)
        stages.append(Stage("eval", "eval", "eval/chat_eval.json",
                            ["eval", "chat", "--model", str(r / "sft"), "--base", str(r / "base"),
                             "-n", str(EVAL_N[self.mode]), "--samples", "--device", c.device]))
        for m in ("base", "sft"):
            # The task suite (minimal pairs, cloze, facts, arithmetic, spelling, bpb), ~30-50 s a model on 2 cores:
            # what SFT gains and costs on standard kinds of task (docs/LOG.md 2026-12-05, evaluation suite).
            stages.append(Stage(f"{m}-suite", "eval", f"{m}/eval/suite.json",
                                ["eval", "suite", "--model", str(r / m), "--device", c.device,
                                 *(["-n", str(SUITE_N)] if self.mode else [])]))
        stages += self.tool_stages()
        for algo in algos:
            # Every held-out chat prompt (1000, ~5 s per 200 on 2 cores): on the first 200 alone one standard error
            # of a win rate is ~2.5 points, about the gap between two seeds of one PPO stage (LOG session 12).
            stages.append(Stage(f"{algo}-winrate", "eval", f"eval/{algo}_winrate.json",
                                ["eval", "winrate", "--model", str(r / algo), "--baseline", str(r / "sft"),
                                 "--judge", str(r / "rm"), "--prompts", str(pref / "chat_prompts_val.jsonl"),
                                 "-n", str(PREF_VAL_TASKS[self.mode]), "--samples", "4", "--seed", str(c.seed),
                                 "--device", c.device]))
        return stages

    def tool_stages(self) -> list[Stage]:
        """Tools (issues 28, 29): calculator tasks -> GRPO through the tool loop from SFT (the model emits the calls;
        results masked out of the loss); tool use of the SFT model measured by `eval tools` (the report's section 7)."""
        from llmlab.train.configs import GRPOConfig

        c, r = self.cfg, self.run
        n_tasks, n_docqa, n_val = TOOL_TASKS[self.mode]
        n_calc, n_qa = TOOL_EVAL[self.mode]
        data = r / "tooldata"
        return [
            Stage("tool-data", "tooldata", "tooldata/summary.json",
                  ["tool", "tasks", "--out", str(data), "--n-train", str(n_tasks), "--docqa", str(n_docqa),
                   "--n-val", str(n_val), "--seed", str(c.seed)]),
            self.train_stage("grpo-tools", "grpo_tools", GRPOConfig(
                model=str(r / "sft"), prompts=str(data / "tools_train.jsonl"), val=str(data / "tools_val.jsonl"),
                out=str(r / "grpo_tools"),
                tools="calc,search", index=str(data / "index"),  # the model emits the calls; results not trained on
                max_new_tokens=32,  # a call, its result and "= N" or "fact [n]" fit in 32 sampled tokens
                max_draws=2),  # each draw is a tool-loop rollout (slower than a plain one): refill once at most
                lr=3e-4, max_steps=200),
            Stage("tools-eval", "eval", "eval/tools/tools.json",
                  ["eval", "tools", "--model", str(r / "sft"), "--out", str(r / "eval" / "tools"),
                   "--n-calc", str(n_calc), "--n-qa", str(n_qa), "--seed", str(c.seed), "--device", c.device]),
        ]

    # --------------------------------------------------------------------------------------------------------
    def nproc(self) -> int:
        if self.cfg.nproc:
            return self.cfg.nproc
        try:
            import torch

            return torch.cuda.device_count() if torch.cuda.device_count() > 1 else 1
        except Exception:
            return 1

    def command(self, stage: Stage) -> list[str]:
        argv = list(stage.argv)
        folder = self.run / stage.folder
        if stage.train and (folder / "checkpoints").is_dir() and any((folder / "checkpoints").iterdir()):
            argv.append("--resume")
        n = self.nproc()
        if stage.distributed and n > 1:
            return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                    "-m", "llmlab", *argv]
        return [sys.executable, "-m", "llmlab", *argv]

    def run_stage(self, i: int, n: int, stage: Stage) -> None:
        done = self.run / stage.done_file
        label = f"[{i}/{n}] {stage.name:12s}"
        if done.is_file():
            print(f"{label} already done ({done}); skipping (use --fresh to redo)", flush=True)
            return
        folder = self.run / stage.folder
        resuming = "--resume" in self.command(stage)
        if folder.exists() and not resuming and stage.folder not in ("data", "eval"):
            shutil.rmtree(folder)  # a half-finished stage without a checkpoint: redo it from scratch
        logs = self.run / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cmd = self.command(stage)
        print(f"{label} {'resuming' if resuming else 'running'}: llmlab {' '.join(stage.argv)}", flush=True)
        t0 = time.time()
        with open(logs / f"{stage.name}.out", "w") as out:
            # stdout (JSON summaries, samples) goes to the log; stderr (progress bars, errors) to the terminal.
            proc = subprocess.run(cmd, stdout=out, stderr=None, env=self.env())
        seconds = time.time() - t0
        self.timings[stage.name] = round(seconds, 1)
        self.save_timings()  # after every stage, so a run that stops half-way still accounts for its time
        if proc.returncode != 0:
            raise LlmlabError(f"stage {stage.name!r} failed (exit {proc.returncode}); its output is in "
                              f"{logs / (stage.name + '.out')}; fix the cause and re-run to resume")
        if stage.name in ("tokenizer", "prefdata", "dpo-pairs", "eval", "tool-data") or stage.name.endswith("winrate"):
            self.capture_json(logs / f"{stage.name}.out", done)  # these print their summary as JSON
        if not done.is_file():
            raise LlmlabError(f"stage {stage.name!r} finished but wrote no {done}")
        print(f"{label} done in {seconds:.0f}s: {self.one_line(stage)}", flush=True)

    def save_timings(self) -> None:
        from llmlab.utils.io import write_json

        timings = {**self.load("timings.json").get("stages", {}), **self.timings}
        write_json(self.run / "timings.json", {"stages": timings})

    @staticmethod
    def env() -> dict:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    @staticmethod
    def capture_json(log: Path, dest: Path) -> None:
        """Keep the last JSON object a stage printed (its summary) as ``dest``."""
        from llmlab.utils.io import write_json

        text = log.read_text().strip()
        start = text.rfind("\n{")
        obj = json.loads(text[start + 1 :] if start >= 0 else text)
        write_json(dest, obj)

    def load(self, rel: str) -> dict:
        p = self.run / rel
        return json.loads(p.read_text()) if p.is_file() else {}

    def one_line(self, stage: Stage) -> str:
        """The stage's summary line, read from the file that marks it done."""
        suite = lambda d: (f"task-suite aggregate {_score((d.get('aggregate') or {}).get('score'))} (chance-centred); "  # noqa: E731
                           + ", ".join(f"{k} {_score(v.get('score'))}" for k, v in (d.get("tasks") or {}).items()))
        winrate = lambda d: f"win rate vs SFT {_pct(d.get('win_rate'))}, KL {d.get('kl_to_baseline', float('nan')):.3f}"  # noqa: E731
        fmt = {
            "data": lambda d: f"{d.get('documents_in')} docs in, {d.get('documents_out')} out, "
            f"{d.get('bytes_out', 0) / 1e6:.2f} MB",
            "tokenizer": lambda d: f"vocab {d.get('vocab_size')}, {d.get('bytes_per_token', 0):.2f} bytes/token",
            "pretrain": lambda d: f"val_bpb {_num(d.get('val_bpb'))}, {d.get('params', 0) / 1e6:.2f}M params, "
            f"{d.get('tokens_per_sec', 0):.0f} tok/s",
            "sft": lambda d: f"val_loss {d.get('val_loss', float('nan')):.3f}, {d.get('steps')} steps",
            "rm": lambda d: f"held-out pair accuracy {_pct(d.get('val_pair_accuracy'))}",
            "dpo-pairs": lambda d: f"{d.get('n_pairs')} pairs of the SFT model's answers ranked by the reward model",
            "dpo": lambda d: f"val loss {d.get('val_loss', float('nan')):.3f}, {d.get('steps')} steps",
            "grpo": lambda d: f"exact match {_pct(d.get('exact_match_before'))} -> {_pct(d.get('exact_match_after'))}",
            "prefdata": lambda d: f"{d.get('n_pairs_train')} preference pairs, {d.get('n_tasks_train')} verifiable tasks",
            "eval": lambda d: f"SFT format rate {_pct(d.get('sft_format_rate'))}, exact match base "
            f"{_pct(d.get('base_exact_match'))} -> SFT {_pct(d.get('sft_exact_match'))}",
            "dpo-winrate": winrate,
            "grpo-winrate": winrate,
            "ppo": lambda d: f"reward-model score of its answers {d.get('last_rollout_reward_mean', float('nan')):.2f}, "
            f"{d.get('steps')} steps",
            "ppo-winrate": winrate,
            "tool-data": lambda d: f"{d.get('n_train')} calculator and {d.get('n_docqa_train')} document tasks "
            f"({d.get('documents')} documents), {d.get('n_val')} of each held out",
            "grpo-tools": lambda d: f"tool tasks exact match {_pct(d.get('exact_match_before'))} -> "
            f"{_pct(d.get('exact_match_after'))} (calculator {_pct((d.get('exact_match_after_by_kind') or {}).get('calc'))}, "
            f"documents {_pct((d.get('exact_match_after_by_kind') or {}).get('docqa'))})",
            "tools-eval": lambda d: f"arithmetic without tools {_pct(d['arithmetic'].get('without_tool'))}, with the "
            f"calculator {_pct(d['arithmetic'].get('with_tool'))}; document QA recall@5 "
            f"{_pct(d['grounded'].get('recall_at_5'))}, accuracy {_pct(d['grounded'].get('accuracy_without_retrieval'))}"
            f" -> {_pct(d['grounded'].get('accuracy_with_retrieval'))} with retrieval, citations valid "
            f"{_pct(d['grounded'].get('citation_validity'))}, IDK {_pct(d['grounded'].get('idk_rate_unanswerable'))}",
            "base-suite": suite,
            "sft-suite": suite,
        }[stage.name]
        try:
            return fmt(self.load(stage.done_file))
        except (TypeError, ValueError, KeyError):
            return "(summary unreadable)"

    # --------------------------------------------------------------------------------------------------------
    def main(self) -> dict:
        if self.cfg.fresh and self.run.exists():
            shutil.rmtree(self.run)
        self.run.mkdir(parents=True, exist_ok=True)
        stages = self.stages()
        n = len(stages) + 1
        for i, stage in enumerate(stages, 1):
            self.run_stage(i, n, stage)
        timings = self.load("timings.json").get("stages", {})
        from llmlab.eval.report import write_report

        report = write_report(self.run, timings=timings, config=self.cfg, seconds_this_run=time.time() - self.t_start)
        print(f"[{n}/{n}] {'report':12s} {self.run / 'report.md'} and report.json", flush=True)
        print(f"\nDone in {report['seconds_total']:.0f}s of stage time. Chat with the result:\n"
              f"  llmlab chat --model {report['chat_model']}\n", flush=True)
        return report


def _score(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _num(v) -> str:
    return "n/a (no validation text)" if v is None else f"{v:.3f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speedrun", help="the whole pipeline on the bundled corpus (or your data), with a report card",
                       description="Data -> tokenizer -> pretrain -> SFT -> reward model -> DPO/GRPO/PPO -> evaluation -> "
                       "report, resuming finished stages on a re-run.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = SpeedrunConfig()
    p.add_argument("--out", default=d.out, help="run folder")
    p.add_argument("--quick", action="store_true", help="a ~3-minute first look (short budgets)")
    p.add_argument("--fresh", action="store_true", help="delete the run folder and start over")
    p.add_argument("--data", action="append", default=[], metavar="PATH",
                   help="your own text (file/folder/JSONL/Parquet); repeatable; default: the bundled corpus")
    p.add_argument("--val-data", default=d.val_data, metavar="PATH",
                   help="held-out text for validation bits per byte when --data is given")
    p.add_argument("--preset", default=d.preset, help="model preset (tiny, cpu, gpt2-small, gpt2-medium, 1b, depth-N)")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="tokenizer vocabulary (0 = pretrain's default)")
    p.add_argument("--pretrain-seconds", type=float, default=d.pretrain_seconds, help="pretraining budget (0 = by mode)")
    p.add_argument("--sft-seconds", type=float, default=d.sft_seconds, help="SFT budget (0 = by mode)")
    p.add_argument("--preference", choices=["dpo", "grpo", "ppo", "both", "all"], default=d.preference,
                   help="preference-tuning stage(s) after the reward model (both = dpo + grpo, all = dpo + grpo + ppo)")
    p.add_argument("--nproc", type=int, default=d.nproc, help="torchrun processes (0 = one per GPU)")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed for every stage")
    p.set_defaults(func=_run)


def _run(args) -> int:
    cfg = SpeedrunConfig(out=args.out, quick=args.quick, fresh=args.fresh, data=args.data, val_data=args.val_data,
                         preset=args.preset,
                         vocab_size=args.vocab_size, pretrain_seconds=args.pretrain_seconds,
                         sft_seconds=args.sft_seconds, preference=args.preference, nproc=args.nproc,
                         device=args.device, seed=args.seed)
    if cfg.val_data and not cfg.data:
        raise LlmlabError("--val-data goes with --data (the bundled corpus has its own validation split)")
    for p in cfg.data + ([cfg.val_data] if cfg.val_data else []):
        if not Path(p).exists():
            raise LlmlabError(f"{p}: data path not found")
    print(f"llmlab speedrun -> {cfg.out} ({'quick' if cfg.quick else 'default'} mode) on {platform.node()}", flush=True)
    Speedrun(cfg).main()
    return 0
