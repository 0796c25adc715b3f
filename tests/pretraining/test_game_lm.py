"""ICGP tokenization, imitation task and pretraining entry (icarena.pretraining.game_lm)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from icarena.errors import CheckpointError, ConfigError
from icarena.pretraining import game_lm as gl


def _history(G=2, T=5, H=2, S=3, A=4, B=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "traj/h": np.tile(np.arange(T) % H, (G, 1)),
        "traj/s": rng.integers(0, S, (G, T)),
        "act/max": rng.integers(0, A, (G, T)),
        "act/min": rng.integers(0, B, (G, T)),
        "rew/max": rng.random((G, T)),
        "pi/max": rng.dirichlet(np.ones(A), (G, T, H, S)),
        "pi/min": rng.dirichlet(np.ones(B), (G, T, H, S)),
        "pi/joint": rng.dirichlet(np.ones(A * B), (G, T, H, S)),
    }


@pytest.mark.parametrize("embedding", gl.EMBEDDINGS)
def test_token_layout_matches_hand_built_tokens(embedding):
    H, S, A, B = 2, 3, 4, 2
    hist = _history(H=H, S=S, A=A, B=B)
    for stream in ("max", "min", "joint"):
        tok = gl.step_tokens(hist, stream, H, S, A, B, embedding)
        assert tok.shape == (2, 5, gl.token_dim(stream, H, S, A, B, embedding))
        for g in range(2):
            for t in range(5):
                h, s = hist["traj/h"][g, t], hist["traj/s"][g, t]
                a, b, r = hist["act/max"][g, t], hist["act/min"][g, t], hist["rew/max"][g, t]
                parts = [np.eye(H)[h], np.eye(S)[s]]
                if stream == "max":
                    own, rho, parts = np.eye(A)[a], r, parts + [np.eye(A)[a]]
                    x, n = a, A
                elif stream == "min":
                    own, rho, parts = np.eye(B)[b], 1 - r, parts + [np.eye(B)[b]]
                    x, n = b, B
                else:
                    own, rho = np.eye(A * B)[a * B + b], r
                    parts += [np.eye(A)[a], np.eye(B)[b]]
                    x, n = a * B + b, A * B
                pi = hist[f"pi/{stream}"][g, t, h, s]
                if embedding == "concat":
                    parts.append([rho])
                elif embedding == "cell":
                    cell = np.eye(H * S * n)[(h * S + s) * n + x]
                    parts += [cell, rho * cell]
                else:
                    parts.append(rho * own)
                if embedding == "slot_prob":
                    parts.append(pi[x] * own)
                elif embedding == "slot_policy":
                    parts.append(pi)
                np.testing.assert_allclose(tok[g, t], np.concatenate(parts), atol=1e-6)
    with pytest.raises(ConfigError, match="embedding"):
        gl.step_tokens(hist, "max", H, S, A, B, "onehot")


@pytest.mark.parametrize("embedding", gl.EMBEDDINGS)
def test_player_tokens_ignore_the_opponents_actions_and_policies(embedding):
    H, S, A, B = 2, 3, 4, 2
    hist = _history(H=H, S=S, A=A, B=B)
    other = dict(hist, **{"act/min": (hist["act/min"] + 1) % B,
                          "pi/min": hist["pi/min"][..., ::-1], "pi/joint": None})
    np.testing.assert_array_equal(gl.step_tokens(hist, "max", H, S, A, B, embedding),
                                  gl.step_tokens(other, "max", H, S, A, B, embedding))
    other = dict(hist, **{"act/max": (hist["act/max"] + 1) % A,
                          "pi/max": hist["pi/max"][..., ::-1], "pi/joint": None})
    np.testing.assert_array_equal(gl.step_tokens(hist, "min", H, S, A, B, embedding),
                                  gl.step_tokens(other, "min", H, S, A, B, embedding))
    other["pi/joint"] = hist["pi/joint"]
    assert not np.array_equal(gl.step_tokens(hist, "joint", H, S, A, B, embedding),
                              gl.step_tokens(other, "joint", H, S, A, B, embedding))


def test_policy_embeddings_need_the_streams_own_policies():
    hist = _history()
    del hist["pi/max"]
    with pytest.raises(ConfigError, match="pi/max"):
        gl.step_tokens(hist, "max", 2, 3, 4, 2, "slot_prob")
    empty = {k: v[:, :0] for k, v in hist.items()}  # before the first step: no policies yet
    assert gl.step_tokens(empty, "max", 2, 3, 4, 2, "slot_prob").shape == (2, 0, 2 + 3 + 4 * 3)


def test_out_of_range_actions_are_rejected():
    hist = _history()
    hist["act/max"][0, 0] = 9
    with pytest.raises(ConfigError, match="act/max"):
        gl.step_tokens(hist, "max", 2, 3, 4, 2)


def test_model_inputs_shift_by_one_with_a_zero_start_token():
    tok = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) + 1
    x = gl.model_inputs(tok)
    assert x.shape == (2, 4, 4)
    assert np.all(x[:, 0] == 0)
    np.testing.assert_array_equal(x[:, 1:], tok)
    assert gl.model_inputs(tok, 3).shape == (2, 3, 4)
    assert gl.model_inputs(np.zeros((2, 0, 4), np.float32)).shape == (2, 1, 4)
    xt = gl.model_inputs(torch.from_numpy(tok))
    np.testing.assert_array_equal(xt.numpy(), x)


def _task(labels="soft", M=3, T=6, H=2, S=2, n=3, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.random((M, T, 5)).astype(np.float32)
    p = rng.dirichlet(np.ones(n), size=(M, T, H, S)).astype(np.float32)
    return gl.GamePolicyTask(tokens, p, labels=labels, val_tokens=tokens, val_targets=p)


class _Fixed(torch.nn.Module):
    """A 'model' returning fixed logits (B, T, H·S·n) whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, x):
        return self.logits[: x.shape[0], : x.shape[1]]


def test_soft_loss_is_the_policy_cross_entropy():
    task = _task()
    batch = task.sample_batch(np.random.default_rng(1), 4)
    assert batch["x"].shape == (4, 6, 5) and batch["p"].shape == (4, 6, 2, 2, 3)
    logits = torch.randn(4, 6, 12)
    loss = task.loss(_Fixed(logits), batch)
    logq = F.log_softmax(logits.reshape(4, 6, 2, 2, 3), -1)
    expected = -(batch["p"] * logq).sum(-1).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


class _FixedAt(_Fixed):
    def forward(self, x, positions=None):
        out = super().forward(x)
        return out if positions is None else out[:, positions]


def test_loss_at_a_subset_of_positions_is_the_cross_entropy_there():
    task = _task()
    task.positions = 3
    batch = task.sample_batch(np.random.default_rng(1), 4)
    pos = batch["pos"]
    assert pos.shape == (3,) and bool((pos[1:] > pos[:-1]).all()) and int(pos.max()) < 6
    assert torch.equal(task.sample_batch(np.random.default_rng(1), 4)["pos"], pos)
    assert batch["p"].shape == (4, 3, 2, 2, 3)
    logits = torch.randn(4, 6, 12)
    logq = F.log_softmax(logits.reshape(4, 6, 2, 2, 3), -1)[:, pos]
    expected = -(batch["p"] * logq).sum(-1).mean()
    assert torch.allclose(task.loss(_FixedAt(logits), batch), expected, atol=1e-6)
    task.to("cpu")  # the device path draws the same rows and positions
    on_device = task.sample_batch(np.random.default_rng(1), 4)
    assert torch.equal(on_device["pos"], pos) and torch.equal(on_device["p"], batch["p"])
    with pytest.raises(ConfigError, match="positions must be an int >= 0"):
        gl.GamePolicyTask(task.tokens, task.targets, positions=-1)
    with pytest.raises(ConfigError, match="train.positions"):
        gl.GameTrainConfig(positions=-2).validate()


def test_sampled_labels_follow_the_policy_and_are_seeded():
    task = _task("sampled", M=1, T=1, H=1, S=1, n=3)
    task.targets[:] = np.array([0.6, 0.3, 0.1], np.float32)
    a = np.concatenate([task.sample_batch(np.random.default_rng([0, i]), 512)["a"].numpy().ravel()
                        for i in range(8)])
    freq = np.bincount(a, minlength=3) / a.size
    np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.03)
    b1 = task.sample_batch(np.random.default_rng(5), 7)["a"]
    b2 = task.sample_batch(np.random.default_rng(5), 7)["a"]
    assert torch.equal(b1, b2)
    logits = torch.randn(7, 1, 3)
    loss = task.loss(_Fixed(logits), {"x": torch.zeros(7, 1, 5), "a": b1})
    assert torch.allclose(loss, F.cross_entropy(logits.reshape(7, 3), b1.reshape(7)))


def test_divergences_against_direct_formulas():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=(3, 5))
    q = rng.dirichlet(np.ones(4), size=(3, 5))
    p[0, 0] = [0.5, 0.5, 0.0, 0.0]
    d = gl.policy_divergences(p, q)
    kl = np.mean([[sum(pi * np.log(pi / qi) for pi, qi in zip(p[i, j], q[i, j], strict=True)
                        if pi > 0)
                   for j in range(5)] for i in range(3)])
    assert d["val_kl"] == pytest.approx(kl)
    assert d["val_tv"] == pytest.approx(np.mean(0.5 * np.abs(p - q).sum(-1)))
    assert gl.policy_divergences(p, p)["val_kl"] == pytest.approx(0.0, abs=1e-12)


def test_heldout_games_are_disjoint_from_pretraining_games():
    tr = gl.pretraining_games(2, 4, 5, 5, 20, seed=0)
    ev = gl.eval_games(2, 4, 5, 5, 10, eval_seed=0)
    flat_tr = tr.rewards.reshape(20, -1)
    for g in ev.rewards.reshape(10, -1):
        assert not np.any(np.all(np.isclose(flat_tr, g), axis=1))
    again = gl.pretraining_games(2, 4, 5, 5, 20, seed=0)
    np.testing.assert_array_equal(tr.rewards, again.rewards)


def test_context_records_repeat_games_with_different_draws():
    games = gl.pretraining_games(1, 1, 3, 3, 2, seed=0)
    rec = gl.context_records(games, "exp3", 30, 3, seed=1)
    assert rec["act/max"].shape == (6, 30)
    assert not np.array_equal(rec["act/max"][0], rec["act/max"][2])
    with pytest.raises(ConfigError, match="no option"):
        gl.context_records(games, "exp3", 5, 1, seed=1, algo_kwargs={"bogus": 1})


def test_context_records_in_worker_chunks_are_seeded_per_chunk():
    games = gl.pretraining_games(2, 2, 3, 3, 3, seed=0)
    rec = gl.context_records(games, "viulcb", 4, 2, seed=5, workers=2,
                             algo_kwargs={"mwu_iters": 10})
    assert rec["act/max"].shape == (6, 8) and rec["pi/joint"].shape == (6, 8, 2, 2, 9)
    # rows 0-2 and 3-5 are the chunks: trajectory 0 and trajectory 1 of the 3 games, each run
    # on its own from seed branch [5, c] -- checked against running the chunk directly
    from icarena.agents.games import VIULCBConfig, run_viulcb

    for c in (0, 1):
        alone = run_viulcb(games, 4, cfg=VIULCBConfig(mwu_iters=10),
                           seed=np.random.SeedSequence([5, c]))
        for k in alone:
            np.testing.assert_array_equal(rec[k][3 * c: 3 * c + 3], alone[k])
    with pytest.raises(ConfigError, match="workers"):
        gl.context_records(games, "viulcb", 4, 1, seed=5, workers=0)


def _games(tmp_path, setting="decentralized", **data):
    """A tiny games dataset (``icarena generate games``) of ``setting``; returns its path."""
    from icarena.pretraining.data.games import Config, generate

    dims = {"H": 1, "S": 1, "algorithm": "exp3"} if setting == "decentralized" else \
        {"H": 2, "S": 2, "algorithm": "viulcb", "context_options": {"mwu_iters": 10}}
    return generate(Config(**{**dict(out_dir=str(tmp_path / f"{setting}-data"), setting=setting,
                                     A=3, B=3, episodes=6, n_games=3, val_games=2, **dims),
                              **data}))


def _tiny(tmp_path, setting="decentralized", data=None, model=None, generate=True, **train):
    return gl.PretrainConfig(
        out_dir=str(tmp_path / setting),
        data=str(_games(tmp_path, setting, **(data or {}))) if generate else "",
        model=gl.GameModel(**{**dict(d_model=8, n_layers=1, n_heads=2), **(model or {})}),
        train=gl.GameTrainConfig(**{**dict(steps=3, batch_size=2, warmup_steps=1, ckpt_every=3,
                                           log_every=1, progress=False), **train}))


@pytest.mark.parametrize("setting", ["decentralized", "centralized"])
def test_pretrain_writes_a_run_dir_per_stream(tmp_path, setting):
    cfg = _tiny(tmp_path, setting, model=({"read_out": "query", "read_out_options": {"hidden": 8}}
                                          if setting == "centralized" else None))
    out = gl.pretrain(cfg)
    run = tmp_path / setting
    meta = json.loads((run / "icgp.json").read_text())
    assert meta["setting"] == setting and meta["streams"] == list(gl.STREAMS[setting])
    # the keys of icgp.json predate the config groups: earlier run dirs must keep loading
    assert sorted(meta) == sorted([
        "schema", "setting", "H", "S", "A", "B", "episodes", "streams", "context", "context_cfg",
        "n_games", "trajectories_per_game", "transition", "initial", "labels", "embedding",
        "read_out", "read_out_cfg", "seed", "backbone"])
    from icarena.pretraining.data import load_dataset

    ds = load_dataset(cfg.data)
    assert meta["context_cfg"] == ds.config["context_options"]
    assert meta["episodes"] == ds.config["episodes"] == 6 and meta["n_games"] == 3
    # the run records the dataset it read (the identity evaluate checks)
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"]["manifest_sha256"] == ds.manifest_sha256
    assert meta["read_out_cfg"] == cfg.model.read_out_options
    for s in gl.STREAMS[setting]:
        assert (run / s / "model.safetensors").is_file() and (run / s / "ckpt.pt").is_file()
        assert len(out["results"][s].losses) == 3
        assert np.isfinite(out["results"][s].final_eval["val_kl"])
    from icarena.pretraining.game_player import InContextGamePlayer

    player = InContextGamePlayer.load(run)  # the run dir alone rebuilds the models
    assert player.models[gl.STREAMS[setting][0]].cfg.read_out == meta["read_out"]
    H, S = meta["H"], meta["S"]
    rec = player.play(gl.eval_games(H, S, 3, 3, 2, 7), 3, seed=0)
    assert rec["act/max"].shape == (2, 3 * H)
    with pytest.raises(CheckpointError, match="already holds"):
        gl.pretrain(cfg)


def test_streams_trained_side_by_side_match_one_after_the_other(tmp_path):
    from safetensors.numpy import load_file

    runs = {}
    for workers in (1, 2):
        cfg = _tiny(tmp_path / f"w{workers}", model={"embedding": "slot_prob"},
                    stream_workers=workers)
        cfg.train.threads = 1
        runs[workers] = gl.pretrain(cfg)
    for s in ("max", "min"):
        assert runs[1]["results"][s].losses == runs[2]["results"][s].losses
        one, two = (load_file(Path(runs[w]["run_dir"]) / s / "model.safetensors") for w in (1, 2))
        assert one.keys() == two.keys()
        for k in one:
            np.testing.assert_array_equal(one[k], two[k])


def test_pretrain_config_errors(tmp_path):
    from icarena.pretraining.data.games import Config, resolve

    for kw, msg in ((dict(setting="both"), "setting"),
                    (dict(algorithm="viulcb"), "does not fit"),
                    (dict(workers=0), "workers"), (dict(chunks=0), "chunks"),
                    (dict(H=2, algorithm="exp3"), "matrix games"),
                    (dict(context_options={"bad": 1}), "no option"),
                    (dict(preset="gpu"), "preset")):
        with pytest.raises(ConfigError, match=msg):
            resolve(Config(**kw))
    for kw, msg in ((dict(stream_workers=0), "stream_workers"),
                    (dict(model=dict(read_out="mlp")), "read_out"),
                    (dict(model=dict(read_out_options={"hidden": 8})), "--model.read-out query"),
                    (dict(labels="hard"), "labels"),
                    (dict(model=dict(embedding="x")), "embedding"),
                    (dict(model=dict(backbone="nope")), "unknown backbone"),
                    (dict(model=dict(options=[1])), "dict of named options")):
        with pytest.raises(ConfigError, match=msg):
            _tiny(tmp_path, generate=False, **kw).validate()
    with pytest.raises(ConfigError, match="causal"):
        gl.icgp_model_config("max", (1, 1, 3, 3), 4, backbone_cfg={"causal": False})
    with pytest.raises(ConfigError, match="groups"):
        gl.icgp_model_config("joint", (2, 2, 3, 3), 4, read_out="query",
                             read_out_cfg={"groups": 1})
    with pytest.raises(CheckpointError, match="not an icgp run dir"):
        gl.read_meta(tmp_path)


def test_option_flags_are_typed_key_value_pairs():
    """--data.context-options / --model.read-out-options parse KEY VALUE pairs into typed dicts,
    also where the default is not empty (icgp-centralized's read-out), and can be emptied."""
    import tyro

    from icarena.experiments import icgp_centralized
    from icarena.pretraining.data.games import Config

    data = tyro.cli(Config, args=["--context-options", "c", "0.05", "mwu_iters", "5", "eq", "lp"])
    assert data.context_options == {"c": 0.05, "mwu_iters": 5, "eq": "lp"}
    cfg = tyro.cli(gl.PretrainConfig, args=[
        "--model.read-out", "query", "--model.read-out-options", "hidden", "8", "summary", "True",
        "--model.options", "mlp_ratio", "2"])
    assert cfg.model.read_out_options == {"hidden": 8, "summary": True}
    assert cfg.model.options == {"mlp_ratio": 2}
    cen = icgp_centralized.Config
    assert cen().model.read_out_options == {"width": 16, "layers": 4}
    assert tyro.cli(cen, args=["--model.read-out-options", "heads", "2"]).model.read_out_options \
        == {"heads": 2}
    assert tyro.cli(cen, args=["--model.read-out-options"]).model.read_out_options == {}
    with pytest.raises(SystemExit):
        tyro.cli(cen, args=["--model.read-out-options", "hidden"])


def test_paper_preset_of_pretrain_fills_the_train_settings_left_at_their_defaults():
    cpu = gl.PretrainConfig().train
    paper = gl.apply_paper_preset(cpu, 100)
    assert (paper.batch_size, paper.lr, paper.min_lr) == (32, 5e-4, 5e-5)
    assert paper.steps == 313  # 100 epochs of 100 trajectories in batches of 32, rounded up
    mine = gl.apply_paper_preset(gl.GameTrainConfig(**{**vars(cpu), "steps": 9, "lr": 1e-2}), 100)
    assert (mine.steps, mine.lr, mine.batch_size) == (9, 1e-2, 32)
