"""Custom assistants: create / list / show / update / delete through the CLI, a chat that loads one (its system
prompt, tools and documents: the model searches, cites, and says it does not know when nothing is found), the
server's model-id functions, and clear errors for unknown names and bad input; ``chat`` and ``generate`` with
``--tools``.

    .venv/bin/pytest tests/tools/test_assistants.py -q
"""

import json

import pytest
import torch

from _scripted_model import ScriptedModel, native_script, searcher
from llmlab.cli import main
from llmlab.errors import LlmlabError
from llmlab.model.gpt import GPT, ModelConfig
from llmlab.runs import save_run_model
from llmlab.tasks.docqa import IDK
from llmlab.tokenizer import Tokenizer
from llmlab.tools.assistants import (
    create_assistant, list_assistants, load_assistant, resolve_model, served_models,
)
from llmlab.tools.retrieval import NO_RESULTS


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("LLMLAB_HOME", str(tmp_path / "home"))
    yield


@pytest.fixture(scope="module")
def tok():
    return Tokenizer([])


@pytest.fixture
def run_dir(tmp_path, tok):
    torch.manual_seed(0)
    d = tmp_path / "run"
    save_run_model(d, GPT(ModelConfig.preset("tiny", vocab_size=tok.vocab_size, max_seq_len=64)), tok)
    return d


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "quellport.md").write_text("Quellport was founded in 1643.\n\nThe mayor of Quellport is Talia Brunsk.\n")
    (d / "works.txt").write_text("Brindle Works makes lanterns.\n")
    return d


# ----------------------------------------------------------------------------------------------------------


def test_assistant_cli_lifecycle(docs, run_dir, tmp_path, capsys):
    assert main(["assistant", "create", "--name", "notes", "--system", "Answer from my notes.", "--docs", str(docs),
                 "--tools", "calc", "--model", str(run_dir), "--temperature", "0.2", "--search-k", "2"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["tools"] == ["calc", "search"] and made["index"]["files"] == 2
    assert (tmp_path / "home" / "assistants" / "notes" / "index" / "index.json").is_file()
    assert main(["assistant", "list"]) == 0
    assert capsys.readouterr().out.startswith("notes\tcalc,search\t")
    assert main(["assistant", "show", "notes"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["format"], shown["version"], shown["system"]) == ("llmlab-assistant", 1, "Answer from my notes.")
    assert shown["sampling"]["temperature"] == 0.2 and shown["search"]["k"] == 2
    assert shown["model"] == str(run_dir.resolve()) and shown["docs"] == str(docs.resolve())
    (docs / "works.txt").write_text("Brindle Works makes bells.\n")
    assert main(["assistant", "update", "notes"]) == 0
    upd = json.loads(capsys.readouterr().out)["index"]
    assert (upd["read"], upd["unchanged"]) == (1, 1)
    assert main(["assistant", "create", "--name", "notes", "--system", "x"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["assistant", "delete", "notes"]) == 0
    assert not (tmp_path / "home" / "assistants" / "notes").exists()
    assert main(["assistant", "list"]) == 0 and "no assistants" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["assistant", "show", "nobody"], "unknown assistant 'nobody'"),
    (["chat", "--assistant", "nobody", "--prompt", "hi"], "unknown assistant 'nobody'"),
    (["assistant", "create", "--name", "bad name!"], "assistant name 'bad name!'"),
    (["assistant", "create", "--name", "s", "--tools", "search"], "the search tool needs the assistant's documents"),
    (["assistant", "create", "--name", "s", "--tools", "browser"], "unknown tool 'browser'"),
    (["assistant", "create", "--name", "s", "--docs", "/nonexistent/docs"], "documents folder or file not found"),
    (["assistant", "create", "--name", "s", "--model", "/nonexistent/run"], "not a model run folder"),
])
def test_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_profile_of_another_version_is_refused(tmp_path):
    a, _ = create_assistant("old", system="hi")
    p = a.folder / "assistant.json"
    p.write_text(json.dumps({**json.loads(p.read_text()), "version": 7}))
    with pytest.raises(LlmlabError, match=r"assistant.json: assistant profile version 7"):
        load_assistant("old")
    assert list_assistants() == []  # unreadable profiles are left out of the list


def test_server_model_ids(docs, run_dir):
    create_assistant("notes", system="Answer from my notes.", docs=str(docs), model=str(run_dir))
    create_assistant("plain", tools="calc")
    models = served_models()
    assert [m["id"] for m in models] == ["assistant:notes", "assistant:plain"]
    assert models[0]["object"] == "model" and models[0]["llmlab"]["has_documents"]
    assert resolve_model("assistant:notes").system == "Answer from my notes."
    assert resolve_model("runs/speedrun/sft") is None
    with pytest.raises(LlmlabError, match="unknown assistant 'gone'"):
        resolve_model("assistant:gone")


def test_chat_with_an_assistant_searches_cites_and_admits_ignorance(docs, run_dir, tok, monkeypatch, capsys):
    import llmlab.runs

    monkeypatch.setattr(llmlab.runs, "load_run", lambda *a, **k: (ScriptedModel(tok.vocab_size, searcher(tok)), tok))
    create_assistant("notes", system="Answer from my notes.", docs=str(docs), model=str(run_dir),
                     sampling={"temperature": 0.0, "max_new_tokens": 120}, search={"k": 2})
    assert main(["chat", "--assistant", "notes", "--prompt", "Who is the mayor of Quellport?", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["text"] == "Brunsk [1]" and r["finish_reason"] == "stop"
    assert r["tool_calls"][0]["call"] == "search Who is the mayor of Quellport?"
    assert "Talia Brunsk" in r["tool_calls"][0]["result"]
    assert r["sources"].splitlines() == ["Sources:", "[1] quellport.md, chunk 0"]
    assert main(["chat", "--assistant", "notes", "--prompt", "Who is the mayor of Dravelmoor?", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["text"] == IDK and r["tool_calls"][0]["result"] == NO_RESULTS and r["sources"] == ""


def test_chat_and_generate_with_tools_flag(run_dir, tok, monkeypatch, capsys, tmp_path):
    import llmlab.runs
    monkeypatch.setattr(llmlab.runs, "load_run", lambda *a, **k: (ScriptedModel(tok.vocab_size, native_script(tok)), tok))
    assert main(["chat", "--model", str(run_dir), "--tools", "calc", "--temperature", "0", "--max-new-tokens", "100",
                 "--prompt", "123*45", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["text"] == " = 5535" and r["tool_calls"] == [{"call": "calc 123*45", "result": "5535", "ok": True}]
    assert main(["chat", "--model", str(run_dir), "--tools", "search", "--prompt", "x"]) == 2
    assert "the search tool needs an index" in capsys.readouterr().err
    assert main(["generate", "--model", str(run_dir), "--tools", "calc", "--greedy", "--special", "--device", "cpu",
                 "--max-new-tokens", "100", "--prompt", "<|user|>2**10<|end|><|assistant|>", "--json"]) == 0
    g = json.loads(capsys.readouterr().out)["choices"][0]
    assert g["final_text"] == " = 1024" and g["tool_calls"][0]["result"] == "1024"
    assert g["text"].endswith("<|tool_result|>1024<|/tool_result|> = 1024")
    assert sum(g["sampled"]) == len(g["token_ids"]) - len("1024") - 2
