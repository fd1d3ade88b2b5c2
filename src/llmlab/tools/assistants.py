"""Custom assistants (the seeds' "GPTs"): a saved profile -- a system prompt, a model, the tools it may use, the
user's own documents (an index), and sampling defaults -- that a chat or the server loads by name.

    llmlab assistant create --name notes --system "Answer from my notes; cite them." --docs notes/ \\
        --tools search,calc --model runs/speedrun/sft
    llmlab assistant list | show notes | update notes | delete notes
    llmlab chat --assistant notes

    from llmlab.tools.assistants import create_assistant, load_assistant, list_assistants, served_models
    a = load_assistant("notes"); a.model, a.tools, a.index_path(), a.search_config(), a.sampling
    served_models()     # [{"id": "assistant:notes", "object": "model", ...}]: the server's /v1/models entries
    resolve_model("assistant:notes")                       # -> the Assistant (None for any other model id)

Where they live: ``$LLMLAB_HOME/assistants/NAME/`` (default ``~/.llmlab/assistants``): ``assistant.json``
(``"format": "llmlab-assistant"``, ``"version": 1``) and, with ``--docs``, ``index/`` (``llmlab index``'s folder;
``assistant update NAME`` re-reads only the documents that changed). Names are 1-64 letters, digits, ``.``,
``_`` or ``-``. ``--docs`` adds the ``search`` tool; ``search`` without documents is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.errors import LlmlabError

ASSISTANT_FORMAT, ASSISTANT_VERSION = "llmlab-assistant", 1
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MODEL_PREFIX = "assistant:"
DEFAULT_SAMPLING = {"temperature": 0.7, "top_p": 0.9, "top_k": 0, "max_new_tokens": 128}


def assistants_dir(home: str | Path | None = None) -> Path:
    """``$LLMLAB_HOME/assistants`` (``home`` overrides it; default ``~/.llmlab``)."""
    base = Path(home) if home is not None else Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".llmlab")
    return base / "assistants"


@dataclass
class Assistant:
    name: str
    system: str = ""
    model: str | None = None  # a run folder (absolute)
    tools: list[str] = field(default_factory=list)
    docs: str | None = None  # the documents folder or file (absolute), when it has an index
    sampling: dict = field(default_factory=lambda: dict(DEFAULT_SAMPLING))
    search: dict = field(default_factory=dict)  # SearchConfig fields
    created: float = 0.0
    updated: float = 0.0
    folder: Path | None = field(default=None, repr=False, compare=False)

    def index_path(self) -> Path | None:
        return self.folder / "index" if self.folder is not None and self.docs else None

    def search_config(self):
        from llmlab.tools.retrieval import SearchConfig

        return SearchConfig(**self.search)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("folder")
        return {"format": ASSISTANT_FORMAT, "version": ASSISTANT_VERSION, **d}


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise LlmlabError(f"assistant name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (starting with a "
                          "letter or digit)")
    return name


def create_assistant(name: str, *, system: str = "", model: str | None = None, tools=(), docs: str | None = None,
                     sampling: dict | None = None, search: dict | None = None, overwrite: bool = False,
                     home: str | Path | None = None, chunk_chars: int | None = None) -> tuple["Assistant", dict]:
    """Save a profile (and index ``docs``); returns it and the index summary ({} without docs)."""
    from llmlab.tools.retrieval import IndexConfig, SearchConfig, build_index
    from llmlab.tools.toolset import parse_tools
    from llmlab.utils.io import write_json

    _check_name(name)
    tools = list(parse_tools(",".join(tools) if not isinstance(tools, str) else tools))
    if docs and "search" not in tools:
        tools.append("search")
    if "search" in tools and not docs:
        raise LlmlabError("the search tool needs the assistant's documents: --docs PATH")
    if model is not None:
        if not (Path(model) / "model_config.json").is_file():
            raise LlmlabError(f"{model}: not a model run folder (no model_config.json)")
        model = str(Path(model).resolve())
    samp = {**DEFAULT_SAMPLING, **(sampling or {})}
    unknown = set(samp) - set(DEFAULT_SAMPLING)
    if unknown:
        raise LlmlabError(f"unknown sampling setting {sorted(unknown)[0]!r}; settings: {', '.join(DEFAULT_SAMPLING)}")
    search_cfg = asdict(SearchConfig(**(search or {})))
    folder = assistants_dir(home) / name
    if (folder / "assistant.json").is_file() and not overwrite:
        raise LlmlabError(f"assistant {name!r} already exists ({folder}); delete it or pass --overwrite")
    summary = {}
    folder.mkdir(parents=True, exist_ok=True)
    if docs:
        cfg = IndexConfig(chunk_chars=chunk_chars) if chunk_chars else IndexConfig()
        summary = build_index(docs, folder / "index", cfg, rebuild=overwrite)
    elif (folder / "index").exists():
        shutil.rmtree(folder / "index")
    now = time.time()
    a = Assistant(name, system, model, tools, str(Path(docs).resolve()) if docs else None, samp, search_cfg,
                  created=now, updated=now, folder=folder)
    write_json(folder / "assistant.json", a.to_json())
    return a, summary


def load_assistant(name: str, home: str | Path | None = None) -> Assistant:
    """The saved profile ``name``; an unknown name or a profile of another version is a one-line error."""
    from llmlab.utils.io import read_json

    _check_name(name)
    folder = assistants_dir(home) / name
    path = folder / "assistant.json"
    if not path.is_file():
        known = ", ".join(a.name for a in list_assistants(home)) or "none"
        raise LlmlabError(f"unknown assistant {name!r}: {path} not found (assistants: {known})")
    d = read_json(path, "assistant profile")
    if not isinstance(d, dict) or d.get("format") != ASSISTANT_FORMAT:
        raise LlmlabError(f"{path}: not an llmlab assistant profile")
    if d.get("version") != ASSISTANT_VERSION:
        raise LlmlabError(f"{path}: assistant profile version {d.get('version')!r}, this llmlab reads version "
                          f"{ASSISTANT_VERSION}; create it again")
    keys = {f for f in Assistant.__dataclass_fields__ if f != "folder"}
    try:
        return Assistant(**{k: v for k, v in d.items() if k in keys}, folder=folder)
    except TypeError as e:
        raise LlmlabError(f"{path}: malformed assistant profile ({e})") from None


def list_assistants(home: str | Path | None = None) -> list[Assistant]:
    """Every readable profile, by name (unreadable ones are left out; ``load_assistant`` says why)."""
    root = assistants_dir(home)
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if (d / "assistant.json").is_file() and NAME_RE.fullmatch(d.name):
            try:
                out.append(load_assistant(d.name, home))
            except LlmlabError:
                continue
    return out


def update_assistant(name: str, home: str | Path | None = None) -> tuple[Assistant, dict]:
    """Re-index the assistant's documents: only new and changed files are read."""
    from llmlab.tools.retrieval import IndexConfig, build_index, read_manifest
    from llmlab.utils.io import write_json

    a = load_assistant(name, home)
    if not a.docs:
        raise LlmlabError(f"assistant {name!r} has no documents to update")
    cfg = read_manifest(a.index_path()).get("config", {}) if a.index_path().exists() else {}
    summary = build_index(a.docs, a.index_path(), IndexConfig(**cfg) if cfg else None)
    a.updated = time.time()
    write_json(a.folder / "assistant.json", a.to_json())
    return a, summary


def delete_assistant(name: str, home: str | Path | None = None) -> Path:
    """Remove the profile and its index; returns the folder removed."""
    a = load_assistant(name, home)
    shutil.rmtree(a.folder)
    return a.folder


def served_models(home: str | Path | None = None) -> list[dict]:
    """The assistants as OpenAI ``/v1/models`` entries: ``{"id": "assistant:NAME", "object": "model", "created",
    "owned_by": "llmlab", "llmlab": {model, tools, has_documents, system}}``."""
    return [{"id": MODEL_PREFIX + a.name, "object": "model", "created": int(a.created), "owned_by": "llmlab",
             "llmlab": {"model": a.model, "tools": a.tools, "has_documents": bool(a.docs), "system": a.system}}
            for a in list_assistants(home)]


def resolve_model(model_id: str, home: str | Path | None = None) -> Assistant | None:
    """The assistant a server model id names (``assistant:NAME``), or None for any other id; an unknown
    assistant is a one-line error."""
    if not model_id.startswith(MODEL_PREFIX):
        return None
    return load_assistant(model_id[len(MODEL_PREFIX):], home)
