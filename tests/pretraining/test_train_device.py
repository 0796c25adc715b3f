"""Trainer data path and host syncs: device-resident datasets, loss read-back, bad losses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from icarena.envs.planning.tokens import NEWLINE, PAD
from icarena.errors import IcarenaError
from icarena.evaluation.report import write_metrics
from icarena.pretraining.game_lm import GamePolicyTask, icgp_model_config
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import PathLMTask, alpine_model_config
from icarena.pretraining.train import TrainConfig, lr_at, make_optimizer, train


def _rows(n_rows: int = 64, width: int = 12, vocab: int = 12, seed: int = 0) -> np.ndarray:
    """ALPINE-shaped token rows: random tokens, a newline, PAD after it."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(2, vocab, size=(n_rows, width)).astype(np.uint16)
    ends = rng.integers(4, width - 1, size=n_rows)
    for r, e in enumerate(ends):
        rows[r, e], rows[r, e + 1:] = NEWLINE, PAD
    return rows


def _path_model(seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(alpine_model_config(12, 11, d_model=16, n_layers=1, n_heads=2))


def _cfg(**kw) -> TrainConfig:
    base = dict(steps=30, batch_size=8, lr=3e-3, warmup_steps=3, ckpt_every=10, log_every=7,
                seed=3, progress=False, device="cpu")
    return TrainConfig(**{**base, **kw})


class HostOnly:
    """The wrapped task without its ``to`` hook: batches drawn on the host as before."""

    def __init__(self, task):
        self.task = task
        self.tokens_per_sample = task.tokens_per_sample

    def sample_batch(self, rng, batch_size):
        return self.task.sample_batch(rng, batch_size)

    def loss(self, model, batch):
        return self.task.loss(model, batch)

    def evaluate(self, model):
        return {}


def _reference_curve(model, task, cfg: TrainConfig) -> list[float]:
    """The Trainer's step as it was: host batches, the loss read back after every step."""
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, cfg) / cfg.lr)
    losses = []
    model.train()
    for step in range(cfg.steps):
        batch = task.sample_batch(np.random.default_rng([cfg.seed, 0, step]), cfg.batch_size)
        loss = task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return losses


def test_device_resident_rows_give_the_same_loss_curve_as_the_host_loop(tmp_path):
    rows = _rows()
    on_device = train(_path_model(), PathLMTask(rows), _cfg(), tmp_path / "a")
    assert PathLMTask(rows).to("cpu").device_tokens is not None
    host = train(_path_model(), HostOnly(PathLMTask(rows)), _cfg(), tmp_path / "b")
    before = _reference_curve(_path_model(), HostOnly(PathLMTask(rows)), _cfg())
    assert len(on_device.losses) == 30
    assert on_device.losses == host.losses == before


@pytest.mark.parametrize("labels", ["soft", "sampled"])
def test_game_task_on_the_device_draws_the_same_batches(labels):
    rng = np.random.default_rng(0)
    tokens = rng.random((10, 6, 7)).astype(np.float32)  # H + S + A + 1 (concat)
    targets = rng.dirichlet(np.ones(3), (10, 6, 1, 2)).astype(np.float32)
    host = GamePolicyTask(tokens, targets, labels=labels)
    dev = GamePolicyTask(tokens, targets, labels=labels).to("cpu")
    a = host.sample_batch(np.random.default_rng([1, 0, 5]), 7)
    b = dev.sample_batch(np.random.default_rng([1, 0, 5]), 7)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=0, rtol=0)
    torch.manual_seed(0)
    model = SequenceModel(icgp_model_config("max", (1, 2, 3, 3), 6, d_model=8, n_layers=1,
                                            n_heads=2, embedding="concat"))
    assert torch.equal(host.loss(model, a), dev.loss(model, b))


class BlowsUp(HostOnly):
    """The loss becomes NaN from step ``at`` on."""

    def __init__(self, task, at: int):
        super().__init__(task)
        self.at, self.step = at, 0

    def set_step(self, step):
        self.step = step

    def loss(self, model, batch):
        loss = self.task.loss(model, batch)
        return loss * float("nan") if self.step >= self.at else loss


def test_a_non_finite_loss_stops_the_run_at_the_next_read_back_naming_its_first_step(tmp_path):
    with pytest.raises(IcarenaError, match="became nan at step 12;"):
        train(_path_model(), BlowsUp(PathLMTask(_rows()), at=12), _cfg(), tmp_path)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert state["step"] == 10 and len(state["losses"]) == 10  # nothing after the bad step
    assert all(np.isfinite(state["losses"]))


def test_tokens_per_second_in_metrics_json_and_kept_by_later_reports(tmp_path):
    result = train(_path_model(), PathLMTask(_rows()), _cfg(), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train"]["tokens_per_s"] == pytest.approx(result.tokens_per_s)
    assert metrics["train"]["tokens_per_s"] > 0 and metrics["train"]["steps"] == 30
    write_metrics(tmp_path, {"evaluation": {"accuracy": 1.0}})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["evaluation"] == {"accuracy": 1.0} and "tokens_per_s" in metrics["train"]


def test_bf16_precision_trains(tmp_path):
    result = train(_path_model(), PathLMTask(_rows()), _cfg(precision="bf16", steps=10),
                   tmp_path)
    assert len(result.losses) == 10 and np.isfinite(result.losses).all()


def test_bad_precision_is_refused(tmp_path):
    with pytest.raises(Exception, match="precision"):
        train(_path_model(), PathLMTask(_rows()), _cfg(precision="fp16"), tmp_path)


@pytest.mark.slow
def test_compile_gives_the_same_curve(tmp_path):
    rows = _rows()
    eager = train(_path_model(), PathLMTask(rows), _cfg(steps=8), tmp_path / "a")
    compiled = train(_path_model(), PathLMTask(rows), _cfg(steps=8, compile=True),
                     tmp_path / "b")
    np.testing.assert_allclose(compiled.losses, eager.losses, rtol=1e-4)
    assert (tmp_path / "b" / "model.safetensors").is_file()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_no_host_sync_between_log_and_checkpoint_steps_on_a_gpu(tmp_path):
    """100 steps with CUDA's sync debug mode set to error: any host sync outside the Trainer's
    read-back / evaluation / checkpoint points raises."""
    task = PathLMTask(_rows(n_rows=512))
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = train(_path_model(), task, _cfg(steps=100, log_every=25, ckpt_every=50,
                                                 device="cuda"), tmp_path)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert len(result.losses) == 100 and np.isfinite(result.losses).all()
