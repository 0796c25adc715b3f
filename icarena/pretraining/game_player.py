"""In-context agents: a pretrained sequence model acting from the history it has seen.

:class:`InContextGamePlayer` wraps an ICGP run dir (``icarena pretrain icgp`` /
``icarena run icgp-*``; layout in :mod:`icarena.pretraining.game_lm`) and plays any batch of
tabular zero-sum games of the pretraining dims in context (Shi et al. 2024, §3): at step t its
policy at every (h, s) is the model's read-out at position t given D_t, the history of the steps
before t -- nothing is trained or updated while it plays.

* decentralized run: two models; the max player's model reads only (h, s, a, r) and the min
  player's only (h, s, b, 1 − r) -- plus, with the ``slot_prob`` / ``slot_policy`` embeddings,
  the policy it proposed itself at each past step (``pi/max`` / ``pi/min`` of the history) --
  so neither sees the opponent's actions or policy. :meth:`policies`
  returns the pair (π_max (G, H, S, A), π_min (G, H, S, B)).
* centralized run: one model over (h, s, a, b, r); :meth:`policies` returns the joint policy
  (G, H, S, A·B) and the players sample a joint action from it.

Batched over games: one forward pass over the G histories per query. The player decodes
incrementally (:meth:`icarena.pretraining.model.SequenceModel.decode`): it keeps each stream's
decoding state (key/value cache or recurrent state, and the query read-out's prefix sums) and
feeds only the steps added since its last query, so a query costs O(1) or O(t) instead of
recomputing the whole history (a backbone without a decoding state falls back to that). A
history that does not extend the one it has seen (a new play, other games) starts a fresh state.

:meth:`play` uses :func:`icarena.agents.games.play` with ``query="episode"`` by default: the
policy is read once at the start of every episode and used for all H steps of it, which is how
the context algorithms act (V-learning with H > 1 updates within an episode; use
``query="step"`` to re-read before every step).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from icarena.envs.games import TabularGame
from icarena.errors import ConfigError, check
from icarena.pretraining.game_lm import (
    GameModel,
    GameTrainConfig,
    logits_to_log_policy,
    model_inputs,
    n_actions,
    read_meta,
    step_tokens,
    token_dim,
)
from icarena.pretraining.model import SequenceModel, load_model


class InContextGamePlayer:
    """Pretrained in-context player(s) of zero-sum tabular games; see the module docstring.

    Args:
        models: stream name -> model ("max" and "min" when decentralized, "joint" when
            centralized), each built by :func:`icarena.pretraining.game_lm.icgp_model_config`.
        meta: the run's ``icgp.json`` dict (setting, H, S, A, B, episodes, streams).
        device: torch device for the forward passes.
        incremental: decode the history incrementally (module docstring); False recomputes it
            at every query.
    """

    def __init__(self, models: dict[str, SequenceModel], meta: dict[str, Any],
                 device: str | torch.device = "cpu", *, incremental: bool = True):
        self.meta = dict(meta)
        self.setting = meta["setting"]
        self.dims = (int(meta["H"]), int(meta["S"]), int(meta["A"]), int(meta["B"]))
        self.streams = tuple(meta["streams"])
        self.embedding = str(meta.get("embedding", "concat"))  # older runs: the concat layout
        self.device = torch.device(device)
        check(set(models) == set(self.streams),
              f"models {sorted(models)} do not match the run's streams {list(self.streams)}")
        H, S, A, B = self.dims
        self.models = {}
        for name, m in models.items():
            n = n_actions(name, A, B)
            check(m.cfg.output_dim == H * S * n,
                  f"model {name!r} reads out {m.cfg.output_dim} values, expected H·S·n = "
                  f"{H * S * n}")
            width = token_dim(name, H, S, A, B, self.embedding)
            check(m.cfg.input_dim == width,
                  f"model {name!r} reads tokens of width {m.cfg.input_dim}, but the "
                  f"{self.embedding!r} embedding of these games has width {width}")
            check(m.backbone.causal, f"model {name!r} is not causal; an in-context player must "
                  "not see future steps")
            self.models[name] = m.to(self.device).eval()
        self.incremental = incremental
        # stream -> (tokens fed so far (G, t, D), decoding state, output at the last position)
        self._decoded: dict[str, tuple[np.ndarray, Any, torch.Tensor]] = {}

    @classmethod
    def load(cls, run_dir: str | os.PathLike, device: str | torch.device = "cpu", *,
             incremental: bool = True) -> InContextGamePlayer:
        """Load the models of an ICGP run dir (``icgp.json`` + one Trainer run dir per stream)."""
        meta = read_meta(run_dir)
        models = {s: load_model(os.path.join(run_dir, s), map_location=device)[0]
                  for s in meta["streams"]}
        return cls(models, meta, device=device, incremental=incremental)

    @property
    def max_steps(self) -> int:
        """Longest history (in steps) the models were built for: T = K·H of pretraining."""
        return min(int(m.backbone.config.max_len) for m in self.models.values())

    # -------------------------------------------------------------------------- read-outs
    @torch.no_grad()
    def stream_policies(self, history: dict[str, np.ndarray], stream: str,
                        *, all_positions: bool = False) -> np.ndarray:
        """A stream's policy after the given history, at every (h, s).

        Args:
            history: record columns (G, t) (``traj/h``, ``traj/s``, ``act/max``, ``act/min``,
                ``rew/max``; ``pi/max|min|joint`` (G, t, H, S, n) for the policy embeddings);
                only the columns of ``stream`` are read.
            stream: "max", "min" or "joint".
            all_positions: return the policy of every recorded step instead (teacher forcing).
        Returns:
            float64 (G, H, S, n) -- the policy for the next step t -- or, with
            ``all_positions``, (G, t, H, S, n) whose entry i is the policy for step i given D_i.
        """
        check(stream in self.models, f"unknown stream {stream!r}; this run has "
              f"{list(self.streams)}")
        H, S, A, B = self.dims
        tokens = step_tokens(history, stream, H, S, A, B, self.embedding)
        t = tokens.shape[1]
        need = t if all_positions else t + 1
        check(need <= self.max_steps,
              f"history of {t} steps is too long for the model's context ({self.max_steps} steps "
              f"= {self.meta['episodes']} episodes x H); play at most that many episodes or "
              "pretrain with a larger --data.episodes")
        model = self.models[stream]
        dtype = next(model.parameters()).dtype
        if all_positions or not self.incremental:
            x = model_inputs(torch.from_numpy(tokens), need).to(self.device, dtype)
            logits = model(x)
            logits = logits if all_positions else logits[:, -1:]
        else:
            logits = self._decode(stream, tokens, dtype)
        logp = logits_to_log_policy(logits, H, S, n_actions(stream, A, B))
        pol = logp.exp().double().cpu().numpy()
        pol /= pol.sum(-1, keepdims=True)
        return pol if all_positions else pol[:, -1]

    def _decode(self, stream: str, tokens: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        """Read-out (G, 1, H·S·n) at position t for the history tokens (G, t, D), feeding the
        model only the positions it has not seen (position i holds x_{i−1}, position 0 the
        start token: :func:`icarena.pretraining.game_lm.model_inputs`)."""
        seen, state, last = self._decoded.get(stream, (None, None, None))
        fresh = (seen is None or seen.shape[0] != tokens.shape[0]
                 or seen.shape[1] > tokens.shape[1]
                 or not np.array_equal(seen, tokens[:, : seen.shape[1]]))
        if fresh:  # positions 0 .. t: the start token and every step
            state = None
            x = model_inputs(torch.from_numpy(tokens))
        elif seen.shape[1] == tokens.shape[1]:  # nothing new: the same query again
            return last
        else:  # positions seen+1 .. t hold steps seen .. t-1
            x = torch.from_numpy(tokens[:, seen.shape[1]:])
        out, state = self.models[stream].decode(x.to(self.device, dtype), state)
        last = out[:, -1:]
        self._decoded[stream] = (tokens, state, last)
        return last

    def policies(self, history: dict[str, np.ndarray]):
        """The policy source for :func:`icarena.agents.games.play` (see the module docstring)."""
        if self.setting == "centralized":
            return self.stream_policies(history, "joint")
        return (self.stream_policies(history, "max"), self.stream_policies(history, "min"))

    __call__ = policies

    # ------------------------------------------------------------------------------- play
    def play(self, game, episodes: int | None = None, *, seed: int = 0,
             query: str = "episode") -> dict[str, np.ndarray]:
        """Play G games for K episodes in context; returns the record of
        :func:`icarena.agents.games.play` (score it with
        :func:`icarena.evaluation.nash.record_gap_curves`).

        Args:
            game: a TabularGame batch (G,) with the pretraining dims (H, S, A, B).
            episodes: K (default: the pretraining K; at most that).
            seed: seed of the random draws (same protocol as the context algorithms).
            query: "episode" (default) or "step" (see the module docstring).
        """
        from icarena.agents.games import play

        K = int(self.meta["episodes"]) if episodes is None else int(episodes)
        check(tuple(game.dims) == self.dims,
              f"game dims (H, S, A, B) = {tuple(game.dims)} differ from the pretraining dims "
              f"{self.dims}; pretrain a player for these games")
        if K * self.dims[0] > self.max_steps:
            raise ConfigError(
                f"episodes={K} needs a context of {K * self.dims[0]} steps but the models were "
                f"built for {self.max_steps}; use episodes <= {self.meta['episodes']}")
        return play(game, self.policies, K, seed=seed, query=query)

    # ------------------------------------------------------------------------ save / load
    def save(self, out_dir: str | os.PathLike, *, overwrite: bool = False) -> str:
        """Write an ICGP run dir (``icgp.json`` and one model run dir per stream, the format of
        ``icarena pretrain icgp``) that :meth:`load` reads back; returns its path."""
        from icarena.lifecycle import atomic_write_json, claim_run
        from icarena.pretraining.game_lm import META_FILE
        from icarena.pretraining.planner import save_run

        with claim_run(out_dir, overwrite=overwrite, resumable=False):
            atomic_write_json(os.path.join(out_dir, META_FILE), self.meta)
            for stream, model in self.models.items():
                save_run(os.path.join(out_dir, stream), model.cpu(), {"stream": stream,
                                                                       "icgp": self.meta})
                model.to(self.device)
        return str(out_dir)


def train_player(
    games: TabularGame,
    *,
    algorithm: str = "exp3",
    episodes: int = 300,
    trajectories_per_game: int = 1,
    algorithm_options: dict[str, Any] | None = None,
    model: GameModel | None = None,
    train: GameTrainConfig | None = None,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> InContextGamePlayer:
    """Pretrain an in-context player on the user's own games and return it (ICGP: Shi et al.
    2024, arXiv 2410.09701): the context algorithm runs ``trajectories_per_game`` times on every
    game for ``episodes`` episodes, and one model per stream learns to output its per-step
    policy from the history so far.

    Args:
        games: the pretraining games, a :class:`~icarena.envs.games.TabularGame` batch (G,)
            (e.g. ``TabularGame.from_matrix(R)`` with R (G, A, B) in [0, 1], or
            ``TabularGame.random(H, S, A, B, seed=..., n_games=G)``).
        algorithm: the context algorithm to imitate: 'exp3' (matrix games) or 'vlearning'
            (decentralized: one model per player, each seeing only its own actions and
            rewards), or 'viulcb' (centralized: one joint model).
        episodes: K per trajectory; the player can then play up to K episodes in context.
        trajectories_per_game: context-algorithm runs (different draws) per game.
        algorithm_options: the algorithm's config fields, e.g. ``{"eta": 0.05}`` (EXP3) or
            ``{"c": 0.02, "mwu_iters": 50}`` (VI-ULCB) (:mod:`icarena.agents.games`).
        model: backbone, size, step token and read-out (default :func:`icgp_model`; the
            'slot_prob' token helps decentralized players).
        train: optimisation (default :func:`icgp_train_config`).
        seed: seed of the trajectories, the initialisation and the batches.
        out_dir: also write the run dir there (as ``icarena pretrain icgp``); None trains in
            memory.
        overwrite: replace an icarena run in ``out_dir``.
    """
    from icarena.pretraining.data.games import (
        ALGORITHMS_BY_SETTING,
        derived_seed,
        run_trajectories,
    )
    from icarena.pretraining.game_lm import fit_icgp_models

    check(isinstance(games, TabularGame) and games.batch_shape and len(games.batch_shape) == 1,
          "games must be a TabularGame batch of shape (G,), e.g. TabularGame.from_matrix(R) "
          "with R (G, A, B)", fields="games")
    setting = next((s for s, algos in ALGORITHMS_BY_SETTING.items() if algorithm in algos),
                   None)
    check(setting is not None, f"unknown algorithm {algorithm!r}; choose exp3 or vlearning "
          "(decentralized) or viulcb (centralized)", fields="algorithm")
    H, S, A, B = games.dims
    check(algorithm != "exp3" or H == S == 1, "EXP3 plays matrix games (H = S = 1); use "
          "algorithm='vlearning' or 'viulcb' for Markov games", fields="algorithm")
    for name, v in (("episodes", episodes), ("trajectories_per_game", trajectories_per_game)):
        check(isinstance(v, int) and v >= 1, f"{name} must be an int >= 1, got {v!r}",
              fields=name)
    options = dict(algorithm_options or {})
    rec = run_trajectories(games, algorithm, episodes, trajectories_per_game,
                           derived_seed(seed, 11), options=options)
    settings = {"setting": setting, "H": H, "S": S, "A": A, "B": B, "episodes": episodes,
                "algorithm": algorithm, "context_options": options, "n_games": len(games),
                "trajectories_per_game": trajectories_per_game, "transition": "given",
                "initial": "given"}
    if out_dir is None:
        models, results, meta = fit_icgp_models(rec, settings, model=model, train=train,
                                                seed=seed)
    else:
        from icarena.lifecycle import claim_run

        with claim_run(out_dir, overwrite=overwrite, resumable=False):
            models, results, meta = fit_icgp_models(rec, settings, model=model, train=train,
                                                    seed=seed, out_dir=out_dir)
    player = InContextGamePlayer(models, meta)
    player.result = results
    return player


__all__ = ["InContextGamePlayer", "train_player"]
