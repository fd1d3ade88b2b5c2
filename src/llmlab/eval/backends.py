"""What a suite asks of a model, and our own run answering it: log-likelihoods, greedy answers, rolling nats.

    from llmlab.eval.backends import LocalBackend, LLRequest, GenRequest
    be = LocalBackend(model, tok)                        # or LocalBackend.from_run("runs/sft")
    be.loglikelihood([LLRequest("The cat sat on the", " mat")])[0].logprob
    be.loglikelihood([LLRequest([{"role": "user", "content": "2 + 3?"}], "5")])     # through the chat template
    be.generate([GenRequest("Question: 2 + 3?\\nAnswer:", stop=("\\n",))])[0]      # greedy text before the stop
    be.rolling(["To be, or not to be"])[0]               # total nats of the text (eval/bpb.py's windows)

A request is text or a chat conversation; a backend turns it into whatever its model needs. The same three
methods are answered by an OpenAI-compatible server (``eval/endpoint.py``) and by lm-evaluation-harness's
model interface (``eval/lmeval.py`` wraps this class), so every suite runs on all of them. A request that
cannot be answered gives an ``ItemError`` in its place; the others are still answered.

Text requests (what lm-evaluation-harness also does): the context gets ``<|bos|>`` in front; the continuation's
tokens are those of encode(context + continuation) after encode(context), so a word is tokenized as it would
be in running text, and spaces at the end of the context move to the continuation. Chat requests: the context
is ``chat.template.render_prompt(messages)`` and the continuation the assistant reply's tokens, ``<|end|>``
included, as ``chat.template.render`` gives them. The tokenizer and the template are used only through those
public functions (``encode``, ``decode``, ``bos_id``, ``render``, ``render_prompt``, ``stop_token_ids``).

Generation runs through the inference engine (greedy, batched). Text requests stop at the engine's stop ids
(``infer.text.stop_ids_for``) and at any token whose text contains a stop string; the answer is the text up
to the first stop string. Chat requests stop at the template's stop ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmlab.eval.loglik import ItemError, Scored, score_continuations


@dataclass(frozen=True)
class LLRequest:
    """log p(continuation | context); ``context`` is text or a list of chat messages (the prompt so far)."""

    context: str | list
    continuation: str

    @property
    def chat(self) -> bool:
        return not isinstance(self.context, str)


@dataclass(frozen=True)
class GenRequest:
    """A greedy answer: ``prompt`` is text (continued up to a stop string) or chat messages (the reply)."""

    prompt: str | list
    stop: tuple[str, ...] = ("\n",)
    max_new_tokens: int = 32

    @property
    def chat(self) -> bool:
        return not isinstance(self.prompt, str)


def cut_at_stop(text: str, stops) -> str:
    """The text before the earliest stop string."""
    cut = len(text)
    for s in stops:
        i = text.find(s)
        if i >= 0:
            cut = min(cut, i)
    return text[:cut]


def model_fingerprint(run_dir) -> dict:
    """Identifies a run folder's weights (path, size, modification time) so saved results are not reused for
    retrained weights."""
    p = Path(run_dir).resolve()
    w = p / "model.safetensors"
    st = w.stat() if w.is_file() else None
    return {"model": str(p), "weights": [st.st_size, st.st_mtime_ns] if st else None}


@dataclass
class LocalBackend:
    """Our model (any run folder: trained, fine-tuned or imported) answering suite requests."""

    model: object
    tok: object
    batch_rows: int = 64  # continuations scored per forward pass
    gen_batch: int = 32  # prompts generated together
    fingerprint: dict = field(default_factory=dict)
    _stop_ids: dict = field(default_factory=dict, repr=False)
    _engine: object = field(default=None, repr=False)  # kept: its fused weights are built once, not per chunk

    kind = "local"

    @classmethod
    def from_run(cls, run_dir, device: str = "cpu", **kw) -> "LocalBackend":
        from llmlab.runs import load_run
        from llmlab.utils.device import resolve_device

        model, tok = load_run(run_dir, device=resolve_device(device))
        return cls(model, tok, fingerprint=model_fingerprint(run_dir), **kw)

    @property
    def window(self) -> int:
        return self.model.config.max_seq_len

    # -- log-likelihood -------------------------------------------------------------------------------------
    def encode_pair(self, req: LLRequest) -> tuple[list[int], list[int]]:
        """Context and continuation token ids (see the module doc)."""
        tok = self.tok
        if req.chat:
            from llmlab.chat.template import render, render_prompt

            ctx = render_prompt(req.context, tok)
            full, _ = render(list(req.context) + [{"role": "assistant", "content": req.continuation}], tok)
            if full[: len(ctx)] == ctx:
                return ctx, full[len(ctx):]
            return ctx, tok.encode(req.continuation)  # a template whose prompt is not a prefix of the reply
        context, cont = req.context, req.continuation
        n = len(context) - len(context.rstrip(" "))
        if n:  # "Answer: " + "5" scores " 5", as the word would be tokenized in running text
            context, cont = context[:-n], context[-n:] + cont
        ctx_enc = tok.encode(context)
        whole = tok.encode(context + cont)
        if whole[: len(ctx_enc)] == ctx_enc and len(whole) > len(ctx_enc):
            cont_enc = whole[len(ctx_enc):]
        else:  # a merge across the boundary changed the context's last token: encode the two apart
            cont_enc = tok.encode(cont)
        return [tok.bos_id] + ctx_enc, cont_enc

    def loglikelihood(self, requests: list[LLRequest]) -> list[Scored | ItemError]:
        pairs = []
        for r in requests:
            try:
                pairs.append(self.encode_pair(r))
            except Exception as e:  # a message the template refuses: this item only
                pairs.append(ItemError(f"cannot encode: {e}"))
        ok = [i for i, p in enumerate(pairs) if not isinstance(p, ItemError)]
        scored = score_continuations(self.model, [pairs[i] for i in ok], batch_rows=self.batch_rows)
        out: list = list(pairs)
        for i, s in zip(ok, scored):
            out[i] = s
        return out

    # -- generation -----------------------------------------------------------------------------------------
    def _stop_string_ids(self, stops: tuple[str, ...]) -> tuple[int, ...]:
        """Tokens whose text contains a stop string: generation can end on them (the text is cut anyway)."""
        if stops not in self._stop_ids:
            ids = []
            for i in range(self.model.config.vocab_size):
                try:
                    s = self.tok.decode([i])
                except Exception:
                    continue
                if any(st in s for st in stops):
                    ids.append(i)
            self._stop_ids[stops] = tuple(ids)
        return self._stop_ids[stops]

    def generate(self, requests: list[GenRequest]) -> list[str | ItemError]:
        import torch

        from llmlab.chat.template import render_prompt, stop_token_ids
        from llmlab.infer import Engine, SamplingParams
        from llmlab.infer.text import encode_prompt, stop_ids_for

        tok, ctx = self.tok, self.window
        prompts, params, out = [], [], [None] * len(requests)
        chat_stops = tuple(stop_token_ids(tok))
        text_stops = tuple(stop_ids_for(tok))
        for r in requests:
            room = max(1, ctx - r.max_new_tokens)
            if r.chat:
                ids = render_prompt(r.prompt, tok, max_len=room)
                stop_ids = chat_stops
            else:
                ids = encode_prompt(tok, r.prompt)[-room:]
                stop_ids = text_stops + self._stop_string_ids(tuple(r.stop))
            prompts.append(ids)
            params.append(SamplingParams(temperature=0.0, max_new_tokens=r.max_new_tokens,
                                         stop_token_ids=tuple(sorted(set(stop_ids)))))
        if self._engine is None:
            self._engine = Engine(self.model, eos_token_ids=())
        engine = self._engine
        with torch.no_grad():
            for start in range(0, len(prompts), self.gen_batch):
                sl = slice(start, start + self.gen_batch)
                for k, res in enumerate(engine.generate(prompts[sl], params[sl])):
                    i = start + k
                    s = res.samples[0]
                    ids = list(s.token_ids)
                    if s.finish_reason == "stop" and ids and ids[-1] in params[i].stop_token_ids:
                        last = ids[-1]
                        ids = ids[:-1]
                        if not requests[i].chat and last not in text_stops:
                            ids.append(last)  # a stop-string token: keep its text, cut below
                    text = tok.decode(ids)
                    out[i] = text if requests[i].chat else cut_at_stop(text, requests[i].stop)
        return out

    # -- rolling log-likelihood -----------------------------------------------------------------------------
    def rolling(self, texts: list[str]) -> list[float | ItemError]:
        """Total nats of each text (eval/bpb.py's windows: context-length chunks, each after <|bos|>)."""
        from llmlab.eval.bpb import bits_per_byte

        out = []
        for t in texts:
            if not t:
                out.append(ItemError("empty text"))
                continue
            r = bits_per_byte(self.model, self.tok, t)
            out.append(r["loss"] * r["tokens"])
        return out


def detect_prompt_style(run_dir) -> str:
    """``"chat"`` for a run fine-tuned on conversations (SFT and the preference stages after it), else
    ``"text"`` (a base model, or a run folder that does not say)."""
    from llmlab.utils.io import read_json

    p = Path(run_dir) / "config.json"
    if not p.is_file():
        return "text"
    try:
        cfg = read_json(p, "run config")
    except Exception:
        return "text"
    if "sft" in cfg or cfg.get("stage") in ("dpo", "grpo", "ppo", "rm"):
        return "chat"
    return "text"
