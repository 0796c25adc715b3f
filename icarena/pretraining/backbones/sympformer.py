"""SympFormer backbone: accelerated (momentum) attention blocks with a per-token velocity state.

Stein, Li, Steidl, "SympFormer: Accelerated attention blocks via Inertial Dynamics on Density
Manifolds", arXiv 2603.16535 (2026); the Lie-Trotter Nesterov sub-step is the YuriiFormer rule
(Zimin et al. 2026, arXiv 2601.23236). Residual attention is a forward-Euler step of an
interacting-particle flow; SympFormer gives every token a position x_i and a velocity/momentum
y_i and discretises a damped (Nesterov-type) second-order flow, one layer per time step and one
attention evaluation ("oracle call") per layer. The velocity lives only inside ``forward``, so
the backbone interface stays (B, T, D) -> (B, T, D).

Variants (``variant``):

``nesterov_lt`` (default). Each layer applies the Nesterov sub-step to attention, then to the
MLP, each with its own learned (mu, beta, gamma)::

    x_in = x + mu * v                          look-ahead (mu = 0 for attention if lookahead=False)
    v    = LN_v(beta * v + gamma * F(LN(x_in)))     F = causal softmax attention, then the MLP
    x    = x + v

    mu, beta = sigmoid(raw) (init 0.9),  gamma = softplus(raw) (init 1.0)

With mu = beta = 0, gamma = 1 and LN_v = identity this is exactly the pre-LN GPT block
x + Attn(LN1 x), then x + MLP(LN2 x) (``momentum=False`` builds that block).

``hamiltonian_euler``. The particle system of the paper (A symmetric, B the metric)::

    M_ij = exp(x_i^T A x_j) (j visible from i),  z_i = sum_j M_ij,  r_i = <y_i, B y_i> / z_i^2
    dx_i/dt = N_i * B y_i / z_i
    dy_i/dt = -alpha(t) y_i + (N_i / 2) sum_j M_ij (r_i + r_j + 2) A x_j

discretised kick-drift: y <- sigma * y + h_y * G(x, y) (damping integrated exactly,
sigma = exp(-(eta(t + h_y) - eta(t))), eta' = alpha), then x <- x + h_x * N_i B y_i / z_i(x) with
the new y. H is not separable (the kinetic term depends on x through z), so this explicit
kick-drift is first order: the energy error over a fixed horizon is O(h). In the block, forces
act on u = LN1(x); A = sym(W_q^T W_k) / sqrt(D) (the heads of the practical code averaged into
one kernel, so ``n_heads`` does not enter), B = sym(c_B) where c_B is a learned D x D matrix
initialised to the identity, and the drift uses c_B y. A LayerNorm is applied to the momentum
after the kick. Scores are clamped to [-score_clip, score_clip] and
**not** shift-normalised (the right-hand side is not shift invariant). The paper's code clamps at
60; icarena defaults to 30 because in float32 the momentum LayerNorm's variance overflows once
the forces exceed ~1e19 (scores above ~44). Causality: M is masked to
j <= i and N_i is the number of visible tokens, i.e. the explicit right-hand side with a causal
mask (the autograd gradient of a masked energy would couple token i to later tokens). The MLP
sub-step is the Nesterov rule above.

Damping (``damping``): 'learned' (beta = sigmoid(raw)), or a schedule giving beta = sigma:
'nesterov' alpha(t) = c / t (c = damping_c = 3), 'heavy_ball' alpha = damping_c, 'loglin'
alpha = c_log / t + c_lin; 'none' alpha = 0. Layer k runs at time t_k = 1 + sum_{l<k} h_l with
learned per-layer steps h_l = softplus(raw) (init ``step_init``). 'auto' = 'learned' for
nesterov_lt and 'nesterov' for hamiltonian_euler.

Initial velocity (``v0``): 'zero' or 'learned' = W x + P[t] (a linear map of the input state
standing in for the token table, plus a learned position table); the extra D * (D + max_len)
parameters are counted by ``num_params``. Always report parameter counts with SympFormer
results: the momentum variants have more parameters than GPT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from icarena.errors import check
from icarena.pretraining.backbones import register
from icarena.pretraining.backbones.base import Backbone, BackboneConfig
from icarena.pretraining.backbones.gpt import GPT, MLP, SelfAttention, attention_mask

VARIANTS = ("nesterov_lt", "hamiltonian_euler")
DAMPINGS = ("auto", "learned", "nesterov", "heavy_ball", "loglin", "none")


@dataclass
class SympFormerConfig(BackboneConfig):
    """Config of the ``sympformer`` backbone."""

    variant: str = "nesterov_lt"
    """'nesterov_lt' (one causal attention per layer, Nesterov sub-steps) or 'hamiltonian_euler'."""
    mlp_ratio: float = 4.0
    """Hidden width of the MLP as a multiple of d_model."""
    momentum: bool = True
    """False: no velocity (mu = beta = 0, gamma = 1, no LN_v): the plain pre-LN GPT block."""
    lookahead: bool = True
    """Use the look-ahead x + mu v in the attention sub-step (False: mu = 0 there, 'H0')."""
    momentum_norm: bool = True
    """Apply a LayerNorm (LN_v) to the velocity after each sub-step."""
    damping: str = "auto"
    """'auto', 'learned', 'nesterov' (c/t), 'heavy_ball' (c), 'loglin' (c/t + c_lin), 'none'."""
    damping_c: float = 3.0
    """c of the damping schedule (c/t, the constant, or c_log)."""
    damping_clin: float = 1e-4
    """c_lin of the 'loglin' schedule."""
    mu_init: float = 0.9
    """Initial look-ahead mu (sigmoid-parametrised)."""
    beta_init: float = 0.9
    """Initial learned momentum retention beta (damping='learned')."""
    gamma_init: float = 1.0
    """Initial force step gamma (softplus-parametrised)."""
    step_init: float = 1.0
    """Initial per-layer time step h (softplus-parametrised); also h_x, h_y of the particle step."""
    v0: str = "zero"
    """Initial velocity: 'zero' or 'learned' (W x + P[t]; adds D*(D+max_len) parameters)."""
    score_clip: float = 30.0
    """hamiltonian_euler: clamp of the scores before exp (paper code: 60; see the docstring)."""

    def validate(self) -> None:
        super().validate()
        check(self.variant in VARIANTS, f"variant must be one of {VARIANTS}, got {self.variant!r}")
        check(self.damping in DAMPINGS, f"damping must be one of {DAMPINGS}, got {self.damping!r}")
        check(self.v0 in ("zero", "learned"), f"v0 must be 'zero' or 'learned', got {self.v0!r}")
        check(self.mlp_ratio > 0, f"mlp_ratio must be > 0, got {self.mlp_ratio}")
        for name in ("mu_init", "beta_init"):
            v = getattr(self, name)
            check(0.0 < v < 1.0, f"{name} must be in (0, 1), got {v}")
        for name in ("gamma_init", "step_init", "score_clip"):
            v = getattr(self, name)
            check(v > 0, f"{name} must be > 0, got {v}")
        check(self.damping_c >= 0 and self.damping_clin >= 0,
              "damping_c and damping_clin must be >= 0")
        check(self.momentum or self.v0 == "zero", "v0='learned' needs momentum=True")
        check(self.momentum or self.variant == "nesterov_lt",
              "momentum=False is only defined for variant='nesterov_lt' (it is the GPT block)")

    @property
    def resolved_damping(self) -> str:
        if self.damping != "auto":
            return self.damping
        return "learned" if self.variant == "nesterov_lt" else "nesterov"


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def damping_factor(kind: str, t: torch.Tensor, h: torch.Tensor, c: float, c_lin: float
                   ) -> torch.Tensor:
    """sigma = exp(-(eta(t + h) - eta(t))) with eta' = alpha: exact decay of dy = -alpha y dt.

    nesterov alpha = c/t -> (t / (t + h))^c;  heavy_ball alpha = c -> exp(-c h);
    loglin alpha = c/t + c_lin -> (t / (t + h))^c * exp(-c_lin h);  none -> 1.
    """
    if kind == "nesterov":
        return (t / (t + h)) ** c
    if kind == "heavy_ball":
        return torch.exp(-c * h)
    if kind == "loglin":
        return (t / (t + h)) ** c * torch.exp(-c_lin * h)
    if kind == "none":
        return torch.ones_like(h)
    raise ValueError(f"no damping schedule {kind!r}")


# ---------------------------------------------------------------------------------------------
# Particle system (pure functions, any float dtype; used by the block and by the tests)
# ---------------------------------------------------------------------------------------------


def visible_mask(T: int, causal: bool, pad_mask: torch.Tensor | None,
                 device: torch.device) -> torch.Tensor:
    """(B or 1, T, T) bool: True where token i sees token j (j <= i if causal; never padding).

    The diagonal is always visible so that every row has at least one term.
    """
    allowed = torch.ones(T, T, dtype=torch.bool, device=device)
    if causal:
        allowed = torch.tril(allowed)
    allowed = allowed[None]
    if pad_mask is not None:
        allowed = (allowed & ~pad_mask[:, None, :]) | torch.eye(T, dtype=torch.bool, device=device)
    return allowed


def particle_terms(
    X: torch.Tensor, Y: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor,
    allowed: torch.Tensor | None = None, clip: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-hand side of the accelerated particle flow (without damping).

    Args:
        X, Y: positions and momenta (B, N, d). A, Bm: symmetric (d, d) matrices.
        allowed: (B or 1, N, N) bool visibility (None: all pairs).
        clip: clamp of the scores x_i^T A x_j before exp (None: no clamp).

    Returns:
        dX (B, N, d) = N_i B y_i / z_i;  G (B, N, d) = (N_i / 2) sum_j M_ij (r_i + r_j + 2) A x_j;
        z (B, N);  Ni (B, N) the number of visible tokens.
    """
    S = X @ A @ X.transpose(-1, -2)
    if clip is not None:
        S = S.clamp(-clip, clip)
    M = torch.exp(S)
    if allowed is None:
        allowed = torch.ones(1, X.shape[1], X.shape[1], dtype=torch.bool, device=X.device)
    M = M * allowed.to(M.dtype)
    z = M.sum(-1)
    Ni = allowed.to(X.dtype).sum(-1).expand_as(z)
    q = torch.einsum("bnd,de,bne->bn", Y, Bm, Y)
    r = q / z / z
    W = M * (r[..., :, None] + r[..., None, :] + 2.0)
    G = 0.5 * Ni[..., None] * (W @ (X @ A))
    dX = Ni[..., None] * (Y @ Bm.transpose(-1, -2)) / z[..., None]
    return dX, G, z, Ni


def particle_energy(X: torch.Tensor, Y: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor
                    ) -> torch.Tensor:
    """H(X, Y) = (N/2) sum_i <y_i, B y_i> / z_i - (N/2) sum_ij M_ij  (all pairs), shape (B,)."""
    N = X.shape[1]
    M = torch.exp(X @ A @ X.transpose(-1, -2))
    z = M.sum(-1)
    q = torch.einsum("bnd,de,bne->bn", Y, Bm, Y)
    return 0.5 * N * (q / z).sum(-1) - 0.5 * N * M.sum(dim=(-1, -2))


def kick_drift(
    X: torch.Tensor, Y: torch.Tensor, A: torch.Tensor, Bm: torch.Tensor, h: float,
    sigma: float = 1.0, allowed: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One kick-drift step: Y1 = sigma Y + h G(X, Y); X1 = X + h N B Y1 / z(X).

    From Y = 0 this gives X1 = X + h^2 N^2 Gamma(X) with Gamma_i = sum_j (M_ij / z_i) (B A) x_j,
    a vanilla attention step with V = B A.
    """
    _, G, z, Ni = particle_terms(X, Y, A, Bm, allowed)
    Y1 = sigma * Y + h * G
    X1 = X + h * Ni[..., None] * (Y1 @ Bm.transpose(-1, -2)) / z[..., None]
    return X1, Y1


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------


class NesterovStep(nn.Module):
    """v <- LN_v(beta v + gamma F(LN(x + mu v))); x <- x + v (beta from outside if scheduled)."""

    def __init__(self, d: int, cfg: SympFormerConfig, lookahead: bool):
        super().__init__()
        self.enabled = cfg.momentum
        self.lookahead = lookahead and cfg.momentum
        self.mu_raw = nn.Parameter(torch.tensor(_logit(cfg.mu_init))) if self.lookahead else None
        learned = cfg.resolved_damping == "learned"
        self.beta_raw = nn.Parameter(torch.tensor(_logit(cfg.beta_init))) if (
            self.enabled and learned) else None
        self.gamma_raw = nn.Parameter(torch.tensor(_inv_softplus(cfg.gamma_init))) if (
            self.enabled) else None
        self.ln_v = nn.LayerNorm(d) if (cfg.momentum_norm and self.enabled) else nn.Identity()

    def lookahead_input(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return x + torch.sigmoid(self.mu_raw) * v if self.mu_raw is not None else x

    def update(self, x: torch.Tensor, v: torch.Tensor, force: torch.Tensor,
               sigma: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.enabled:
            return x + force, v
        beta = torch.sigmoid(self.beta_raw) if self.beta_raw is not None else sigma
        v = self.ln_v(beta * v + F.softplus(self.gamma_raw) * force)
        return x + v, v


class HamiltonianAttention(nn.Module):
    """Kick-drift step of the particle flow on u = LN(x) (see the module docstring)."""

    def __init__(self, cfg: SympFormerConfig):
        super().__init__()
        d = cfg.d_model
        self.clip = cfg.score_clip
        self.ln = nn.LayerNorm(d)
        self.w_q = nn.Linear(d, d, bias=False)
        self.w_k = nn.Linear(d, d, bias=False)
        self.c_B = nn.Parameter(torch.eye(d))
        self.hx_raw = nn.Parameter(torch.tensor(_inv_softplus(cfg.step_init)))
        self.hy_raw = nn.Parameter(torch.tensor(_inv_softplus(cfg.step_init)))
        self.beta_raw = nn.Parameter(torch.tensor(_logit(cfg.beta_init))) if (
            cfg.resolved_damping == "learned") else None
        self.ln_y = nn.LayerNorm(d) if cfg.momentum_norm else nn.Identity()

    def kernel(self) -> torch.Tensor:
        """A = sym(W_q^T W_k) / sqrt(D), (D, D)."""
        P = self.w_q.weight.T @ self.w_k.weight
        return 0.5 * (P + P.T) / math.sqrt(P.shape[0])

    def forward(self, x: torch.Tensor, y: torch.Tensor, allowed: torch.Tensor,
                sigma: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.beta_raw is not None:
            sigma = torch.sigmoid(self.beta_raw)
        u = self.ln(x)
        Bs = 0.5 * (self.c_B + self.c_B.T)
        _, G, z, Ni = particle_terms(u, y, self.kernel(), Bs, allowed, self.clip)
        y = self.ln_y(sigma * y + F.softplus(self.hy_raw) * G)
        x = x + F.softplus(self.hx_raw) * Ni[..., None] * (y @ self.c_B.T) / z[..., None]
        return x, y


class SympBlock(nn.Module):
    """One SympFormer layer: attention step (Nesterov or particle), then the MLP Nesterov step."""

    def __init__(self, cfg: SympFormerConfig):
        super().__init__()
        d = cfg.d_model
        self.variant = cfg.variant
        if cfg.variant == "nesterov_lt":
            self.ln1 = nn.LayerNorm(d)
            self.attn: nn.Module = SelfAttention(d, cfg.n_heads, True, cfg.dropout)
            self.attn_step = NesterovStep(d, cfg, lookahead=cfg.lookahead)
        else:
            self.attn = HamiltonianAttention(cfg)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = MLP(d, int(round(cfg.mlp_ratio * d)), True, cfg.dropout)
        self.mlp_step = NesterovStep(d, cfg, lookahead=True)

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool,
                sigma: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.variant == "nesterov_lt":
            xin = self.attn_step.lookahead_input(x, v)
            x, v = self.attn_step.update(x, v, self.attn(self.ln1(xin), mask, causal), sigma)
        else:
            x, v = self.attn(x, v, mask, sigma)
        xin = self.mlp_step.lookahead_input(x, v)
        return self.mlp_step.update(x, v, self.mlp(self.ln2(xin)), sigma)


@register("sympformer", SympFormerConfig,
          "Accelerated attention with per-token velocity (SympFormer, Stein et al. 2026).")
class SympFormer(Backbone):
    """SympFormer backbone: (B, T, D) -> (B, T, D); learned positions and a final LayerNorm."""

    config: SympFormerConfig

    def __init__(self, config: SympFormerConfig):
        super().__init__(config)
        c = config
        self.wpe = nn.Embedding(c.max_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(SympBlock(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.damping = c.resolved_damping
        scheduled = c.momentum and self.damping != "learned"
        self.step_raw = nn.Parameter(
            torch.full((c.n_layers,), _inv_softplus(c.step_init))) if scheduled else None
        if c.v0 == "learned":
            self.v0_in = nn.Linear(c.d_model, c.d_model, bias=False)
            self.v0_pos = nn.Embedding(c.max_len, c.d_model)
        self.apply(GPT._init_weights)
        for name, p in self.named_parameters():  # GPT-2 scaled init of residual projections
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))
        if c.variant == "hamiltonian_euler":
            for block in self.blocks:  # unit-scale kernel at init (normal(.02) would make A ~ 0)
                nn.init.normal_(block.attn.w_q.weight, std=c.d_model ** -0.5)
                nn.init.normal_(block.attn.w_k.weight, std=c.d_model ** -0.5)

    def layer_sigmas(self) -> list[torch.Tensor | None]:
        """Damping factor sigma_k of each layer (None when beta is learned)."""
        if self.step_raw is None:
            return [None] * len(self.blocks)
        h = F.softplus(self.step_raw)
        t = 1.0 + torch.cumsum(h, 0) - h
        s = damping_factor(self.damping, t, h, self.config.damping_c, self.config.damping_clin)
        return list(s.unbind(0))

    def initial_velocity(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.v0 == "zero" or not self.config.momentum:
            return torch.zeros_like(x)
        pos = torch.arange(x.shape[1], device=x.device)
        return self.v0_in(x) + self.v0_pos(pos)[None]

    def forward(
        self,
        x: torch.Tensor,
        *,
        pad_mask: torch.Tensor | None = None,
        special_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_input(x)
        T = x.shape[1]
        if self.config.variant == "nesterov_lt":
            mask = attention_mask(T, self.causal, pad_mask, x.device)
        else:
            mask = visible_mask(T, self.causal, pad_mask, x.device)
        v = self.initial_velocity(x)
        pos = torch.arange(T, device=x.device)
        x = self.drop(x + self.wpe(pos)[None])
        for block, sigma in zip(self.blocks, self.layer_sigmas(), strict=True):
            x, v = block(x, v, mask, self.causal, sigma)
        return self.ln_f(x)
