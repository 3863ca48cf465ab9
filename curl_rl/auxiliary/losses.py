"""Contrastive, triplet and negative-free prediction losses with their diagnostics.

Each loss returns a :class:`LossOutput`: the scalar loss and detached diagnostic tensors
(no ``.item()`` here, so nothing forces a host sync; the caller averages and logs them).
Row ``i`` of ``query`` and row ``i`` of ``key`` are a positive pair; every other key (and every
queued key) is a negative for row ``i``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class LossOutput(NamedTuple):
    """A loss and its diagnostics (all detached, on the loss's device)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)
    # clamp keeps an all-masked batch at loss 0 instead of 0/0
    return (values * weights).sum() / weights.sum().clamp(min=1.0)


def similarity_logits(
    query: torch.Tensor,
    keys: torch.Tensor,
    weight: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Similarity matrix between queries and keys.

    :param query: ``(B, D)``.
    :param keys: ``(N, D)``.
    :param weight: CURL's bilinear ``W`` (``(D, D)``): logits ``q W kᵀ``, no temperature.
        ``None`` uses cosine similarity divided by ``temperature``.
    :param temperature: temperature of the cosine similarity.
    :return: ``(B, N)`` logits.
    """
    if weight is not None:
        return query @ weight @ keys.T
    return F.normalize(query, dim=1) @ F.normalize(keys, dim=1).T / temperature


def info_nce(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    temperature: float = 1.0,
    queue: torch.Tensor | None = None,
    symmetric: bool = False,
    mask: torch.Tensor | None = None,
    ids: torch.Tensor | None = None,
    queue_ids: torch.Tensor | None = None,
) -> LossOutput:
    """InfoNCE: classify each query's own key among all keys (CURL, MoCo, ATC).

    :param query: ``(B, D)`` anchors (with gradient).
    :param key: ``(B, D)`` positives (normally from the momentum encoder, no gradient).
    :param weight: bilinear ``W`` for CURL's similarity; ``None`` for cosine / temperature.
    :param temperature: temperature of the cosine similarity.
    :param queue: ``(Q, D)`` extra negative keys (MoCo).
    :param symmetric: average with the key-to-query direction (in-batch negatives only).
    :param mask: ``(B,)`` bool; rows (and their keys as negatives) that are False are ignored,
        e.g. temporal pairs that would cross an episode end.
    :param ids: ``(B,)`` integer identity of each row's frame (e.g. its rollout or replay index).
        A key whose id equals an anchor's id is that anchor's own frame: it is never used as a
        negative for it (PPO's epochs and replay sampling show one frame several times).
    :param queue_ids: ``(Q,)`` ids of the queued keys, compared with ``ids`` the same way.
    :return: loss and diagnostics ``accuracy``, ``pos_sim``, ``neg_sim``, ``gap``.
    """
    b = query.shape[0]
    has_queue = queue is not None and queue.numel() > 0
    keys = torch.cat([key, queue], dim=0) if has_queue else key  # type: ignore[list-item]
    raw = similarity_logits(query, keys, weight, temperature)
    drop = _excluded_negatives(b, keys.shape[0], raw.device, mask, ids, queue_ids if has_queue else None)
    logits = raw if drop is None else raw.masked_fill(drop, float("-inf"))
    labels = torch.arange(b, device=query.device)
    per_row = F.cross_entropy(_shift_rows(logits), labels, reduction="none")
    if symmetric:
        # keys classify queries: softmax over each column of the in-batch block. The shift must
        # be the column's own max; reusing the row-shifted logits changes this softmax.
        columns = raw[:, :b].T
        if drop is not None:
            # the in-batch block of ``drop`` is symmetric in what it excludes (invalid or
            # same-frame partners), so it applies to the transposed problem as it stands
            columns = columns.masked_fill(drop[:, :b], float("-inf"))
        per_row = 0.5 * (per_row + F.cross_entropy(_shift_rows(columns), labels, reduction="none"))
    loss = _masked_mean(per_row, mask)
    with torch.no_grad():
        finite = torch.where(torch.isfinite(logits), logits, torch.zeros_like(logits))
        pos = finite[labels, labels]
        accuracy = (logits.argmax(dim=1) == labels).float()
        n_cols = keys.shape[0]
        neg_count = (torch.isfinite(logits).sum(dim=1) - 1).clamp(min=1)
        neg = (finite.sum(dim=1) - pos) / neg_count
        metrics = {
            "accuracy": _masked_mean(accuracy, mask),
            "pos_sim": _masked_mean(pos, mask),
            "neg_sim": _masked_mean(neg, mask) if n_cols > 1 else torch.zeros((), device=query.device),
        }
        metrics["gap"] = metrics["pos_sim"] - metrics["neg_sim"]
    return LossOutput(loss, metrics)


def _shift_rows(logits: torch.Tensor) -> torch.Tensor:
    # subtracting the row max changes nothing mathematically but keeps exp() finite (CURL)
    return logits - logits.max(dim=1, keepdim=True).values.detach()


def _excluded_negatives(
    b: int,
    n_keys: int,
    device: torch.device,
    mask: torch.Tensor | None,
    ids: torch.Tensor | None,
    queue_ids: torch.Tensor | None,
) -> torch.Tensor | None:
    """``(B, N)`` bool of logits that must not act as negatives; each row's positive is never dropped."""
    if mask is None and ids is None:
        return None
    drop = torch.zeros(b, n_keys, dtype=torch.bool, device=device)
    if mask is not None:
        # invalid keys (e.g. pairs across an episode end) are no negatives for valid rows
        drop[:, :b] |= ~mask.unsqueeze(0)
    if ids is not None:
        drop[:, :b] |= ids.view(b, 1) == ids.view(1, b)
        if queue_ids is not None and n_keys > b:
            drop[:, b:] |= ids.view(b, 1) == queue_ids.view(1, -1)
    # each row keeps its own positive, so masked rows stay finite (their weight is 0 anyway)
    drop[:, :b] &= ~torch.eye(b, dtype=torch.bool, device=device)
    return drop


def triplet_loss(
    query: torch.Tensor,
    key: torch.Tensor,
    *,
    margin: float = 0.5,
    mining: str = "semi-hard",
    generator: torch.Generator | None = None,
) -> LossOutput:
    """Triplet loss on L2-normalised embeddings with in-batch negative mining.

    ``d(a, p) - d(a, n) + margin`` with squared Euclidean distances. Mining picks, per anchor,
    ``"random"``: any other key; ``"hard"``: the closest other key; ``"semi-hard"``: the closest
    key farther than the positive (FaceNet), falling back to the farthest key closer than the
    positive when none is (the TF-Addons rule).

    :param query: ``(B, D)`` anchors.
    :param key: ``(B, D)`` positives; the other rows serve as negatives.
    :param margin: the margin.
    :param mining: ``"random"``, ``"hard"`` or ``"semi-hard"``.
    :param generator: randomness for ``"random"`` mining.
    :return: loss and diagnostics ``accuracy`` (positive is the nearest key), ``pos_sim``,
        ``neg_sim`` (cosine), ``gap``.
    """
    b = query.shape[0]
    q, k = F.normalize(query, dim=1), F.normalize(key, dim=1)
    dist = (2.0 - 2.0 * q @ k.T).clamp(min=0.0)  # squared distance of unit vectors
    eye = torch.eye(b, dtype=torch.bool, device=q.device)
    d_ap = dist.diagonal()
    inf = torch.full_like(dist, float("inf"))
    if mining == "random":
        offset = torch.randint(1, b, (b,), generator=generator, device=q.device)
        neg_idx = (torch.arange(b, device=q.device) + offset) % b
    elif mining == "hard":
        neg_idx = torch.where(eye, inf, dist).argmin(dim=1)
    elif mining == "semi-hard":
        farther = (dist > d_ap.unsqueeze(1)) & ~eye
        outside = torch.where(farther, dist, inf).argmin(dim=1)
        inside = torch.where(~farther & ~eye, dist, -inf).argmax(dim=1)
        neg_idx = torch.where(farther.any(dim=1), outside, inside)
    else:
        raise ValueError(f"unknown triplet mining {mining!r}; use random, hard or semi-hard")
    d_an = dist.gather(1, neg_idx.unsqueeze(1)).squeeze(1)
    loss = F.relu(d_ap - d_an + margin).mean()
    with torch.no_grad():
        cos = q @ k.T
        pos = cos.diagonal()
        neg = (cos.sum(dim=1) - pos) / max(b - 1, 1)
        metrics = {
            "accuracy": (dist.argmin(dim=1) == torch.arange(b, device=q.device)).float().mean(),
            "pos_sim": pos.mean(),
            "neg_sim": neg.mean(),
        }
        metrics["gap"] = metrics["pos_sim"] - metrics["neg_sim"]
    return LossOutput(loss, metrics)


def cosine_prediction_loss(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> LossOutput:
    """Negative-free prediction loss (SPR/BYOL): ``2 - 2 cos(p, z)``, i.e. the squared distance
    of the L2-normalised vectors.

    With a step axis (``(B, K, D)``, SPR's K future steps) the loss is each step's masked mean over
    the batch, averaged over the steps, as K separate ``(B, D)`` calls would give.

    :param prediction: ``(B, D)`` or ``(B, K, D)`` predictions (with gradient).
    :param target: targets of the same shape (no gradient).
    :param mask: ``(B,)`` or ``(B, K)`` bool of rows that count.
    :return: loss and diagnostics ``pos_sim`` (mean cosine).
    """
    cos = (F.normalize(prediction, dim=-1) * F.normalize(target, dim=-1)).sum(dim=-1)
    if cos.dim() == 1:
        return LossOutput(_masked_mean(2.0 - 2.0 * cos, mask), {"pos_sim": _masked_mean(cos.detach(), mask)})
    weights = torch.ones_like(cos) if mask is None else mask.to(cos.dtype)
    # clamp keeps an all-masked step at 0 instead of 0/0, as _masked_mean does
    counts = weights.sum(dim=0).clamp(min=1.0)
    loss = (((2.0 - 2.0 * cos) * weights).sum(dim=0) / counts).mean()
    pos_sim = ((cos.detach() * weights).sum(dim=0) / counts).mean()
    return LossOutput(loss, {"pos_sim": pos_sim})
