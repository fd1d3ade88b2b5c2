"""Read a GGUF file's tokenizer metadata into an ``ImportedTokenizer`` spec, with llama.cpp's rules.

    from llmlab.tokenizer.imported import ImportedTokenizer
    tok = ImportedTokenizer.from_gguf("model.gguf")        # calls spec_from_gguf
    # == llama_cpp.Llama(model_path="model.gguf", vocab_only=True).tokenize(text.encode(), add_bos=False, special=True)

Keys read (the ``gguf`` package's reader; tensors are not touched):

* ``tokenizer.ggml.model``: ``gpt2`` (byte-level BPE: ``.merges`` ranked pairs, the split regexes named by
  ``tokenizer.ggml.pre``) or ``llama`` (SentencePiece: ``.scores`` rank the merges, ``<0xNN>`` byte fallback,
  a space put in front of each text fragment unless ``tokenizer.ggml.add_space_prefix`` is false).
* ``.tokens``, ``.token_type`` (normal, unknown, control, user-defined, unused, byte), ``.scores``, ``.merges``.
* ``.bos_token_id``, ``.eos_token_id``, ``.eot_token_id``, ``.eom_token_id``, ``.padding_token_id``,
  ``.unknown_token_id``, ``.add_bos_token``, ``.add_eos_token`` and ``tokenizer.chat_template``.

llama.cpp's defaults apply where a key is missing (the ``llama`` model adds bos; ``gpt2`` adds it for the
Llama-3 pre-tokenizers). Generation stops at eos, eot, eom and at the end-of-turn tokens llama.cpp recognises
by name. Control and unknown tokens are special (recognised in text only when allowed); user-defined tokens
are always recognised. The split regexes per ``tokenizer.ggml.pre`` name are the models' own (GPT-2's, Llama-3's,
Qwen2's, SmolLM's digit split + GPT-2's), with the contractions spelled in ASCII as llama.cpp matches them.
"""

from __future__ import annotations

import os
from pathlib import Path

from llmlab.errors import LlmlabError
from llmlab.tokenizer.imported import BYTE, CONTROL, NORMAL, UNKNOWN, UNUSED, USER_DEFINED

_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_LLAMA3 = _CONTRACTIONS + r"""|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
_QWEN2 = _CONTRACTIONS + r"""|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# tokenizer.ggml.pre -> (split regexes applied in turn, ignore_merges, add_bos by default)
PRE_TOKENIZERS: dict[str, tuple[tuple[str, ...], bool, bool]] = {}
for _names, _value in (
    (("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"), ((_LLAMA3,), True, True)),
    (("dbrx", "smaug-bpe", "chatglm-bpe", "glm4"), ((_LLAMA3,), False, False)),
    (("gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", "jina-es", "jina-de", "gigachat", "mellum", "trillion"),
     ((_GPT2,), False, False)),
    (("qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan", "grok-2"), ((_QWEN2,), False, False)),
    (("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"),
     ((r"\p{N}", _GPT2), False, False)),
    (("default",), ((r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"), False, False)),
    (("falcon",), ((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]"), False, False)),
):
    for _n in _names:
        PRE_TOKENIZERS[_n] = _value

# Tokens llama.cpp ends a generation at by their text (besides eos/eot/eom).
END_OF_TURN_NAMES = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                     "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>")


def _reader(path: Path):
    try:
        import gguf
    except ImportError:
        raise LlmlabError("reading GGUF needs the gguf package: pip install 'llmlab[gguf]'") from None
    if not path.is_file():
        raise LlmlabError(f"{path}: GGUF file not found")
    try:
        return gguf.GGUFReader(str(path))
    except Exception as e:  # the reader raises ValueError, struct errors, IndexError... on a bad file
        raise LlmlabError(f"{path}: not a readable GGUF file ({type(e).__name__}: {str(e)[:120]})") from None


def read_metadata(path: str | os.PathLike, prefix: str = "tokenizer.") -> dict:
    """The GGUF key/value metadata whose keys start with ``prefix``, as Python values."""
    path = Path(path)
    reader = _reader(path)
    out = {}
    for key, field in reader.fields.items():
        if not key.startswith(prefix):
            continue
        try:
            out[key] = field.contents()
        except (UnicodeDecodeError, ValueError, IndexError) as e:
            raise LlmlabError(f"{path}: metadata {key} cannot be read ({type(e).__name__})") from None
    return out


def spec_from_gguf(path: str | os.PathLike) -> dict:
    """The ``ImportedTokenizer`` spec of the tokenizer stored in the GGUF file ``path``."""
    path = Path(path)
    where = str(path)
    md = read_metadata(path)

    def get(key: str, default=None):
        return md.get(f"tokenizer.ggml.{key}", default)

    model = get("model")
    if model is None:
        raise LlmlabError(f"{where}: no tokenizer in this GGUF file (tokenizer.ggml.model is missing)")
    if model not in ("gpt2", "llama"):
        raise LlmlabError(f"{where}: tokenizer model {model!r} is not supported (gpt2: byte-level BPE, "
                          f"llama: SentencePiece BPE)")
    tokens = get("tokens")
    if not tokens:
        raise LlmlabError(f"{where}: tokenizer.ggml.tokens is missing or empty")
    n = len(tokens)
    types = [int(t) for t in get("token_type") or [NORMAL] * n]
    if len(types) != n:
        raise LlmlabError(f"{where}: {len(types)} token types for {n} tokens")
    types = [t if t in (NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE) else NORMAL for t in types]
    tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]  # llama.cpp renames empty tokens
    ids = {}
    for i, s in enumerate(tokens):
        ids.setdefault(s, i)

    def tid(key: str, default=None):
        v = get(key, default)
        if v is None or int(v) < 0 or int(v) >= n:
            return None
        return int(v)

    spec: dict = {"model": "byte_bpe" if model == "gpt2" else "sp_bpe", "semantics": "llama.cpp", "source": where,
                  "tokens": tokens, "token_types": types}
    if model == "gpt2":
        pre = get("pre") or "default"
        if pre not in PRE_TOKENIZERS:
            raise LlmlabError(f"{where}: pre-tokenizer {pre!r} (tokenizer.ggml.pre) is not supported; supported: "
                              f"{', '.join(sorted(PRE_TOKENIZERS))}")
        regexes, ignore_merges, add_bos = PRE_TOKENIZERS[pre]
        merges = []
        for r, m in enumerate(get("merges") or []):
            a, sep, b = m.partition(" ")
            if not sep or a not in ids or b not in ids:
                raise LlmlabError(f"{where}: merge {r} {m!r} is not two tokens of the vocabulary")
            merges.append((ids[a], ids[b]))
        if not merges:
            raise LlmlabError(f"{where}: a gpt2 tokenizer needs tokenizer.ggml.merges")
        spec.update(merges=merges, merge_by="rank", ignore_merges=ignore_merges,
                    pre_tokenizer=[{"type": "split", "pattern": p, "behavior": "isolated"} for p in regexes]
                    + [{"type": "byte_level", "add_prefix_space": False, "use_regex": False}],
                    normalizer=[], decoder={}, bos_default=11, eos_default=11, unk_default=None)
        spec["pre"] = pre
    else:
        scores = get("scores")
        if scores is None or len(scores) != n:
            raise LlmlabError(f"{where}: a llama (SentencePiece) tokenizer needs one score per token")
        add_space = get("add_space_prefix", True)
        spec.update(merges=[], merge_by="score", scores=[float(s) for s in scores], byte_fallback=True,
                    pre_tokenizer=[], decoder={"strip_prefix": "one_space" if add_space else None},
                    normalizer=([{"type": "prepend", "prepend": " "}] if add_space else [])
                    + [{"type": "replace", "pattern": " ", "regex": False, "content": "▁"}],
                    bos_default=1, eos_default=2, unk_default=0)
        add_bos = True
    bos = tid("bos_token_id", spec.pop("bos_default"))
    eos = tid("eos_token_id", spec.pop("eos_default"))
    unk = tid("unknown_token_id", spec.pop("unk_default"))
    pad = tid("padding_token_id")
    add_bos = bool(get("add_bos_token", add_bos))
    if add_bos and bos is None:
        raise LlmlabError(f"{where}: add_bos_token is set but there is no bos token")
    stops = [i for i in (eos, tid("eot_token_id"), tid("eom_token_id")) if i is not None]
    stops += [ids[s] for s in END_OF_TURN_NAMES if s in ids and types[ids[s]] in (CONTROL, USER_DEFINED)]
    added = [{"id": i, "content": s, "special": types[i] != USER_DEFINED, "normalized": False}
             for i, s in enumerate(tokens) if types[i] in (CONTROL, UNKNOWN, USER_DEFINED)]
    template = md.get("tokenizer.chat_template")
    spec.update(
        unk_id=unk, bos_id=bos, eos_ids=[eos] if eos is not None else [], stop_ids=list(dict.fromkeys(stops)),
        pad_id=pad, add_bos=add_bos, add_eos=bool(get("add_eos_token", False)), added_tokens=added,
        chat_template=template if isinstance(template, str) else None,
        template_tokens={k: tokens[i] for k, i in (("bos_token", bos), ("eos_token", eos), ("unk_token", unk),
                                                    ("pad_token", pad)) if i is not None},
    )
    return spec
