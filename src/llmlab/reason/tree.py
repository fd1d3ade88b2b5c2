"""Search trees: every node a Tree-of-Thoughts search made, with its text, value and parent, saved as JSON
and drawn as a picture.

    tree = Tree(puzzle="4 9 10 13", method="tot-bfs")
    root = tree.add(None, "root", "", state="4 9 10 13")
    child = tree.add(root, "step", "13 - 9 = 4 (left: 4 4 10)", state="4 4 10")
    child.value, child.judgements, child.selected = 20.002, ["sure", "sure", "impossible"], True
    tree.save("trees/0.json");  Tree.load("trees/0.json");  draw_tree(tree, "trees/0.png")

Kinds: ``root`` (the puzzle), ``step`` (one proposed thought and the state it leaves), ``answer`` (a final
answer written from a path). ``selected`` marks the nodes the search kept (BFS's top b per level, the path
DFS followed); ``ok`` on answers is the exact checker's verdict, filled in after the search for the record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.errors import LlmlabError

TREE_FORMAT = "llmlab-reason-tree"
TREE_VERSION = 1


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    kind: str  # root | step | answer
    text: str  # the thought (a step line) or the answer
    state: str = ""  # what is left after this thought, as the model wrote it
    value: float | None = None  # the model's judgement turned into a number (None: not judged)
    judgements: list[str] = field(default_factory=list)  # the sampled words behind ``value``
    selected: bool = False
    ok: bool | None = None  # answers: the checker's verdict, for the record (never seen by the search)
    order: int = -1  # when DFS visited it (0, 1, ...); -1 = not visited / not applicable
    error: str | None = None


@dataclass
class Tree:
    puzzle: str
    method: str
    nodes: list[Node] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def add(self, parent: Node | None, kind: str, text: str, state: str = "") -> Node:
        node = Node(len(self.nodes), None if parent is None else parent.id,
                    0 if parent is None else parent.depth + 1, kind, text, state)
        self.nodes.append(node)
        return node

    def parent(self, node: Node) -> Node | None:
        return None if node.parent is None else self.nodes[node.parent]

    def children(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n.parent == node.id]

    def path(self, node: Node) -> list[Node]:
        """The nodes from the root's first child down to ``node``."""
        out = []
        while node is not None and node.kind != "root":
            out.append(node)
            node = self.parent(node)
        return out[::-1]

    def to_json(self) -> dict:
        return {"format": TREE_FORMAT, "version": TREE_VERSION, "puzzle": self.puzzle, "method": self.method,
                "meta": self.meta, "nodes": [asdict(n) for n in self.nodes]}

    @classmethod
    def from_json(cls, data: dict, source: str = "tree") -> "Tree":
        if data.get("format") != TREE_FORMAT:
            raise LlmlabError(f"{source}: not a search tree (format {data.get('format')!r})")
        if int(data.get("version", 0)) > TREE_VERSION:
            raise LlmlabError(f"{source}: tree version {data['version']} is newer than this llmlab understands")
        fields = set(Node.__dataclass_fields__)
        nodes = [Node(**{k: v for k, v in n.items() if k in fields}) for n in data["nodes"]]
        return cls(data["puzzle"], data["method"], nodes, data.get("meta", {}))

    def save(self, path) -> None:
        from llmlab.utils.io import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> "Tree":
        from llmlab.utils.io import read_json

        return cls.from_json(read_json(path, "search tree"), str(path))


def draw_tree(tree: Tree, path, max_label: int = 28) -> Path:
    """A PNG of the tree, one row per depth: kept nodes green, pruned grey, answers green (right) or red
    (wrong), each labelled with its thought and value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmlab.utils.io import atomic_path

    kids: dict[int | None, list[Node]] = {}
    for n in tree.nodes:
        kids.setdefault(n.parent, []).append(n)
    xs: dict[int, float] = {}
    cursor = [0.0]

    def place(node: Node) -> float:  # leaves left to right, a parent above the middle of its children
        ch = kids.get(node.id, [])
        xs[node.id] = sum(place(c) for c in ch) / len(ch) if ch else cursor[0]
        if not ch:
            cursor[0] += 1.0
        return xs[node.id]

    roots = kids.get(None, [])
    for r in roots:
        place(r)
    width = max(cursor[0], 1.0)
    depth = max((n.depth for n in tree.nodes), default=0)
    fig, ax = plt.subplots(figsize=(min(4 + 1.1 * width, 120), 2.2 + 1.6 * depth))
    for n in tree.nodes:
        if n.parent is not None:
            ax.plot([xs[n.parent], xs[n.id]], [-(n.depth - 1), -n.depth], color="#bbbbbb", lw=0.6, zorder=1)
    for n in tree.nodes:
        if n.kind == "answer":
            color = "#4caf50" if n.ok else "#e57373"
        elif n.kind == "root":
            color = "#90caf9"
        else:
            color = "#a5d6a7" if n.selected else "#eeeeee"
        label = n.text if n.kind != "root" else n.state
        label = label if len(label) <= max_label else label[: max_label - 1] + "…"
        if n.value is not None:
            label += f"\nv={n.value:g}"
        ax.text(xs[n.id], -n.depth, label, ha="center", va="center", fontsize=6, zorder=2,
                bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="#666666", lw=0.5))
    ax.set_xlim(-1, width)
    ax.set_ylim(-depth - 0.6, 0.6)
    ax.axis("off")
    ax.set_title(f"{tree.method}: {tree.puzzle}", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
