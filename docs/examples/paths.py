"""Your own graph -> path model (linear-attention backbone) scored beside BFS; save, load."""
import os
import networkx as nx
import numpy as np

from icarena.agents import BFSPlanner, RandomWalkPlanner
from icarena.evaluation import evaluate_planners
from icarena.pretraining import ModelSpec, PathPlanner, path_train_config, train_planner

steps = int(os.environ.get("ICARENA_EXAMPLE_STEPS", 1500))  # tests set a tiny value
graph = nx.gnp_random_graph(30, 0.12, seed=1, directed=True)  # your own graph on nodes 0..29
planner = train_planner(graph, model=ModelSpec(backbone="linear", d_model=64, n_layers=2),
                        train=path_train_config().replace(steps=steps, batch_size=64, lr=3e-3))
pairs = np.array([(s, t) for s in graph for t in sorted(nx.descendants(graph, s)) if s != t])
scores = evaluate_planners(graph, pairs, {"transformer": planner, "BFS": BFSPlanner(graph),
                                          "random walk": RandomWalkPlanner(graph, seed=0)})
print(scores.table())
planner.save("runs/example-planner", overwrite=True)
again = PathPlanner.load("runs/example-planner")
assert np.array_equal(again.complete(pairs, seed=1), planner.complete(pairs, seed=1))
