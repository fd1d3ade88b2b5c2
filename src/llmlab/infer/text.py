"""The text edge: prompts as strings, UTF-8-safe streaming text, and stop strings.

    from llmlab.infer.text import generate_text, stream_text
    out = generate_text(model, tokenizer, "To be, or not", SamplingParams(temperature=0.8, stop=("\\n\\n",)))
    print(out.text, out.completions[0].finish_reason)
    for delta in stream_text(model, tokenizer, "静夜思", SamplingParams(max_new_tokens=50)):
        print(delta.text, end="", flush=True)

The engine knows only token ids; everything about text lives here:

- ``Utf8Decoder`` turns token ids into text incrementally. A byte-level BPE token may end in the middle of a
  multi-byte character (a Chinese character is 3 bytes and often spans two tokens), so bytes are held until
  the character is complete; a stream never shows half a character or a spurious U+FFFD.
- ``StopMatcher`` finds stop strings that may span token boundaries. Text that could be the beginning of a
  stop string is held back until it either completes the stop string (then it is cut, with everything
  after it) or stops being a possible match (then it is released).
  The sample's ``token_ids`` keep every token up to the one that completed the stop string.
- Stop tokens (the engine's eos ids and ``stop_token_ids``) end the text and are not rendered; other special
  tokens (``<|think|>``, ...) are rendered by name so that tools and templates downstream can see them.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Iterator

from llmlab.infer.engine import Engine, GenerationStats
from llmlab.infer.sampling import SamplingParams


class Utf8Decoder:
    """Incremental token -> text decoding that never splits a multi-byte UTF-8 character."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        """Text completed by this token ('' while a character is still incomplete)."""
        return self._dec.decode(self.tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        """At the end: whatever bytes are left (an incomplete character becomes U+FFFD)."""
        return self._dec.decode(b"", final=True)


class StopMatcher:
    """Finds the first occurrence of any stop string in streamed text; holds back possible prefixes."""

    def __init__(self, stops: tuple[str, ...] | list[str]):
        self.stops = tuple(stops)
        self._held = ""  # text not yet released: it ends with a possible beginning of a stop string
        self.stopped: str | None = None  # the stop string that matched

    def feed(self, text: str) -> str:
        """Add text; return what may be shown now. After a match, returns the text before it and then ''."""
        if self.stopped is not None:
            return ""
        if not self.stops:
            return text
        buf = self._held + text
        first = None  # (index, stop) of the earliest match
        for s in self.stops:
            i = buf.find(s)
            if i >= 0 and (first is None or i < first[0]):
                first = (i, s)
        if first is not None:
            self.stopped, self._held = first[1], ""
            return buf[: first[0]]
        # Hold back the longest suffix of buf that is a proper prefix of some stop string.
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(buf)), hold, -1):
                if buf.endswith(s[:k]):
                    hold = k
                    break
        self._held = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        """At the end (no stop string matched): release what was held back."""
        held, self._held = self._held, ""
        return "" if self.stopped is not None else held


@dataclass
class TextDelta:
    """A piece of streamed text for one sample. ``finish_reason`` is set on the sample's last delta."""

    prompt_index: int
    sample_index: int
    text: str
    token_ids: list[int] = field(default_factory=list)  # the tokens since the previous delta of this sample
    finish_reason: str | None = None
    stop: str | int | None = None  # the stop string or stop token id that ended the sample


@dataclass
class TextCompletion:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None
    stop: str | int | None = None
    logprobs: list[float] | None = None
    top_logprobs: list[list[tuple[int, float]]] | None = None


@dataclass
class TextOutput:
    prompt: str
    prompt_token_ids: list[int]
    completions: list[TextCompletion]
    stats: GenerationStats

    @property
    def text(self) -> str:
        return self.completions[0].text


def stop_ids_for(tokenizer) -> tuple[int, ...]:
    """The ids that end a generation by default (``tokenizer.stop_ids``): for llmlab's tokenizer ``<|end|>``
    (a chat turn), ``<|endoftext|>`` and ``<|bos|>`` (a base model that starts a new document has finished the
    current one); for an imported model its eos ids and those of its ``generation_config.json``."""
    return tuple(tokenizer.stop_ids)


def encode_prompt(tokenizer, prompt: str, add_bos: bool = True) -> list[int]:
    """The bos token (when ``add_bos`` and the tokenizer's own add-BOS rule say so) + the prompt's tokens
    (special-token text in the prompt is not turned into special ids)."""
    bos = add_bos and getattr(tokenizer, "add_bos", True) and tokenizer.bos_id is not None
    return ([tokenizer.bos_id] if bos else []) + tokenizer.encode(prompt)


def _engine(model_or_engine, tokenizer) -> Engine:
    if isinstance(model_or_engine, Engine):
        return model_or_engine
    return Engine(model_or_engine, eos_token_ids=stop_ids_for(tokenizer))


def stream_text(
    model_or_engine, tokenizer, prompt: str | list[int], params: SamplingParams | None = None, *,
    truncate: str | None = None, add_bos: bool = True, on_token=None, _result: dict | None = None,
) -> Iterator[TextDelta]:
    """Generate and yield text deltas as tokens arrive: UTF-8 safe, stop strings cut (and their samples ended
    in the engine at once). ``prompt`` may be a string or token ids. ``on_token(TokenEvent)`` sees every
    engine event (logprobs included)."""
    params = params or SamplingParams()
    engine = _engine(model_or_engine, tokenizer)
    ids = encode_prompt(tokenizer, prompt, add_bos) if isinstance(prompt, str) else list(prompt)
    gen = engine.start([ids], params, truncate=truncate)
    if _result is not None:
        _result["generation"] = gen
    decoders = [Utf8Decoder(tokenizer) for _ in range(params.n)]
    matchers = [StopMatcher(params.stop) for _ in range(params.n)]
    pending: list[list[int]] = [[] for _ in range(params.n)]  # tokens not yet attached to a yielded delta
    stop_ids = set(gen.row_stops[0]) if gen.row_stops else set()
    events = gen.first_events
    while True:
        for ev in events:
            if on_token is not None:
                on_token(ev)
            j = ev.sample_index
            dec, match = decoders[j], matchers[j]
            piece = "" if (ev.finish_reason == "stop" and ev.token_id in stop_ids) else dec.feed(ev.token_id)
            finish, stop = ev.finish_reason, (ev.token_id if ev.finish_reason == "stop" else None)
            if finish is not None:
                piece += dec.flush()
            text = match.feed(piece)
            if match.stopped is not None and finish is None:
                # A stop string completed: end this sample in the engine now (it stops costing work).
                gen.finish(0, j, "stop")
                finish, stop = "stop", match.stopped
            elif finish is not None:
                text += match.flush()
                if match.stopped is not None:  # a stop string completed on the sample's last token
                    stop, finish = match.stopped, "stop"
                    gen.outputs_[0].samples[j].finish_reason = "stop"
            pending[j].append(ev.token_id)
            if text or finish is not None:
                yield TextDelta(0, j, text, pending[j], finish, stop)
                pending[j] = []
        if gen.done:
            break
        events = gen.step()


def generate_text(
    model_or_engine, tokenizer, prompt: str | list[int], params: SamplingParams | None = None, *,
    truncate: str | None = None, add_bos: bool = True,
) -> TextOutput:
    """Generate to completion; ``out.text`` is the first sample's text, ``out.completions`` all n."""
    params = params or SamplingParams()
    holder: dict = {}
    texts = [[] for _ in range(params.n)]
    stops: list = [None] * params.n
    for d in stream_text(model_or_engine, tokenizer, prompt, params, truncate=truncate, add_bos=add_bos,
                         _result=holder):
        texts[d.sample_index].append(d.text)
        if d.finish_reason is not None:
            stops[d.sample_index] = d.stop
    gen = holder["generation"]
    out = gen.outputs()[0]
    completions = [
        TextCompletion(s.index, "".join(texts[s.index]), s.token_ids, s.finish_reason, stops[s.index],
                       s.logprobs, s.top_logprobs)
        for s in out.samples
    ]
    prompt_str = prompt if isinstance(prompt, str) else tokenizer.decode(prompt)
    return TextOutput(prompt_str, out.prompt_token_ids, completions, gen.stats)
