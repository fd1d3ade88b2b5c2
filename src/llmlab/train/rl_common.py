"""What the RL trainers (DPO, PPO, GRPO) share beyond the model's heads: a frozen reference copy.

The reward model and value model are ``llmlab.model.heads``; reward-model run folders are ``llmlab.runs``;
sequence log-probs are ``llmlab.model.sequences``.
"""

from __future__ import annotations

import torch.nn as nn


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with gradients off (the reference policy)."""
    import copy

    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref
