"""Tool use, measured: arithmetic with and without the calculator, and questions about documents no model here was
trained on, answered with and without retrieval.

    llmlab eval tools --model runs/speedrun/sft --out runs/speedrun/eval/tools     # JSON; what the report reads

    from llmlab.eval.tools_eval import arithmetic_eval, grounded_eval, tools_report
    arithmetic_eval(model, tok, calc_tasks(300, "val"))      # {"with_tool": ..., "without_tool": ..., "by_op": ...}
    grounded_eval(model, tok, "docs/", "index/", qa)          # recall@5, accuracy with / without, citations, IDK

Arithmetic. Held-out sums, differences and products of 2-3 digit numbers (``tasks/calc_tasks.py``, split by
item). *With the calculator*: greedy answers through the tool loop with ``calc``; the answer is the text after the
last tool result. *Without*: the same model, greedy, no tool loop -- a model taught to call ``calc`` then writes
the call and goes on to write a result itself, so its answer (again the text after the last result block, or
the whole text if it wrote none) is its own arithmetic. Exact match is ``tasks.check.exact_match``.

Documents. A fresh world of made-up towns, companies and people from the held-out side of the name split
(``tasks/docqa.py``), written as markdown / text / HTML / JSONL files and indexed with ``llmlab index``'s code; a
quarter of the questions ask about things the documents never mention.

* retrieval recall@5: answerable questions whose answer is in one of the 5 best chunks (BM25, no threshold);
* accuracy with retrieval: greedy answers through the tool loop with ``search`` (``SearchConfig`` defaults),
  citation markers removed, exact match with the fact; *without*: the same model with no tool loop (what it
  writes after a result block it wrote itself);
* citation validity: of the answers that cite ``[n]``, the share whose cited passages all hold the answer;
* "I don't know" rate on the unanswerable questions (and, as a check, on the answerable ones).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from llmlab.chat.template import TOOL_RESULT_END
from llmlab.tasks.check import exact_match, normalize_answer


def _prompts(tok, questions: list[str], template_kwargs: dict | None = None) -> list[list[int]]:
    from llmlab.chat.template import render_prompt

    return [render_prompt([{"role": "user", "content": q}], tok, **(template_kwargs or {})) for q in questions]


def _after_results(text: str) -> str:
    """The answer in a text the model wrote on its own: after its last result block, if any."""
    return text.rsplit(TOOL_RESULT_END, 1)[-1]


def plain_answers(model, tok, prompts: list[list[int]], max_new_tokens: int, batch_size: int = 64) -> list[str]:
    """Greedy answers without a tool loop (special tokens written as their names), stop tokens dropped."""
    from llmlab.chat.template import stop_token_ids
    from llmlab.infer import Engine, SamplingParams

    engine = Engine(model, eos_token_ids=stop_token_ids(tok))
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    stops = set(engine.eos_token_ids)
    out = []
    for i in range(0, len(prompts), batch_size):
        for r in engine.generate(prompts[i:i + batch_size], params):
            out.append(tok.decode([t for t in r.samples[0].token_ids if t not in stops]))
    return out


def tool_answers(model, tok, prompts: list[list[int]], loop, max_new_tokens: int, batch_size: int = 64):
    """Greedy ``ToolAnswer``s through ``loop``."""
    from llmlab.chat.template import stop_token_ids
    from llmlab.infer import Engine, SamplingParams

    engine = Engine(model, eos_token_ids=stop_token_ids(tok))
    params = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    out = []
    for i in range(0, len(prompts), batch_size):
        out += [g[0] for g in loop.generate(engine, prompts[i:i + batch_size], params)]
    return out


def arithmetic_eval(model, tok, tasks: list[dict], max_new_tokens: int = 48, n_samples: int = 6) -> dict:
    """Exact match with the calculator and without it, overall and by operation (see the module doc)."""
    from llmlab.tools.loop import ToolLoop
    from llmlab.tools.toolset import build_registry

    loop = ToolLoop(build_registry(["calc"]), tok, max_calls=2)
    prompts = _prompts(tok, [t["prompt"] for t in tasks], loop.template_kwargs())
    with_tool = tool_answers(model, tok, prompts, loop, max_new_tokens)
    without = plain_answers(model, tok, prompts, max_new_tokens)
    by_op: dict = defaultdict(lambda: {"with": [], "without": []})
    called = 0
    samples = []
    for t, a, w in zip(tasks, with_tool, without):
        ok_with, ok_without = exact_match(a.final_text, t["answer"]), exact_match(_after_results(w), t["answer"])
        by_op[t["op"]]["with"].append(ok_with)
        by_op[t["op"]]["without"].append(ok_without)
        called += bool(a.calls)
        if len(samples) < n_samples:
            samples.append({"prompt": t["prompt"], "answer": t["answer"], "with_tool": a.text, "without_tool": w})
    n = len(tasks)
    rate = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return {"n": n, "with_tool": rate([x for v in by_op.values() for x in v["with"]]),
            "without_tool": rate([x for v in by_op.values() for x in v["without"]]), "called_tool": called / n,
            "by_op": {op: {"n": len(v["with"]), "with_tool": rate(v["with"]), "without_tool": rate(v["without"])}
                      for op, v in sorted(by_op.items())},
            "samples": samples}


def is_idk(text: str) -> bool:
    return normalize_answer(text).startswith("i don't know")


def grounded_eval(model, tok, index_dir, qa: list[dict], max_new_tokens: int = 48, search=None,
                  n_samples: int = 6) -> dict:
    """Recall@5, accuracy with / without retrieval, citation validity and the "I don't know" rates over ``qa``
    (``tasks.docqa.questions``: answer None = unanswerable) against the index in ``index_dir``."""
    from llmlab.tools.retrieval import Index, SearchConfig, citations, strip_citations
    from llmlab.tools.toolset import make_tool_loop

    index = Index.load(index_dir)
    search = search or SearchConfig()
    answerable = [q for q in qa if q["answer"] is not None]
    recall = sum(any(q["answer"] in h.chunk.text for h in index.search(q["question"], k=5)) for q in answerable)
    loop = make_tool_loop(tok, ["search"], index=index, search=search, max_calls=2)
    prompts = _prompts(tok, [q["question"] for q in qa], loop.template_kwargs())
    with_r = tool_answers(model, tok, prompts, loop, max_new_tokens)
    without = plain_answers(model, tok, prompts, max_new_tokens)
    right_with = right_without = cited = cited_ok = idk_un = idk_ans = 0
    samples = []
    for q, a, w in zip(qa, with_r, without):
        final = a.final_text
        if q["answer"] is None:
            idk_un += is_idk(final)
        else:
            idk_ans += is_idk(final)
            right_with += exact_match(strip_citations(final), q["answer"])
            right_without += exact_match(strip_citations(_after_results(w)), q["answer"])
            marks = citations(final)
            if marks:
                cited += 1
                shown = [c.result for c in a.calls if c.name == "search"]
                passages = _passages(shown[-1]) if shown else {}
                cited_ok += all(q["answer"] in passages.get(n, "") for n in marks)
        if len(samples) < n_samples:
            samples.append({"question": q["question"], "answer": q["answer"], "with_retrieval": a.text,
                            "without_retrieval": w})
    n_a, n_u = len(answerable), len(qa) - len(answerable)
    acc_with, acc_without = right_with / max(n_a, 1), right_without / max(n_a, 1)
    return {"n": len(qa), "n_answerable": n_a, "n_unanswerable": n_u, "chunks": len(index.chunks),
            "recall_at_5": recall / max(n_a, 1), "accuracy_with_retrieval": acc_with,
            "accuracy_without_retrieval": acc_without,
            "accuracy_ratio": acc_with / acc_without if acc_without > 0 else None,
            "cited_answers": cited, "citation_validity": cited_ok / cited if cited else None,
            "idk_rate_unanswerable": idk_un / max(n_u, 1), "idk_rate_answerable": idk_ans / max(n_a, 1),
            "called_search": sum(bool(a.calls) for a in with_r) / max(len(qa), 1), "samples": samples}


def _passages(result_text: str) -> dict[int, str]:
    import re

    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^\[(\d+)\] (.*)$", result_text, re.M)}


def tools_report(model_run: str, out: str | Path, *, n_calc: int = 300, n_entities: int = 90, n_qa: int = 300,
                 unanswerable: float = 0.25, seed: int = 0, device: str = "cpu") -> dict:
    """Both evaluations of one run, with the evaluation documents and their index written under ``out``
    (``docs/``, ``index/``); the speedrun's report card reads the result (``tools.json`` there)."""
    from llmlab.runs import load_run
    from llmlab.tasks.calc_tasks import calc_tasks
    from llmlab.tasks.docqa import make_world, questions, write_documents
    from llmlab.tools.retrieval import IndexConfig, build_index
    from llmlab.tools.teach import ToolDataConfig
    from llmlab.utils.device import resolve_device
    from llmlab.utils.io import write_json

    out = Path(out)
    model, tok = load_run(model_run, device=resolve_device(device))
    world = make_world(n_entities, "val", seed + 1000)
    absent = make_world(max(10, n_entities // 3), "val", seed + 2000, taken={e.name for e in world})
    write_documents(world, out / "docs")
    index_summary = build_index(out / "docs", out / "index", IndexConfig(chunk_chars=ToolDataConfig.chunk_chars),
                                rebuild=True)
    qa = questions(world, n_qa, seed=seed + 3000, unanswerable=unanswerable, absent=absent)
    report = {"model": str(model_run),
              "arithmetic": arithmetic_eval(model, tok, calc_tasks(n_calc, "val", seed)),
              "grounded": {**grounded_eval(model, tok, out / "index", qa),
                           "documents": index_summary["files"], "entities": n_entities}}
    write_json(out / "tools.json", report)
    return report
