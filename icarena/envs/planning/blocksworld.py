"""Blocksworld: states, state graphs, the ``icarena/Blocksworld-v0`` env, PDDL export/parse and a
plan validator.

References: ALPINE App. F (arXiv 2405.09220) for the "move" state graph (4 blocks: 73 states,
240 directed edges); PlanBench (Valmeekam et al., karthikv792/LLMs-Planning) for the STRIPS
domain ``blocksworld-4ops`` (predicates clear, ontable, handempty, holding, on; actions pick-up,
put-down, stack, unstack). ALPINE App. F (Wang et al. 2024, arXiv 2405.09220).

State: blocks are ``0..n-1`` (PDDL objects ``a, b, c, ...``); a state is a :class:`BWState` =
(towers, holding): ``towers`` is a tuple of towers, each a tuple of blocks from bottom to top,
sorted by bottom block (canonical form), and ``holding`` the block in the hand or -1.

Op sets:

* ``"move"`` (ALPINE): hand always empty; move the top block x of a tower onto the top block y
  of another tower, or onto the table (if x is not already on the table). Action tuple
  ``("move", x, y)`` with ``y = TABLE`` (-1) for the table. One move = two PDDL actions.
* ``"4ops"`` (PDDL): ``("pick-up", x)`` needs clear x, ontable x, handempty;
  ``("put-down", x)`` needs holding x; ``("stack", x, y)`` needs holding x, clear y;
  ``("unstack", x, y)`` needs on x y, clear x, handempty. 4 blocks: 73 + 52 = 125 states.

Node numbering (both graphs): hand-empty states first, ordered by (number of towers, towers), so
the n! single-tower states are nodes ``0..n!-1`` (ALPINE numbers the towers first,
App. F); on the 4ops graph the hand-empty states keep the same ids as on the move graph and the
holding states follow, ordered by (held block, towers).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gymnasium as gym
import networkx as nx
import numpy as np
from gymnasium import spaces

from icarena.envs.checks import integer_action, penalty, positive_int, strict_kwargs
from icarena.errors import ConfigError, check

TABLE = -1
OPS = ("move", "4ops")
MAX_BLOCKS = 6
PDDL_ACTIONS = ("pick-up", "put-down", "stack", "unstack")

Towers = tuple[tuple[int, ...], ...]
Fact = tuple[str, ...]


class InvalidActionError(ConfigError):
    """An action whose preconditions do not hold in the current state."""


class BWState(NamedTuple):
    """A Blocksworld state: towers (bottom -> top, sorted by bottom block) and the held block."""

    towers: Towers
    holding: int = -1


def block_name(i: int) -> str:
    """PDDL object name of block i (``a``, ``b``, ...)."""
    return chr(ord("a") + int(i))


def make_state(towers: Iterable[Sequence[int]], holding: int = -1,
               n_blocks: int | None = None) -> BWState:
    """Canonical state from towers (bottom -> top) and the held block; checks it is well formed.

    With ``n_blocks`` given, the towers plus the held block must hold every block 0..n-1 once.
    """
    try:
        tw = tuple(tuple(_block_id(b) for b in t) for t in towers)
    except TypeError:
        raise ConfigError(f"towers must be a list of lists of block ids (bottom -> top), e.g. "
                          f"[[0, 1], [2]], got {towers!r}") from None
    check(all(len(t) > 0 for t in tw), "towers must be non-empty lists of blocks")
    blocks = [b for t in tw for b in t] + ([int(holding)] if holding >= 0 else [])
    check(len(set(blocks)) == len(blocks), f"a block appears twice in {tw}, holding {holding}")
    if n_blocks is not None:
        check(sorted(blocks) == list(range(n_blocks)),
              f"the state must place each of the blocks 0..{n_blocks - 1} exactly once, got "
              f"towers {tw} and holding {holding}")
    return BWState(tuple(sorted(tw)), int(holding))


def _block_id(b: Any) -> int:
    if not isinstance(b, int | np.integer) or isinstance(b, bool):
        raise TypeError(b)
    return int(b)


def _check_n_blocks(n_blocks: Any) -> int:
    check(isinstance(n_blocks, int | np.integer) and 1 <= int(n_blocks) <= MAX_BLOCKS,
          f"n_blocks must be an integer in 1..{MAX_BLOCKS}, got {n_blocks!r}")
    return int(n_blocks)


def _check_ops(ops: str) -> str:
    check(ops in OPS, f"unknown Blocksworld op set {ops!r}; choose one of {OPS}")
    return ops


@functools.lru_cache(maxsize=16)
def _towers_of(blocks: tuple[int, ...]) -> tuple[Towers, ...]:
    """All sets of towers over ``blocks`` (sets of lists; 1, 3, 13, 73, 501, ... states).

    Every set of lists over {b_1..b_k} arises exactly once by inserting b_k into a set of lists
    over {b_1..b_{k-1}}: as a new tower, or at one of the len+1 positions of an existing tower.
    """
    if not blocks:
        return ((),)
    *rest, b = blocks
    out = []
    for tw in _towers_of(tuple(rest)):
        out.append(tuple(sorted(tw + ((b,),))))
        for i, t in enumerate(tw):
            for pos in range(len(t) + 1):
                new = t[:pos] + (b,) + t[pos:]
                out.append(tuple(sorted(tw[:i] + (new,) + tw[i + 1:])))
    return tuple(out)


@functools.lru_cache(maxsize=16)
def enumerate_states(n_blocks: int, ops: str = "move") -> tuple[BWState, ...]:
    """All states in node-id order (see the module docstring for the ordering)."""
    n = _check_n_blocks(n_blocks)
    _check_ops(ops)
    empty = sorted(_towers_of(tuple(range(n))), key=lambda tw: (len(tw), tw))
    states = [BWState(tw, -1) for tw in empty]
    if ops == "4ops":
        for held in range(n):
            others = tuple(b for b in range(n) if b != held)
            for tw in sorted(_towers_of(others), key=lambda tw: (len(tw), tw)):
                states.append(BWState(tw, held))
    return tuple(states)


def _find(state: BWState, block: int) -> tuple[int, int]:
    for i, t in enumerate(state.towers):
        if block in t:
            return i, t.index(block)
    return -1, -1


def state_facts(state: BWState) -> frozenset[Fact]:
    """The PDDL facts of a state: on, ontable, clear, handempty / holding."""
    facts: set[Fact] = set()
    for t in state.towers:
        facts.add(("ontable", block_name(t[0])))
        facts.add(("clear", block_name(t[-1])))
        for below, above in zip(t[:-1], t[1:], strict=True):
            facts.add(("on", block_name(above), block_name(below)))
    if state.holding >= 0:
        facts.add(("holding", block_name(state.holding)))
    else:
        facts.add(("handempty",))
    return frozenset(facts)


def fmt_fact(fact: Fact) -> str:
    return "(" + " ".join(fact) + ")"


def fmt_action(action: tuple) -> str:
    """PDDL text of an action tuple, e.g. ``(unstack a b)``; moves as ``(move a table)``."""
    name, *args = action
    words = ["table" if (name == "move" and i == 1 and a == TABLE) else block_name(a)
             for i, a in enumerate(args)]
    return "(" + " ".join([name, *words]) + ")"


def _fail(action: tuple, fact: str) -> None:
    raise InvalidActionError(f"{fmt_action(action)}: precondition {fact} is false")


def apply_action(state: BWState, action: tuple) -> BWState:
    """The successor of ``state`` under ``action`` (a move or one of the four PDDL actions).

    Raises InvalidActionError naming the first false precondition.
    """
    check(isinstance(action, tuple) and len(action) >= 2,
          f"an action is a tuple like ('stack', x, y), got {action!r}")
    name, *args = action
    n_args = {"move": 2, "pick-up": 1, "put-down": 1, "stack": 2, "unstack": 2}
    check(name in n_args, f"unknown action {name!r}; actions: {sorted(n_args)}")
    check(len(args) == n_args[name], f"{name} takes {n_args[name]} arguments, got {args}")
    blocks = {b for t in state.towers for b in t} | ({state.holding} - {-1})
    for i, a in enumerate(args):
        ok = a in blocks or (name == "move" and i == 1 and a == TABLE)
        check(ok, f"{fmt_action(action) if all(isinstance(x, int) for x in args) else action}:"
                  f" unknown block {a!r}")
    towers = [list(t) for t in state.towers]
    x = args[0]
    ti, pos = _find(state, x)
    if name in ("move", "pick-up", "unstack"):
        if state.holding >= 0:
            _fail(action, "(handempty)")
        if ti < 0 or pos != len(towers[ti]) - 1:
            _fail(action, f"(clear {block_name(x)})")
    if name == "move":
        y = args[1]
        if y == TABLE:
            if pos == 0:
                _fail(action, f"(not (ontable {block_name(x)}))")
            towers[ti].pop()
            towers.append([x])
        else:
            tj, posy = _find(state, y)
            if y == x or posy != len(towers[tj]) - 1:
                _fail(action, f"(clear {block_name(y)})")
            towers[ti].pop()
            towers[tj].append(x)
        return make_state([t for t in towers if t])
    if name == "pick-up":
        if pos != 0:
            _fail(action, f"(ontable {block_name(x)})")
        towers[ti].pop()
        return make_state([t for t in towers if t], x)
    if name == "unstack":
        y = args[1]
        if pos == 0 or towers[ti][pos - 1] != y:
            _fail(action, f"(on {block_name(x)} {block_name(y)})")
        towers[ti].pop()
        return make_state([t for t in towers if t], x)
    if state.holding != x:
        _fail(action, f"(holding {block_name(x)})")
    if name == "put-down":
        return make_state([*towers, [x]])
    y = args[1]  # stack
    tj, posy = _find(state, y)
    if tj < 0 or posy != len(towers[tj]) - 1:
        _fail(action, f"(clear {block_name(y)})")
    towers[tj].append(x)
    return make_state(towers)


def legal_actions(state: BWState, ops: str = "move") -> list[tuple]:
    """All actions of the op set whose preconditions hold in ``state``."""
    _check_ops(ops)
    tops = [t[-1] for t in state.towers]
    if ops == "move":
        if state.holding >= 0:
            return []
        out = []
        for t in state.towers:
            x = t[-1]
            out += [("move", x, y) for y in tops if y != x]
            if len(t) > 1:
                out.append(("move", x, TABLE))
        return out
    if state.holding >= 0:
        x = state.holding
        return [("put-down", x)] + [("stack", x, y) for y in tops]
    return [("pick-up", t[0]) if len(t) == 1 else ("unstack", t[-1], t[-2])
            for t in state.towers]


@functools.lru_cache(maxsize=16)
def _cached_graph(n_blocks: int, ops: str) -> nx.DiGraph:
    states = enumerate_states(n_blocks, ops)
    index = {s: i for i, s in enumerate(states)}
    g = nx.DiGraph(kind="blocksworld", n_blocks=n_blocks, ops=ops)
    for i, s in enumerate(states):
        g.add_node(i, state=s, label=state_label(s))
    for i, s in enumerate(states):
        for a in legal_actions(s, ops):
            g.add_edge(i, index[apply_action(s, a)], action=a)
    return g


def blocksworld_graph(n_blocks: int, ops: str = "move") -> nx.DiGraph:
    """The Blocksworld state graph: nodes 0..N-1 (attribute ``state``), edges = legal actions
    (attribute ``action``). ``ops="move"``: 4 blocks give 73 states and 240 edges (ALPINE);
    ``ops="4ops"``: 125 states. A fresh copy is returned (the build is cached).
    """
    return _cached_graph(_check_n_blocks(n_blocks), _check_ops(ops)).copy()


def state_index(n_blocks: int, ops: str = "move") -> dict[BWState, int]:
    """Map state -> node id of ``blocksworld_graph(n_blocks, ops)``."""
    return {s: i for i, s in enumerate(enumerate_states(n_blocks, ops))}


def state_label(state: BWState) -> str:
    """Compact text, e.g. ``[ab][c] hand:d`` (each tower bottom -> top)."""
    tw = "".join("[" + "".join(block_name(b) for b in t) + "]" for t in state.towers)
    return tw + (f" hand:{block_name(state.holding)}" if state.holding >= 0 else "")


def render_state(state: BWState) -> str:
    """Multi-line drawing of the towers (top row first) and the hand."""
    height = max((len(t) for t in state.towers), default=0)
    rows = []
    for level in range(height - 1, -1, -1):
        rows.append(" ".join(block_name(t[level]) if level < len(t) else " "
                             for t in state.towers))
    rows.append("-" * max(2 * len(state.towers) - 1, 1))
    rows.append(f"hand: {block_name(state.holding) if state.holding >= 0 else 'empty'}")
    return "\n".join(rows) + "\n"


def path_to_plan(graph: nx.DiGraph, path: Sequence[int]) -> list[str]:
    """PDDL plan (one grounded action per line) of a node path; a move becomes two actions."""
    plan = []
    for u, v in zip(path[:-1], path[1:], strict=True):
        check(graph.has_edge(u, v), f"({u}, {v}) is not an edge of the Blocksworld graph")
        action = graph.edges[u, v]["action"]
        if action[0] != "move":
            plan.append(fmt_action(action))
            continue
        _, x, y = action
        ti, pos = _find(graph.nodes[u]["state"], x)
        tower = graph.nodes[u]["state"].towers[ti]
        first = ("pick-up", x) if pos == 0 else ("unstack", x, tower[pos - 1])
        plan += [fmt_action(first), fmt_action(("put-down", x) if y == TABLE else ("stack", x, y))]
    return plan


# ----------------------------------------------------------------------------- PDDL

DOMAIN_4OPS = """\
(define (domain blocksworld-4ops)
  (:requirements :strips)
  (:predicates (clear ?x) (ontable ?x) (handempty) (holding ?x) (on ?x ?y))

  (:action pick-up
    :parameters (?ob)
    :precondition (and (clear ?ob) (ontable ?ob) (handempty))
    :effect (and (holding ?ob)
                 (not (clear ?ob)) (not (ontable ?ob)) (not (handempty))))

  (:action put-down
    :parameters (?ob)
    :precondition (holding ?ob)
    :effect (and (clear ?ob) (ontable ?ob) (handempty)
                 (not (holding ?ob))))

  (:action stack
    :parameters (?ob ?underob)
    :precondition (and (clear ?underob) (holding ?ob))
    :effect (and (handempty) (clear ?ob) (on ?ob ?underob)
                 (not (clear ?underob)) (not (holding ?ob))))

  (:action unstack
    :parameters (?ob ?underob)
    :precondition (and (on ?ob ?underob) (clear ?ob) (handempty))
    :effect (and (holding ?ob) (clear ?underob)
                 (not (on ?ob ?underob)) (not (clear ?ob)) (not (handempty)))))
"""


@dataclass(frozen=True)
class BlocksworldProblem:
    """A PDDL instance: ``initial`` state and ``goal`` facts (a full state's facts or partial)."""

    n_blocks: int
    initial: BWState
    goal: frozenset[Fact]
    name: str = "blocksworld"

    def goal_state(self) -> BWState | None:
        """The unique goal state if the goal fixes every block's position, else None."""
        try:
            return facts_to_state(self.goal, self.n_blocks)
        except ConfigError:
            return None


def goal_facts(goal: BWState) -> frozenset[Fact]:
    """Goal facts describing a full configuration: every ``on`` and ``ontable`` fact."""
    return frozenset(f for f in state_facts(goal) if f[0] in ("on", "ontable"))


def to_pddl(initial: BWState, goal: BWState | Iterable[Fact], *, n_blocks: int | None = None,
            name: str = "blocksworld") -> tuple[str, str]:
    """``(domain_text, problem_text)`` of an instance in the ``blocksworld-4ops`` domain.

    ``goal`` is a state (exported as all its on/ontable facts) or a collection of facts
    (a partial goal, e.g. ``{("on", "c", "b")}``).
    """
    blocks = sorted({b for t in initial.towers for b in t} | ({initial.holding} - {-1}))
    n = len(blocks) if n_blocks is None else int(n_blocks)
    check(blocks == list(range(n)), f"the initial state must hold the blocks 0..{n - 1}")
    check(re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name) is not None,
          f"problem name {name!r} must be a PDDL identifier")
    facts = goal_facts(goal) if isinstance(goal, BWState) else frozenset(map(tuple, goal))
    init = sorted(state_facts(initial))
    objects = " ".join(block_name(b) for b in range(n))
    problem = (
        f"(define (problem {name})\n  (:domain blocksworld-4ops)\n  (:objects {objects})\n"
        "  (:init\n" + "".join(f"    {fmt_fact(f)}\n" for f in init) + "  )\n"
        "  (:goal (and\n" + "".join(f"    {fmt_fact(f)}\n" for f in sorted(facts)) + "  ))\n)\n"
    )
    return DOMAIN_4OPS, problem


def _sexp(text: str) -> list:
    text = re.sub(r";[^\n]*", "", text).lower()
    tokens = re.findall(r"\(|\)|[^\s()]+", text)
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            check(len(stack) > 1, "PDDL text has an unmatched ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    check(len(stack) == 1, "PDDL text has an unclosed '('")
    return stack[0]


def facts_to_state(facts: Iterable[Fact], n_blocks: int) -> BWState:
    """The state whose on/ontable/holding facts are ``facts`` (all blocks must be placed)."""
    on, table, holding = {}, set(), -1
    ids = {block_name(i): i for i in range(n_blocks)}
    for f in facts:
        name, *args = f
        check(all(a in ids for a in args), f"fact {fmt_fact(f)} names an unknown block")
        if name == "on":
            on[ids[args[0]]] = ids[args[1]]
        elif name == "ontable":
            table.add(ids[args[0]])
        elif name == "holding":
            holding = ids[args[0]]
    above = {v: k for k, v in on.items()}
    towers = []
    for b in sorted(table):
        t = [b]
        while t[-1] in above and len(t) <= n_blocks:
            t.append(above[t[-1]])
        towers.append(t)
    return make_state(towers, holding, n_blocks)


def parse_pddl_problem(text: str) -> BlocksworldProblem:
    """Parse a ``blocksworld-4ops`` problem (objects, init, goal) back into an instance.

    Objects are numbered in the order of ``:objects``; they must be named a, b, c, ... in that
    order (as :func:`to_pddl` writes them). Raises ConfigError on malformed text.
    """
    tree = _sexp(text)
    check(len(tree) == 1 and isinstance(tree[0], list) and tree[0][:1] == ["define"],
          "a PDDL problem must be one (define (problem NAME) ...) form")
    body = tree[0]
    name, objects, init, goal = "blocksworld", None, None, None
    for part in body[1:]:
        check(isinstance(part, list) and part, f"unexpected PDDL element {part!r}")
        key = part[0]
        if key == "problem":
            name = part[1]
        elif key == ":domain":
            check(part[1] == "blocksworld-4ops",
                  f"expected domain blocksworld-4ops, got {part[1]!r}")
        elif key == ":objects":
            objects = part[1:]
        elif key == ":init":
            init = part[1:]
        elif key == ":goal":
            g = part[1]
            goal = g[1:] if g and g[0] == "and" else [g]
    check(objects is not None and init is not None and goal is not None,
          "the PDDL problem needs :objects, :init and :goal")
    n = len(objects)
    check(objects == [block_name(i) for i in range(n)],
          f"objects must be named {[block_name(i) for i in range(n)]} in order, got {objects}")

    def as_facts(items: list) -> frozenset[Fact]:
        out = set()
        for f in items:
            check(isinstance(f, list) and f and all(isinstance(a, str) for a in f),
                  f"malformed fact {f!r}")
            check(f[0] in ("on", "ontable", "clear", "handempty", "holding"),
                  f"unknown predicate {f[0]!r}")
            out.add(tuple(f))
        return frozenset(out)

    init_facts = as_facts(init)
    initial = facts_to_state(init_facts, n)
    check(state_facts(initial) == init_facts,
          "the :init facts are not a consistent complete Blocksworld state")
    return BlocksworldProblem(n, initial, as_facts(goal), name)


def parse_plan(text: str) -> list[tuple]:
    """Parse a plan file (one grounded action per line, ``;`` comments) into action tuples."""
    actions = []
    for item in _sexp(text):
        check(isinstance(item, list) and item and item[0] in PDDL_ACTIONS + ("move",),
              f"malformed plan step {item!r}; expected e.g. (unstack b c)")
        args = []
        for a in item[1:]:
            if a == "table":
                args.append(TABLE)
            else:
                check(re.fullmatch(r"[a-z]", a) is not None, f"unknown block name {a!r}")
                args.append(ord(a) - ord("a"))
        actions.append((item[0], *args))
    return actions


@dataclass(frozen=True)
class PlanCheck:
    """Result of :func:`validate_plan`: ``failed_step`` is the 0-based index of the first
    failing action (``len(plan)`` when every action applies but the goal is not reached)."""

    valid: bool
    failed_step: int | None
    reason: str
    final_state: BWState


def validate_plan(initial: BWState, goal: BWState | Iterable[Fact],
                  plan: Sequence[tuple | str] | str) -> PlanCheck:
    """Replay ``plan`` from ``initial`` and check that the goal holds at the end.

    ``goal`` is a full state or a set of facts (partial goal: those facts must hold). The plan is a
    list of action tuples or PDDL strings, or a plan file's text.
    """
    steps = parse_plan(plan) if isinstance(plan, str) else [
        parse_plan(a)[0] if isinstance(a, str) else tuple(a) for a in plan]
    want = goal_facts(goal) if isinstance(goal, BWState) else frozenset(map(tuple, goal))
    state = initial
    for i, action in enumerate(steps):
        try:
            state = apply_action(state, action)
        except ConfigError as e:
            return PlanCheck(False, i, f"step {i}: {e}", state)
    missing = sorted(want - state_facts(state))
    if missing:
        return PlanCheck(False, len(steps),
                         "goal not reached; false goal facts: "
                         + " ".join(fmt_fact(f) for f in missing), state)
    return PlanCheck(True, None, "plan valid", state)


# ----------------------------------------------------------------------------- env


class BlocksworldEnv(gym.Env):
    """``icarena/Blocksworld-v0``: reach a goal configuration with moves or PDDL actions.

    Actions (Discrete): ``ops="move"``: ``a = x * (n + 1) + d`` moves block x onto block d
    (``d < n``) or onto the table (``d = n``). ``ops="4ops"``: ``[0, n)`` pick-up x,
    ``[n, 2n)`` put-down x, ``2n + x*n + y`` stack x y, ``2n + n^2 + x*n + y`` unstack x y.

    Observation (flattenable Dict): ``on`` MultiDiscrete([n+2]*n) - what each block rests on
    (block id, n = table, n+1 = in the hand) - ``goal_on`` the same for the goal, and ``node`` /
    ``goal_node`` Discrete(#states): ids in ``blocksworld_graph(n, ops)``.

    Reward: +1 and ``terminated`` when the state equals the goal state. An action whose
    preconditions fail: ``invalid_action="penalty"`` (default) leaves the state unchanged, gives
    reward ``-invalid_penalty`` and ``info["invalid"]`` = the failed precondition; ``"raise"``
    raises InvalidActionError instead. Truncation after ``max_steps`` steps.

    Args:
        n_blocks: 1..6. ops: ``"move"`` or ``"4ops"``.
        initial, goal: towers (lists bottom -> top) with the hand empty; None = drawn uniformly
            at each reset from the hand-empty states (goal != initial when there are >= 2).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    @strict_kwargs
    def __init__(self, n_blocks: int = 4, ops: str = "move", *,
                 initial: Sequence[Sequence[int]] | None = None,
                 goal: Sequence[Sequence[int]] | None = None,
                 invalid_action: str = "penalty", invalid_penalty: float = 1.0,
                 max_steps: int = 50, render_mode: str | None = None):
        self.n = _check_n_blocks(n_blocks)
        self.ops = _check_ops(ops)
        check(invalid_action in ("penalty", "raise"),
              f"invalid_action must be 'penalty' or 'raise', got {invalid_action!r}")
        check(render_mode in (None, "ansi"), f"render_mode must be None or 'ansi', got "
                                             f"{render_mode!r}")
        self.invalid_action, self.invalid_penalty = invalid_action, penalty(invalid_penalty)
        self.max_steps, self.render_mode = positive_int(max_steps, "max_steps"), render_mode
        self.states = enumerate_states(self.n, self.ops)
        self.index = {s: i for i, s in enumerate(self.states)}
        self.empty_ids = [i for i, s in enumerate(self.states) if s.holding < 0]
        self.fixed_initial = None if initial is None else make_state(initial, -1, self.n)
        self.fixed_goal = None if goal is None else make_state(goal, -1, self.n)
        n = self.n
        self.action_space = spaces.Discrete(n * (n + 1) if ops == "move" else 2 * n + 2 * n * n)
        on_space = spaces.MultiDiscrete([n + 2] * n)
        self.observation_space = spaces.Dict({
            "on": on_space, "goal_on": on_space,
            "node": spaces.Discrete(len(self.states)),
            "goal_node": spaces.Discrete(len(self.states)),
        })
        self.state = self.goal = self.states[0]
        self.steps = 0
        self._ended: bool | None = None  # None: not reset yet

    def decode_action(self, a: int) -> tuple:
        """Action id -> action tuple (see the class docstring)."""
        n = self.n
        a = integer_action(a, int(self.action_space.n))
        if self.ops == "move":
            x, d = divmod(a, n + 1)
            return ("move", x, TABLE if d == n else d)
        if a < n:
            return ("pick-up", a)
        if a < 2 * n:
            return ("put-down", a - n)
        a -= 2 * n
        if a < n * n:
            return ("stack", *divmod(a, n))
        return ("unstack", *divmod(a - n * n, n))

    def encode_action(self, action: tuple) -> int:
        """Action tuple -> action id."""
        n = self.n
        name, *args = action
        if self.ops == "move":
            check(name == "move", f"ops='move' takes only move actions, got {name!r}")
            x, y = args
            return x * (n + 1) + (n if y == TABLE else y)
        check(name in PDDL_ACTIONS, f"ops='4ops' takes {PDDL_ACTIONS}, got {name!r}")
        if name == "pick-up":
            return args[0]
        if name == "put-down":
            return n + args[0]
        base = 2 * n + (0 if name == "stack" else n * n)
        return base + args[0] * n + args[1]

    def _on(self, state: BWState) -> np.ndarray:
        on = np.full(self.n, self.n + 1, dtype=np.int64)
        for t in state.towers:
            on[t[0]] = self.n
            for below, above in zip(t[:-1], t[1:], strict=True):
                on[above] = below
        return on

    def _obs(self) -> dict[str, Any]:
        return {"on": self._on(self.state), "goal_on": self._on(self.goal),
                "node": np.int64(self.index[self.state]),
                "goal_node": np.int64(self.index[self.goal])}

    def _info(self) -> dict[str, Any]:
        return {"state": state_label(self.state), "goal": state_label(self.goal),
                "legal_actions": [self.encode_action(a) for a in legal_actions(self.state,
                                                                               self.ops)]}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        check(not options, f"Blocksworld-v0 takes no reset options, got {options}")
        ids = self.empty_ids
        if self.fixed_initial is not None:
            self.state = self.fixed_initial
        else:
            self.state = self.states[ids[self.np_random.integers(len(ids))]]
        if self.fixed_goal is not None:
            self.goal = self.fixed_goal
        else:
            choices = [i for i in ids if self.states[i] != self.state] or ids
            self.goal = self.states[choices[self.np_random.integers(len(choices))]]
        self.steps = 0
        self._ended = False
        return self._obs(), self._info()

    def step(self, action):
        if self._ended is None:
            raise ConfigError("call reset() before step()")
        if self._ended:
            raise ConfigError("the episode has ended (terminated or truncated); call reset() "
                              "to start a new one")
        action = self.decode_action(action)
        self.steps += 1
        info_invalid = None
        try:
            self.state = apply_action(self.state, action)
        except InvalidActionError as e:
            if self.invalid_action == "raise":
                raise
            info_invalid = str(e)
        terminated = info_invalid is None and self.state == self.goal
        reward = 1.0 if terminated else (-self.invalid_penalty if info_invalid else 0.0)
        truncated = (not terminated) and self.steps >= self.max_steps
        self._ended = bool(terminated or truncated)
        info = self._info()
        info["invalid"] = info_invalid
        return self._obs(), reward, bool(terminated), bool(truncated), info

    def export_pddl(self, name: str = "blocksworld") -> tuple[str, str]:
        """PDDL domain and problem of the current state -> goal instance."""
        return to_pddl(self.state, self.goal, n_blocks=self.n, name=name)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return (f"state {state_label(self.state)}  goal {state_label(self.goal)}\n"
                + render_state(self.state))


@functools.lru_cache(maxsize=8)
def _transition_table(n: int, ops: str) -> np.ndarray:
    """(#states, #actions) int64: the node reached by each action id, -1 where it is illegal."""
    env = BlocksworldEnv(n, ops)
    table = np.full((len(env.states), env.action_space.n), -1, dtype=np.int64)
    for i, state in enumerate(env.states):
        for action in legal_actions(state, ops):
            table[i, env.encode_action(action)] = env.index[apply_action(state, action)]
    table.setflags(write=False)
    return table


class BlocksworldVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of :class:`BlocksworldEnv`, stepped in numpy through a transition table.

    Same keyword arguments as :class:`BlocksworldEnv`. Sub-env i is the single env reset with
    seed ``seed + i`` (Gymnasium's ``SyncVectorEnv`` convention), draw for draw and across
    autoresets: each sub-env draws its initial and goal states from its own generator. Autoreset
    mode NEXT_STEP: the step after a sub-env terminates or truncates resets it (its action is
    ignored) and returns its first observation with reward 0. ``info["invalid"]`` is a boolean
    array (whether the action's preconditions failed) for the sub-envs that stepped; with
    ``invalid_action="raise"`` an illegal action in any sub-env raises InvalidActionError.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, **kwargs: Any):
        from icarena.envs.substreams import SubEnvStreams, vector_setup

        self.env = env = vector_setup(self, BlocksworldEnv, num_envs, kwargs)
        self.table = _transition_table(env.n, env.ops)
        self.on_table = np.stack([env._on(s) for s in env.states])
        self.empty_ids = np.asarray(env.empty_ids, dtype=np.int64)
        self._pos = np.full(len(env.states), -1, dtype=np.int64)  # node -> position in empty_ids
        self._pos[self.empty_ids] = np.arange(len(self.empty_ids))
        self._streams = SubEnvStreams(num_envs)
        self._rows = np.arange(num_envs)
        self.node = np.zeros(num_envs, dtype=np.int64)
        self.goal = np.zeros(num_envs, dtype=np.int64)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._ready = False

    def _reset_rows(self, rows: np.ndarray) -> None:
        env, ids, m = self.env, self.empty_ids, len(self.empty_ids)
        gens = self._streams.gens
        if env.fixed_initial is not None:
            self.node[rows] = env.index[env.fixed_initial]
        else:
            self.node[rows] = ids[[gens[i].integers(m) for i in rows]]
        if env.fixed_goal is not None:
            self.goal[rows] = env.index[env.fixed_goal]
        elif m == 1:
            self.goal[rows] = ids[0]
        else:  # uniform over the hand-empty states other than the initial one
            j = np.array([gens[i].integers(m - 1) for i in rows], dtype=np.int64)
            p = self._pos[self.node[rows]]
            self.goal[rows] = ids[j + (j >= p)]
        self.steps[rows] = 0

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        check(not options, f"Blocksworld-v0 takes no reset options, got {options}")
        self._streams.seed(seed)
        self._reset_rows(self._rows)
        self._autoreset[:] = False
        self._ready = True
        return self._obs(), {}

    def step(self, actions: Any):
        if not self._ready:
            raise ConfigError("call reset() before step()")
        a = np.asarray(actions)
        n_actions = self.env.action_space.n
        check(a.shape == (self.num_envs,) and np.issubdtype(a.dtype, np.integer),
              f"actions must be {self.num_envs} integer action ids, got {actions!r}")
        live = ~self._autoreset
        bad = live & ((a < 0) | (a >= n_actions))
        check(not bad.any(), f"actions {a[bad]} are outside Discrete({n_actions})")
        nxt = self.table[self.node, np.clip(a, 0, n_actions - 1)]
        invalid = live & (nxt < 0)
        if self.env.invalid_action == "raise" and invalid.any():
            i = int(np.flatnonzero(invalid)[0])
            raise InvalidActionError(
                f"sub-env {i}: action {int(a[i])} = {self.env.decode_action(a[i])} is illegal "
                f"in state {state_label(self.env.states[self.node[i]])}")
        self.steps += 1
        self.node = np.where(invalid, self.node, np.maximum(nxt, 0))
        terminated = ~invalid & (self.node == self.goal)
        reward = np.where(terminated, 1.0, np.where(invalid, -self.env.invalid_penalty, 0.0))
        truncated = ~terminated & (self.steps >= self.env.max_steps)
        reset = np.flatnonzero(self._autoreset)
        if len(reset):
            self._reset_rows(reset)
            reward[reset], terminated[reset], truncated[reset] = 0.0, False, False
        self._autoreset = terminated | truncated
        return self._obs(), reward, terminated, truncated, {"invalid": invalid,
                                                            "_invalid": live}

    def _obs(self) -> dict[str, np.ndarray]:
        return {"on": self.on_table[self.node], "goal_on": self.on_table[self.goal],
                "node": self.node.copy(), "goal_node": self.goal.copy()}
