"""Classical path-finding baselines (BFS shortest paths, random walks)."""

from icarena.agents.planning.planners import BFSPlanner, RandomWalkPlanner

__all__ = ["BFSPlanner", "RandomWalkPlanner"]
