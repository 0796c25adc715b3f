"""One call captures the residual stream of every registered backbone (and attention maps where
it has attention), checked against the backbone's own forward."""

from __future__ import annotations

import pytest
import torch

from icarena.pretraining import backbones
from icarena.pretraining.activations import capture, has_attention
from icarena.pretraining.model import ModelConfig, SequenceModel

NAMES = backbones.available()


def build(name: str, causal: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return backbones.build(name, d_model=16, n_layers=2, n_heads=2, causal=causal,
                           max_len=16).eval()


def final_norm(bb, h: torch.Tensor) -> torch.Tensor:
    """The backbone's last step after its blocks, applied to the captured last state."""
    from icarena.pretraining.backbones.sepnorm import SepNormGPT, _norm
    from icarena.pretraining.backbones.supernet import _ln

    name = type(bb).__name__
    if isinstance(bb, SepNormGPT):
        special = bb.resolve_special(h, None, None)
        return _norm(bb.ln_f, h, special)
    if name == "SuperTransformer":
        return _ln(bb.ln_f, h)
    ln = getattr(bb, "ln_f", None)
    return h if ln is None else ln(h)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_residual_stream_of_every_backbone(name, causal):
    bb = build(name, causal)
    x = torch.randn(3, 7, 16)
    a = capture(bb, x)
    assert len(a.residual) == 3 and all(r.shape == (3, 7, 16) for r in a.residual)
    torch.testing.assert_close(a.residual[0], x)
    with torch.no_grad():
        out = bb(x)
        torch.testing.assert_close(a.output, out)
        # the last state, through the backbone's final norm, is its output
        torch.testing.assert_close(final_norm(bb, a.residual[-1]), out, atol=1e-5, rtol=1e-5)
    if causal:  # position t's states do not depend on later inputs
        y = x.clone()
        y[:, 4:] = torch.randn(3, 3, 16)
        b = capture(bb, y)
        for ra, rb in zip(a.residual, b.residual, strict=True):
            torch.testing.assert_close(ra[:, :4], rb[:, :4], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_attention_maps_where_there_is_attention(name):
    bb = build(name, True)
    x = torch.randn(2, 6, 16)
    a = capture(bb, x)
    assert has_attention(name) == (a.attention is not None)
    assert a.attention is not None and len(a.attention) == 2
    for m in a.attention:
        assert m.shape[:3] == (2, 2, 6)
        if name == "linear":   # un-normalised scores, zero above the diagonal
            assert torch.all(m.triu(1) == 0)
        else:                  # probabilities
            torch.testing.assert_close(m.sum(-1), torch.ones(m.shape[:-1]))
            if name != "bixt":
                assert torch.all(m.triu(1) == 0)
    if hasattr(bb, "attention_maps"):  # gpt / sepnorm have their own: the hooks agree
        for mine, theirs in zip(a.attention, bb.attention_maps(x), strict=True):
            torch.testing.assert_close(mine, theirs)


def test_linear_scores_and_a_sequence_model():
    bb = build("linear", True)
    x = torch.randn(2, 5, 16)
    a = capture(bb, x)
    blk = bb.blocks[0]
    expected = blk.attn.scores(blk.ln1(x + bb.wpe(torch.arange(5))[None]), causal=True)
    torch.testing.assert_close(a.attention[0], expected)
    model = SequenceModel(ModelConfig(backbone="gpt", backbone_cfg={
        "d_model": 16, "n_layers": 2, "n_heads": 2, "causal": True, "max_len": 8},
        input_kind="tokens", input_dim=11, output_dim=11)).eval()
    tokens = torch.randint(0, 11, (2, 8))
    m = capture(model, tokens)
    torch.testing.assert_close(m.residual[0], model.read_in(tokens))
    assert len(m.residual) == 3


def test_hamiltonian_sympformer_has_no_attention_matrix():
    bb = backbones.build("sympformer", d_model=16, n_layers=2, n_heads=2,
                         variant="hamiltonian_euler", max_len=8)
    a = capture(bb, torch.randn(1, 4, 16))
    assert a.attention is None and len(a.residual) == 3


def test_bixt_latent_scan_is_captured_in_one_pass():
    kw = dict(d_model=16, n_layers=2, n_heads=2, n_latents=5, causal=True, max_len=16)
    torch.manual_seed(0)
    scan = backbones.build("bixt", mode="latent_scan", **kw).eval()
    prefix = backbones.build("bixt", **kw).eval()  # prefix_reencode, the same weights
    prefix.load_state_dict(scan.state_dict())
    x = torch.randn(3, 7, 16)
    a, b = capture(scan, x), capture(prefix, x)
    with torch.no_grad():
        out = scan(x)
    torch.testing.assert_close(a.output, out)
    torch.testing.assert_close(scan.ln_f(a.residual[-1]), out, atol=1e-5, rtol=1e-5)
    assert a.attention is not None and [m.shape for m in a.attention] == [(3, 2, 7, 5)] * 2
    for m in a.attention:  # token t's read of its own latents Z_t: probabilities over M
        torch.testing.assert_close(m.sum(-1), torch.ones(3, 2, 7))
    # Layer 1 reads the learned latents in both modes: the same states and maps.
    torch.testing.assert_close(a.residual[1], b.residual[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.attention[0], b.attention[0], atol=1e-5, rtol=1e-5)
    y = x.clone()
    y[:, 4:] = torch.randn(3, 3, 16)
    c = capture(scan, y)
    for ra, rc in zip(a.residual + a.attention, c.residual + c.attention, strict=True):
        torch.testing.assert_close(ra[:, :4] if ra.dim() == 3 else ra[:, :, :4],
                                   rc[:, :4] if rc.dim() == 3 else rc[:, :, :4],
                                   atol=1e-5, rtol=1e-5)
