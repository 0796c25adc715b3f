import numpy as np
import pytest
import torch
import torch.nn.functional as F

from icarena.envs.planning import tokens as tk
from icarena.errors import ConfigError
from icarena.pretraining.model import SequenceModel
from icarena.pretraining.path_lm import (
    PathLMTask,
    alpine_model_config,
    next_token_loss,
    sample_completions,
)


def rows() -> np.ndarray:
    paths = np.array([[0, 1, 3, -1], [2, 3, -1, -1], [0, 2, 3, -1]])
    tok, block = tk.encode_paths(paths, np.array([3, 2, 3]), n=5, block_size=12)
    return tok


def tiny_model(vocab=7, block=12, seed=0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(alpine_model_config(vocab, block, d_model=16, n_heads=2))


def test_model_config_is_alpine_nanogpt():
    cfg = alpine_model_config(102, 32)
    assert cfg.tie_weights and cfg.backbone_cfg["bias"] is False
    assert cfg.backbone_cfg["d_model"] == 120 and cfg.backbone_cfg["n_layers"] == 1
    m = SequenceModel(cfg)
    assert m.read_out.weight is m.read_in.weight


def test_model_spec_builds_the_alpine_model_and_options_override():
    from icarena.pretraining.model import ModelSpec
    from icarena.pretraining.path_lm import PretrainConfig, alpine_model, path_model_config

    spec = PretrainConfig().model
    assert spec == alpine_model() == ModelSpec(d_model=120, n_layers=1, n_heads=1)
    assert path_model_config(spec, 102, 32) == alpine_model_config(102, 32)
    spec.options = {"bias": True, "mlp_ratio": 2}
    cfg = path_model_config(spec, 102, 32)
    assert cfg.backbone_cfg["bias"] is True and cfg.backbone_cfg["mlp_ratio"] == 2
    assert cfg.backbone_cfg["causal"] is True and cfg.backbone_cfg["max_len"] == 32
    with pytest.raises(ConfigError, match="unknown backbone"):
        path_model_config(ModelSpec(backbone="nope"), 102, 32)


def test_task_trims_pad_columns_and_ignores_pad_targets():
    task = PathLMTask(rows())
    assert task.tokens.shape[1] == 6  # longest line: s t + 3 path nodes + newline
    batch = task.sample_batch(np.random.default_rng(0), 4)
    assert batch["x"].shape == (4, 5) and batch["y"].shape == (4, 5)
    model = tiny_model()
    loss = task.loss(model, batch)
    logits = model(batch["x"])
    keep = batch["y"] != tk.PAD
    manual = F.cross_entropy(logits[keep], batch["y"][keep])
    torch.testing.assert_close(loss, manual)
    # the loss of full-width rows equals the loss of trimmed rows (PAD columns do not count)
    full = torch.from_numpy(rows().astype(np.int64))
    trimmed = torch.from_numpy(task.tokens.astype(np.int64))
    torch.testing.assert_close(next_token_loss(model, full[:, :-1], full[:, 1:]),
                               next_token_loss(model, trimmed[:, :-1], trimmed[:, 1:]))


def test_sampling_never_emits_pad_or_oov_and_is_seeded():
    model = tiny_model()
    prompts = tk.prompt_tokens(np.array([[0, 3], [2, 3], [1, 4]] * 20))
    out = sample_completions(model, prompts, 10, seed=3)
    assert out.shape == (60, 12)
    assert np.array_equal(out[:, :2], prompts)
    assert out.max() < 7 and out.min() >= 0
    body = out[:, 2:]
    nl = np.where((body == tk.NEWLINE).any(1), np.argmax(body == tk.NEWLINE, 1), body.shape[1])
    pos = np.arange(body.shape[1])[None]
    assert not np.any((body == tk.PAD) & (pos < nl[:, None]))  # no PAD before the newline
    assert np.all(body[pos > nl[:, None]] == tk.PAD)  # only PAD after it
    np.testing.assert_array_equal(out, sample_completions(model, prompts, 10, seed=3))
    assert not np.array_equal(out, sample_completions(model, prompts, 10, seed=4))
    greedy = sample_completions(model, prompts, 10, greedy=True, seed=0)
    np.testing.assert_array_equal(greedy, sample_completions(model, prompts, 10, greedy=True,
                                                             seed=9))


def test_sampling_bad_input():
    with pytest.raises(ConfigError, match="temperature"):
        sample_completions(tiny_model(), np.zeros((1, 2), dtype=int), 3, temperature=0)
