"""Conversations that teach the speedrun-size model its tools: the calculator for 2-3 digit arithmetic
(``tasks/calc_tasks.py``) and the search tool for questions about the user's documents (``tasks/docqa.py``),
with every search result produced by the real retriever over made-up documents, so what the model learns to
read is exactly what ``search`` returns at run time.

    from llmlab.tools.teach import ToolDataConfig, tool_conversations
    convs = tool_conversations(ToolDataConfig(calc=4000, docqa=4000), split="train", seed=0)

``llmlab sft --data bundled`` mixes these into the generated default conversations (``train/sft.py``); the
held-out side of the same generators scores the result (``eval/tools_eval.py``).
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
