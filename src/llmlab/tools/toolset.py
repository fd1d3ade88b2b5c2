"""Tool sets by name: what ``--tools calc,python,search`` on ``chat`` and ``generate`` (and an assistant profile)
turns into -- a registry of tools and the tool loop that runs them for one model.

    from llmlab.tools.toolset import make_tool_loop, parse_tools
    loop = make_tool_loop(tokenizer, parse_tools("calc,search"), index="my_index")
    loop.generate(engine, prompts, params); loop.sources(answer)   # "Sources:\\n[1] notes.md, chunk 0"

``search`` needs an index (``llmlab index``); ``python`` runs in the sandbox (``tools/sandbox.py``), and where no
sandbox works a call's result says so (the chat goes on).
"""

from __future__ import annotations

from llmlab.errors import LlmlabError

TOOL_NAMES = ("calc", "python", "search")


def parse_tools(text: str | None) -> tuple[str, ...]:
    """``"calc,python"`` -> ``("calc", "python")``; an unknown name is a one-line error."""
    if not text:
        return ()
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in TOOL_NAMES]
    if bad:
        raise LlmlabError(f"unknown tool {bad[0]!r}; the tools are {', '.join(TOOL_NAMES)}")
    return names


def build_registry(names, *, index=None, search=None, sandbox=None):
    """A ``ToolRegistry`` with the named tools. ``index``: an ``Index`` or an index folder (``search`` needs
    one); ``search``: a ``SearchConfig``; ``sandbox``: a ``SandboxConfig`` for ``python``."""
    from llmlab.tools.runner import ToolRegistry, calc_tool, python_tool

    reg = ToolRegistry()
    for name in names:
        if name == "calc":
            reg.register(calc_tool())
        elif name == "python":
            reg.register(python_tool(sandbox))
        elif name == "search":
            reg.register(_search_tool(index, search))
        else:
            raise LlmlabError(f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}")
    return reg


def _load_index(index):
    from llmlab.tools.retrieval import Index

    if index is None:
        raise LlmlabError("the search tool needs an index: --index INDEX (build one with `llmlab index --docs PATH "
                          "--out INDEX`), or an assistant made with --docs")
    return index if isinstance(index, Index) else Index.load(index)


def _search_tool(index, search):
    from llmlab.tools.retrieval import search_tool

    return search_tool(_load_index(index), search)


def make_tool_loop(tokenizer, names, *, index=None, search=None, sandbox=None, max_calls: int = 4,
                   timeout_s: float = 30.0, result_filter=None):
    """The tool loop for a model with this tokenizer, with the named tools; ``loop.sources(answer)`` gives the
    source list of an answer's citations when ``search`` is one of them."""
    from llmlab.tools.loop import ToolLoop

    idx = _load_index(index) if "search" in names else None
    reg = build_registry(names, index=idx, search=search, sandbox=sandbox)
    loop = ToolLoop(reg, tokenizer, max_calls=max_calls, timeout_s=timeout_s, result_filter=result_filter)
    if idx is not None:
        loop.sources = lambda answer: answer_sources(answer, idx, search)
    return loop


def answer_sources(answer, index, search=None) -> str:
    """``Sources:`` lines for the passages an answer cites, from the search calls it made (each search is run
    again: results are deterministic, so ``[n]`` means what the model was shown)."""
    from llmlab.tools.retrieval import SearchConfig, source_list
    from llmlab.tools.runner import ToolRegistry

    cfg = search or SearchConfig()
    reg = ToolRegistry()
    reg.register(_search_tool(index, cfg))
    hits = []
    for c in answer.calls:
        if c.name == "search" and c.ok:
            query = reg.parse(c.body).arguments.get("query", "")
            hits = index.search(query, k=cfg.k, min_relevance=cfg.min_relevance)  # the last search is the one cited
    return source_list(answer.final_text, hits)
