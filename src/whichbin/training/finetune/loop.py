"""The training loop in pieces: optimiser and schedule, the linear probe, one epoch, and
validation. Plain functions over a :class:`~whichbin.training.finetune.nets.Trainable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from whichbin.config import TrainingConfig
from whichbin.training.finetune.data import Batch, Feed, as_tensor, epoch_batches, prefetch
from whichbin.training.finetune.nets import Trainable
from whichbin.training.finetune.params import Recipe


def lr_lambda(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up, then cosine decay to zero, per optimiser step."""

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + float(np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))

    return f


def create_optimizer(
    net: Trainable, cfg: TrainingConfig, recipe: Recipe, n_train: int
) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (the classifier at twice the backbone's rate) and its per-step schedule."""
    steps_per_epoch = (n_train + recipe.batch_size - 1) // recipe.batch_size
    head = list(net.fc.parameters())
    head_ids = {id(q) for q in head}
    body = [q for q in net.parameters() if id(q) not in head_ids]
    lr = cfg.finetune_lr
    opt = torch.optim.AdamW(
        [{"params": body, "lr": lr}, {"params": head, "lr": 2 * lr}],
        weight_decay=recipe.weight_decay,
    )
    schedule = lr_lambda(
        int(recipe.warmup_epochs * steps_per_epoch), cfg.finetune_epochs * steps_per_epoch
    )
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def features_and_logits(net: Trainable, xfn: Batch, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, logits) in eval mode over ``n`` items."""
    net.eval()
    feats, logits = [], []
    with torch.no_grad():
        for i in range(0, n, 64):
            f = net.features(as_tensor(xfn(np.arange(i, min(n, i + 64)))))
            feats.append(f.numpy())
            logits.append(net.fc(f).numpy())
    return np.concatenate(feats), np.concatenate(logits)


def train_one_epoch(
    net: Trainable,
    feed: Feed,
    y: np.ndarray,
    epoch: int,
    cfg: TrainingConfig,
    recipe: Recipe,
    class_weights: torch.Tensor,
    opt: torch.optim.Optimizer,
    sched: Any,
) -> float:
    """One pass over the training items in shuffled batches; returns the mean loss."""
    rng = np.random.default_rng([cfg.seed, epoch])
    torch.manual_seed(cfg.seed * 1000 + epoch)
    batches = epoch_batches(len(y), recipe.batch_size, rng)
    mix_rng = np.random.default_rng([cfg.seed, epoch, 1])  # train's rng is threaded
    net.train()
    losses = []
    for idx, x in prefetch(batches, lambda idx: feed.train(idx, rng)):
        targets = [(1.0, torch.from_numpy(y[idx]))]
        if cfg.finetune_mixup > 0:
            lam, perm = mixup_draw(mix_rng, cfg.finetune_mixup, len(idx))
            x = lam * x + (1 - lam) * x[perm]
            targets = [(lam, targets[0][1]), (1 - lam, targets[0][1][perm])]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=recipe.bf16):
            logits = net(as_tensor(x))
        loss = sum(
            w
            * nn.functional.cross_entropy(
                logits.float(), t, weight=class_weights, label_smoothing=recipe.label_smoothing
            )
            for w, t in targets
        )
        assert isinstance(loss, torch.Tensor)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def validate(net: Trainable, val: Batch, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) on the validation items."""
    _, logits = features_and_logits(net, val, len(y))
    loss = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))
    return loss, float(np.mean(logits.argmax(1) == y))


def mixup_draw(rng: np.random.Generator, alpha: float, n: int) -> tuple[float, np.ndarray]:
    """A mixup weight (``max(lam, 1 - lam)``: each example stays the main one) and a
    pairing permutation."""
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1 - lam), rng.permutation(n)


def fit_probe(
    fc: nn.Linear, feats: np.ndarray, y: np.ndarray, cw: np.ndarray, steps: int = 300
) -> None:
    """Linear probe on frozen features (full-batch Adam in numpy: torch's per-op overhead
    dominates at this size), the classifier's starting point."""
    c = fc.out_features
    w, b = np.zeros((c, feats.shape[1])), np.zeros(c)
    sw = cw[y] / cw[y].sum()
    onehot = np.eye(c)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    for t in range(1, steps + 1):
        z = feats @ w.T + b
        p = np.exp(z - z.max(1, keepdims=True))
        g = (p / p.sum(1, keepdims=True) - onehot) * sw[:, None]
        for i, grad in enumerate((g.T @ feats + 2e-3 * w, g.sum(0))):
            m[i] = 0.9 * m[i] + 0.1 * grad
            v[i] = 0.999 * v[i] + 0.001 * grad * grad
            step = 1e-2 * (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
            if i == 0:
                w -= step
            else:
                b -= step
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        fc.bias.copy_(torch.from_numpy(b.astype(np.float32)))
