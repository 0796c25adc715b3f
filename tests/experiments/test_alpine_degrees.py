import json

import numpy as np
import pytest
from cli_helpers import ok, refused, weights

from icarena.evaluation.path_eval import load_trials
from icarena.experiments import alpine_degrees as ad

TINY = ["--graphs", "2", "--bootstrap", "200", "--data.nodes", "14", "--data.p", "0.3",
        "--data.paths-per-pair", "2", "--model.d-model", "16", "--train.steps", "40",
        "--train.batch-size", "8", "--train.eval-every", "20", "--train.ckpt-every", "20",
        "--train.warmup-steps", "5", "--eval.n-prompts", "20", "--eval.samples-per-prompt", "3"]


def synthetic_trials(seed, n_pairs=40, draws=120, samples=3):
    rng = np.random.default_rng(seed)
    src = rng.permutation(n_pairs)  # distinct pairs: one degree each, as in a real split
    tgt = src + n_pairs
    deg = rng.integers(0, 4, n_pairs)
    idx = np.repeat(rng.integers(0, n_pairs, draws), samples)
    p = np.array([0.95, 0.9, 0.6, 0.3])[deg[idx]]
    return {"source": src[idx], "target": tgt[idx], "degree": deg[idx],
            "valid": rng.random(len(idx)) < p}


def test_pair_table_groups_trials_by_distinct_pair():
    trials = synthetic_trials(0)
    degree, valid, count = ad.pair_table(trials)
    expected = {}
    for s, t, d, v in zip(trials["source"], trials["target"], trials["degree"], trials["valid"],
                          strict=True):
        e = expected.setdefault((s, t), [d, 0, 0])
        e[1] += v
        e[2] += 1
    got = sorted(zip(degree.tolist(), valid.tolist(), count.tolist(), strict=True))
    assert got == sorted((d, float(v), float(c)) for d, v, c in expected.values())


def test_degree_statistics_pools_completions_and_judges_the_gap():
    runs = [synthetic_trials(s) for s in range(4)]
    st = ad.degree_statistics([ad.pair_table(t) for t in runs], n_boot=2000, seed=0)
    deg = np.concatenate([t["degree"] for t in runs])
    val = np.concatenate([t["valid"] for t in runs])
    for i, name in enumerate(ad.DEGREE_NAMES):
        row = st["per_degree"][name]
        assert row["accuracy"] == pytest.approx(val[deg == i].mean())
        assert row["completions"] == (deg == i).sum()
        assert row["ci95"][0] < row["accuracy"] < row["ci95"][1]
    assert st["gap_1_2"]["value"] == pytest.approx(val[deg == 1].mean() - val[deg == 2].mean())
    assert st["finding"] == "holds"  # 0.9 vs 0.6 with hundreds of completions each
    # equal accuracies at degrees 1 and 2: the gap's interval lies below 0.20
    flat = [dict(t, valid=t["valid"] | (t["degree"] == 2) & (np.arange(len(t["valid"])) % 10 > 0))
            for t in runs]
    assert ad.degree_statistics([ad.pair_table(t) for t in flat], 2000, 0)["finding"] == \
        "does not hold"
    # a single degree-2 pair: too little data to decide either way
    few = [ad.pair_table(t) for t in runs[:1]]
    d, v, c = few[0]
    keep = (d != 2) | (np.arange(len(d)) == np.flatnonzero(d == 2)[0])
    few = [(d[keep], v[keep], c[keep])]
    assert ad.degree_statistics(few, 2000, 0)["finding"] in ("undecided", "holds")


def test_config_errors_name_the_fix(tmp_path):
    assert "train_fractions" in refused("run", "alpine-degrees", "--out-dir", str(tmp_path / "r"),
                                        "--train-fractions", "0.5", "1.5")
    assert "--train-fractions 0.1" in refused("run", "alpine-degrees", "--out-dir",
                                              str(tmp_path / "r"), "--data.train-fraction", "0.1")
    assert "workers" in refused("run", "alpine-degrees", "--out-dir", str(tmp_path / "r"),
                                "--workers", "0")


def test_cli_runs_cells_in_parallel_then_resume_keeps_them(tmp_path):
    run = tmp_path / "deg"
    proc = ok("run", "alpine-degrees", "--out-dir", str(run), "--workers", "2", *TINY)
    assert "finding" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["conditions"]) == {"0.5", "0.1"}
    assert (run / "degree_accuracy.png").stat().st_size > 0
    # each graph's row equals that cell's own evaluation (written by the alpine run)
    assert len(metrics["per_graph"]) == 4
    for row in metrics["per_graph"]:
        cell = run / "cells" / f"f{row['train fraction']:g}" / f"seed{row['graph seed']}"
        own = json.loads((cell / "metrics.json").read_text())["evaluation"]["transformer"]
        for name in ad.DEGREE_NAMES:
            acc = own["per_degree"][name]["accuracy"]
            assert row[f"deg {name}"] == ("—" if acc is None else round(acc, 3))
    # the pooled figures over the two graphs of a split, from the trials files directly
    cells = sorted((run / "cells" / "f0.1").iterdir())
    trials = [load_trials(c / "trials.npz") for c in cells]
    deg = np.concatenate([t["degree"] for t in trials])
    val = np.concatenate([t["valid"] for t in trials])
    acc0 = metrics["conditions"]["0.1"]["per_degree"]["0"]["accuracy"]
    assert acc0 == pytest.approx(val[deg == 0].mean())
    # --resume keeps the finished cells (same weights, same numbers)
    before = weights(run / "cells")
    again = ok("run", "alpine-degrees", "--out-dir", str(run), "--workers", "2", "--resume",
               *TINY)
    assert "..." not in again.stdout  # no cell was started again
    assert weights(run / "cells") == before
    assert json.loads((run / "metrics.json").read_text())["rows"] == metrics["rows"]


def test_chained_cells_keep_alpine_degree_labels(tmp_path):
    from icarena.evaluation.planning import degrees, load_path_dataset
    from icarena.pretraining import generate as gen
    from icarena.pretraining.data import alpine as alpine_data

    common = dict(seed=4, nodes=40, p=0.12, paths_per_pair=2, train_fraction=0.2)
    base = load_path_dataset(gen.generate("alpine", alpine_data.Config(
        out_dir=str(tmp_path / "base" / "data"), **common)))
    gen.generate("alpine", alpine_data.Config(out_dir=str(tmp_path / "chain" / "data"),
                                              chain_lines=400, **common))
    pairs = base.test_pairs
    own = load_path_dataset(tmp_path / "chain" / "data").test_degrees()
    trials = {"source": pairs[:, 0], "target": pairs[:, 1], "degree": own,
              "valid": np.ones(len(pairs), bool)}
    expected = degrees(*base.observed(), pairs)
    assert np.array_equal(ad.alpine_degrees_of(tmp_path / "chain", trials), expected)
    assert (own < expected).any()  # the chains did observe some of the harder pairs
    assert np.array_equal(ad.alpine_degrees_of(tmp_path / "base", dict(trials, degree=expected)),
                          expected)


def test_compare_to_gives_paired_differences_on_the_same_prompts(tmp_path):
    base, chained = tmp_path / "base", tmp_path / "chained"
    assert TINY[:2] == ["--graphs", "2"]
    args = ["--train-fractions", "0.3", "--workers", "1", *TINY]
    ok("run", "alpine-degrees", "--out-dir", str(base), *args)
    ok("run", "alpine-degrees", "--out-dir", str(chained), *args, "--data.chain-lines", "200",
       "--compare-to", str(base))
    comp = json.loads((chained / "metrics.json").read_text())["comparison"]["0.3"]
    assert comp["graphs"] == 2
    mine = [ad.cell_trials(chained / "cells" / "f0.3" / f"seed{s}") for s in (0, 1)]
    theirs = [ad.cell_trials(base / "cells" / "f0.3" / f"seed{s}") for s in (0, 1)]
    for i, name in enumerate(ad.DEGREE_NAMES):
        a = np.concatenate([t["valid"][t["degree"] == i] for t in mine])
        b = np.concatenate([t["valid"][t["degree"] == i] for t in theirs])
        assert len(a) == len(b)  # same prompts, same labels
        if len(a):
            assert comp["per_degree"][name]["difference"] == pytest.approx(a.mean() - b.mean())
        # restricted to the pairs the chained lines observed
        moved = [(t["own_degree"] < t["degree"]) & (t["degree"] == i) for t in mine]
        a = np.concatenate([t["valid"][m] for t, m in zip(mine, moved, strict=True)])
        b = np.concatenate([t["valid"][m] for t, m in zip(theirs, moved, strict=True)])
        if len(a):
            assert comp["observed_by_chains"][name]["difference"] == \
                pytest.approx(a.mean() - b.mean())
    assert sum(r["pairs"] for r in comp["observed_by_chains"].values()) > 0  # the check ran
    assert "Difference from" in (chained / "report.md").read_text()
    assert "not an alpine-degrees run dir" in refused(
        "run", "alpine-degrees", "--out-dir", str(tmp_path / "x"), "--compare-to",
        str(tmp_path / "nothing"))
