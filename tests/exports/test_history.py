"""`icarena export history`: complete learning histories that numpy and json alone read back,
with the recorded policies exactly."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cli_helpers import ok, refused

from icarena.pretraining.data.games import Config, generate
from icarena.pretraining.data.store import load_dataset

READER = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np
    root = sys.argv[1]
    m = json.load(open(root + "/manifest.json"))
    out = {}
    for name, spec in m["arrays"].items():
        a = np.concatenate([np.load(root + "/" + s["file"], allow_pickle=False)
                            for s in spec["shards"]])
        out[name] = [a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]
    assert not any(k.split(".")[0] == "icarena" for k in sys.modules), "icarena was imported"
    cfg = m["config"]
    print(json.dumps({"arrays": out, "fields": cfg["fields"], "sizes": cfg["sizes"]}))
""")


def digest(a: np.ndarray) -> list:
    a = np.ascontiguousarray(a)
    return [a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()]


@pytest.mark.parametrize("setting,episodes", [("decentralized", 12), ("centralized", 3)])
def test_histories_read_back_with_numpy_and_json_only(tmp_path, setting, episodes):
    data = tmp_path / "games"
    generate(Config(out_dir=str(data), setting=setting, n_games=3, seed=1, episodes=episodes))
    ds = load_dataset(data)
    out = tmp_path / "hist"
    ok("export", "history", "--data", str(data), "--out-dir", str(out))
    proc = subprocess.run([sys.executable, "-I", "-c", READER, str(out)], capture_output=True,
                          text=True, check=True)
    got = json.loads(proc.stdout)
    arrays, fields = got["arrays"], got["fields"]
    assert set(arrays) == set(fields)                      # every field is documented
    # the recorded policies, trajectories and games come back byte for byte
    pairs = {"policy_max": "pi/max", "policy_min": "pi/min", "action_max": "act/max",
             "action_min": "act/min", "state": "traj/s", "step_h": "traj/h",
             "reward_max": "rew/max", "game_transitions": "game/P"}
    if setting == "centralized":
        pairs["policy_joint"] = "pi/joint"
    for name, src in pairs.items():
        assert arrays[name] == digest(np.asarray(ds[src])), name
    # the label is the policy at the visited (h_t, s_t), gathered independently here
    pi, h, s = (np.asarray(ds[k]) for k in ("pi/max", "traj/h", "traj/s"))
    N, T = h.shape
    label = np.stack([np.stack([pi[n, t, h[n, t], s[n, t]] for t in range(T)])
                      for n in range(N)])
    assert arrays["label_max"] == digest(label)
    sizes = got["sizes"]
    assert sizes["N"] == 3 and sizes["T"] == sizes["K"] * sizes["H"] == T  # complete, unsplit
    # the target rules of every icarena output
    msg = refused("export", "history", "--data", str(data), "--out-dir", str(out))
    assert "--overwrite" in msg
    ok("export", "history", "--data", str(data), "--out-dir", str(out), "--overwrite")


def test_history_refuses_a_non_games_dataset(tmp_path):
    from icarena.pretraining.data.regression import Config as RConfig
    from icarena.pretraining.data.regression import generate as rgenerate

    rgenerate(RConfig(out_dir=str(tmp_path / "r"), d=2, k=3, n_prompts=4))
    msg = refused("export", "history", "--data", str(tmp_path / "r"), "--out-dir",
                  str(tmp_path / "h"))
    assert "generate games" in msg and not (tmp_path / "h").exists()
