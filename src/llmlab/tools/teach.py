"""Conversations that teach the speedrun-size model its tools: the calculator for 2-3 digit arithmetic
(``tasks/calc_tasks.py``) and the search tool for questions about the user's documents (``tasks/docqa.py``),
with every search result produced by the real retriever over made-up documents, so what the model learns to
read is exactly what ``search`` returns at run time.

    from llmlab.tools.teach import ToolDataConfig, tool_conversations
    convs = tool_conversations(ToolDataConfig(calc=4000, docqa=4000), split="train", seed=0)

``llmlab sft --data bundled`` mixes these into the generated default conversations (``train/sft.py``); the
held-out side of the same generators scores the result (``eval/tools_eval.py``). ``write_tool_tasks`` (``llmlab
tool tasks``) writes verifiable tasks for GRPO through the tool loop: calculator questions, and questions about a
fresh world of made-up documents (written and indexed beside them) whose expected reply is the fact with the
number of the passage that holds it, or "I don't know".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from llmlab.tools.retrieval import IndexConfig, SearchConfig


@dataclass
class ToolDataConfig:
    calc: int = 4000  # conversations answered through the calculator
    docqa: int = 4000  # questions about documents answered through search
    # made-up towns, companies and people in the training documents: about one per question, so that remembering
    # the facts does not pay and reading them from the search result does (docs/LOG.md, tools)
    docqa_entities: int = 4000
    unanswerable: float = 0.2  # share of document questions about things the documents never mention
    system_share: float = 0.3  # share of document questions with a system prompt about the documents
    chunk_chars: int = 160  # the training documents' chunks (one paragraph each)
    search: SearchConfig = field(default_factory=SearchConfig)


def docqa_conversations(cfg: ToolDataConfig, split: str = "train", seed: int = 0):
    """``cfg.docqa`` conversations over a fresh world of ``split``'s names, searched with ``cfg.search``."""
    from llmlab.tasks.docqa import document, make_world, qa_conversation, questions
    from llmlab.tools.retrieval import Index, search_text

    world = make_world(cfg.docqa_entities, split, seed)
    absent = make_world(max(10, cfg.docqa_entities // 3), split, seed + 7919, taken={e.name for e in world})
    index = Index.from_texts([(e.name, document(e)) for e in world], IndexConfig(chunk_chars=cfg.chunk_chars))
    rng = random.Random(f"llmlab-docqa-conv:{seed}:{split}")
    out = []
    for q in questions(world, cfg.docqa, seed=seed * 31 + (split == "val"), unanswerable=cfg.unanswerable,
                       absent=absent):
        result = search_text(index, q["question"], cfg.search)
        out.append(qa_conversation(q, result, rng, system=rng.random() < cfg.system_share))
    return out


def tool_conversations(cfg: ToolDataConfig | None = None, split: str = "train", seed: int = 0):
    """The calculator and search conversations of one split, interleaved (seeded)."""
    from llmlab.tasks.calc_tasks import calc_conversations

    cfg = cfg or ToolDataConfig()
    convs = calc_conversations(cfg.calc, split, seed) + (docqa_conversations(cfg, split, seed) if cfg.docqa else [])
    random.Random(f"llmlab-tool-mix:{seed}:{split}").shuffle(convs)
    return convs


def write_tool_tasks(out, n_calc: int = 10000, n_docqa: int = 4000, n_val: int = 300, seed: int = 0,
                     entities: int = 1000, cfg: ToolDataConfig | None = None) -> dict:
    """Write GRPO tasks under ``out``: ``calc_{train,val}.jsonl``, and with ``n_docqa`` a world's documents
    (``docs/``), their index (``index/``), ``docqa_{train,val}.jsonl`` and the mixes ``tools_{train,val}.jsonl``.
    A document task's ``answer`` is the whole expected reply (``FACT [n]`` or ``IDK``), so exact match checks the
    citation too; ``entities`` made-up things are asked about (each file written is fsynced: keep it modest).
    Returns counts."""
    from pathlib import Path

    from llmlab.chat.pref_data import write_jsonl
    from llmlab.tasks.calc_tasks import calc_tasks
    from llmlab.tasks.docqa import IDK, answer_passage, make_world, questions, write_documents
    from llmlab.tools.retrieval import Index, build_index, search_text

    cfg = cfg or ToolDataConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    calc_train, calc_val = calc_tasks(n_calc, "train", seed), calc_tasks(n_val, "val", seed)
    write_jsonl(out / "calc_train.jsonl", calc_train)
    write_jsonl(out / "calc_val.jsonl", calc_val)
    info = {"out": str(out), "n_train": n_calc, "n_val": n_val, "seed": seed}
    if not n_docqa:
        return info
    # Training-side names, another seed than SFT's conversations: new documents for the policy to read.
    n_ent = min(entities, n_docqa + n_val)
    world = make_world(n_ent, "train", seed + 50_000)
    absent = make_world(max(10, n_ent // 3), "train", seed + 60_000, taken={e.name for e in world})
    write_documents(world, out / "docs")
    summary = build_index(out / "docs", out / "index", IndexConfig(chunk_chars=cfg.chunk_chars), rebuild=True)
    index = Index.load(out / "index")
    tasks = []
    for q in questions(world, n_docqa + n_val, seed=seed + 70_000, unanswerable=cfg.unanswerable, absent=absent):
        result = search_text(index, q["question"], cfg.search)
        n = answer_passage(result, q["answer"]) if q["answer"] is not None else None
        tasks.append({"prompt": q["question"], "answer": f"{q['answer']} [{n}]" if n is not None else IDK,
                      "kind": "docqa", "answerable": q["answer"] is not None})
    dq_train, dq_val = tasks[:n_docqa], tasks[n_docqa:]
    write_jsonl(out / "docqa_train.jsonl", dq_train)
    write_jsonl(out / "docqa_val.jsonl", dq_val)
    mix = calc_train + dq_train
    random.Random(f"llmlab-tool-tasks:{seed}").shuffle(mix)
    write_jsonl(out / "tools_train.jsonl", mix)
    write_jsonl(out / "tools_val.jsonl", calc_val + dq_val)
    return info | {"n_docqa_train": len(dq_train), "n_docqa_val": len(dq_val), "documents": summary["files"],
                   "chunks": summary["chunks"]}
