"""The report card of a speedrun: ``report.md``, ``report.json`` and PNG plots in the run folder.

    from llmlab.eval.report import write_report
    write_report("runs/speedrun")        # reads every stage's summary; called by `llmlab speedrun`

Every number is read from the stage's own summary file (never recomputed), so the report and the stages can't
disagree: data/report.json, tokenizer/summary.json, base/summary.json, sft/summary.json, rm/summary.json,
dpo/summary.json, grpo/summary.json, ppo/summary.json, eval/*.json, and each model's suite results
(``<stage>/eval/suite.json`` from ``llmlab eval suite``, for base, sft, dpo, grpo, ppo) when present.
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, is_dataclass
from pathlib import Path

from llmlab.utils.io import atomic_path, write_json, write_text

# Curves drawn on the report's training plot: stage folder -> label.
ALGOS = ("dpo", "grpo", "ppo")  # the preference-tuning stages a run may have
CURVES = {"base": "pretraining", "sft": "SFT", "rm": "reward model", "dpo": "DPO", "grpo": "GRPO", "ppo": "PPO"}


def _load(run: Path, rel: str) -> dict:
    p = run / rel
    return json.loads(p.read_text()) if p.is_file() else {}


def _metrics(run: Path, folder: str) -> list[dict]:
    p = run / folder / "metrics.jsonl"
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill mid-write: the rest of the curve is still worth drawing
    return rows


def hardware() -> dict:
    import os

    import torch

    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def collect(run: Path) -> dict:
    """The machine-readable report: headline numbers plus each stage's summary."""
    data = _load(run, "data/report.json")
    tok = _load(run, "tokenizer/summary.json")
    base = _load(run, "base/summary.json")
    sft = _load(run, "sft/summary.json")
    rm = _load(run, "rm/summary.json")
    dpo = _load(run, "dpo/summary.json")
    grpo = _load(run, "grpo/summary.json")
    chat_eval = _load(run, "eval/chat_eval.json")
    ppo = _load(run, "ppo/summary.json")
    # Each tuned model's judged comparison with SFT, without the per-prompt samples.
    judged = {a: {k: v for k, v in _load(run, f"eval/{a}_winrate.json").items() if k != "samples"} for a in ALGOS}
    winrate, grpo_winrate, ppo_winrate = judged["dpo"], judged["grpo"], judged["ppo"]
    timings = _load(run, "timings.json").get("stages", {})
    suite = suite_results(run)
    report = {
        "format": "llmlab-report",
        "version": 1,
        "run": str(run),
        "val_bpb": base.get("val_bpb"),
        "params": base.get("params"),
        "vocab_size": tok.get("vocab_size"),
        "bytes_per_token": tok.get("bytes_per_token"),
        "sft_format_rate": chat_eval.get("sft_format_rate"),
        "sft_exact_match": chat_eval.get("sft_exact_match"),
        "base_exact_match": chat_eval.get("base_exact_match"),
        "rm_pair_accuracy": rm.get("val_pair_accuracy"),
        "dpo_win_rate": winrate.get("win_rate"),
        "dpo_kl": winrate.get("kl_to_baseline"),
        "grpo_exact_match": grpo.get("exact_match_after"),
        "grpo_win_rate": grpo_winrate.get("win_rate"),
        "grpo_kl": grpo_winrate.get("kl_to_baseline"),
        "grpo_exact_match_before": grpo.get("exact_match_before"),
        "ppo_win_rate": ppo_winrate.get("win_rate"),
        "ppo_kl": ppo_winrate.get("kl_to_baseline"),
        "suite_core_base": (suite.get("base") or {}).get("aggregate", {}).get("score"),
        "suite_core_sft": (suite.get("sft") or {}).get("aggregate", {}).get("score"),
        "seconds_total": round(sum(timings.values()), 1),
        "stage_seconds": timings,
        "hardware": hardware(),
        "stages": {"data": data, "tokenizer": tok, "pretrain": base, "sft": sft, "rm": rm, "dpo": dpo, "grpo": grpo,
                   "chat_eval": {k: v for k, v in chat_eval.items() if k not in ("sft", "base")},
                   "dpo_winrate": winrate, "grpo_winrate": grpo_winrate, "ppo": ppo, "ppo_winrate": ppo_winrate,
                   "suite": suite},
    }
    report["chat_model"] = _final_model(run, report)
    return report


SUITE_MODELS = ("base", "sft") + ALGOS  # the stage folders whose eval/suite.json the report shows


def suite_results(run: Path) -> dict:
    """Each model's suite results (``<stage>/eval/suite.json``), without per-item detail: stage -> results."""
    out = {}
    for stage in SUITE_MODELS:
        res = _load(run, f"{stage}/eval/suite.json")
        if res.get("tasks"):
            keep = ("score", "ci", "ci_method", "metric", "chance", "centered", "n", "errors", "posed_as",
                    "lower_is_better", "groups")
            out[stage] = {"prompt_style": res.get("prompt_style"), "suite_version": res.get("suite_version"),
                          "aggregate": {k: res.get("aggregate", {}).get(k) for k in ("score", "ci", "ci_method", "tasks")},
                          "tasks": {name: {k: t[k] for k in keep if k in t} for name, t in res["tasks"].items()}}
    return out


def _suite_section(suite: dict) -> list[str]:
    """A table: one row per task, one column per model, score and 95% interval; the aggregate last."""
    if not suite:
        return []
    models = list(suite)
    names: list[str] = []
    for m in models:
        names += [n for n in suite[m]["tasks"] if n not in names]

    def cell(t):
        if not t or t.get("score") is None:
            return "n/a"
        ci = t.get("ci")
        return f"{t['score']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{t['score']:.3f}"

    lines = ["## Evaluation suite", "",
             "`llmlab eval suite` on each model: held-out, generated tasks (docs in `eval/suites.py`); score and 95% "
             "interval per task (Wilson for accuracies, bootstrap for bits per byte and the aggregate). The aggregate "
             "is the chance-centred mean over the accuracy tasks, (score - chance) / (1 - chance), as nanochat's "
             "CORE. Question-answer tasks are posed through the chat template to tuned models and few-shot to the "
             "base model.", "",
             "| task | metric | chance | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
    for n in names:
        first = next(suite[m]["tasks"][n] for m in models if n in suite[m]["tasks"])
        chance = first.get("chance")
        metric = first.get("metric", "") + (" (lower is better)" if first.get("lower_is_better") else "")
        lines.append(f"| {n} | {metric} | {'-' if chance is None else f'{chance:.2f}'} | "
                     + " | ".join(cell(suite[m]["tasks"].get(n)) for m in models) + " |")
    lines.append("| **aggregate (CORE-style)** | centred mean | 0 | "
                 + " | ".join(cell(suite[m]["aggregate"]) for m in models) + " |")
    errs = {m: sum(t.get("errors", 0) for t in suite[m]["tasks"].values()) for m in models}
    if any(errs.values()):
        lines.append("")
        lines.append("Items that could not be scored: " + ", ".join(f"{m} {e}" for m, e in errs.items() if e) + ".")
    lines.append("")
    return lines


# How much exact match (on the win-rate prompts that have a checkable answer) a tuned model may lose against SFT
# and still be chosen: about one standard error at 200 prompts. A judge-preferred model that is less often
# right has learned the judge's blind spots (PPO at KL 5: 86.5% win rate, exact match 24.5% -> 13.0%).
EXACT_MATCH_TOLERANCE = 0.03


def _final_model(run: Path, report: dict) -> str:
    """The model to chat with: of the preference-tuned ones that the judge prefers to SFT (win rate above one
    half) and that answer the checkable prompts about as often correctly as SFT, the most preferred; else SFT."""
    rates = {}
    for algo in ALGOS:
        wr = report["stages"].get(f"{algo}_winrate") or {}
        win, em, em_sft = wr.get("win_rate"), wr.get("exact_match_model"), wr.get("exact_match_baseline")
        if win is None or win <= 0.5:
            continue
        if em is not None and em_sft is not None and em < em_sft - EXACT_MATCH_TOLERANCE:
            continue
        rates[algo] = win
    return str(run / (max(rates, key=rates.get) if rates else "sft"))


def plot_training(run: Path, out: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {label: _metrics(run, folder) for folder, label in CURVES.items()}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), squeeze=False)
    for ax, (label, rows) in zip(axes[0], curves.items()):
        steps = [r["step"] for r in rows if "loss" in r]
        ax.plot(steps, [r["loss"] for r in rows if "loss" in r], lw=1, label="train loss")
        val = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val), "o-", ms=3, label="val loss")
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True


def plot_scores(report: dict, out: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Two different question sets: the held-out chat questions (base, SFT) and GRPO's held-out verifiable tasks
    # (SFT before GRPO, and after); labelled so that bars of different sets are not read as one comparison.
    bars = [("chat questions: base", report.get("base_exact_match")),
            ("chat questions: SFT", report.get("sft_exact_match")),
            ("GRPO tasks: SFT", report.get("grpo_exact_match_before")),
            ("GRPO tasks: GRPO", report.get("grpo_exact_match")), ("SFT format rate", report.get("sft_format_rate")),
            ("RM pair accuracy", report.get("rm_pair_accuracy")), ("DPO win rate", report.get("dpo_win_rate")),
            ("GRPO win rate", report.get("grpo_win_rate")), ("PPO win rate", report.get("ppo_win_rate"))]
    bars = [(k, v) for k, v in bars if isinstance(v, (int, float)) and not math.isnan(v)]
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh([k for k, _ in bars][::-1], [100 * v for _, v in bars][::-1], color="#4c72b0")
    for i, (_, v) in enumerate(bars[::-1]):
        ax.text(100 * v + 1, i, f"{100 * v:.1f}%", va="center", fontsize=8)
    ax.set_xlim(0, 110)
    ax.set_xlabel("%")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True


def _fmt(v, pct=False, digits=3) -> str:
    if v is None:
        return "n/a"
    if pct:
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _judged_line(wr: dict, note: str) -> str:
    """A tuned model's judged comparison with SFT, for the report's preference-learning section."""
    return (f"win rate vs SFT {_fmt(wr.get('win_rate'), True)} (ties {_fmt(wr.get('tie_rate'), True)}), "
            f"KL to SFT {_fmt(wr.get('kl_to_baseline'))}; exact match on those prompts "
            f"{_fmt(wr.get('exact_match_baseline'), True)} (SFT) -> {_fmt(wr.get('exact_match_model'), True)} ({note})")


def render_markdown(report: dict, run: Path, plots: list[str], config=None) -> str:
    s = report["stages"]
    data, tok, base, sft = s["data"], s["tokenizer"], s["pretrain"], s["sft"]
    lines = [f"# llmlab speedrun report: `{run}`", ""]
    lines += ["## Headline", "", "| metric | value |", "|---|---|"]
    for key, label, pct in [("val_bpb", "validation bits per byte (base model)", False),
                            ("base_exact_match", "exact match on held-out checkable questions, base", True),
                            ("sft_exact_match", "exact match, after SFT", True),
                            ("sft_format_rate", "SFT answers that end their turn properly", True),
                            ("rm_pair_accuracy", "reward model held-out pair accuracy", True),
                            ("dpo_win_rate", "DPO win rate vs SFT (judged by the reward model)", True),
                            ("grpo_win_rate", "GRPO win rate vs SFT (judged by the reward model)", True),
                            ("ppo_win_rate", "PPO win rate vs SFT (judged by the reward model)", True),
                            ("grpo_exact_match_before", "verifiable tasks exact match before GRPO", True),
                            ("grpo_exact_match", "verifiable tasks exact match after GRPO", True),
                            ("suite_core_base", "evaluation suite aggregate (chance-centred), base", False),
                            ("suite_core_sft", "evaluation suite aggregate (chance-centred), SFT", False)]:
        if report.get(key) is not None:
            lines.append(f"| {label} | {_fmt(report[key], pct)} |")
    lines.append(f"| total stage time | {report['seconds_total']:.0f} s |")
    lines += ["", f"Chat with it: `llmlab chat --model {report['chat_model']}`", ""]
    for p in plots:
        lines += [f"![{p}]({p})", ""]
    if data:
        lines += ["## 1. Data", "",
                  f"{data.get('documents_in')} documents ({data.get('bytes_in')} bytes) in, "
                  f"{data.get('documents_out')} documents ({data.get('bytes_out')} bytes) out; "
                  f"{data.get('documents_changed', 'n/a')} changed by cleaning.", ""]
        removed = data.get("removed") or {}
        pii = data.get("pii_replaced") or {}
        lines.append("Removed: " + (", ".join(f"{k} {v}" for k, v in removed.items() if v) or "nothing") + ".")
        lines.append("Sensitive information replaced: " + (", ".join(f"{k} {v}" for k, v in pii.items() if v) or "none") + ".")
        lines.append("")
    if tok:
        lines += ["## 2. Tokenizer", "", f"Byte-level BPE, {tok.get('vocab_size')} tokens, trained in "
                  f"{_fmt(tok.get('seconds'), digits=1)} s; {_fmt(tok.get('bytes_per_token'), digits=2)} bytes per token "
                  "on its training text.", ""]
    if base:
        lines += ["## 3. Pretraining (the base model)", "",
                  f"{base.get('params', 0) / 1e6:.2f}M parameters, {base.get('steps')} steps, {base.get('tokens')} tokens "
                  f"in {_fmt(base.get('seconds'), digits=0)} s ({_fmt(base.get('tokens_per_sec'), digits=0)} tokens/s) on "
                  f"{base.get('device')}; validation loss {_fmt(base.get('val_loss'))}, **{_fmt(base.get('val_bpb'))} bits per byte**.",
                  ""]
        for sample in (base.get("samples") or [])[:2]:
            lines += ["```", sample.strip()[:400], "```", ""]
    if sft:
        lines += ["## 4. Supervised fine-tuning (the assistant)", "",
                  f"{sft.get('train_conversations', 'n/a')} training conversations, {sft.get('steps')} steps in "
                  f"{_fmt(sft.get('seconds'), digits=0)} s; validation loss {_fmt(sft.get('val_loss'))}.", ""]
    ce = s["chat_eval"]
    if ce:
        lines += ["## 5. Evaluation on held-out conversations", "",
                  f"Format rate (answer ends with `<|end|>` in the assistant role): {_fmt(ce.get('sft_format_rate'), True)}. "
                  f"Exact match on checkable questions: base {_fmt(ce.get('base_exact_match'), True)} -> "
                  f"SFT {_fmt(ce.get('sft_exact_match'), True)}.", ""]
    samples = _load(run, "eval/chat_eval.json").get("sft", {}).get("samples") or []
    if samples:
        lines += ["Sample conversations (held out, greedy):", ""]
        for smp in samples[:6]:
            q = smp.get("prompt") or smp.get("question") or ""
            a = smp.get("reply") or smp.get("answer") or smp.get("text") or ""
            lines += [f"- **user:** {str(q).strip()[:200]}", f"  **assistant:** {str(a).strip()[:200]}"]
        lines.append("")
    rm, dpo, grpo, wr, gwr = s["rm"], s["dpo"], s["grpo"], s["dpo_winrate"], s["grpo_winrate"]
    ppo, pwr = s.get("ppo") or {}, s.get("ppo_winrate") or {}
    if rm or dpo or grpo or ppo:
        lines += ["## 6. Preference learning", ""]
        if rm:
            lines.append(f"- Reward model: held-out pairwise accuracy {_fmt(rm.get('val_pair_accuracy'), True)}.")
        if dpo:
            lines.append(f"- DPO: {_judged_line(wr, 'the judge is a reward model, not the checker')}.")
        if grpo:
            lines.append(f"- GRPO: exact match on held-out verifiable tasks {_fmt(grpo.get('exact_match_before'), True)} -> "
                         f"{_fmt(grpo.get('exact_match_after'), True)}; win rate vs SFT {_fmt(gwr.get('win_rate'), True)}, "
                         f"KL to SFT {_fmt(gwr.get('kl_to_baseline'))}.")
        if ppo:
            lines.append(f"- PPO: {_judged_line(pwr, 'the judge is the reward model PPO optimised')}.")
        lines.append("")
    lines += _suite_section(s.get("suite") or {})
    lines += ["## Timings and hardware", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in report["stage_seconds"].items()]
    hw = report["hardware"]
    lines += ["", f"{hw['cpus']} CPUs ({hw['machine']}), Python {hw['python']}, torch {hw['torch']}, "
              f"CUDA: {', '.join(hw.get('gpus', [])) or 'none'}.", ""]
    if config is not None:
        cfg = asdict(config) if is_dataclass(config) else config
        lines += ["Speedrun config: `" + json.dumps(cfg) + "`", ""]
    return "\n".join(lines)


def write_report(run_dir, *, timings: dict | None = None, config=None, seconds_this_run: float | None = None) -> dict:
    run = Path(run_dir)
    report = collect(run)
    if timings is not None:
        report["stage_seconds"] = timings
        report["seconds_total"] = round(sum(timings.values()), 1)
    plots = []
    if plot_training(run, run / "report_training.png"):
        plots.append("report_training.png")
    if plot_scores(report, run / "report_scores.png"):
        plots.append("report_scores.png")
    write_json(run / "report.json", report)
    write_text(run / "report.md", render_markdown(report, run, plots, config))
    return report
