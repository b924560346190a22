"""Shapes, probability contract and gradient flow for every segmenter variant (tiny configs)."""

from __future__ import annotations

import pytest
import torch
from eanno_training.losses import segmentation_loss
from eanno_training.models import ModelConfig, build_model, count_parameters, full_config, tiny_config

TRANSUNET_VARIANTS = ["unet", "encoder", "decoder", "both"]


def _batch(cfg: ModelConfig, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 1, *cfg.patch_size, generator=g)
    # A label patch with a blob of each class so that every class is present.
    y = torch.zeros(b, *cfg.patch_size, dtype=torch.long)
    for c in range(1, cfg.num_classes):
        y[:, 4 * c : 4 * c + 4, 8:20, 8:20] = c
    return x, y


@pytest.mark.parametrize("variant", TRANSUNET_VARIANTS)
def test_transunet_probs_shape_and_sum(variant: str) -> None:
    cfg = tiny_config(variant)
    model = build_model(cfg).eval()
    x, _ = _batch(cfg)
    with torch.no_grad():
        p = model(x)
    assert p.shape == (2, 6, *cfg.patch_size)
    assert p.dtype == torch.float32
    assert torch.all(p >= 0)
    torch.testing.assert_close(p.sum(1), torch.ones(2, *cfg.patch_size), atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", TRANSUNET_VARIANTS)
def test_transunet_gradients_reach_every_parameter(variant: str) -> None:
    cfg = tiny_config(variant)
    model = build_model(cfg).train()
    x, y = _batch(cfg)
    loss = segmentation_loss(model.forward_train(x), y, cfg.num_classes)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no finite gradient for {missing[:5]}"
    # The encoder's first convolution gets a non-zero gradient (the signal flows to the input).
    first = model.encoder.stages[0][0][0].weight.grad
    assert first.abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["monai_unet", "segresnet", "swinunetr"])
def test_monai_backbones_share_the_interface(arch: str) -> None:
    cfg = tiny_config(arch=arch)
    if arch == "swinunetr":  # its 1/32 bottleneck must hold more than one voxel for InstanceNorm
        cfg = cfg.replace(patch_size=(64, 64, 64))
    model = build_model(cfg)
    x, y = _batch(cfg, b=1)
    if (
        arch != "swinunetr"
    ):  # Swin's backward at 64^3 costs ~15 s on 2 cores; its forward checks the interface
        loss = segmentation_loss(model.forward_train(x), y[:1], cfg.num_classes)
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        p = model.eval()(x)
    assert p.shape == (1, 6, *cfg.patch_size)
    torch.testing.assert_close(p.sum(1), torch.ones(1, *cfg.patch_size), atol=1e-4, rtol=0)


def test_full_size_parameter_counts() -> None:
    """The paper's group: about 33 M parameters decoder-only, about 117 M encoder-only."""
    counts = {v: count_parameters(build_model(full_config(v))) for v in ("decoder", "encoder")}
    print(f"full-size parameters: {counts}")
    assert 31e6 < counts["decoder"] < 35e6
    assert 110e6 < counts["encoder"] < 124e6


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(patch_size=(100, 128, 128))
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"arch": "transunet", "width": 3})
    with pytest.raises(ValueError, match="variant"):
        ModelConfig(variant="middle")  # type: ignore[arg-type]
    cfg = tiny_config("both")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_mask_decoder_attends_only_inside_previous_masks() -> None:
    """Masked cross-attention: a query whose mask covers some voxels gets zero weight elsewhere."""
    from eanno_training.models.attention import Attention

    att = Attention(8, 2)
    q, kv = torch.randn(1, 2, 8), torch.randn(1, 5, 8)
    block = torch.tensor([[[False, False, True, True, True], [False] * 5]])
    kv_changed = kv.clone()
    kv_changed[:, 2:] = torch.randn(1, 3, 8)
    out1, out2 = att(q, kv, block), att(q, kv_changed, block)
    torch.testing.assert_close(out1[:, 0], out2[:, 0])  # query 0 cannot see keys 2..4
    assert not torch.allclose(out1[:, 1], out2[:, 1])  # query 1 sees everything


def test_input_window_adds_a_clamped_channel_that_the_network_reads() -> None:
    """input_window feeds a second channel; contrasts inside the window change the output, ones beyond it
    only through the first channel; the config round-trips and refuses an empty window."""
    cfg = tiny_config("unet").replace(input_window=[-1.25, 1.25])
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg and cfg.input_window == (-1.25, 1.25)
    model = build_model(cfg).eval()
    assert model.encoder.stages[0][0][0].in_channels == 2
    probs = model(torch.zeros(1, 1, 32, 32, 32))
    assert probs.shape == (1, 6, 32, 32, 32)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 32, 32, 32))
    with pytest.raises(ValueError, match="lo < hi"):
        tiny_config("unet").replace(input_window=[1.0, 1.0])


def test_input_window_channel_is_the_scaled_clamp() -> None:
    """The extra channel is clamp(x, lo, hi) mapped to [-1, 1]: what the first convolution receives."""
    cfg = tiny_config("unet").replace(input_window=[-1.0, 3.0])
    model = build_model(cfg).eval()
    seen = {}
    model.encoder.stages[0].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    x = (
        torch.tensor([-5.0, -1.0, 1.0, 3.0, 9.0])
        .repeat(32 * 32 * 32 // 5 + 1)[: 32**3]
        .reshape(1, 1, 32, 32, 32)
    )
    model(x)
    torch.testing.assert_close(seen["x"][:, 0], x[:, 0])
    torch.testing.assert_close(seen["x"][:, 1], (x[:, 0].clamp(-1, 3) - 1) / 2)
