"""Run an llmlab model from one file: the seeds' "two files" -- a parameter file and a small program.

    llmlab export bin --model runs/sft --out model.bin
    python run.py model.bin --prompt "To be, or not" --max-new-tokens 100 --temperature 0.8 --top-p 0.95 --seed 1
    python run.py model.bin --prompt "<|user|>Hi!<|end|><|assistant|>" --temperature 0   # greedy, a chat turn
    python run.py model.bin --prompt "Hello" --max-new-tokens 20 --temperature 0 --ids   # token ids instead

Self-contained on purpose: Python's standard library and numpy, nothing else (no torch, no llmlab, no
``regex``). It reads ``model.bin`` (see llmlab/export/binfile.py for the layout), tokenizes the prompt exactly
as llmlab does (byte-level BPE after GPT-4's split; ``<|bos|>`` first; special-token names in the prompt are
special tokens), runs a Llama-style Transformer with a KV cache, samples with temperature and top-p, and
stops at ``<|end|>`` / ``<|endoftext|>``, the context limit, or ``--max-new-tokens``. Greedy output is
token-identical to llmlab's own model (tests/export/test_standalone.py).
"""

from __future__ import annotations

import argparse
import bisect
import codecs
import json
import re
import struct
import sys
import time

import numpy as np

MAGIC, VERSION = b"LLMB", 2  # v2 may have a head_dim other than d_model / n_head, or RoPE scaling


# ------------------------------------------------------------------------------------------- model.bin


def load(path):
    """(header dict, {name: array}) from ``model.bin``; the arrays are read-only views of a memory map."""
    with open(path, "rb") as f:
        magic, (version, hlen) = f.read(4), struct.unpack("<IQ", f.read(12))
        if magic != MAGIC:
            sys.exit(f"run.py: {path} is not a model.bin (magic {magic!r})")
        if not 1 <= version <= VERSION:
            sys.exit(f"run.py: {path} is model.bin version {version}; this run.py reads versions 1-{VERSION}")
        header = json.loads(f.read(hlen).decode("utf-8"))
    start = (16 + hlen + 63) // 64 * 64
    data = np.memmap(path, dtype=np.uint8, mode="r")
    arrays = {}
    for t in header["tensors"]:
        dtype = np.dtype("<i4") if t["dtype"] == "int32" else np.dtype("<f4")
        count = int(np.prod(t["shape"]))
        arrays[t["name"]] = np.frombuffer(data, dtype, count, start + t["offset"]).reshape(t["shape"])
    return header, arrays


# ------------------------------------------------------------------------------------------- tokenizer


class Tokenizer:
    """Byte-level BPE: ids 0..255 are bytes, merge i makes id 256 + i, special tokens take the last ids."""

    # Letters that (?i:[sdmt]|ll|ve|re) accepts: case-insensitive matching also takes the long s (U+017F).
    FOLD = {"s": "sS\u017f", "d": "dD", "m": "mM", "t": "tT", "l": "lL", "v": "vV", "r": "rR", "e": "eE"}

    def __init__(self, info, merges):
        if info["split"] != "gpt4":
            sys.exit(f"run.py: unknown split {info['split']!r}")
        self.vocab = [bytes([i]) for i in range(256)]
        self.ranks = {}
        for a, b in merges.tolist():
            self.ranks[(a, b)] = len(self.vocab)
            self.vocab.append(self.vocab[a] + self.vocab[b])
        self.special = {s: int(i) for s, i in info["special_tokens"].items()}
        self.special_by_id = {i: s.encode("utf-8") for s, i in self.special.items()}
        self.bos = self.special[info["bos"]]
        self.stop = {self.special[s] for s in info["stop"]}
        names = sorted(self.special, key=len, reverse=True)  # longest first: no name shadows a longer one
        self.special_re = re.compile("(" + "|".join(re.escape(s) for s in names) + ")")
        # \p{L}, \p{N}, \s as inclusive code point ranges (first, last) -> fast bisect lookups, cached.
        self.ranges = {k: ([a for a, _ in v], [b for _, b in v]) for k, v in info["char_classes"].items()}
        self.cls_cache = {}
        self.chunk_cache = {}

    def cls(self, c):
        """'L' letter, 'N' number, 'S' whitespace, 'P' anything else -- per the exporter's regex tables."""
        k = self.cls_cache.get(c)
        if k is None:
            cp, k = ord(c), "P"
            for name in ("L", "N", "S"):
                firsts, lasts = self.ranges[name]
                j = bisect.bisect_right(firsts, cp) - 1
                if j >= 0 and cp <= lasts[j]:
                    k = name
                    break
            self.cls_cache[c] = k
        return k

    def run(self, text, start, kind, limit=None):
        """End of the run of ``kind`` characters starting at ``start`` (at most ``limit`` of them)."""
        end, stop = start, len(text) if limit is None else min(len(text), start + limit)
        while end < stop and self.cls(text[end]) == kind:
            end += 1
        return end

    def contraction(self, text, i):
        """End of '(?i:[sdmt]|ll|ve|re) at ``i`` (text[i] is an apostrophe), or 0 if none matches."""
        f, a, b = self.FOLD, text[i + 1:i + 2], text[i + 2:i + 3]
        if a and a in f["s"] + f["d"] + f["m"] + f["t"]:
            return i + 2
        if a and b and any(a in f[x] and b in f[y] for x, y in ("ll", "ve", "re")):
            return i + 3
        return 0

    def split(self, text):
        """GPT-4's pre-split, branch by branch in the regex's order (the first branch that matches wins):
        '(?i:[sdmt]|ll|ve|re) | [^\\r\\n\\p{L}\\p{N}]?+\\p{L}+ | \\p{N}{1,3} | ' ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*'
        | \\s*[\\r\\n] | \\s+(?!\\S) | \\s+ ."""
        cls, n, i, out = self.cls, len(text), 0, []
        while i < n:
            c, k = text[i], cls(text[i])
            letters = i if k == "L" else i + 1 if (k != "N" and c not in "\r\n") else n  # where \p{L}+ would start
            punct = i + 1 if c == " " else i  # where [^\s\p{L}\p{N}]++ would start
            if c == "'" and self.contraction(text, i):
                e = self.contraction(text, i)
            elif letters < n and cls(text[letters]) == "L":  # an optional non-letter, then letters
                e = self.run(text, letters, "L")
            elif k == "N":  # one to three digits
                e = self.run(text, i, "N", limit=3)
            elif punct < n and cls(text[punct]) == "P":  # an optional space, punctuation, then newlines
                e = self.run(text, punct, "P")
                while e < n and text[e] in "\r\n":
                    e += 1
            else:  # a whitespace run [i, r)
                r = self.run(text, i, "S")
                last = max(text.rfind("\r", i, r), text.rfind("\n", i, r))
                if last >= 0:
                    e = last + 1  # \s*[\r\n]: through the run's last newline
                elif r == n or r - i == 1:
                    e = r  # \s+(?!\S) at the end of the text, or a lone \s
                else:
                    e = r - 1  # \s+(?!\S): leave the last space to lead the next word
            out.append(text[i:e])
            i = e
        return out

    def merge(self, chunk):
        ids = self.chunk_cache.get(chunk)
        if ids is not None:
            return ids
        ids, ranks = list(chunk.encode("utf-8")), self.ranks
        while len(ids) >= 2:
            # Apply the earliest-learned merge among adjacent pairs, every occurrence, left to right.
            pair = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, 1 << 62))
            new = ranks.get(pair)
            if new is None:
                break
            out, j = [], 0
            while j < len(ids):
                if j + 1 < len(ids) and (ids[j], ids[j + 1]) == pair:
                    out.append(new)
                    j += 2
                else:
                    out.append(ids[j])
                    j += 1
            ids = out
        self.chunk_cache[chunk] = ids
        return ids

    def encode(self, text):
        """Ids of ``text``; special-token names in it become special tokens. Lone surrogates become U+FFFD."""
        if any(0xD800 <= ord(ch) < 0xE000 for ch in text):
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        ids = []
        for n, part in enumerate(self.special_re.split(text)):
            if n % 2:
                ids.append(self.special[part])
            else:
                for chunk in self.split(part):
                    ids += self.merge(chunk)
        return ids

    def token_bytes(self, i):
        return self.vocab[i] if i < len(self.vocab) else self.special_by_id[i]


# ------------------------------------------------------------------------------------------- model


class Model:
    """Llama-style decoder (RMSNorm, RoPE rotate-half, grouped-query attention, SwiGLU) with a KV cache."""

    def __init__(self, cfg, w):
        self.cfg = c = cfg
        self.hd = c.get("head_dim") or c["d_model"] // c["n_head"]
        self.emb = w["embed_tokens.weight"]  # (vocab, d)
        self.head = w["embed_tokens.weight"] if c["tie_embeddings"] else w["lm_head.weight"]
        self.norm = w["norm.weight"]
        # Fuse q/k/v and gate/up into one matmul each, stored transposed (in, out): fewer, larger BLAS calls.
        self.layers = []
        for i in range(c["n_layer"]):
            p = f"layers.{i}."
            self.layers.append(dict(
                n1=w[p + "input_layernorm.weight"], n2=w[p + "post_attention_layernorm.weight"],
                qkv=np.ascontiguousarray(np.concatenate([w[p + f"self_attn.{x}_proj.weight"] for x in "qkv"]).T),
                o=np.ascontiguousarray(w[p + "self_attn.o_proj.weight"].T),
                gu=np.ascontiguousarray(np.concatenate([w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"]]).T),
                down=np.ascontiguousarray(w[p + "mlp.down_proj.weight"].T)))
        # RoPE tables in float64, rounded to float32 (as llmlab computes them): (max_seq_len, hd/2)
        inv = 1.0 / (c["rope_theta"] ** (np.arange(0, self.hd, 2, dtype=np.float64) / self.hd))
        scaling = c.get("rope_scaling")
        if scaling:  # Llama-3's: long wavelengths turn `factor` times slower, short ones keep their speed
            lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
            old_len = scaling["original_max_position_embeddings"]
            smooth = np.clip((old_len * inv / (2 * np.pi) - lo) / (hi - lo), 0.0, 1.0)
            inv = inv * ((1 - smooth) / scaling["factor"] + smooth)
        ang = np.outer(np.arange(c["max_seq_len"], dtype=np.float64), inv)
        self.cos, self.sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        shape = (c["n_layer"], c["n_kv_head"], c["max_seq_len"], self.hd)
        self.k_cache, self.v_cache = np.zeros(shape, np.float32), np.zeros(shape, np.float32)

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.cfg["norm_eps"]) * w

    def rope(self, x, pos):  # x (T, heads, hd); rotate-half: pairs (j, j + hd/2)
        cos, sin = self.cos[pos][:, None, :], self.sin[pos][:, None, :]  # (T, 1, hd/2)
        a, b = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)

    def forward(self, ids, start):
        """Logits (vocab,) of the last of ``ids``, which sit at positions start..start+T-1 (cache appended)."""
        c, hd = self.cfg, self.hd
        H, Hkv, T = c["n_head"], c["n_kv_head"], len(ids)
        g, S, pos = H // Hkv, start + T, np.arange(start, start + T)
        x = self.emb[ids].astype(np.float32)  # (T, d)
        for li, L in enumerate(self.layers):
            qkv = self.rmsnorm(x, L["n1"]) @ L["qkv"]  # (T, (H + 2 Hkv) hd)
            q = self.rope(qkv[:, : H * hd].reshape(T, H, hd), pos)
            k = self.rope(qkv[:, H * hd:(H + Hkv) * hd].reshape(T, Hkv, hd), pos)
            self.k_cache[li, :, start:S] = k.transpose(1, 0, 2)
            self.v_cache[li, :, start:S] = qkv[:, (H + Hkv) * hd:].reshape(T, Hkv, hd).transpose(1, 0, 2)
            K, V = self.k_cache[li, :, :S], self.v_cache[li, :, :S]  # (Hkv, S, hd)
            qg = q.reshape(T, Hkv, g, hd).transpose(1, 2, 0, 3)  # (Hkv, g, T, hd): heads sharing a kv head
            att = (qg @ K[:, None].transpose(0, 1, 3, 2)) / np.float32(np.sqrt(hd))  # (Hkv, g, T, S)
            if T > 1:  # token t (at start + t) sees slots 0..start + t
                att = np.where(np.arange(S)[None, :] <= pos[:, None], att, -np.inf)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            y = (att @ V[:, None]).transpose(2, 0, 1, 3).reshape(T, H * hd)  # (T, H * hd)
            x = x + y @ L["o"]
            gu = self.rmsnorm(x, L["n2"]) @ L["gu"]  # (T, 2 ffn)
            gate, up = np.split(gu, 2, axis=-1)
            x = x + (gate / (1.0 + np.exp(-gate)) * up) @ L["down"]  # SwiGLU
        return self.head @ self.rmsnorm(x[-1], self.norm)  # (vocab,)


# ------------------------------------------------------------------------------------------- sampling


def sample(logits, temperature, top_p, rng):
    """Greedy at temperature 0; otherwise softmax(logits / T), cut to the smallest top-p set, and sample."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]  # through the token crossing top_p
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(len(p), p=p))


def generate(model, prompt_ids, max_new_tokens, temperature=0.0, top_p=1.0, seed=None, stop=()):
    """Yield new token ids: prefill the prompt in one pass, then one token per step from the KV cache."""
    rng = np.random.default_rng(seed)
    n = min(max_new_tokens, model.cfg["max_seq_len"] - len(prompt_ids))  # the sequence stays within the context
    if len(prompt_ids) > model.cfg["max_seq_len"]:
        sys.exit(f"run.py: the prompt has {len(prompt_ids)} tokens; the context holds {model.cfg['max_seq_len']}")
    logits, pos = model.forward(prompt_ids, 0), len(prompt_ids)
    for step in range(n):
        nxt = sample(logits, temperature, top_p, rng)
        yield nxt
        if nxt in stop or step == n - 1:
            return
        logits, pos = model.forward([nxt], pos), pos + 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate text with an llmlab model.bin (numpy only).")
    ap.add_argument("model", help="model.bin written by `llmlab export bin`")
    ap.add_argument("--prompt", default="", help="text to continue (<|bos|> is prepended)")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="most tokens to generate")
    ap.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold (1 = off)")
    ap.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    ap.add_argument("--ids", action="store_true", help="print the generated token ids, space-separated")
    args = ap.parse_args(argv)
    if not 0.0 < args.top_p <= 1.0 or args.temperature < 0 or args.max_new_tokens < 0:
        ap.error("need 0 < --top-p <= 1, --temperature >= 0, --max-new-tokens >= 0")

    header, w = load(args.model)
    tok, model = Tokenizer(header["tokenizer"], w["merges"]), Model(header["config"], w)
    prompt = [tok.bos] + tok.encode(args.prompt)
    t0, out = time.perf_counter(), []
    text = codecs.getincrementaldecoder("utf-8")(errors="replace")  # tokens may split a UTF-8 character
    for i in generate(model, prompt, args.max_new_tokens, args.temperature, args.top_p, args.seed, tok.stop):
        out.append(i)
        if not args.ids and i not in tok.stop:
            sys.stdout.write(text.decode(tok.token_bytes(i)))
            sys.stdout.flush()
    dt = time.perf_counter() - t0
    print(" ".join(map(str, out)) if args.ids else text.decode(b"", final=True))
    print(f"[{len(prompt)} prompt + {len(out)} new tokens, {len(out) / max(dt, 1e-9):.1f} tok/s]", file=sys.stderr)


if __name__ == "__main__":
    main()
