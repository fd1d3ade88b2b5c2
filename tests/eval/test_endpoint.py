"""The OpenAI-endpoint evaluator against a local fake server backed by the same tiny model: the same scores as
evaluating the model directly, retries with backoff, per-item errors, resuming.

    .venv/bin/pytest tests/eval/test_endpoint.py -q
"""

import json

import pytest

from llmlab.errors import LlmlabError
from llmlab.eval.backends import LocalBackend
from llmlab.eval.endpoint import EndpointBackend
from llmlab.eval.suite import ITEMS_FILE, RESULTS_FILE, _choice_requests, run_suite
from llmlab.eval.taskfile import Task

from fake_openai import FakeOpenAI

QUIET = dict(log=lambda msg: None)
FAST = dict(backoff=0.01, max_backoff=0.05, timeout=20.0)

MC = Task(name="mc", kind="choice", items=[
    {"context": "The king", "choices": [" is here.", " are here.", " be"], "answer": 0},
    {"context": "The lords", "choices": [" is gone.", " are gone."], "answer": 1},
    {"context": "To be, or not", "choices": [" to be", " the king", " question"], "answer": 0},
    {"context": "What is 12 + 7?", "choices": [" 19.", " 21.", " 1", " seven"], "answer": 0},
    {"context": "", "choices": ["The king is here.", "The king are here."], "answer": 0}])
GEN = Task(name="gen", kind="generate", max_new_tokens=5, stop=("\n",),
           items=[{"context": p, "answer": "x"} for p in ["What is 12 + 7?", "The king", "Spell the word night:"]])
QA = Task(name="qa", kind="generate", style="qa", max_new_tokens=4,
          items=[{"question": q, "answer": "19"} for q in ["What is 12 + 7?", "Who says this?"]])


@pytest.fixture
def server(tiny):
    model, tok = tiny
    with FakeOpenAI(model, tok) as s:
        yield s


def test_same_scores_as_the_model_itself(tiny, server):
    model, tok = tiny
    local = run_suite(LocalBackend(model, tok), [MC, GEN], prompt_style="text", **QUIET)
    be = EndpointBackend(server.url, api_key="k", **FAST)  # the model name comes from /v1/models
    assert be.model == "tiny"
    remote = run_suite(be, [MC, GEN], prompt_style="text", **QUIET)
    assert remote["backend"] == "endpoint" and remote["errors"] == 0
    for name in ("mc", "gen"):
        assert remote["tasks"][name]["score"] == local["tasks"][name]["score"]
    # Item by item: the same log-likelihoods and the same generated text.
    reqs = [r for it in MC.items for r in _choice_requests(MC, it, "text")]
    a, b = LocalBackend(model, tok).loglikelihood(reqs), be.loglikelihood(reqs)
    for x, y in zip(a, b):
        assert y.logprob == pytest.approx(x.logprob, abs=1e-3) and x.greedy == y.greedy
    from llmlab.eval.backends import GenRequest

    g = [GenRequest(it["context"], ("\n",), 5) for it in GEN.items]
    assert be.generate(g) == LocalBackend(model, tok).generate(g)
    # Chat generation goes through /chat/completions; choice tasks are posed as text to an endpoint.
    res = run_suite(be, [QA, MC], prompt_style="chat", **QUIET)
    assert res["tasks"]["qa"]["posed_as"] == "chat" and res["tasks"]["mc"]["posed_as"] == "text"


def test_errors_mid_run_are_retried_and_the_run_recovers(server):
    be = EndpointBackend(server.url, model="tiny", retries=4, **FAST)
    clean = run_suite(be, [MC], prompt_style="text", **QUIET)
    before = server.requests
    server.fail_next = 3  # the next three requests fail with 503, then the server is fine again
    res = run_suite(be, [MC], prompt_style="text", **QUIET)
    assert res["errors"] == 0 and res["tasks"]["mc"]["score"] == clean["tasks"]["mc"]["score"]
    assert server.requests - before == len(MC.items) + 3  # one request per item, plus the three retried


def test_failing_items_are_reported_and_the_rest_go_on_then_resume(tiny, server, tmp_path):
    task = Task(name="mc2", kind="choice", items=MC.items[:4] + [
        {"context": "POISON here", "choices": [" a", " b"], "answer": 0}])
    server.poison = "POISON"
    be = EndpointBackend(server.url, model="tiny", retries=2, **FAST)
    res = run_suite(be, [task, GEN], out_dir=tmp_path, prompt_style="text", **QUIET)
    t = res["tasks"]["mc2"]
    assert t["errors"] == 1 and t["n"] == 4 and res["tasks"]["gen"]["errors"] == 0
    assert t["error_examples"][0]["item"] == 4 and "HTTP 500" in t["error_examples"][0]["error"]
    saved = json.loads((tmp_path / RESULTS_FILE).read_text())
    assert saved["errors"] == 1
    # The scored items were saved as they went; the next run retries only the failed one.
    assert len((tmp_path / ITEMS_FILE).read_text().splitlines()) == 1 + 4 + 3
    server.poison = None
    before = server.requests
    res = run_suite(be, [task, GEN], out_dir=tmp_path, prompt_style="text", **QUIET)
    assert server.requests - before == 1 and res["errors"] == 0 and res["tasks"]["mc2"]["n"] == 5


def test_client_errors_are_not_retried_and_bad_urls_are_user_errors(server):
    be = EndpointBackend(server.url, model="no-such-model", retries=5, **FAST)
    before = server.requests
    res = run_suite(be, [GEN], prompt_style="text", **QUIET)
    assert res["tasks"]["gen"]["errors"] == 3 and res["tasks"]["gen"]["score"] is None
    assert server.requests - before == 3  # a 404 will not get better: no retries
    assert "HTTP 404" in res["tasks"]["gen"]["error_examples"][0]["error"]
    with pytest.raises(LlmlabError, match="http"):
        EndpointBackend("localhost:8000")
    with pytest.raises(LlmlabError, match="pass --model"):
        EndpointBackend("http://127.0.0.1:9/v1", retries=0, timeout=2.0)  # nothing listens there


def test_bpb_through_an_endpoint(tiny, server):
    model, tok = tiny
    texts = ["The king is here. The lords are gone.", "To be, or not to be, that is the question."]
    task = Task(name="b", kind="bpb", items=[{"text": t} for t in texts])
    local = run_suite(LocalBackend(model, tok), [task], prompt_style="text", **QUIET)
    remote = run_suite(EndpointBackend(server.url, model="tiny", **FAST), [task], prompt_style="text", **QUIET)
    assert remote["tasks"]["b"]["score"] == pytest.approx(local["tasks"]["b"]["score"], rel=1e-4)


def test_a_server_without_bos_still_scores_empty_contexts(server):
    server.bos = False  # the first prompt token gets no log-prob, as from OpenAI's API
    task = Task(name="pairs", kind="choice", items=[MC.items[-1], MC.items[0]])
    res = run_suite(EndpointBackend(server.url, model="tiny", **FAST), [task], prompt_style="text", **QUIET)
    assert res["errors"] == 0 and res["tasks"]["pairs"]["n"] == 2  # the empty context was sent as a newline


def test_suite_command_on_an_endpoint(server, tmp_path, capsys):
    from llmlab.cli import main
    from llmlab.eval.taskfile import write_task

    write_task(tmp_path / "mc.jsonl", MC)
    args = ["eval", "suite", "--endpoint", server.url, "--model", "tiny", "--tasks", str(tmp_path / "mc.jsonl")]
    assert main(args) == 2  # where would the results go?
    assert "--endpoint needs --out DIR" in capsys.readouterr().err
    assert main(args + ["--out", str(tmp_path / "res"), "--api-key", "k", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["endpoint"] == server.url and res["model"] == "tiny" and res["backend"] == "endpoint"
    assert res["tasks"]["mc"]["n"] == len(MC.items) and (tmp_path / "res" / RESULTS_FILE).is_file()
