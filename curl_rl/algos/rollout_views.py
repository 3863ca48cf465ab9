"""PPO/A2C's ``views="rollout"``: every frame's augmented views drawn once per ``train()`` call.

With ``views="minibatch"`` each PPO epoch re-augments every frame, encodes a fresh key view with
the key encoder (and ``future_k`` more key views for the future objectives), and "consistent"
re-runs the rollout's policy on the fresh RL view. Here, once per ``train()`` call and before any
update, each flattened rollout row gets

- its first view (what the RL loss and the contrastive anchor see in every epoch),
- under "consistent", the rollout policy's log-prob and value of that view (the policy has not
  moved since the rollout, so no snapshot copy is needed),
- the key embedding of a second view by the key encoder of that moment, which serves as the
  row's instance key and as the future target of the rows that predict it.

What that changes in the maths: a frame's views stay the same across the ``n_epochs`` epochs
(RAD/DrAC redraw them), one key view per frame is shared by its instance pair and by the K anchors
that predict it (instead of independent draws), and keys come from the key encoder as of the
call's start, lagging it by up to the call's updates (as MoCo's queued keys lag). The number of
key-encoder forwards per frame and call drops from ``n_epochs * (1 + K)`` to 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer

from curl_rl.auxiliary.head import ObsT


@dataclasses.dataclass
class RolloutViews:
    """Per-row results of one draw, indexed by the flattened rollout row (``env * n_steps + t``).

    :param first: the first augmented view of every row (uint8 stays uint8).
    :param keys: ``(N, latent)`` key embeddings of a second view, or ``None`` without an instance
        or future loss.
    :param old_log_prob: ``(N,)`` the rollout policy's log-probs on ``first`` ("consistent" only).
    :param old_values: ``(N,)`` its values on ``first`` ("consistent" only).
    """

    first: ObsT
    keys: th.Tensor | None
    old_log_prob: th.Tensor | None
    old_values: th.Tensor | None


def select_rows(obs: ObsT, rows: th.Tensor) -> ObsT:
    """``obs[rows]`` for tensors and each key of a dict."""
    if isinstance(obs, dict):
        return {k: v[rows] for k, v in obs.items()}
    return obs[rows]


def _flat(buffer: Any, array: np.ndarray) -> np.ndarray:
    # SB3 flattens (n_steps, n_envs, ...) -> (n_envs * n_steps, ...) at its first get(); before that
    # the same order comes from its own swap_and_flatten
    return array if buffer.generator_ready else RolloutBuffer.swap_and_flatten(array)


@th.no_grad()
def draw_rollout_views(model: Any, consistent: bool, keys: bool, chunk: int) -> RolloutViews:
    """Draw and encode the views of the whole rollout in ``model.rollout_buffer``.

    :param model: a CurlPPO / CurlA2C right before its first update of a ``train()`` call.
    :param consistent: also compute the old log-probs and values of the first views.
    :param keys: also compute the key embeddings of second views.
    :param chunk: rows per forward pass (bounds the memory of the float copies).
    :return: the views and their encodings, on ``model.device``.
    """
    buffer, head, device = model.rollout_buffer, model.aux_head, model.device
    if isinstance(buffer.observations, dict):
        raw: ObsT = {k: th.as_tensor(_flat(buffer, v)).to(device) for k, v in buffer.observations.items()}
        n = len(next(iter(raw.values())))
    else:
        raw = th.as_tensor(_flat(buffer, buffer.observations)).to(device)
        n = len(raw)
    actions = th.as_tensor(_flat(buffer, buffer.actions)).to(device)
    if isinstance(model.action_space, spaces.Discrete):
        actions = actions.long().flatten()
    firsts, key_parts, log_probs, values = [], [], [], []
    model.policy.set_training_mode(False)  # as in collect_rollouts, whose estimates these replace
    try:
        for start in range(0, n, chunk):
            rows = th.arange(start, min(start + chunk, n), device=device)
            part = select_rows(raw, rows)
            first = head.augment(part)
            firsts.append(first)
            if consistent:
                value, log_prob, _ = model.policy.evaluate_actions(first, actions[rows])
                log_probs.append(log_prob)
                values.append(value.flatten())
            if keys:
                key_parts.append(head.encode_key(head.aux_view(part)))
    finally:
        model.policy.set_training_mode(True)
    if isinstance(raw, dict):
        first_all: ObsT = {k: th.cat([f[k] for f in firsts]) for k in raw}
    else:
        first_all = th.cat(firsts)
    return RolloutViews(
        first=first_all,
        keys=th.cat(key_parts) if keys else None,
        old_log_prob=th.cat(log_probs) if consistent else None,
        old_values=th.cat(values) if consistent else None,
    )
