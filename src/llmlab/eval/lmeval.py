"""lm-evaluation-harness adapter: our run as an lm-eval model, and our tasks as lm-eval task files.

    pip install 'llmlab[lmeval]'                         # lm-eval >= 0.4 (optional)
    llmlab eval lm-eval --model runs/base --tasks my_task --include-path my_lmeval_tasks/
    llmlab eval tasks --out eval_tasks/ --lm-eval        # the built-in suites as lm-eval YAML + JSONL too

    from llmlab.eval.lmeval import make_lm, run_lm_eval, write_lmeval_task
    lm = make_lm(LocalBackend.from_run("runs/base"))     # an lm_eval.api.model.LM
    results = run_lm_eval(lm, ["minimal_pairs"], include_path="eval_tasks/lm_eval")

The model answers lm-eval's three request types through ``eval/backends.py``'s ``LocalBackend``, so the numbers
are those of ``llmlab eval suite`` on the same items:

* ``loglikelihood(context, continuation)`` -> ``(log p, is_greedy)``, batched, each distinct context once;
* ``loglikelihood_rolling(text)`` -> the text's total log-likelihood in ``eval/bpb.py``'s windows (each
  context-length window starts with ``<|bos|>``), so lm-eval's ``bits_per_byte`` equals our bpb;
* ``generate_until(context, {until, max_gen_toks})`` -> greedy text up to the first ``until`` string
  (sampling settings are ignored: the suite evaluates greedy answers).

``write_lmeval_task`` writes one of our tasks as an lm-eval task: a JSONL data file and a YAML config (written
as JSON, which YAML reads) that loads it with the ``json`` dataset builder, so it runs offline. Choice tasks
keep their options verbatim (``target_delimiter: ""``; qa tasks carry their few-shot text prompt), generate
tasks score ``exact_match`` ignoring case and outer spaces, bpb tasks are ``loglikelihood_rolling``.
Run lm-eval offline with ``HF_DATASETS_OFFLINE=1``.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.eval.backends import GenRequest, LLRequest
from llmlab.eval.loglik import ItemError


def _require_lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise LlmlabError("lm-evaluation-harness is not installed: pip install 'llmlab[lmeval]' (lm-eval>=0.4)") from None


def _check(results: list, what: str) -> list:
    for r in results:
        if isinstance(r, ItemError):
            raise LlmlabError(f"lm-eval {what}: {r}")
    return results


def make_lm(backend):
    """An ``lm_eval.api.model.LM`` answering through ``backend`` (a ``LocalBackend``)."""
    _require_lm_eval()
    from lm_eval.api.model import LM

    class LlmlabLM(LM):
        """llmlab's model in lm-evaluation-harness."""

        def __init__(self):
            super().__init__()
            self.backend = backend

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            res = _check(self.backend.loglikelihood([LLRequest(*r.args) for r in requests]), "loglikelihood")
            return [(r.logprob, r.greedy) for r in res]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            nats = _check(self.backend.rolling([r.args[0] for r in requests]), "loglikelihood_rolling")
            return [-x for x in nats]

        def generate_until(self, requests, disable_tqdm: bool = False):
            reqs = []
            for r in requests:
                context, kw = r.args
                until = kw.get("until") or []
                until = (until,) if isinstance(until, str) else tuple(until)
                reqs.append(GenRequest(context, until, int(kw.get("max_gen_toks", 256))))
            return _check(self.backend.generate(reqs), "generate_until")

    return LlmlabLM()


def run_lm_eval(lm, tasks: list[str], *, include_path=None, limit: int | None = None, num_fewshot: int | None = None,
                include_defaults: bool | None = None, log_samples: bool = False) -> dict:
    """``lm_eval.simple_evaluate`` on our model; returns lm-eval's ``results`` (and ``n-samples``)."""
    _require_lm_eval()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    if include_defaults is None:
        include_defaults = include_path is None
    tm = TaskManager(include_path=str(include_path) if include_path else None, include_defaults=include_defaults)
    out = simple_evaluate(model=lm, tasks=list(tasks), task_manager=tm, limit=limit, num_fewshot=num_fewshot,
                          bootstrap_iters=0, log_samples=log_samples)
    if out is None:
        raise LlmlabError("lm-eval returned no results")
    keep = {"results": out["results"], "n-samples": out.get("n-samples", {})}
    if log_samples:
        keep["samples"] = out.get("samples", {})
    return keep


def write_lmeval_task(task, out_dir) -> Path:
    """Write ``task`` (a ``taskfile.Task``) as ``OUT/<name>.yaml`` + ``OUT/<name>.data.jsonl``; returns the YAML."""
    from llmlab.eval.suite import few_shot_prompt
    from llmlab.utils.io import atomic_write, write_json

    out = Path(out_dir)
    data = out / f"{task.name}.data.jsonl"
    docs = []
    for it in task.items:
        if task.kind == "bpb":
            docs.append({"text": it["text"]})
            continue
        prompt = it["context"] if task.style == "text" else few_shot_prompt(it["question"], task.few_shot)
        if task.kind == "choice":
            choices = it["choices"] if task.style == "text" else [" " + c for c in it["choices"]]
            docs.append({"prompt": prompt, "choices": choices, "answer": it["answer"]})
        else:
            ans = it["answer"] if isinstance(it["answer"], str) else it["answer"][0]
            docs.append({"prompt": prompt, "target": ans})
    with atomic_write(data) as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    cfg = {"task": task.name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
           "test_split": "test", "metadata": {"version": task.suite_version or 1}}
    if task.kind == "choice":
        cfg.update(output_type="multiple_choice", doc_to_text="prompt", doc_to_choice="choices", doc_to_target="answer",
                   target_delimiter="", metric_list=[{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                                                     {"metric": "acc_norm", "aggregation": "mean",
                                                      "higher_is_better": True}])
    elif task.kind == "generate":
        stop = list(task.stop) if task.style == "text" else ["\n"]
        cfg.update(output_type="generate_until", doc_to_text="prompt", doc_to_target="target", target_delimiter="",
                   generation_kwargs={"until": stop, "max_gen_toks": task.max_new_tokens, "do_sample": False},
                   metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                                 "ignore_case": True, "regexes_to_ignore": ["^\\s+", "\\s+$"]}])
    else:
        cfg.update(output_type="loglikelihood_rolling", doc_to_text="", doc_to_target="text",
                   metric_list=[{"metric": "word_perplexity"}, {"metric": "byte_perplexity"},
                                {"metric": "bits_per_byte"}])
    path = out / f"{task.name}.yaml"
    write_json(path, cfg)  # JSON is YAML
    return path
