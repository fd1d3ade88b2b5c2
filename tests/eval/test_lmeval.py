"""lm-evaluation-harness runs our model on local task files and agrees with ``llmlab eval suite``.

Needs the optional ``lmeval`` extra (lm-eval >= 0.4); skipped without it. Runs offline: the task files are
written here and read with the ``json`` dataset builder.

    .venv/bin/pytest tests/eval/test_lmeval.py -q
"""

import pytest

from llmlab.eval.backends import GenRequest, LocalBackend
from llmlab.eval.suite import few_shot_prompt, run_suite
from llmlab.eval.taskfile import Task

pytest.importorskip("lm_eval", reason="lm-evaluation-harness is an optional extra: pip install 'llmlab[lmeval]'")

QUIET = dict(log=lambda msg: None)


@pytest.mark.slow
def test_lm_eval_runs_our_model_and_agrees_with_the_suite(tiny, tmp_path, monkeypatch):
    from llmlab.eval.lmeval import make_lm, run_lm_eval, write_lmeval_task

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    model, tok = tiny
    mc = Task(name="mc", kind="choice", items=[
        {"context": "The king", "choices": [" is here.", " are here.", " be"], "answer": 0},
        {"context": "The lords", "choices": [" is gone.", " are gone."], "answer": 1},
        {"context": "", "choices": ["To be, or not to be.", "Be to, or to not be."], "answer": 0},
        {"context": "What is 12 + 7?", "choices": [" 19.", " 21.", " 1", " seven"], "answer": 0}])
    qa = Task(name="qa", kind="choice", style="qa", few_shot=[{"question": "Who says this?", "answer": "Hamlet"}],
              items=[{"question": "What is 12 + 7?", "choices": ["19", "12", "seven"], "answer": 0},
                     {"question": "Spell night.", "choices": ["n-i-g-h-t", "night"], "answer": 1}])
    gen = Task(name="gen", kind="generate", max_new_tokens=5,
               items=[{"context": p, "answer": "x"} for p in ["What is 12 + 7?", "The king", "Spell the word night:"]])
    bpb = Task(name="bpb", kind="bpb", items=[{"text": "The king is here. The lords are gone."},
                                             {"text": "To be, or not to be, that is the question. " * 3}])
    tasks = [mc, qa, gen, bpb]
    for t in tasks:
        write_lmeval_task(t, tmp_path / "lm_eval")
    backend = LocalBackend(model, tok)
    out = run_lm_eval(make_lm(backend), [t.name for t in tasks], include_path=tmp_path / "lm_eval", log_samples=True)
    res = out["results"]
    ours = run_suite(backend, tasks, prompt_style="text", **QUIET)["tasks"]
    for name in ("mc", "qa"):  # lm-eval's acc and acc_norm are ours
        assert res[name]["acc,none"] == pytest.approx(ours[name]["acc"])
        assert res[name]["acc_norm,none"] == pytest.approx(ours[name]["acc_norm"])
    # loglikelihood_rolling is eval/bpb.py's: lm-eval's bits_per_byte is our bpb.
    assert res["bpb"]["bits_per_byte,none"] == pytest.approx(ours["bpb"]["score"], rel=1e-6)
    # generate_until: the texts lm-eval got are our engine's greedy answers.
    got = sorted((s["doc"]["prompt"], s["resps"][0][0]) for s in out["samples"]["gen"])
    want = sorted((it["context"], text) for it, text in zip(
        gen.items, backend.generate([GenRequest(it["context"], ("\n",), 5) for it in gen.items])))
    assert got == want
    assert res["gen"]["exact_match,none"] == ours["gen"]["score"] == 0.0
    assert few_shot_prompt("q", []) == "Question: q\nAnswer:"
