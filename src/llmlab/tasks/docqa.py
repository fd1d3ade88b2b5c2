"""Questions about the user's own documents, over a world of made-up things, so that no model here can know the
answers: they can only come from retrieval. Towns, companies and people with invented names and facts; their
documents (markdown, text, HTML, JSONL); questions with exact answers; questions about things the documents
never mention (the honest answer is "I don't know"); and the conversations that teach the assistant to
search and cite.

    from llmlab.tasks.docqa import make_world, write_documents, questions
    world = make_world(200, split="train", seed=0)          # [Entity], names from one side of the split
    write_documents(world, "docs/")                          # one file per entity (md/txt/html) + a JSONL
    qa = questions(world, 300, seed=0, unanswerable=0.25, absent=make_world(50, "train", seed=99))
    qa[0] == {"question": "When was Dravelmoor founded?", "answer": "1643", "entity": "Dravelmoor", ...}

    from llmlab.tasks.docqa import qa_conversation, IDK
    qa_conversation(q, search_result_text)                  # the SFT conversation (cites [n], or says IDK)

Names are built from syllables and assigned to the train or held-out side by a hash of the name
(``synth.split_of``), so the documents an evaluation indexes name nothing the model was trained on. Every fact
sentence repeats its entity's name, so each paragraph of a document can be found on its own.

The assistant's answer (native format)::

    <|user|>When was Dravelmoor founded?<|end|><|assistant|><|tool_call|>search When was Dravelmoor founded?
    <|/tool_call|><|tool_result|>[1] Dravelmoor is a town in the province of Ostrelin. It was founded in 1643.
    [2] ...<|/tool_result|>1643 [1]<|end|>

the answer copied from the passage that holds it and that passage's number; when no passage holds it (or the
search found nothing), ``IDK``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.chat.data import Conversation
from llmlab.tasks.synth import split_of

IDK = "I don't know. The documents do not say."
SEARCH_SYSTEM = ["Answer from the user's documents.", "Use the search tool to answer from the documents.",
                 "You answer questions about the user's files. Cite your sources."]

ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "t", "th", "v",
          "w", "z", "st", "sk"]
VOWELS = ["a", "e", "i", "o", "u", "ae", "ou", "y"]
CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "rk", "m", "x", "sh"]
GIVEN = ["Talia", "Oren", "Mira", "Dace", "Ilse", "Bram", "Nessa", "Tove", "Cato", "Elva", "Rune", "Sabel", "Ivo",
         "Lark", "Wren", "Ansel", "Perrin", "Odile", "Fenn", "Juno"]
PRODUCTS = ["glass", "wool", "clocks", "cheese", "paper", "salt", "boats", "lanterns", "honey", "copper pots",
            "rope", "bells", "maps", "soap", "tea", "candles", "violins", "bicycles", "ink", "kites"]
PROFESSIONS = ["painter", "engineer", "botanist", "sailor", "composer", "cartographer", "baker", "astronomer",
               "weaver", "architect", "poet", "clockmaker", "surgeon", "glassblower", "librarian"]
COMPANY_SUFFIX = ["Works", "Mills", "Company", "Guild", "Trading House"]


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(syllables)).capitalize()


@dataclass
class Entity:
    kind: str  # "town" | "company" | "person"
    name: str
    facts: dict = field(default_factory=dict)


class _Names:
    """Unique invented names of one side of the split."""

    def __init__(self, rng: random.Random, split: str, taken: set[str] | None = None):
        self.rng, self.split, self.used = rng, split, set(taken or ())

    def __call__(self, make) -> str:
        while True:
            n = make()
            if n not in self.used and split_of(f"docqa:{n}") == self.split:
                self.used.add(n)
                return n


def make_world(n: int, split: str = "train", seed: int = 0, taken: set[str] | None = None) -> list[Entity]:
    """``n`` made-up entities (towns, companies and people in turn), names from ``split``'s side only and not
    in ``taken``."""
    rng = random.Random(f"llmlab-docqa:{seed}:{split}")
    names = _Names(rng, split, taken)
    place = lambda: _word(rng, rng.choice((2, 3)))  # noqa: E731
    person = lambda: f"{rng.choice(GIVEN)} {_word(rng, 2)}"  # noqa: E731
    out = []
    for i in range(n):
        kind = ("town", "company", "person")[i % 3]
        if kind == "town":
            e = Entity("town", names(place), {
                "province": names(place), "founded": str(rng.randint(1100, 1990)),
                "river": names(place) + " River", "mayor": names(person), "known_for": rng.choice(PRODUCTS)})
        elif kind == "company":
            e = Entity("company", names(lambda: f"{_word(rng, 2)} {rng.choice(COMPANY_SUFFIX)}"), {
                "product": rng.choice(PRODUCTS), "founder": names(person), "founded": str(rng.randint(1700, 2020)),
                "based": names(place)})
        else:
            e = Entity("person", names(person), {
                "profession": rng.choice(PROFESSIONS), "born_in": names(place), "born": str(rng.randint(1800, 2000))})
        out.append(e)
    return out


def document(e: Entity) -> str:
    """The entity's document: a heading and two paragraphs, each fact sentence naming the entity."""
    f, n = e.facts, e.name
    if e.kind == "town":
        paras = [f"{n} is a town in the province of {f['province']}. {n} was founded in {f['founded']}.",
                 f"The {f['river']} flows through {n}. The mayor of {n} is {f['mayor']}. "
                 f"{n} is known for its {f['known_for']}."]
    elif e.kind == "company":
        paras = [f"{n} is a company that makes {f['product']}. {n} was founded in {f['founded']} by {f['founder']}.",
                 f"{n} is based in {f['based']}, where its headquarters are."]
    else:
        paras = [f"{n} is a {f['profession']}. {n} was born in {f['born']}.",
                 f"{n} was born in the town of {f['born_in']}."]
    return "\n\n".join(paras)


QUESTIONS = {
    "town": [("province", ["In which province is {n}?", "Which province is {n} in?"]),
             ("founded", ["When was {n} founded?", "In what year was {n} founded?"]),
             ("river", ["Which river flows through {n}?", "What river runs through {n}?"]),
             ("mayor", ["Who is the mayor of {n}?", "Who is {n}'s mayor?"]),
             ("known_for", ["What is {n} known for?", "What is {n} famous for?"])],
    "company": [("product", ["What does {n} make?", "What does {n} produce?"]),
                ("founder", ["Who founded {n}?", "Who started {n}?"]),
                ("founded", ["When was {n} founded?", "In what year was {n} founded?"]),
                ("based", ["Where are the headquarters of {n}?", "Where is {n} based?"])],
    "person": [("profession", ["What is the profession of {n}?", "What does {n} do for a living?"]),
               ("born", ["When was {n} born?", "In what year was {n} born?"]),
               ("born_in", ["In which town was {n} born?", "Where was {n} born?"])],
}


def questions(world: list[Entity], n: int, seed: int = 0, unanswerable: float = 0.0,
              absent: list[Entity] | None = None) -> list[dict]:
    """``n`` questions about ``world`` (answer: the fact), a share ``unanswerable`` of them about the entities
    of ``absent`` instead -- things the documents never mention (answer: None)."""
    rng = random.Random(f"llmlab-docqa-q:{seed}")
    out = []
    for _ in range(n):
        ask_absent = absent and rng.random() < unanswerable
        e = rng.choice(absent if ask_absent else world)
        fact, templates = rng.choice(QUESTIONS[e.kind])
        out.append({"question": rng.choice(templates).format(n=e.name),
                    "answer": None if ask_absent else e.facts[fact], "entity": e.name, "kind": e.kind,
                    "fact": fact})
    return out


def write_documents(world: list[Entity], folder: str | Path, jsonl_every: int = 10) -> list[str]:
    """Write the world's documents under ``folder``: one file per entity, in turn markdown, text and HTML, and
    every ``jsonl_every``-th entity as a record of ``records.jsonl``. Returns the files written."""
    import json

    from llmlab.utils.io import write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written, records = [], []
    for i, e in enumerate(world):
        text = document(e)
        slug = re.sub(r"[^a-z0-9]+", "-", e.name.lower()).strip("-")
        if jsonl_every and i % jsonl_every == jsonl_every - 1:
            records.append({"title": e.name, "text": text})
            continue
        fmt = i % 3
        if fmt == 0:
            path, body = folder / f"{slug}.md", f"# {e.name}\n\n{text}\n"
        elif fmt == 1:
            path, body = folder / f"{slug}.txt", f"{e.name}\n\n{text}\n"
        else:
            paras = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            path, body = folder / f"{slug}.html", (f"<html><head><title>{e.name}</title><style>p {{margin: 0}}"
                                                   f"</style></head>\n<body><h1>{e.name}</h1>\n{paras}</body></html>\n")
        write_text(path, body)
        written.append(str(path))
    if records:
        write_text(folder / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
        written.append(str(folder / "records.jsonl"))
    return written


def answer_passage(result_text: str, answer: str) -> int | None:
    """The number of the first ``[n] ...`` passage of a search result that holds ``answer``, or None."""
    for m in re.finditer(r"^\[(\d+)\] (.*)$", result_text, re.M):
        if answer in m.group(2):
            return int(m.group(1))
    return None


def qa_conversation(q: dict, result_text: str, rng: random.Random | None = None,
                    system: bool = False) -> Conversation:
    """The conversation that answers ``q`` from ``result_text`` (what ``search QUESTION`` returned): the
    answer and its passage's number, or ``IDK`` when no passage holds the answer."""
    n = answer_passage(result_text, q["answer"]) if q["answer"] is not None else None
    reply = f"{q['answer']} [{n}]" if n is not None else IDK
    msgs = [{"role": "system", "content": (rng or random).choice(SEARCH_SYSTEM)}] if system else []
    msgs += [{"role": "user", "content": q["question"]},
             {"role": "assistant", "content": [{"type": "tool_call", "text": f"search {q['question']}"},
                                               {"type": "tool_result", "text": result_text},
                                               {"type": "text", "text": reply}]}]
    return Conversation(msgs, {"kind": "docqa", "answer": q["answer"] if n is not None else IDK,
                               "answerable": q["answer"] is not None, "cited": n})
