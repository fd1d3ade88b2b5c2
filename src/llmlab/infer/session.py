"""A conversation with one model: system prompt, history, sampling settings, streaming replies, saving and
loading. The library under ``llmlab chat``'s REPL and one-shot mode (``chat/cli.py``), and what a test drives.

    from llmlab.infer.session import ChatSession
    session = ChatSession(model, tokenizer, system="Be brief.", temperature=0.0)
    reply = session.reply("What is 7 plus 5?", on_text=print)     # streams text pieces, returns a Reply
    reply.text, reply.finish_reason, reply.token_ids
    session.save("chat.json")

Long conversations follow the chat template's overflow policy (``llmlab.chat.template``): the oldest
exchanges are dropped to fit the context, the system prompt and the latest question are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CHAT_FORMAT = "llmlab-chat"
CHAT_VERSION = 1


@dataclass
class Reply:
    text: str
    finish_reason: str  # "stop" | "length" | "interrupted"
    token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    dropped_messages: int = 0  # older messages left out to fit the context
    explain: list[dict] = field(default_factory=list)  # with explain: per token {token, prob, top}


class ChatSession:
    """A conversation with one model: system prompt, history, sampling settings, streaming replies."""

    def __init__(self, model, tokenizer, *, system: str = "", temperature: float = 0.7, top_p: float = 0.9,
                 top_k: int = 0, max_new_tokens: int = 128, seed: int | None = None, compile: bool = False):
        from llmlab.chat.template import stop_token_ids
        from llmlab.infer.engine import Engine

        self.model, self.tok = model, tokenizer
        self.engine = Engine(model, eos_token_ids=stop_token_ids(tokenizer), compile=compile)
        self.system = system
        self.history: list[dict] = []
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.max_new_tokens, self.seed = max_new_tokens, seed
        self.explain = False
        self._turn = 0

    def messages(self) -> list[dict]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + self.history

    def reset(self) -> None:
        self.history = []

    def prompt_ids(self, messages: list[dict]) -> tuple[list[int], int]:
        """Prompt ids under the overflow policy, and how many messages it dropped."""
        from llmlab.chat.template import fit_messages, render_prompt

        ctx = self.model.config.max_seq_len
        # Leave the answer at least a quarter of the context (or max_new_tokens, if smaller).
        room = max(8, ctx - min(self.max_new_tokens, ctx // 4))
        kept = fit_messages(messages, self.tok, room, add_generation_prompt=True)
        return render_prompt(messages, self.tok, max_len=room), len(messages) - len(kept)

    def reply(self, user_text: str, on_text=None) -> Reply:
        """Add the user's message, generate (streaming pieces of text to ``on_text``), add the answer.
        Streaming goes through the inference text edge (``llmlab.infer.text``): UTF-8 safe, stop tokens
        not rendered."""
        from llmlab.infer.sampling import SamplingParams
        from llmlab.infer.text import stream_text

        self.history.append({"role": "user", "content": user_text})
        ids, dropped = self.prompt_ids(self.messages())
        seed = None if self.seed is None else self.seed + self._turn
        self._turn += 1
        params = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p,
                                top_k=self.top_k, seed=seed, logprobs=3 if self.explain else None)
        stops = set(self.engine.eos_token_ids)
        out_ids: list[int] = []
        parts: list[str] = []
        explain: list[dict] = []
        finish = "length"

        def on_token(ev):
            if ev.token_id not in stops:
                out_ids.append(ev.token_id)
                if self.explain and ev.logprob is not None:
                    explain.append(_explain_entry(self.tok, ev))

        try:
            for delta in stream_text(self.engine, self.tok, ids, params, on_token=on_token):
                if delta.text:
                    if on_text:
                        on_text(delta.text)  # first, so a Ctrl-C while showing it keeps only what was shown
                    parts.append(delta.text)
                if delta.finish_reason is not None:
                    finish = "stop" if delta.finish_reason == "stop" else "length"
        except KeyboardInterrupt:
            finish = "interrupted"
        text = "".join(parts)
        self.history.append({"role": "assistant", "content": text})
        return Reply(text, finish, out_ids, len(ids), dropped, explain)

    # -- files ----------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        from llmlab.utils.io import write_json

        write_json(path, {"format": CHAT_FORMAT, "version": CHAT_VERSION, "messages": self.messages(),
                          "settings": {"temperature": self.temperature, "top_p": self.top_p}})

    def load(self, path: str | Path) -> int:
        """Replace the conversation with a saved one (``/save``'s JSON, or any ``{"messages": [...]}`` or a
        bare message list); returns the number of messages."""
        from llmlab.chat.template import validate_messages
        from llmlab.utils.io import read_json

        data = read_json(path, "conversation file")
        msgs = data.get("messages") if isinstance(data, dict) else data
        msgs = validate_messages(msgs, where=str(path))
        self.system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
        self.history = msgs[1:] if self.system or (msgs and msgs[0]["role"] == "system") else msgs
        s = data.get("settings", {}) if isinstance(data, dict) else {}
        self.temperature = float(s.get("temperature", self.temperature))
        self.top_p = float(s.get("top_p", self.top_p))
        return len(msgs)


def _explain_entry(tok, ev) -> dict:
    import math

    from llmlab.infer.explain import token_text

    return {"token": token_text(tok, ev.token_id), "prob": math.exp(ev.logprob),
            "top": [(token_text(tok, t), math.exp(lp)) for t, lp in (ev.top_logprobs or [])]}
