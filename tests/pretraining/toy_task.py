"""A tiny next-token task for trainer tests: predict (token + 1) mod V."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from icarena.pretraining.model import ModelConfig, SequenceModel

VOCAB, T = 11, 8


class CountingTask:
    tokens_per_sample = T

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.calls = 0

    def sample_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        if self.fail_at is not None and self.calls == self.fail_at:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        start = rng.integers(0, VOCAB, size=(batch_size, 1))
        seq = (start + np.arange(T + 1)) % VOCAB
        return {"x": torch.from_numpy(seq[:, :-1]), "y": torch.from_numpy(seq[:, 1:])}

    def loss(self, model, batch):
        logits = model(batch["x"])
        return F.cross_entropy(logits.reshape(-1, VOCAB), batch["y"].reshape(-1))

    def evaluate(self, model):
        rng = np.random.default_rng(123)
        batch = self.sample_batch(rng, 32) if self.fail_at is None else None
        if batch is None:
            return {}
        acc = (model(batch["x"]).argmax(-1) == batch["y"]).float().mean()
        return {"accuracy": float(acc)}


def toy_model_config(backbone: str = "gpt", **backbone_cfg) -> ModelConfig:
    cfg = dict(d_model=16, n_layers=1, n_heads=2, max_len=T)
    cfg.update(backbone_cfg)
    return ModelConfig(backbone=backbone, backbone_cfg=cfg, input_kind="tokens",
                       input_dim=VOCAB, output_dim=VOCAB)


def toy_model(seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(toy_model_config())
