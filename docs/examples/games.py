"""Your own games -> in-context players (SympFormer) vs EXP3, V-learning, VI-ULCB; save, load."""
import os
import numpy as np
from icarena.envs.games import TabularGame
from icarena.evaluation import evaluate_game_players as evaluate
from icarena.pretraining import GameModel, InContextGamePlayer, icgp_train_config, train_player
train = icgp_train_config().replace(steps=int(os.environ.get("ICARENA_EXAMPLE_STEPS", 1500)))
mine = TabularGame.from_matrix(np.random.default_rng(0).random((20, 5, 5)))  # your payoffs
held_out = TabularGame.random(1, 1, 5, 5, seed=9, n_games=10)
player = train_player(mine, algorithm="exp3", episodes=100, trajectories_per_game=5,
                      model=GameModel("sympformer", 32, 2, 4, embedding="slot_prob"), train=train)
print(evaluate(held_out, {"transformer": player, "EXP3": "exp3", "V-learning": "vlearning"},
               episodes=100).table())
markov = TabularGame.random(2, 4, 5, 5, seed=1, n_games=20)  # or your own Markov games
joint = train_player(markov, algorithm="viulcb", episodes=30, algorithm_options={"mwu_iters": 50},
                     model=GameModel("sympformer", 32, 2, 4), train=train)
print(evaluate(TabularGame.random(2, 4, 5, 5, seed=2, n_games=5), {"transformer": joint,
               "VI-ULCB": ("viulcb", {"mwu_iters": 50})}, episodes=30).table())
again = InContextGamePlayer.load(player.save("runs/example-player", overwrite=True))
assert np.array_equal(again.play(held_out, 100)["act/max"], player.play(held_out, 100)["act/max"])
