import dataclasses
import json

import numpy as np
import pytest

from icarena.evaluation.path_eval import load_trials
from icarena.evaluation.planning import degrees, load_path_dataset, path_error
from icarena.experiments import alpine, blocksworld


def tiny(cfg, steps=60):
    cfg.train = dataclasses.replace(cfg.train, steps=steps, eval_every=30, ckpt_every=steps,
                                    threads=1, progress=False)
    cfg.eval.n_prompts, cfg.eval.samples_per_prompt = 40, 2
    return cfg


def test_alpine_end_to_end_writes_report_metrics_and_failures(tmp_path):
    result = alpine.run(tiny(alpine.quick_config(str(tmp_path))))
    for name in ("report.md", "metrics.json", "failures.jsonl", "config.json",
                 "model.safetensors", "probe_heatmaps.png", "probe_edge_gap.png"):
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    ev = metrics["evaluation"]
    assert ev["n_trials"] == 80
    assert ev["bfs"]["path_valid"] == 1.0
    assert set(ev["transformer"]["per_degree"]) == {"0", "1", "2", ">=3"}
    counts = sum(v["count"] for v in ev["transformer"]["per_degree"].values())
    assert counts == 80
    assert len(metrics["probes_over_training"]["step"]) == 2  # step 30 and the final eval
    data = load_path_dataset(tmp_path / "data")
    failures = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == round((1 - ev["transformer"]["path_valid"]) * 80)
    for f in failures:
        err = path_error(data.graph, f["source"], f["target"], f["path"]) if f["path"] else None
        if err is not None and f["label"] != "syntax":
            assert not err.valid and err.step == f["first_invalid_step"]
    assert "Path validity" in (tmp_path / "report.md").read_text()
    assert result["rows"][1]["planner"] == "BFS"
    # trials.npz: one entry per trial, agreeing with the failures file and the per-degree table
    trials = load_trials(tmp_path / "trials.npz")
    assert trials["valid"].shape == (80,)
    assert int((~trials["valid"]).sum()) == len(failures)
    bad = ~trials["valid"]
    failed = sorted(zip(trials["source"][bad], trials["target"][bad], strict=True))
    assert failed == sorted((f["source"], f["target"]) for f in failures)
    pairs = np.stack([trials["source"], trials["target"]], axis=1)
    assert np.array_equal(trials["degree"], degrees(*data.observed(), pairs))
    for d, row in ev["transformer"]["per_degree"].items():
        sel = trials["degree"] == (3 if d == ">=3" else int(d))
        assert row["count"] == sel.sum()
        if sel.any():
            assert row["accuracy"] == pytest.approx(trials["valid"][sel].mean())


def test_alpine_reuses_dataset_and_refuses_other_config(tmp_path):
    cfg = tiny(alpine.quick_config(str(tmp_path)), steps=10)
    alpine.run(cfg)
    before = (tmp_path / "data" / "manifest.json").read_bytes()
    cfg2 = tiny(alpine.quick_config(str(tmp_path)), steps=10)
    cfg2.data.nodes = 31
    import pytest

    from icarena.errors import CheckpointError, ConfigError

    with pytest.raises(CheckpointError, match="already holds a run"):
        alpine.run(cfg2)
    cfg2.resume = True
    with pytest.raises(ConfigError, match=r"other settings \(nodes\)"):
        alpine.run(cfg2)
    assert (tmp_path / "data" / "manifest.json").read_bytes() == before


def test_blocksworld_end_to_end(tmp_path):
    cfg = tiny(blocksworld.quick_config(str(tmp_path)))
    cfg.model.widths = [30]
    result = blocksworld.run(cfg)
    assert (tmp_path / "d30" / "report.md").is_file()
    assert result["rows"][0]["width"] == 30 and result["rows"][0]["BFS"] == 1.0
    assert np.isfinite(result["rows"][0]["path validity"])


def test_blocksworld_scales_the_lr_per_width_and_refuses_a_single_d_model(tmp_path):
    import pytest

    from icarena.errors import ConfigError
    from icarena.pretraining.train import TrainConfig

    cfg = blocksworld.Config()
    assert cfg.model.widths == [30, 60, 120] and cfg.train.lr_ref_width == 120
    at30 = cfg.train.at_width(30, seed=5)
    assert type(at30) is TrainConfig and at30.seed == 5
    assert at30.lr == pytest.approx(4 * cfg.train.lr)
    assert at30.min_lr == pytest.approx(4 * cfg.train.min_lr)
    assert at30.steps == cfg.train.steps and at30.batch_size == cfg.train.batch_size
    one = dataclasses.replace(cfg.train, lr_ref_width=0).at_width(30, seed=0)
    assert one.lr == cfg.train.lr
    cfg = blocksworld.quick_config(str(tmp_path / "bw"))
    cfg.model.d_model = 64
    with pytest.raises(ConfigError, match="--model.widths"):
        blocksworld.run(cfg)
