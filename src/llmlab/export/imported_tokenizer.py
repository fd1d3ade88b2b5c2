"""The tokenizer part of an imported run folder (``RUN/tokenizer/``): the one seam between the weights importers
(``hf.py``, ``gguf_import.py``) and the tokenizer a model ships with.

    order = write_tokenizer(run_dir / "tokenizer", HFTokenizerFiles(hf_dir), vocab_size)    # llmlab import hf
    write_tokenizer(run_dir / "tokenizer", GGUFTokenizerFields(fields, path), vocab_size)    # llmlab import gguf
    imported_source(run_dir / "tokenizer")      # None for an llmlab tokenizer, else "hf" or "gguf"

What it does: a Hugging Face ``tokenizer.json`` that is an llmlab-style byte-level BPE (every byte a token,
merges that rebuild the vocabulary, llmlab's chat special tokens: what ``llmlab export hf`` writes) becomes an
llmlab ``Tokenizer`` (``hf.tokenizer_from_hf``), and ``order`` renumbers the embedding rows into its id layout.
Any other tokenizer keeps the model's own ids: ``tokenizer.json`` becomes the ``ImportedTokenizer``
(``llmlab.tokenizer.imported``, exact HF / llama.cpp ids, the model's chat template) that
``runs.load_tokenizer`` returns, and the source as it came is kept under ``source/`` (the HF folder's
tokenizer files, or the GGUF file's ``tokenizer.*`` metadata with its value types, ``gguf_tokenizer.json``)
beside ``imported.json`` (format ``llmlab-imported-tokenizer`` v1) naming it. The exporters use ``hf_files`` and
``add_to_gguf`` to write that source back out: as it came, or between the two formats for byte-level BPE
vocabularies. A tokenizer the imported class refuses (WordPiece, Unigram...) is still kept, so the weights
import, run and export; loading it says why it cannot encode (``imported.json``'s ``unsupported``).
A source without a tokenizer is a one-line error.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.utils.io import atomic_write, read_json, write_json

IMPORTED = "imported.json"
FORMAT, VERSION = "llmlab-imported-tokenizer", 1
GGUF_FIELDS = "gguf_tokenizer.json"
SOURCE = "source"  # the kept files, under the run's tokenizer/
# The files of an HF folder that describe its tokenizer, chat template and stop tokens.
HF_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
            "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json",
            "generation_config.json")


@dataclass
class HFTokenizerFiles:
    path: Path  # the Hugging Face model folder


@dataclass
class GGUFTokenizerFields:
    fields: dict  # key -> gguf.ReaderField, the file's metadata
    path: Path


def write_tokenizer(out_dir: Path, source, vocab_size: int) -> list[int] | None:
    """Write the tokenizer of ``source`` into ``out_dir``. Returns the renumbering of the embedding rows
    (``order[our_id]`` = the source's id) when the ids change, else None (the model's own ids)."""
    out_dir = Path(out_dir)
    if isinstance(source, HFTokenizerFiles):
        return _write_hf(out_dir, Path(source.path), vocab_size)
    if isinstance(source, GGUFTokenizerFields):
        _write_gguf(out_dir, source, vocab_size)
        return None
    raise TypeError(f"unknown tokenizer source {source!r}")


def _write_hf(out_dir: Path, path: Path, vocab_size: int) -> list[int] | None:
    from llmlab.export.hf import tokenizer_from_hf

    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer.model").is_file():
        raise LlmlabError(f"{path}: no tokenizer (tokenizer.json or tokenizer.model); pass --tokenizer DIR (an "
                          f"llmlab tokenizer) to import the weights")
    try:
        tok, order = tokenizer_from_hf(path)
    except LlmlabError:
        tok = order = None  # not llmlab's own layout: keep the model's tokenizer as it is
    if tok is not None and tok.vocab_size == vocab_size:
        tok.save(out_dir)
        return order if order != list(range(len(order))) else None
    src = out_dir / SOURCE
    src.mkdir(parents=True, exist_ok=True)
    files = [name for name in HF_FILES if (path / name).is_file()]
    for name in files:
        with atomic_write(src / name, "wb") as f:
            f.write((path / name).read_bytes())
    _write_imported(out_dir, "hf", files, path, vocab_size)
    return None


def _write_imported(out_dir: Path, source: str, files: list[str], path: Path, vocab_size: int) -> None:
    """``imported.json`` and, when the class reads it, the ``ImportedTokenizer`` (``tokenizer.json``)."""
    from llmlab.tokenizer.imported import ImportedTokenizer

    meta = {"format": FORMAT, "version": VERSION, "source": source, "files": files}
    try:
        tok = ImportedTokenizer.from_hf(path) if source == "hf" else ImportedTokenizer.from_gguf(path)
        if tok.vocab_size > vocab_size:
            raise LlmlabError(f"{path}: the tokenizer has {tok.vocab_size} tokens but the model only {vocab_size} "
                              f"embedding rows")
    except LlmlabError as e:
        meta["unsupported"] = str(e)
    else:
        tok.save(out_dir)
    write_json(out_dir / IMPORTED, meta)


def _write_gguf(out_dir: Path, source: GGUFTokenizerFields, vocab_size: int) -> None:
    fields = {k: f for k, f in source.fields.items() if k.startswith("tokenizer.")}
    if "tokenizer.ggml.model" not in fields or "tokenizer.ggml.tokens" not in fields:
        raise LlmlabError(f"{source.path}: no tokenizer in the GGUF metadata (tokenizer.ggml.model and "
                          f"tokenizer.ggml.tokens); llama.cpp cannot run it either")
    stored = {}
    for key, f in fields.items():
        sub = int(f.types[-1]) if len(f.types) > 1 else None
        value = f.contents()
        stored[key] = {"type": int(f.types[0]), "sub_type": sub, "value": _plain(value)}
    src = Path(out_dir) / SOURCE
    src.mkdir(parents=True, exist_ok=True)
    with atomic_write(src / GGUF_FIELDS, "w") as fh:
        json.dump(stored, fh, ensure_ascii=False)
    _write_imported(Path(out_dir), "gguf", [GGUF_FIELDS], Path(source.path), vocab_size)


def _plain(value):
    """numpy scalars/arrays as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def imported_source(tok_dir: Path) -> str | None:
    """``"hf"`` or ``"gguf"`` for a kept tokenizer, None for an llmlab tokenizer."""
    meta = Path(tok_dir) / IMPORTED
    if not meta.is_file():
        return None
    data = read_json(meta, "imported tokenizer")
    if data.get("format") != FORMAT or int(data.get("version", 0)) > VERSION:
        raise LlmlabError(f"{meta}: unknown imported-tokenizer format {data.get('format')!r} v{data.get('version')}")
    return data["source"]


def unsupported(tok_dir: Path) -> str | None:
    """Why a kept tokenizer cannot encode here (None when its ``ImportedTokenizer`` was written)."""
    meta = Path(tok_dir) / IMPORTED
    return read_json(meta, "imported tokenizer").get("unsupported") if meta.is_file() else None


def gguf_fields(tok_dir: Path) -> dict:
    """The kept GGUF metadata: key -> {"type", "sub_type", "value"}."""
    return read_json(Path(tok_dir) / SOURCE / GGUF_FIELDS, "GGUF tokenizer metadata")


# ----------------------------------------------------------------------------------------------------------
# Writing a kept tokenizer back out


def hf_files(tok_dir: Path, out_dir: Path, max_len: int) -> None:
    """Tokenizer files for an HF folder: the kept ones as they came, or from kept GGUF metadata of a byte-level
    BPE (``gpt2``) vocabulary a ``tokenizer.json`` (tokens, merges, special tokens) and its config."""
    tok_dir, out_dir = Path(tok_dir), Path(out_dir)
    if imported_source(tok_dir) == "hf":
        for name in read_json(tok_dir / IMPORTED, "imported tokenizer")["files"]:
            if name == "generation_config.json":
                continue  # the exporter writes its own from the same ids
            shutil.copyfile(tok_dir / SOURCE / name, out_dir / name)
        return
    f = {k: v["value"] for k, v in gguf_fields(tok_dir).items()}
    if f["tokenizer.ggml.model"] != "gpt2":
        raise LlmlabError(f"{tok_dir}: a {f['tokenizer.ggml.model']!r} GGUF tokenizer does not convert to Hugging "
                          f"Face's format here (byte-level BPE 'gpt2' vocabularies do)")
    tokens, types = f["tokenizer.ggml.tokens"], f.get("tokenizer.ggml.token_type") or [1] * len(f["tokenizer.ggml.tokens"])
    control = {i for i, t in enumerate(types) if t in (3, 4)}  # CONTROL, USER_DEFINED: added tokens
    data = {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": types[i] == 3} for i in sorted(control)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens)}, "merges": f.get("tokenizer.ggml.merges", [])},
    }
    with atomic_write(out_dir / "tokenizer.json", "w") as fh:
        json.dump(data, fh, ensure_ascii=False)
    names = {"bos_token": "tokenizer.ggml.bos_token_id", "eos_token": "tokenizer.ggml.eos_token_id",
             "pad_token": "tokenizer.ggml.padding_token_id"}
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_len,
           "add_bos_token": bool(f.get("tokenizer.ggml.add_bos_token", False)),
           "clean_up_tokenization_spaces": False}
    cfg.update({name: tokens[f[key]] for name, key in names.items() if key in f})
    if "tokenizer.chat_template" in f:
        cfg["chat_template"] = f["tokenizer.chat_template"]
    write_json(out_dir / "tokenizer_config.json", cfg)


def special_ids(tok_dir: Path) -> dict[str, int | list[int] | None]:
    """bos/eos/pad ids of a kept tokenizer (for config.json and generation_config.json), None where unknown."""
    tok_dir = Path(tok_dir)
    if imported_source(tok_dir) == "gguf":
        f = {k: v["value"] for k, v in gguf_fields(tok_dir).items()}
        eos = f.get("tokenizer.ggml.eos_token_id")
        eot = f.get("tokenizer.ggml.eot_token_id")
        return {"bos": f.get("tokenizer.ggml.bos_token_id"), "pad": f.get("tokenizer.ggml.padding_token_id"),
                "eos": [i for i in dict.fromkeys([eos, eot]) if i is not None] or None}
    gen = tok_dir / SOURCE / "generation_config.json"
    g = read_json(gen, "generation config") if gen.is_file() else {}
    return {"bos": g.get("bos_token_id"), "eos": g.get("eos_token_id"), "pad": g.get("pad_token_id")}


def add_to_gguf(tok_dir: Path, writer) -> None:
    """The kept tokenizer into a ``gguf.GGUFWriter``: kept GGUF metadata as it came, or a byte-level BPE
    ``tokenizer.json`` as llama.cpp's ``gpt2`` vocabulary (tokens, types, merges, special ids, chat template;
    no pre-tokenizer name, so llama.cpp splits with its default regex)."""
    import gguf

    tok_dir = Path(tok_dir)
    if imported_source(tok_dir) == "gguf":
        for key, v in gguf_fields(tok_dir).items():
            sub = gguf.GGUFValueType(v["sub_type"]) if v["sub_type"] is not None else None
            writer.add_key_value(key, v["value"], gguf.GGUFValueType(v["type"]), sub_type=sub)
        return
    path = tok_dir / SOURCE / "tokenizer.json"
    data = read_json(path, "tokenizer file") if path.is_file() else {}
    model = data.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or "ByteLevel" not in json.dumps(data.get("pre_tokenizer")):
        raise LlmlabError(f"{tok_dir}: this model's tokenizer does not convert to a GGUF vocabulary here (byte-level "
                          f"BPE tokenizer.json files do)")
    vocab = dict(model.get("vocab") or {})
    for t in data.get("added_tokens") or []:
        vocab.setdefault(t["content"], t["id"])
    n = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    for s, i in vocab.items():
        tokens[i] = s
    types = [gguf.TokenType.NORMAL] * n
    for t in data.get("added_tokens") or []:
        types[t["id"]] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    for i, s in enumerate(tokens):
        if s == f"[PAD{i}]":
            types[i] = gguf.TokenType.UNUSED
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []])
    ids = special_ids(tok_dir)
    cfg_path = tok_dir / SOURCE / "tokenizer_config.json"
    cfg = read_json(cfg_path, "tokenizer config") if cfg_path.is_file() else {}
    if ids["bos"] is not None:
        writer.add_bos_token_id(int(ids["bos"]))
    eos = ids["eos"][0] if isinstance(ids["eos"], list) else ids["eos"]
    if eos is not None:
        writer.add_eos_token_id(int(eos))
    if ids["pad"] is not None:
        writer.add_pad_token_id(int(ids["pad"]))
    writer.add_add_bos_token(bool(cfg.get("add_bos_token", False)))
    if isinstance(cfg.get("chat_template"), str):
        writer.add_chat_template(cfg["chat_template"])
