import numpy as np
import pytest
import torch
from torch import nn

from icarena.envs.regression import make_family, sample_prompts
from icarena.errors import DatasetError
from icarena.pretraining.data.regression import (
    Config,
    RegressionTask,
    generate,
    tokenize,
)
from icarena.pretraining.data.store import load_dataset


def test_tokenize_interleaves_x_and_y_tokens():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    y = -np.arange(6, dtype=np.float64).reshape(2, 3)
    t = tokenize(x, y)
    assert t.shape == (2, 6, 4) and t.dtype == torch.float32
    for i in range(3):
        assert torch.equal(t[:, 2 * i], torch.as_tensor(x[:, i], dtype=torch.float32))
        assert torch.equal(t[:, 2 * i + 1, 0], torch.as_tensor(y[:, i], dtype=torch.float32))
        assert (t[:, 2 * i + 1, 1:] == 0).all()


class _Zero(nn.Module):
    """Predicts 0 everywhere (output channel 0 of a (B, T, 1) read-out)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        return tokens[..., :1] * self.w


def test_batches_loss_and_evaluate_against_independent_computation():
    fam = make_family("linear", 3)
    task = RegressionTask(fam, 5, n_eval=100, eval_seed=7)
    b1 = task.sample_batch(np.random.default_rng([0, 0, 3]), 8)
    b2 = task.sample_batch(np.random.default_rng([0, 0, 3]), 8)
    assert torch.equal(b1["tokens"], b2["tokens"]) and b1["tokens"].shape == (8, 10, 3)
    p = sample_prompts(fam, np.random.default_rng([0, 0, 3]), 8, 5)
    assert torch.equal(b1["tokens"], tokenize(p.x, p.y))
    model = _Zero()
    loss = task.loss(model, b1)
    assert loss.item() == pytest.approx(float((p.y.astype(np.float32) ** 2).mean()), rel=1e-5)
    ev = task.evaluate(model)
    ref = (task.eval_prompts.y**2).mean(0) / 3
    for i in range(5):
        assert ev[f"err_k{i}"] == pytest.approx(ref[i], rel=1e-6)
    assert ev["err_mean"] == pytest.approx(ref.mean(), rel=1e-6)
    # the held-out set is fixed by eval_seed and differs from training batches
    again = RegressionTask(fam, 5, n_eval=100, eval_seed=7)
    np.testing.assert_array_equal(again.eval_prompts.x, task.eval_prompts.x)


def test_trainer_integration(tmp_path):
    """The task drives the lead's Trainer end to end; final_eval is task.evaluate(model)."""
    from icarena.pretraining.model import ModelConfig, SequenceModel
    from icarena.pretraining.train import TrainConfig, train

    torch.manual_seed(0)
    task = RegressionTask(make_family("linear", 1), 4, n_eval=64)
    model = SequenceModel(ModelConfig(
        backbone="gpt", backbone_cfg={"d_model": 16, "n_layers": 1, "n_heads": 2,
                                      "causal": True, "max_len": 8},
        input_kind="vectors", input_dim=1, output_dim=1))
    res = train(model, task, TrainConfig(steps=60, batch_size=32, lr=3e-3, warmup_steps=5,
                                         progress=False, log_every=20), tmp_path)
    assert np.mean(res.losses[-10:]) < np.mean(res.losses[:10])
    model.eval()
    again = task.evaluate(model)
    assert again == pytest.approx(res.final_eval, rel=1e-6)
    assert set(again) == {f"err_k{i}" for i in range(4)} | {"err_mean"}


def test_generator_pool_roundtrip_and_determinism(tmp_path):
    cfg = Config(out_dir=str(tmp_path / "a"), seed=3, family="sparse_linear", d=4, k=6,
                 n_prompts=50, sparsity=2)
    generate(cfg)
    ds = load_dataset(tmp_path / "a", generator="regression")
    assert ds["x"].shape == (50, 6, 4) and ds["y"].shape == (50, 6)
    w = np.asarray(ds["params/w"])
    np.testing.assert_allclose(np.einsum("pkd,pd->pk", ds["x"], w), ds["y"], atol=1e-12)
    assert ((w != 0).sum(1) == 2).all()
    generate(Config(**{**cfg.__dict__, "out_dir": str(tmp_path / "b")}))
    for name in ("x.00000.npy", "y.00000.npy", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with pytest.raises(DatasetError, match="already holds a dataset"):
        generate(cfg)
    task = RegressionTask.from_dataset(tmp_path / "a", n_eval=10)
    assert task.family.name == "sparse_linear" and task.family.sparsity == 2
    batch = task.sample_batch(np.random.default_rng(0), 16)
    rows = np.random.default_rng(0).integers(0, 50, size=16)
    assert torch.equal(batch["tokens"], tokenize(ds["x"][rows], ds["y"][rows]))


def test_pretrain_entry_point_on_a_pool(tmp_path):
    from icarena.pretraining.data.regression import PretrainConfig, RegressionData, pretrain
    from icarena.pretraining.model import ModelSpec, load_model
    from icarena.pretraining.train import TrainConfig

    generate(Config(out_dir=str(tmp_path / "pool"), family="linear", d=2, k=4, n_prompts=64))
    cfg = PretrainConfig(out_dir=str(tmp_path / "run"),
                         data=RegressionData(path=str(tmp_path / "pool"), n_eval=16),
                         model=ModelSpec(d_model=16, n_layers=1),
                         train=TrainConfig(steps=3, batch_size=8, warmup_steps=1, progress=False))
    out = pretrain(cfg)
    assert [r["k"] for r in out["rows"]] == [0, 1, 2, 3]
    model, config = load_model(tmp_path / "run")
    assert config["task"]["k"] == 4 and model.cfg.input_dim == 2


def test_dimension_curriculum_follows_the_trainer_step(tmp_path):
    """Garg et al.'s curriculum: inactive coordinates are 0, sparse supports lie inside the
    active ones, the schedule is a function of the step the Trainer reports (resume-safe)."""
    from icarena.pretraining.model import ModelConfig, SequenceModel
    from icarena.pretraining.train import TrainConfig, train

    fam = make_family("sparse_linear", 5, sparsity=2)
    task = RegressionTask(fam, 6, n_eval=16, curriculum=(2, 10))
    assert [task.active_dims(s) for s in (0, 9, 10, 25, 30, 1000)] == [2, 2, 3, 4, 5, 5]
    task.set_step(10)
    b = task.sample_batch(np.random.default_rng(0), 64)
    assert (b["tokens"][:, 0::2, 3:] == 0).all() and (b["tokens"][:, 0::2, :3] != 0).all()
    p = sample_prompts(fam, np.random.default_rng(0), 64, 6, active_dims=3)
    assert (p.params["w"][:, 3:] == 0).all() and ((p.params["w"] != 0).sum(1) == 2).all()
    assert torch.equal(b["tokens"], tokenize(p.x, p.y))
    # no curriculum (or all dims active) draws exactly the full task's bytes
    full = sample_prompts(fam, np.random.default_rng(1), 8, 6)
    same = sample_prompts(fam, np.random.default_rng(1), 8, 6, active_dims=5)
    np.testing.assert_array_equal(full.x, same.x)
    np.testing.assert_array_equal(full.y, same.y)
    # evaluation is always on the full-dimensional task
    assert (task.eval_prompts.x[..., 2:] != 0).all()

    seen = []
    orig = task.set_step
    task.set_step = lambda s: (seen.append(s), orig(s))
    model = SequenceModel(ModelConfig(
        backbone="gpt", backbone_cfg={"d_model": 8, "n_layers": 1, "n_heads": 1,
                                      "causal": True, "max_len": 12},
        input_kind="vectors", input_dim=5, output_dim=1))
    train(model, task, TrainConfig(steps=5, batch_size=4, progress=False, log_every=5), tmp_path)
    assert seen == [0, 1, 2, 3, 4]


def test_curriculum_errors_name_the_problem():
    with pytest.raises(Exception, match="curriculum is defined for"):
        sample_prompts(make_family("holder", 2), np.random.default_rng(0), 2, 3, active_dims=1)
    with pytest.raises(Exception, match="active_dims must be in"):
        sample_prompts(make_family("linear", 2), np.random.default_rng(0), 2, 3, active_dims=3)
    with pytest.raises(Exception, match="curriculum must be"):
        RegressionTask(make_family("linear", 3), 4, n_eval=4, curriculum=(0, 10))
