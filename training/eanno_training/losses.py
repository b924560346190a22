"""Training losses: Dice + cross-entropy for plain heads; Hungarian-matched mask loss for the mask decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .models.transunet import semantic_probs


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - mean soft Dice over classes present in the batch (batch Dice, as nnU-Net)."""
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    present = onehot.sum(dims) > 0
    return 1 - dice[present].mean() if present.any() else probs.sum() * 0


def semantic_loss(
    probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy on probabilities (log of the normalised map) + soft Dice."""
    k = probs.shape[1]
    onehot = F.one_hot(target.long(), k).permute(0, 4, 1, 2, 3).float()
    ce = F.nll_loss(torch.log(probs.clamp_min(1e-6)), target.long(), weight=weight)
    return ce + soft_dice_loss(probs, onehot)


def _dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise (Q, T) Dice loss between sigmoid masks and binary targets, both flattened."""
    p = logits.sigmoid()
    inter = p @ targets.T
    return 1 - (2 * inter + 1) / (p.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)


def _bce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pairwise (Q, T) mean binary cross-entropy."""
    n = logits.shape[1]
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / n


def sample_points(target: torch.Tensor, n_points: int) -> torch.Tensor:
    """Voxel indices for the mask losses (Mask2Former's point sampling): half uniform, half foreground."""
    flat = target.flatten()
    uniform = torch.randint(flat.numel(), (n_points // 2,), device=flat.device)
    fg = torch.nonzero(flat > 0).flatten()
    if fg.numel() == 0:
        return torch.randint(flat.numel(), (n_points,), device=flat.device)
    return torch.cat(
        [uniform, fg[torch.randint(fg.numel(), (n_points - n_points // 2,), device=flat.device)]]
    )


def mask_classification_loss(
    cls: torch.Tensor,
    masks: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    no_object_weight: float = 0.1,
    n_points: int = 12544,
) -> torch.Tensor:
    """Mask2Former set loss: Hungarian match queries to the classes present, then CE + BCE + Dice.

    Matching and mask losses use n_points sampled voxels per patch (as Mask2Former), which keeps the
    cost independent of the patch size.
    """
    b, q = cls.shape[:2]
    empty_w = torch.ones(num_classes + 1, device=cls.device)
    empty_w[-1] = no_object_weight
    total = cls.new_zeros(())
    for i in range(b):
        pts = sample_points(target[i], n_points)
        lab = target[i].flatten()[pts]
        present = torch.unique(target[i])
        tmasks = (lab[None, :] == present[:, None]).float()  # (T, P)
        logit = masks[i].flatten(1)[:, pts].float()  # (Q, P)
        prob = cls[i].float().softmax(-1)
        with torch.no_grad():
            cost = -prob[:, present] + 5 * _bce_cost(logit, tmasks) + 5 * _dice_cost(logit, tmasks)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
        rows_t = torch.as_tensor(rows, device=cls.device)
        cols_t = torch.as_tensor(cols, device=cls.device)
        tgt_cls = torch.full((q,), num_classes, dtype=torch.long, device=cls.device)
        tgt_cls[rows_t] = present[cols_t].long()
        l_cls = F.cross_entropy(cls[i].float(), tgt_cls, weight=empty_w)
        ml, mt = logit[rows_t], tmasks[cols_t]
        l_bce = F.binary_cross_entropy_with_logits(ml, mt)
        p = ml.sigmoid()
        l_dice = (1 - (2 * (p * mt).sum(-1) + 1) / (p.sum(-1) + mt.sum(-1) + 1)).mean()
        total = total + 2 * l_cls + 5 * l_bce + 5 * l_dice
    return total / b


def segmentation_loss(
    out: dict[str, object], target: torch.Tensor, num_classes: int, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The loss for a model's forward_train output and an integer label patch (B, D, H, W)."""
    if "logits" in out:
        logits = out["logits"]
        assert isinstance(logits, torch.Tensor)
        return semantic_loss(torch.softmax(logits.float(), dim=1), target, weight=class_weights)
    layers = out["layers"]
    assert isinstance(layers, list)
    # Matched set loss on every layer's prediction (deep supervision, as Mask2Former), plus a semantic
    # Dice + CE on the final class map: the output the product thresholds, and it speeds up convergence.
    loss = sum(mask_classification_loss(c, m, target, num_classes) for c, m in layers) / len(layers)
    cls, masks = layers[-1]
    return loss + semantic_loss(semantic_probs(cls, masks), target, weight=class_weights)
