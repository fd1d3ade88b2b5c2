"""The suite runner: each task kind against a direct computation, resuming, the built-in suites, the CLI's JSON.

    .venv/bin/pytest tests/eval/test_suite.py -q
"""

import json
import math

import pytest
import torch

from llmlab.cli import main
from llmlab.eval.backends import LocalBackend
from llmlab.eval.bpb import bits_per_byte
from llmlab.eval.suite import (ITEMS_FILE, RESULTS_FILE, SuiteConfig, evaluate_run, few_shot_prompt, resolve_tasks,
                               run_suite)
from llmlab.eval.suites import BUILTIN_TASKS, builtin_task
from llmlab.eval.taskfile import Task
from llmlab.tasks.check import exact_match

QUIET = dict(log=lambda msg: None)


def seq_logprob(model, ctx, cont):
    with torch.no_grad():
        lp = torch.log_softmax(model(torch.tensor([ctx + cont])[:, :-1]).double(), -1)[0]
    return sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))


def naive_greedy(model, ids, n, stop_ids):
    """One full forward per new token (no cache, no engine)."""
    out = []
    with torch.no_grad():
        for _ in range(n):
            t = int(model(torch.tensor([ids + out]))[0, -1].argmax())
            out.append(t)
            if t in stop_ids:
                break
    return out


CHOICE_TEXT = Task(name="mc_text", kind="choice", items=[
    {"context": "The king", "choices": [" is here.", " are here.", " be"], "answer": 0, "group": "agree"},
    {"context": "The lords", "choices": [" is gone.", " are gone."], "answer": 1, "group": "agree"},
    {"context": "", "choices": ["To be, or not to be.", "Be to, or to not be."], "answer": 0},
    {"context": "What is 12 + 7?", "choices": [" 19.", " 21.", " 1", " seven"], "answer": 0}])
CHOICE_QA = Task(name="mc_qa", kind="choice", style="qa", metric="acc_norm",
                 few_shot=[{"question": "Who says this?", "answer": "Hamlet, in Hamlet"}],
                 items=[{"question": "What is 12 + 7?", "choices": ["19", "12", "seven"], "answer": 0},
                        {"question": "Spell the word night.", "choices": ["n-i-g-h-t", "night", "t-h-g-i-n"], "answer": 0}])


@pytest.mark.parametrize("style", ["text", "chat"])
def test_choice_scores_equal_a_direct_computation(tiny, style):
    model, tok = tiny
    be = LocalBackend(model, tok)
    res = run_suite(be, [CHOICE_TEXT, CHOICE_QA], prompt_style=style, **QUIET)
    from llmlab.chat.template import render, render_prompt

    for task in (CHOICE_TEXT, CHOICE_QA):
        accs, norms = [], []
        for it in task.items:
            lps = []
            for c in it["choices"]:
                if task.style == "text":
                    ctx = [tok.bos_id] + tok.encode(it["context"])
                    cont = tok.encode(it["context"] + c)[len(ctx) - 1:]
                elif style == "chat":
                    msgs = [{"role": "user", "content": it["question"]}]
                    ctx = render_prompt(msgs, tok)
                    cont = render(msgs + [{"role": "assistant", "content": c}], tok)[0][len(ctx):]
                else:
                    text = few_shot_prompt(it["question"], task.few_shot)
                    ctx = [tok.bos_id] + tok.encode(text)
                    cont = tok.encode(text + " " + c)[len(ctx) - 1:]
                lps.append(seq_logprob(model, ctx, cont))
            pred = max(range(len(lps)), key=lambda i: lps[i])
            space = 1 if task.style == "qa" and style == "text" else 0  # " 19" after "Answer:"
            pred_norm = max(range(len(lps)), key=lambda i: lps[i] / (len(it["choices"][i]) + space))
            accs.append(pred == it["answer"])
            norms.append(pred_norm == it["answer"])
        t = res["tasks"][task.name]
        assert t["acc"] == pytest.approx(sum(accs) / len(accs)) and t["acc_norm"] == pytest.approx(sum(norms) / len(norms))
        assert t["score"] == t[task.metric] and t["n"] == len(task.items) and t["errors"] == 0
        assert t["chance"] == pytest.approx(task.chance())
        assert t["posed_as"] == ("text" if task.style == "text" else "chat" if style == "chat" else "qa-text")
    assert set(res["tasks"]["mc_text"]["groups"]) == {"agree"}


def test_generate_exact_match_equals_naive_greedy(tiny):
    model, tok = tiny
    from llmlab.infer.text import stop_ids_for

    prompts = ["What is 12 + 7?", "The king", "Spell the word night:", "To be, or not", "Question: Who says this?"]
    newline = {i for i in range(tok.vocab_size) if "\n" in tok.decode([i])}
    answers = []
    for k, p in enumerate(prompts):
        out = naive_greedy(model, [tok.bos_id] + tok.encode(p), 6, set(stop_ids_for(tok)) | newline)
        text = tok.decode([t for t in out if t not in stop_ids_for(tok)]).split("\n")[0].strip()
        answers.append(text if k % 2 == 0 else text + " and more")  # items 0, 2, 4 right; 1, 3 wrong
    task = Task(name="gen", kind="generate", max_new_tokens=6,
                items=[{"context": p, "answer": a} for p, a in zip(prompts, answers)])
    res = run_suite(LocalBackend(model, tok), [task], prompt_style="text", **QUIET)
    t = res["tasks"]["gen"]
    assert t["score"] == pytest.approx(3 / 5) and t["chance"] == 0.0 and t["metric"] == "exact_match"
    assert exact_match(" " + answers[0] + ". ", answers[0])  # the comparison is tasks.check's


def test_chat_generation_answers_with_the_template(tiny):
    model, tok = tiny
    from llmlab.chat.template import render_prompt, stop_token_ids

    q = "What is 12 + 7?"
    ids = render_prompt([{"role": "user", "content": q}], tok)
    out = naive_greedy(model, ids, 5, set(stop_token_ids(tok)))
    text = tok.decode([t for t in out if t not in stop_token_ids(tok)]).strip()
    task = Task(name="g", kind="generate", style="qa", max_new_tokens=5, items=[{"question": q, "answer": text or "x"}])
    res = run_suite(LocalBackend(model, tok), [task], prompt_style="chat", **QUIET)
    assert res["tasks"]["g"]["score"] == (1.0 if text else 0.0)


def test_bpb_task_equals_bits_per_byte(tiny):
    model, tok = tiny
    texts = ["To be, or not to be, that is the question. " * 4, "The king is here.", "What is 12 + 7? 19."]
    task = Task(name="b", kind="bpb", items=[{"text": t} for t in texts])
    res = run_suite(LocalBackend(model, tok), [task], prompt_style="text", **QUIET)
    t = res["tasks"]["b"]
    assert t["score"] == pytest.approx(bits_per_byte(model, tok, texts)["bpb"], rel=1e-6)
    assert t["lower_is_better"] and t["ci"][0] <= t["score"] <= t["ci"][1]
    assert res["aggregate"]["score"] is None  # bpb has no chance level: not in the aggregate


class Interrupting(LocalBackend):
    """Stops the run (as a kill would) after `budget` calls; counts the items it is asked to score."""

    def __init__(self, model, tok, budget):
        super().__init__(model, tok)
        self.budget, self.requests = budget, 0

    def loglikelihood(self, requests):
        if self.budget == 0:
            raise KeyboardInterrupt
        self.budget -= 1
        self.requests += len(requests)
        return super().loglikelihood(requests)


def test_resume_from_partial_results(tiny, tmp_path):
    model, tok = tiny
    task = Task(name="mc", kind="choice", items=[{"context": f"The king {w}", "choices": [" is", " are"], "answer": 0}
                                                 for w in ["said", "came", "went", "saw", "knew", "was", "had"]])
    full = run_suite(LocalBackend(model, tok), [task], prompt_style="text", **QUIET)
    ident = {"model": "tiny"}
    be = Interrupting(model, tok, budget=2)
    with pytest.raises(KeyboardInterrupt):
        run_suite(be, [task], out_dir=tmp_path, prompt_style="text", chunk=3, identity=ident, **QUIET)
    lines = (tmp_path / ITEMS_FILE).read_text().splitlines()
    assert len(lines) == 1 + 6 and not (tmp_path / RESULTS_FILE).exists()  # header + two chunks of 3 items
    with open(tmp_path / ITEMS_FILE, "a") as f:
        f.write('{"task": "mc", "key": "torn')  # a line torn by the kill
    be = Interrupting(model, tok, budget=10)
    res = run_suite(be, [task], out_dir=tmp_path, prompt_style="text", chunk=3, identity=ident, **QUIET)
    assert be.requests == 2  # only the last item (two choices) was scored again
    assert res["tasks"]["mc"]["score"] == full["tasks"]["mc"]["score"]
    assert json.loads((tmp_path / RESULTS_FILE).read_text())["tasks"]["mc"]["n"] == 7
    # Another model (or prompt style) does not reuse them.
    be = Interrupting(model, tok, budget=10)
    run_suite(be, [task], out_dir=tmp_path, prompt_style="text", chunk=3, identity={"model": "other"}, **QUIET)
    assert be.requests == 14


@pytest.mark.slow
def test_builtin_suites_are_seeded_versioned_and_held_out():
    from llmlab.data.corpus import standard_split
    from llmlab.tasks.synth import generate

    for name in BUILTIN_TASKS:
        a, b = builtin_task(name, n=20, seed=0), builtin_task(name, n=20, seed=0)
        assert a.sha256() == b.sha256() and len(a.items) == 20 and a.suite_version == 1 and a.seed == 0
        if name != "bpb":
            assert builtin_task(name, n=20, seed=1).sha256() != a.sha256()
    train, val = standard_split()
    for it in builtin_task("cloze", n=30).items:  # contexts from the held-out split; the answer is the next word
        assert it["context"] in val and it["context"] + it["choices"][it["answer"]] in val
        assert len(set(it["choices"])) == 4
    for it in builtin_task("bpb", n=10).items:
        assert it["text"] in val
    train_q = {c.messages[-2]["content"] for c in generate(n_train=3000, n_val=0, seed=0)[0]}
    for name in ("arithmetic", "spelling", "facts"):
        task = builtin_task(name, n=50)
        assert not any(it["question"] in train_q for it in task.items)  # never trained on
        assert task.few_shot and not any(s["question"] in {it["question"] for it in task.items} for s in task.few_shot)
    pairs = builtin_task("minimal_pairs", n=100)
    groups = {it["group"] for it in pairs.items}
    assert len(groups) == 5 and all(len(it["choices"]) == 2 for it in pairs.items)
    for it in pairs.items:  # the two sentences differ in exactly one word
        good, bad = it["choices"][it["answer"]].split(), it["choices"][1 - it["answer"]].split()
        assert len(good) == len(bad) and sum(x != y for x, y in zip(good, bad)) in (1, 2)  # 2: a swap


def test_resolve_tasks(tmp_path):
    from llmlab.errors import LlmlabError
    from llmlab.eval.taskfile import write_task

    write_task(tmp_path / "a.jsonl", CHOICE_TEXT)
    names = [t.name for t in resolve_tasks(["minimal_pairs", str(tmp_path)], n=5)]
    assert names == ["minimal_pairs", "mc_text"]
    with pytest.raises(LlmlabError, match="unknown task 'nope'"):
        resolve_tasks(["nope"])
    with pytest.raises(LlmlabError, match="two tasks are named 'mc_text'"):
        resolve_tasks([str(tmp_path), str(tmp_path / "a.jsonl")])


@pytest.mark.slow
def test_suite_cli_json_shape(tiny_run, tmp_path, capsys):
    from llmlab.eval.taskfile import write_task

    gen = Task(name="arithmetic", kind="generate", style="qa", items=[{"question": f"What is {a} + 2?", "answer": str(a + 2)}
                                                                     for a in range(6)])
    bpb = Task(name="bpb", kind="bpb", items=[{"text": f"The king is here, {k} times."} for k in range(6)])
    write_task(tmp_path / "arith.jsonl", gen)
    write_task(tmp_path / "bpb.jsonl", bpb)
    tasks = f"minimal_pairs,{tmp_path / 'arith.jsonl'},{tmp_path / 'bpb.jsonl'}"
    assert main(["eval", "suite", "--model", str(tiny_run), "--tasks", tasks, "-n", "6", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["format"] == "llmlab-eval-suite" and res["version"] == 1 and res["prompt_style"] == "text"
    assert list(res["tasks"]) == ["minimal_pairs", "arithmetic", "bpb"]
    for name, t in res["tasks"].items():
        assert set(t) >= {"score", "ci", "ci_method", "metric", "n", "errors", "sha256", "kind"}
        lo, hi = t["ci"]
        assert lo <= t["score"] <= hi and t["n"] == 6
    assert res["tasks"]["minimal_pairs"]["chance"] == 0.5 and res["tasks"]["arithmetic"]["chance"] == 0.0
    agg = res["aggregate"]
    assert agg["name"] == "core" and agg["tasks"] == ["arithmetic", "minimal_pairs"]
    want = ((res["tasks"]["minimal_pairs"]["score"] - 0.5) / 0.5 + res["tasks"]["arithmetic"]["score"]) / 2
    assert agg["score"] == pytest.approx(want) and agg["ci"][0] <= agg["score"] <= agg["ci"][1]
    saved = json.loads((tiny_run / "eval" / RESULTS_FILE).read_text())  # the run folder keeps them
    assert saved["tasks"] == res["tasks"]
    # The plain table, resumed from the saved items.
    assert main(["eval", "suite", "--model", str(tiny_run), "--tasks", "minimal_pairs", "-n", "6"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[1].startswith("minimal_pairs") and "6 already scored" in out.err


@pytest.mark.slow  # the first load_run in a process takes seconds (building the model on the meta device)
def test_evaluate_run_picks_the_prompt_style(tiny_run, tmp_path):
    import shutil

    chat = tmp_path / "chat"
    shutil.copytree(tiny_run, chat)
    (chat / "config.json").write_text(json.dumps({"sft": {}, "base_model": "x"}))
    from llmlab.eval.taskfile import write_task

    write_task(tmp_path / "qa.jsonl", CHOICE_QA)
    res = evaluate_run(chat, SuiteConfig(tasks=(str(tmp_path / "qa.jsonl"),)), **QUIET)
    assert res["prompt_style"] == "chat" and res["tasks"]["mc_qa"]["posed_as"] == "chat"
    assert (chat / "eval" / "suite.json").is_file()
    res = evaluate_run(tiny_run, SuiteConfig(tasks=(str(tmp_path / "qa.jsonl"),)), out_dir=tmp_path / "o", **QUIET)
    assert res["prompt_style"] == "text" and res["tasks"]["mc_qa"]["posed_as"] == "qa-text"
    assert math.isfinite(res["seconds"])


def test_tasks_command_writes_task_files_that_load_back(tmp_path, capsys):
    yaml = pytest.importorskip("yaml", reason="PyYAML (lm-eval's own dependency) reads the lm-eval config")

    assert main(["eval", "tasks", "--out", str(tmp_path), "--tasks", "minimal_pairs,bpb", "-n", "3", "--lm-eval"]) == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert [p.rsplit("/", 1)[1] for p in written] == ["minimal_pairs.jsonl", "minimal_pairs.yaml", "bpb.jsonl", "bpb.yaml"]
    from llmlab.eval.taskfile import load_task

    assert load_task(tmp_path / "minimal_pairs.jsonl").sha256() == builtin_task("minimal_pairs", n=3).sha256()
    cfg = yaml.safe_load((tmp_path / "lm_eval" / "minimal_pairs.yaml").read_text())
    assert cfg["output_type"] == "multiple_choice" and cfg["target_delimiter"] == ""
    docs = [json.loads(x) for x in open(cfg["dataset_kwargs"]["data_files"]["test"])]
    assert [d["choices"] for d in docs] == [it["choices"] for it in builtin_task("minimal_pairs", n=3).items]
