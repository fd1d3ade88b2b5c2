"""The evaluation suite: tasks (built-in or task files) scored through a backend, with intervals, an aggregate,
partial results saved as it goes, and resuming.

    llmlab eval suite --model runs/sft --json                         # every built-in task; RUN/eval/suite.json
    llmlab eval suite --model runs/base --tasks cloze,minimal_pairs,my_task.jsonl
    llmlab eval suite --endpoint http://127.0.0.1:8000/v1 --model NAME --out results/other --json

    from llmlab.eval.suite import SuiteConfig, run_suite, evaluate_run
    res = evaluate_run("runs/sft", SuiteConfig(tasks=("arithmetic", "facts")))
    res["tasks"]["facts"]["score"], res["tasks"]["facts"]["ci"], res["aggregate"]["score"]

How a task is scored (``eval/taskfile.py`` defines the kinds):

* choice: every option is a continuation of the item's prompt; ``acc`` takes the highest summed log-prob,
  ``acc_norm`` the highest log-prob per character of the continuation as scored (the option, after a space
  in the few-shot text form) -- lm-evaluation-harness's definitions;
  the task's ``metric`` picks the headline score.
* generate: a greedy answer (``max_new_tokens``, cut at the first stop string in the text form), right when
  ``tasks.check.exact_match`` says it equals the answer (or one of the answers).
* bpb: total nats of the items' texts / ln 2 / their UTF-8 bytes.

Question-answer (``qa``) tasks are posed in the prompt style: ``chat`` (through the chat template) or ``text``
(few-shot ``Question:/Answer:``). ``auto`` picks chat for runs fine-tuned on conversations
(``backends.detect_prompt_style``), text otherwise; an endpoint's ``auto`` is chat. An endpoint gives
log-likelihoods only through its completions API, so its choice tasks are always posed as text
(``posed_as`` in the results says so).

Scores and intervals (``eval/stats.py``): accuracy tasks report the mean with a 95% Wilson interval; bpb a
95% bootstrap interval. The aggregate is the chance-centred mean over the accuracy tasks,
``(score - chance) / (1 - chance)`` (nanochat's CORE), with a bootstrap interval.

Resuming: every scored item is appended to ``OUT/suite.items.jsonl`` as soon as its chunk is done (a header line
names the model; items are keyed by task name and a hash of the item). A run that stops (killed, an endpoint that
went away) picks up where it was: items already there are not scored again. A different model (other weights,
another endpoint or prompt style) starts the file over; ``fresh=True`` always does. Items that failed (an
endpoint error after its retries) are reported in ``errors`` and retried by the next run. The final results go
to ``OUT/suite.json`` atomically; ``OUT`` defaults to ``RUN/eval/``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.eval.backends import GenRequest, LLRequest
from llmlab.eval.loglik import ItemError
from llmlab.eval.stats import BOOTSTRAP, WILSON, bootstrap_ratio, centered, core_aggregate, wilson
from llmlab.eval.suites import BUILTIN_TASKS, SUITE_VERSION, builtin_task
from llmlab.eval.taskfile import Task, item_key, load_task
from llmlab.tasks.check import exact_match

RESULT_FORMAT = "llmlab-eval-suite"
RESULT_VERSION = 1
ITEMS_FORMAT = "llmlab-eval-items"
RESULTS_FILE = "suite.json"
ITEMS_FILE = "suite.items.jsonl"
PROMPT_STYLES = ("auto", "chat", "text")


@dataclass
class SuiteConfig:
    """What ``llmlab eval suite`` runs."""

    tasks: tuple[str, ...] = BUILTIN_TASKS  # built-in names or task-file paths (a folder: its *.jsonl)
    n: int = 0  # items per built-in task (0 = each task's default); task files are used whole
    seed: int = 0  # the built-in generators' seed
    prompt_style: str = "auto"  # auto | chat | text: how question-answer tasks are posed
    chunk: int = 64  # items scored between saves of partial results
    fresh: bool = False  # ignore saved partial results
    max_errors_listed: int = 20  # per task, in the results

    def __post_init__(self):
        if isinstance(self.tasks, str):
            self.tasks = tuple(t for t in self.tasks.split(",") if t)
        self.tasks = tuple(self.tasks)
        if not self.tasks:
            raise LlmlabError("no tasks given")
        if self.prompt_style not in PROMPT_STYLES:
            raise LlmlabError(f"prompt style must be one of {', '.join(PROMPT_STYLES)}, got {self.prompt_style!r}")
        if self.n < 0 or self.chunk < 1:
            raise LlmlabError("n must be >= 0 and chunk >= 1")


def resolve_tasks(names, n: int = 0, seed: int = 0) -> list[Task]:
    """Built-in task names and task-file paths (a folder means its ``*.jsonl`` files) -> tasks."""
    tasks: list[Task] = []
    for name in names:
        if name in BUILTIN_TASKS:
            tasks.append(builtin_task(name, n, seed))
            continue
        p = Path(name)
        if p.is_dir():
            files = sorted(p.glob("*.jsonl"))
            if not files:
                raise LlmlabError(f"{p}: no *.jsonl task files in this folder")
            tasks += [load_task(f) for f in files]
        elif p.suffix == ".jsonl" or p.exists():
            tasks.append(load_task(p))
        else:
            raise LlmlabError(f"unknown task {name!r}: not a built-in task ({', '.join(BUILTIN_TASKS)}) "
                              "nor a task file")
    seen = set()
    for t in tasks:
        if t.name in seen:
            raise LlmlabError(f"two tasks are named {t.name!r}; task names must be unique in one run")
        seen.add(t.name)
    return tasks


# ----------------------------------------------------------------------------------------------------------
# Items -> requests -> per-item results


def few_shot_prompt(question: str, shots: list[dict]) -> str:
    """The text form of a question-answer item (as ``eval/chat_eval.py`` poses questions to a base model)."""
    return "".join(f"Question: {s['question']}\nAnswer: {s['answer']}\n\n" for s in shots) + \
        f"Question: {question}\nAnswer:"


def posed_as(task: Task, style: str, backend) -> str:
    """``"text"``, ``"chat"`` or ``"qa-text"`` (a qa task in the few-shot text form)."""
    if task.style == "text" or task.kind == "bpb":
        return "text"
    if style == "chat" and (task.kind == "generate" or getattr(backend, "chat_loglikelihood", True)):
        return "chat"
    return "qa-text"


def _choice_requests(task: Task, item: dict, how: str) -> list[LLRequest]:
    if how == "text":
        return [LLRequest(item["context"], c) for c in item["choices"]]
    if how == "chat":
        msgs = [{"role": "user", "content": item["question"]}]
        return [LLRequest(msgs, c) for c in item["choices"]]
    prompt = few_shot_prompt(item["question"], task.few_shot)
    return [LLRequest(prompt, " " + c) for c in item["choices"]]


def _gen_request(task: Task, item: dict, how: str) -> GenRequest:
    if how == "text":
        return GenRequest(item["context"], tuple(task.stop), task.max_new_tokens)
    if how == "chat":
        return GenRequest([{"role": "user", "content": item["question"]}], (), task.max_new_tokens)
    return GenRequest(few_shot_prompt(item["question"], task.few_shot), ("\n",), task.max_new_tokens)


def _argmax(xs: list[float]) -> int:
    return max(range(len(xs)), key=lambda i: (xs[i], -i))  # ties -> the first


def score_items(task: Task, items: list[dict], backend, how: str) -> list[dict]:
    """Per-item results (``{"error": ...}`` for an item that could not be scored)."""
    if task.kind == "choice":
        reqs, spans = [], []
        for it in items:
            r = _choice_requests(task, it, how)
            spans.append((len(reqs), len(reqs) + len(r)))
            reqs += r
        res = backend.loglikelihood(reqs)
        out = []
        for it, (a, b) in zip(items, spans):
            rs = res[a:b]
            bad = [r for r in rs if isinstance(r, ItemError)]
            if bad:
                out.append({"error": str(bad[0])})
                continue
            lps = [r.logprob for r in rs]
            # Per character of the continuation as it was scored (" 19" after "Answer:"), as lm-eval's acc_norm.
            norm = [lp / max(1, len(q.continuation)) for lp, q in zip(lps, reqs[a:b])]
            pred, pred_norm = _argmax(lps), _argmax(norm)
            out.append({"logprobs": [round(x, 5) for x in lps], "pred": pred, "pred_norm": pred_norm,
                        "acc": int(pred == it["answer"]), "acc_norm": int(pred_norm == it["answer"]),
                        "chance": 1.0 / len(it["choices"])})
        return out
    if task.kind == "generate":
        res = backend.generate([_gen_request(task, it, how) for it in items])
        out = []
        for it, r in zip(items, res):
            if isinstance(r, ItemError):
                out.append({"error": str(r)})
                continue
            answers = it["answer"] if isinstance(it["answer"], list) else [it["answer"]]
            text = r.strip()
            out.append({"output": text, "acc": int(any(exact_match(text, a) for a in answers)),
                        "chance": float(it.get("chance", 0.0))})
        return out
    res = backend.rolling([it["text"] for it in items])
    return [{"error": str(r)} if isinstance(r, ItemError) else
            {"nats": round(float(r), 6), "bytes": len(it["text"].encode("utf-8"))} for it, r in zip(items, res)]


# ----------------------------------------------------------------------------------------------------------
# Partial results


class ItemsLog:
    """``suite.items.jsonl``: a header naming the model, then one line per scored item, appended and fsynced
    chunk by chunk. A line torn by a kill is skipped when the file is read back."""

    def __init__(self, path: Path | None, identity: dict, fresh: bool = False):
        self.path, self.identity = path, identity
        self.done: dict[tuple[str, str], dict] = {}
        if path is None:
            return
        if not fresh and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            try:
                head = json.loads(lines[0]) if lines else {}
            except json.JSONDecodeError:
                head = {}
            if head.get("format") == ITEMS_FORMAT and head.get("identity") == identity:
                for ln in lines[1:]:
                    try:
                        rec = json.loads(ln)
                        self.done[(rec["task"], rec["key"])] = rec["result"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # torn by a kill mid-write
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"format": ITEMS_FORMAT, "version": 1, "identity": identity}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add(self, task: str, keys: list[str], results: list[dict]) -> None:
        new = [(k, r) for k, r in zip(keys, results) if "error" not in r]
        for k, r in new:
            self.done[(task, k)] = r
        if self.path is None or not new:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            for k, r in new:
                f.write(json.dumps({"task": task, "key": k, "result": r}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------------------
# Summaries


def summarize_task(task: Task, results: list[dict], how: str, max_errors: int = 20) -> dict:
    errors = [(i, r["error"]) for i, r in enumerate(results) if "error" in r]
    ok = [(it, r) for it, r in zip(task.items, results) if "error" not in r]
    base = {"kind": task.kind, "n": len(ok), "n_items": len(task.items), "errors": len(errors),
            "posed_as": how, "sha256": task.sha256(), "suite_version": task.suite_version, "seed": task.seed}
    if errors:
        base["error_examples"] = [{"item": i, "error": e} for i, e in errors[:max_errors]]
    if task.kind == "bpb":
        nats = [r["nats"] for _, r in ok]
        nbytes = [r["bytes"] for _, r in ok]
        score = sum(nats) / math.log(2) / sum(nbytes) if ok else None
        ci = [x / math.log(2) for x in bootstrap_ratio(nats, nbytes)] if ok else None
        return {"score": score, "ci": ci, "ci_method": BOOTSTRAP, "metric": "bpb", "lower_is_better": True,
                "bytes": sum(nbytes), **base}
    metric = task.metric if task.kind == "choice" else "exact_match"
    key = task.metric if task.kind == "choice" else "acc"
    xs = [r[key] for _, r in ok]
    chance = sum(r["chance"] for _, r in ok) / len(ok) if ok else task.chance()
    score = sum(xs) / len(xs) if xs else None
    out = {"score": score, "ci": list(wilson(sum(xs), len(xs))) if xs else None, "ci_method": WILSON,
           "metric": metric, "chance": chance, "centered": centered(score, chance) if xs else None, **base}
    if task.kind == "choice" and ok:
        for m in ("acc", "acc_norm"):
            k = sum(r[m] for _, r in ok)
            out[m] = k / len(ok)
            out[f"{m}_ci"] = list(wilson(k, len(ok)))
    groups: dict[str, list[int]] = {}
    for it, r in ok:
        if "group" in it:
            groups.setdefault(it["group"], []).append(r[key])
    if groups:
        out["groups"] = {g: {"score": sum(v) / len(v), "n": len(v), "ci": list(wilson(sum(v), len(v)))}
                         for g, v in sorted(groups.items())}
    return out


def aggregate(tasks: list[Task], per_task: dict[str, list[dict]]) -> dict:
    """The chance-centred mean over accuracy tasks (see ``stats.core_aggregate``)."""
    inputs = {}
    for t in tasks:
        if t.kind == "bpb":
            continue
        key = t.metric if t.kind == "choice" else "acc"
        ok = [r for r in per_task[t.name] if "error" not in r]
        if ok:
            inputs[t.name] = ([float(r[key]) for r in ok], sum(r["chance"] for r in ok) / len(ok))
    agg = core_aggregate(inputs)
    agg["name"] = "core"
    agg["definition"] = "mean over accuracy tasks of (score - chance) / (1 - chance)"
    return agg


# ----------------------------------------------------------------------------------------------------------
# Running


def run_suite(backend, tasks: list[Task], *, out_dir=None, prompt_style: str = "text", fresh: bool = False,
              chunk: int = 64, identity: dict | None = None, log=None, max_errors_listed: int = 20,
              extra: dict | None = None) -> dict:
    """Score every task through ``backend``; write ``out_dir/suite.json`` (and the items log) when given.

    ``prompt_style`` is ``chat`` or ``text`` here (``auto`` is resolved by the callers). ``identity`` names
    the model for resuming (default: the backend's fingerprint); results are only resumed for the same one."""
    if prompt_style not in ("chat", "text"):
        raise LlmlabError(f"prompt style must be chat or text here, got {prompt_style!r}")
    log = log or (lambda msg: print(f"llmlab eval suite: {msg}", file=sys.stderr, flush=True))
    t0 = time.time()
    out_dir = Path(out_dir) if out_dir is not None else None
    named = identity or getattr(backend, "fingerprint", {}) or {}
    ident = {**named, "prompt_style": prompt_style}
    # A model nobody named (a bare model object) cannot be told from another: its saved items are not reused.
    items_log = ItemsLog(out_dir / ITEMS_FILE if out_dir is not None else None, ident, fresh=fresh or not named)
    per_task: dict[str, list[dict]] = {}
    summaries: dict[str, dict] = {}
    for task in tasks:
        how = posed_as(task, prompt_style, backend)
        keys = [item_key(it) for it in task.items]
        todo = [i for i, k in enumerate(keys) if (task.name, k) not in items_log.done]
        reused = len(task.items) - len(todo)
        log(f"{task.name}: {len(task.items)} items ({task.kind}, posed as {how})"
            + (f", {reused} already scored" if reused else ""))
        failed: dict[int, dict] = {}
        for start in range(0, len(todo), chunk):
            idx = todo[start: start + chunk]
            res = score_items(task, [task.items[i] for i in idx], backend, how)
            items_log.add(task.name, [keys[i] for i in idx], res)
            failed.update({i: r for i, r in zip(idx, res) if "error" in r})
        results = [failed.get(i) or items_log.done[(task.name, k)] for i, k in enumerate(keys)]
        per_task[task.name] = results
        summaries[task.name] = summarize_task(task, results, how, max_errors_listed)
        s = summaries[task.name]
        ci = s["ci"]
        log(f"{task.name}: {s['metric']} {_fmt(s['score'])}"
            + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "") + (f", {s['errors']} errors" if s["errors"] else ""))
    result = {"format": RESULT_FORMAT, "version": RESULT_VERSION, **(extra or {}),
              "backend": getattr(backend, "kind", "local"), "prompt_style": prompt_style,
              "suite_version": SUITE_VERSION, "tasks": summaries, "aggregate": aggregate(tasks, per_task),
              "errors": sum(s["errors"] for s in summaries.values()), "seconds": round(time.time() - t0, 2)}
    if out_dir is not None:
        from llmlab.utils.io import write_json

        result["items_file"] = str(out_dir / ITEMS_FILE)
        write_json(out_dir / RESULTS_FILE, result)
    return result


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def evaluate_run(run_dir, cfg: SuiteConfig | None = None, *, out_dir=None, device: str = "cpu", batch_rows: int = 64,
                 log=None) -> dict:
    """The suite on a run folder; results in ``out_dir`` (default ``RUN/eval/``)."""
    from llmlab.eval.backends import LocalBackend, detect_prompt_style

    cfg = cfg or SuiteConfig()
    tasks = resolve_tasks(cfg.tasks, cfg.n, cfg.seed)
    backend = LocalBackend.from_run(run_dir, device=device, batch_rows=batch_rows)
    style = detect_prompt_style(run_dir) if cfg.prompt_style == "auto" else cfg.prompt_style
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "eval"
    return run_suite(backend, tasks, out_dir=out, prompt_style=style, fresh=cfg.fresh, chunk=cfg.chunk, log=log,
                     max_errors_listed=cfg.max_errors_listed, extra={"model": str(run_dir), "seed": cfg.seed})


def evaluate_endpoint(url: str, model: str | None, cfg: SuiteConfig | None = None, *, out_dir=None,
                      api_key: str | None = None, log=None, **endpoint_kw) -> dict:
    """The suite on an OpenAI-compatible server (``eval/endpoint.py``); ``auto`` poses qa tasks as chat."""
    from llmlab.eval.endpoint import EndpointBackend

    cfg = cfg or SuiteConfig()
    tasks = resolve_tasks(cfg.tasks, cfg.n, cfg.seed)
    backend = EndpointBackend(url, model=model, api_key=api_key, **endpoint_kw)
    style = "chat" if cfg.prompt_style == "auto" else cfg.prompt_style
    return run_suite(backend, tasks, out_dir=out_dir, prompt_style=style, fresh=cfg.fresh, chunk=cfg.chunk, log=log,
                     max_errors_listed=cfg.max_errors_listed,
                     extra={"model": backend.model, "endpoint": backend.base_url, "seed": cfg.seed})
