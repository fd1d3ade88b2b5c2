"""Read a Hugging Face tokenizer folder into an ``ImportedTokenizer`` spec (``tokenizer/imported.py``).

    from llmlab.tokenizer.imported import ImportedTokenizer
    tok = ImportedTokenizer.from_hf("path/to/model")       # calls spec_from_hf

Files read (only ``tokenizer.json`` is required):

* ``tokenizer.json``: the BPE model (vocab, merges, ``byte_fallback``, ``unk_token``, ``ignore_merges``), the
  normalizer (NFC/NFKC..., Replace, Prepend, Lowercase, Strip, Sequence), the pre-tokenizer (ByteLevel, Split,
  Digits, Metaspace, Sequence), added tokens with their flags, the decoder (which leading space it strips) and
  the post-processor (``TemplateProcessing`` putting the bos token in front: the add-BOS rule).
* ``tokenizer_config.json``: ``bos_token``/``eos_token``/``pad_token``/``unk_token``, ``add_bos_token`` /
  ``add_eos_token`` (which override the post-processor, as transformers' Llama tokenizers do) and
  ``chat_template`` (a string, or named templates; ``chat_template.jinja`` beside it wins, as in transformers).
* ``special_tokens_map.json``: the same special tokens, for older folders.
* ``generation_config.json``: ``eos_token_id`` (an id or a list): more ids that end a generation.

Anything else (WordPiece, Unigram, BPE dropout, subword prefixes, other pre-tokenizers) is refused with a
one-line ``LlmlabError`` naming the file and what it has.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import regex

from llmlab.errors import LlmlabError
from llmlab.tokenizer.imported import BYTE, CONTROL, META, NORMAL, UNUSED, USER_DEFINED


def _read(path: Path, what: str, required: bool = False):
    if not path.is_file():
        if required:
            raise LlmlabError(f"{path}: not found (a Hugging Face tokenizer folder needs {path.name})")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LlmlabError(f"{path}: cannot read the {what} ({type(e).__name__}: {e})") from None


def _token_text(value) -> str | None:
    """``"<s>"`` or ``{"content": "<s>", ...}`` (tokenizer_config's AddedToken form)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _pattern(p, where: str) -> tuple[str, bool]:
    """A Split/Replace pattern: ``(regex source, is_regex)``."""
    if isinstance(p, dict) and "Regex" in p:
        return p["Regex"], True
    if isinstance(p, dict) and "String" in p:
        return p["String"], False
    raise LlmlabError(f"{where}: pattern {p!r} is neither a String nor a Regex")


def _normalizer(n, where: str) -> list[dict]:
    if not n:
        return []
    kind = n.get("type")
    if kind == "Sequence":
        return [s for sub in n.get("normalizers") or [] for s in _normalizer(sub, where)]
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return [{"type": kind.lower()}]
    if kind == "Lowercase":
        return [{"type": "lowercase"}]
    if kind == "Replace":
        src, is_re = _pattern(n.get("pattern"), where)
        return [{"type": "replace", "pattern": src, "regex": is_re, "content": n.get("content", "")}]
    if kind == "Prepend":
        return [{"type": "prepend", "prepend": n.get("prepend", META)}]
    if kind == "Strip":
        return [{"type": "strip", "left": bool(n.get("strip_left", True)), "right": bool(n.get("strip_right", True))}]
    raise LlmlabError(f"{where}: normalizer {kind!r} is not supported (NFC/NFD/NFKC/NFKD, Lowercase, Replace, "
                      f"Prepend, Strip, Sequence are)")


_BEHAVIORS = {"Isolated": "isolated", "Removed": "removed", "MergedWithPrevious": "merged_with_previous",
              "MergedWithNext": "merged_with_next", "Contiguous": "contiguous"}


def _pre_tokenizer(p, where: str) -> list[dict]:
    if not p:
        return []
    kind = p.get("type")
    if kind == "Sequence":
        return [s for sub in p.get("pretokenizers") or [] for s in _pre_tokenizer(sub, where)]
    if kind == "ByteLevel":
        return [{"type": "byte_level", "add_prefix_space": bool(p.get("add_prefix_space", True)),
                 "use_regex": bool(p.get("use_regex", True))}]
    if kind == "Split":
        src, is_re = _pattern(p.get("pattern"), where)
        behavior = _BEHAVIORS.get(p.get("behavior"))
        if behavior is None:
            raise LlmlabError(f"{where}: Split behavior {p.get('behavior')!r} is not supported")
        try:
            regex.compile(src if is_re else regex.escape(src))
        except regex.error as e:
            raise LlmlabError(f"{where}: the Split regex does not compile ({e})") from None
        return [{"type": "split", "pattern": src if is_re else regex.escape(src), "behavior": behavior,
                 "invert": bool(p.get("invert", False))}]
    if kind == "Digits":
        return [{"type": "digits", "individual": bool(p.get("individual_digits", False)), "behavior": "isolated"}]
    if kind == "Metaspace":
        scheme = p.get("prepend_scheme")
        if scheme is None:  # older files: add_prefix_space
            scheme = "always" if p.get("add_prefix_space", True) else "never"
        if scheme not in ("always", "first", "never"):
            raise LlmlabError(f"{where}: Metaspace prepend_scheme {scheme!r} is not supported")
        return [{"type": "metaspace", "replacement": p.get("replacement", META), "prepend_scheme": scheme,
                 "split": bool(p.get("split", True))}]
    raise LlmlabError(f"{where}: pre-tokenizer {kind!r} is not supported (ByteLevel, Split, Digits, Metaspace, "
                      f"Sequence are)")


def _decoder_rule(d) -> str | None:
    """Which leading space the decoder removes: ``one_space`` (Strip), ``first_token`` (Metaspace) or None."""
    if not d:
        return None
    kind = d.get("type")
    if kind == "Sequence":
        for sub in d.get("decoders") or []:
            rule = _decoder_rule(sub)
            if rule:
                return rule
        return None
    if kind == "Strip" and d.get("content", " ") == " " and int(d.get("start", 0)) >= 1:
        return "one_space"
    if kind == "Metaspace":
        scheme = d.get("prepend_scheme") or ("always" if d.get("add_prefix_space", True) else "never")
        return None if scheme == "never" else "first_token"
    return None


def _post_processor(p, token_ids: dict[str, int]) -> tuple[int | None, int | None]:
    """``(id put first, id put last)`` by a TemplateProcessing post-processor for a single sequence."""
    if not p:
        return None, None
    if p.get("type") == "Sequence":
        for sub in p.get("processors") or []:
            got = _post_processor(sub, token_ids)
            if got != (None, None):
                return got
        return None, None
    if p.get("type") != "TemplateProcessing":
        return None, None
    single = p.get("single") or []
    specials = p.get("special_tokens") or {}

    def ident(item):
        tok = (item or {}).get("SpecialToken")
        if not tok:
            return None
        ids = (specials.get(tok["id"]) or {}).get("ids") or []
        return ids[0] if ids else token_ids.get(tok["id"])

    first = ident(single[0]) if single else None
    last = ident(single[-1]) if len(single) > 1 else None
    return first, last


def _chat_template(folder: Path, config: dict) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    t = config.get("chat_template")
    if isinstance(t, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {d.get("name"): d.get("template") for d in t if isinstance(d, dict)}
        t = named.get("default") or next(iter(named.values()), None)
    if t is None:
        chat = folder / "chat_template.json"  # processors' older spelling
        data = _read(chat, "chat template")
        t = data.get("chat_template") if isinstance(data, dict) else None
    if t is not None and not isinstance(t, str):
        raise LlmlabError(f"{folder / 'tokenizer_config.json'}: chat_template must be a string")
    return t


def spec_from_hf(path: str | os.PathLike) -> dict:
    """The ``ImportedTokenizer`` spec of the HF tokenizer in folder ``path`` (see the module doc)."""
    folder = Path(path)
    if folder.is_file() and folder.name == "tokenizer.json":
        folder = folder.parent
    if not folder.is_dir():
        raise LlmlabError(f"{folder}: Hugging Face folder not found")
    file = folder / "tokenizer.json"
    where = str(file)
    data = _read(file, "tokenizer", required=True)
    if not isinstance(data, dict):
        raise LlmlabError(f"{where}: not a tokenizers JSON object")
    config = _read(folder / "tokenizer_config.json", "tokenizer config") or {}
    smap = _read(folder / "special_tokens_map.json", "special tokens map") or {}
    gen = _read(folder / "generation_config.json", "generation config") or {}

    model = data.get("model") or {}
    if model.get("type") not in ("BPE", None) or "vocab" not in model:
        raise LlmlabError(f"{where}: tokenizer model {model.get('type')!r} is not supported (only BPE: byte-level "
                          f"or SentencePiece-style)")
    if model.get("dropout"):
        raise LlmlabError(f"{where}: BPE dropout {model['dropout']} makes encoding random; not supported")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise LlmlabError(f"{where}: BPE with a continuing-subword prefix or end-of-word suffix is not supported")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise LlmlabError(f"{where}: the BPE model has no vocabulary")
    added = data.get("added_tokens") or []
    try:
        n = max([int(i) for i in vocab.values()] + [int(a["id"]) for a in added]) + 1
    except (KeyError, TypeError, ValueError) as e:
        raise LlmlabError(f"{where}: malformed vocabulary or added tokens ({type(e).__name__}: {e})") from None
    tokens = [""] * n
    types = [UNUSED] * n
    for s, i in vocab.items():
        tokens[int(i)] = s
        types[int(i)] = NORMAL
    for a in added:
        tokens[int(a["id"])] = a["content"]
        types[int(a["id"])] = CONTROL if a.get("special", False) else USER_DEFINED
    merges = []
    for r, m in enumerate(model.get("merges") or []):
        if isinstance(m, str):
            parts = m.split(" ")
            if len(parts) != 2:
                raise LlmlabError(f"{where}: merge {r} {m!r} is not two tokens separated by a space")
        else:
            parts = m
        a, b = parts
        if a not in vocab or b not in vocab:
            raise LlmlabError(f"{where}: merge {r} ({a!r}, {b!r}) uses a token that is not in the vocabulary")
        merges.append((int(vocab[a]), int(vocab[b])))

    normalizer = _normalizer(data.get("normalizer"), where)
    pre = _pre_tokenizer(data.get("pre_tokenizer"), where)
    kinds = {s["type"] for s in pre}
    decoder = data.get("decoder") or {}
    sp_like = "metaspace" in kinds or any(s["type"] in ("replace", "prepend") and META in
                                          (s.get("content", "") + s.get("prepend", "")) for s in normalizer)
    if "byte_level" in kinds:
        kind = "byte_bpe"
    elif sp_like or model.get("byte_fallback"):
        kind = "sp_bpe"
    else:
        raise LlmlabError(f"{where}: the tokenizer is neither byte-level (a ByteLevel pre-tokenizer) nor "
                          f"SentencePiece-style (Metaspace, or ▁ for spaces); not supported")
    if kind == "sp_bpe":
        for i, s in enumerate(tokens):
            if types[i] == NORMAL and len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
                types[i] = BYTE

    token_ids = {s: i for i, s in reversed(list(enumerate(tokens))) if types[i] != UNUSED}

    def lookup(value, what: str) -> int | None:
        text = _token_text(value)
        if text is None:
            return None
        if text not in token_ids:
            raise LlmlabError(f"{folder}: {what} {text!r} is not in the vocabulary")
        return token_ids[text]

    def named(key: str):
        return config.get(key) if config.get(key) is not None else smap.get(key)

    bos_id = lookup(named("bos_token"), "bos_token")
    eos_id = lookup(named("eos_token"), "eos_token")
    pad_id = lookup(named("pad_token"), "pad_token")
    unk_name = model.get("unk_token")
    unk_id = token_ids.get(unk_name) if unk_name else None
    first, last = _post_processor(data.get("post_processor"), token_ids)
    add_bos, add_eos = first is not None, last is not None
    if bos_id is None and first is not None:
        bos_id = first
    if isinstance(config.get("add_bos_token"), bool):
        add_bos = config["add_bos_token"]
    if isinstance(config.get("add_eos_token"), bool):
        add_eos = config["add_eos_token"]
    if add_bos and bos_id is None:
        raise LlmlabError(f"{folder}: add_bos_token is set but there is no bos_token")
    gen_eos = gen.get("eos_token_id")
    gen_eos = [gen_eos] if isinstance(gen_eos, int) else list(gen_eos or [])
    eos_ids = list(dict.fromkeys(([eos_id] if eos_id is not None else []) + [int(i) for i in gen_eos]))
    for i in eos_ids:
        if not 0 <= i < n:
            raise LlmlabError(f"{folder / 'generation_config.json'}: eos_token_id {i} is outside the vocabulary")
    template_tokens = {}
    for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
        text = _token_text(named(key))
        if text is not None:
            template_tokens[key] = text
    return {
        "model": kind,
        "semantics": "hf",
        "source": where,
        "tokens": tokens,
        "token_types": types,
        "bpe_ids": sorted(int(i) for i in vocab.values()),
        "merges": merges,
        "merge_by": "rank",
        "ignore_merges": bool(model.get("ignore_merges", False)),
        "byte_fallback": bool(model.get("byte_fallback", False)),
        "unk_id": unk_id,
        "fuse_unk": bool(model.get("fuse_unk", False)),
        "normalizer": normalizer,
        "pre_tokenizer": pre,
        "decoder": {"strip_prefix": _decoder_rule(decoder)},
        "added_tokens": [{k: a.get(k) for k in ("id", "content", "special", "lstrip", "rstrip", "single_word",
                                                 "normalized")} for a in added],
        "bos_id": bos_id,
        "eos_ids": eos_ids,
        "pad_id": pad_id,
        "add_bos": add_bos,
        "add_eos": add_eos,
        "chat_template": _chat_template(folder, config),
        "template_tokens": template_tokens,
    }
