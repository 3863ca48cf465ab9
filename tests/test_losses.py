"""Losses on hand-computed examples."""

from __future__ import annotations

import math

import torch

from curl_rl.auxiliary.losses import cosine_prediction_loss, info_nce, triplet_loss


def test_info_nce_bilinear_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    w = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # logits = q W k^T = [[2, 2], [0, 1]]
    # row 0: -log(e^2 / (e^2 + e^2)) = log 2 ; row 1: -log(e^1 / (e^0 + e^1))
    expected = 0.5 * (math.log(2.0) + (math.log(1.0 + math.e) - 1.0))
    out = info_nce(q, k, weight=w)
    assert math.isclose(out.loss.item(), expected, rel_tol=1e-6)
    # argmax of row 0 is a tie (first index wins), row 1 picks its own key
    assert math.isclose(out.metrics["accuracy"].item(), 1.0)
    assert math.isclose(out.metrics["pos_sim"].item(), 1.5)
    assert math.isclose(out.metrics["neg_sim"].item(), 1.0)


def test_info_nce_cosine_temperature_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    k = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # cosine matrix = identity; logits = I / t
    expected = math.log(1.0 + math.exp(-1.0 / t))
    out = info_nce(q, k, temperature=t)
    assert math.isclose(out.loss.item(), expected, rel_tol=1e-6)


def test_info_nce_queue_and_mask() -> None:
    q = torch.eye(3)
    k = torch.eye(3)
    queue = torch.tensor([[1.0, 0.0, 0.0]])
    out = info_nce(q, k, weight=torch.eye(3), queue=queue)
    # row 0 now has a duplicate of its positive among negatives
    row0 = -math.log(math.e / (2 * math.e + 2))
    row12 = -math.log(math.e / (math.e + 3))
    assert math.isclose(out.loss.item(), (row0 + 2 * row12) / 3, rel_tol=1e-6)
    masked = info_nce(q, k, weight=torch.eye(3), mask=torch.tensor([True, True, False]))
    # row 2 ignored, and key 2 removed from the negatives of rows 0 and 1
    assert math.isclose(masked.loss.item(), -math.log(math.e / (math.e + 1)), rel_tol=1e-6)


def test_info_nce_symmetric_and_gradients_finite() -> None:
    q = torch.randn(8, 4, requires_grad=True)
    k = torch.randn(8, 4)
    out = info_nce(q, k, temperature=0.1, symmetric=True, mask=torch.tensor([True] * 4 + [False] * 4))
    out.loss.backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_triplet_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # d(a,p) = 0, d(a,n) = 2 for every pair: margin 0.5 satisfied -> 0 ; margin 3 -> 1
    assert triplet_loss(q, k, margin=0.5, mining="hard").loss.item() == 0.0
    assert math.isclose(triplet_loss(q, k, margin=3.0, mining="hard").loss.item(), 1.0, rel_tol=1e-6)
    assert triplet_loss(q, k, margin=0.5, mining="semi-hard").metrics["accuracy"].item() == 1.0


def test_semi_hard_picks_closest_farther_negative() -> None:
    q = torch.tensor([[1.0, 0.0]])
    keys = torch.tensor([[0.8, 0.6], [0.6, 0.8], [-1.0, 0.0]])
    query = torch.cat([q, torch.tensor([[0.6, 0.8], [-1.0, 0.0]])])
    out = triplet_loss(query, keys, margin=1.0, mining="semi-hard")
    # anchor 0: d_ap = 0.4; negatives: 0.8 (key 1, semi-hard) and 4 (key 2) -> picks 0.8: loss 0.6
    # anchor 1: d_ap = 0; negatives 0.08 (key 0) and 3.2 (key 2) -> 0.08: loss 0.92
    # anchor 2: d_ap = 0; negatives 3.6 and 3.2 -> 3.2: loss 0
    assert math.isclose(out.loss.item(), (0.6 + 0.92 + 0.0) / 3, rel_tol=1e-5)


def test_cosine_prediction() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    out = cosine_prediction_loss(p, z)
    assert math.isclose(out.loss.item(), (0.0 + 4.0) / 2)
    masked = cosine_prediction_loss(p, z, torch.tensor([True, False]))
    assert masked.loss.item() == 0.0


def _direct_info_nce_halves(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor) -> tuple[float, float]:
    """Both directions of CURL's bilinear InfoNCE, straight from the formula (no shifts)."""
    logits = (q @ w @ k.T).double()
    n = logits.shape[0]
    q_to_k = sum(torch.logsumexp(logits[i], 0) - logits[i, i] for i in range(n)) / n
    k_to_q = sum(torch.logsumexp(logits[:, j], 0) - logits[j, j] for j in range(n)) / n
    return float(q_to_k), float(k_to_q)


def test_info_nce_symmetric_both_halves_match_the_formula() -> None:
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(16, 6, generator=gen) * 3, torch.randn(16, 6, generator=gen) * 3
    w = torch.randn(6, 6, generator=gen)
    q_to_k, k_to_q = _direct_info_nce_halves(q, k, w)
    assert math.isclose(info_nce(q, k, weight=w).loss.item(), q_to_k, rel_tol=1e-5)
    # the key-to-query half is the query-to-key loss with the roles swapped (W transposed)
    assert math.isclose(info_nce(k, q, weight=w.T).loss.item(), k_to_q, rel_tol=1e-5)
    sym = info_nce(q, k, weight=w, symmetric=True).loss.item()
    assert math.isclose(sym, 0.5 * (q_to_k + k_to_q), rel_tol=1e-5)


def test_info_nce_symmetric_by_hand() -> None:
    # logits = [[2, 2], [0, 1]]: rows give log 2 and log(1 + e) - 1; columns [2, 0] and [2, 1]
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    w = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    rows = 0.5 * (math.log(2.0) + math.log(1.0 + math.e) - 1.0)
    cols = 0.5 * ((math.log(math.exp(2) + 1) - 2) + (math.log(math.exp(2) + math.e) - 1))
    out = info_nce(q, k, weight=w, symmetric=True)
    assert math.isclose(out.loss.item(), 0.5 * (rows + cols), rel_tol=1e-6)


def test_info_nce_own_frame_is_never_a_negative() -> None:
    # rows 0 and 2 are two draws of the same frame (id 7): neither may be the other's negative,
    # nor may the queued key of that frame
    q, k = torch.eye(3), torch.eye(3)
    queue = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    ids, queue_ids = torch.tensor([7, 8, 7]), torch.tensor([8, 7])
    out = info_nce(q, k, weight=torch.eye(3), queue=queue, ids=ids, queue_ids=queue_ids)
    # logits: in-batch identity; queue columns row 0 [0, 1], row 1 [1, 0], row 2 [0, 0]
    # row 0 (id 7) drops key 2 and queue[1]: keeps its positive, key 1 and queue[0], all logit 0
    row0 = -math.log(math.e / (math.e + 2))
    # row 1 (id 8) drops queue[0]: keeps keys 0 and 2 and queue[1] (logit 0)
    row1 = -math.log(math.e / (math.e + 3))
    # row 2 (id 7) drops key 0 and queue[1]: keeps key 1 and queue[0]
    row2 = -math.log(math.e / (math.e + 2))
    assert math.isclose(out.loss.item(), (row0 + row1 + row2) / 3, rel_tol=1e-6)


def test_cosine_prediction_over_steps_equals_one_call_per_step() -> None:
    gen = torch.Generator().manual_seed(0)
    p, z = torch.randn(6, 3, 4, generator=gen), torch.randn(6, 3, 4, generator=gen)
    mask = torch.rand(6, 3, generator=gen) > 0.4
    mask[:, 2] = False  # an all-masked step counts as 0, like a (B, D) call with no valid row
    out = cosine_prediction_loss(p, z, mask)
    per_step = [cosine_prediction_loss(p[:, j], z[:, j], mask[:, j]) for j in range(3)]
    assert torch.allclose(out.loss, torch.stack([s.loss for s in per_step]).mean(), atol=1e-6)
    assert torch.allclose(out.metrics["pos_sim"], torch.stack([s.metrics["pos_sim"] for s in per_step]).mean())
    unmasked = [cosine_prediction_loss(p[:, j], z[:, j]).loss for j in range(3)]
    assert torch.allclose(cosine_prediction_loss(p, z).loss, torch.stack(unmasked).mean(), atol=1e-6)
