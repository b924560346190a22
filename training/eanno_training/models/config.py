"""The typed model configuration: one dataclass, validated, JSON-able (stored in checkpoints)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Arch = Literal["transunet", "monai_unet", "segresnet", "swinunetr"]
Variant = Literal["unet", "encoder", "decoder", "both"]
ARCHS: tuple[str, ...] = ("transunet", "monai_unet", "segresnet", "swinunetr")
VARIANTS: tuple[str, ...] = ("unet", "encoder", "decoder", "both")


@dataclass(frozen=True)
class ModelConfig:
    """Every knob of a segmenter; `arch` picks the family, `variant` the TransUNet flavour."""

    arch: Arch = "transunet"
    variant: Variant = "decoder"
    in_channels: int = 1
    # A second input channel, computed inside the network: the normalised image clamped to [lo, hi] and
    # scaled to [-1, 1] (a soft-tissue window). The first InstanceNorm scales every feature by the patch's
    # spread, which air and bone dominate; the window keeps a 25 HU lesion contrast from being squashed.
    # In the network, not in META's clip: the window, flags and rules still see [-1000, 1000] HU.
    input_window: tuple[float, float] | None = None
    num_classes: int = 6
    patch_size: tuple[int, int, int] = (128, 128, 128)
    # nnU-Net style CNN (DESIGN.md "The model"): 32 features doubling to 320, 5 poolings.
    base_features: int = 32
    max_features: int = 320
    n_pool: int = 5
    convs_per_stage: int = 2
    # Encoder-only: a ViT-B on the bottleneck tokens.
    vit_layers: int = 12
    vit_width: int = 768
    vit_heads: int = 12
    vit_mlp: int = 3072
    # Decoder-only: mask-classification transformer decoder.
    dec_width: int = 192
    dec_heads: int = 8
    dec_ffn: int = 1536
    dec_queries: int = 20
    dec_layers: int = 2
    dec_levels: int = 3  # cross-attend to decoder features at 1/8, 1/4, 1/2 (round robin)
    mask_dim: int = 32  # per-voxel mask embedding width (full resolution)
    # MONAI backbones
    monai_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    feature_size: int = 24  # Swin UNETR
    init_filters: int = 16  # SegResNet

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"model arch {self.arch!r} is unknown; choose one of {', '.join(ARCHS)}")
        if self.variant not in VARIANTS:
            raise ValueError(
                f"model variant {self.variant!r} is unknown; choose one of {', '.join(VARIANTS)}"
            )
        if len(self.patch_size) != 3 or any(int(p) < 1 for p in self.patch_size):
            raise ValueError(f"patch_size must be 3 positive integers, got {self.patch_size!r}")
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        object.__setattr__(self, "monai_channels", tuple(int(c) for c in self.monai_channels))
        if self.input_window is not None:
            lo, hi = (float(v) for v in self.input_window)
            if not lo < hi or self.arch != "transunet":
                raise ValueError(
                    f"input_window must be [lo, hi] with lo < hi, on arch transunet; got {self.input_window!r}"
                    f" on {self.arch}"
                )
            object.__setattr__(self, "input_window", (lo, hi))
        if self.arch == "transunet":
            div = 2**self.n_pool
            if any(p % div for p in self.patch_size):
                raise ValueError(f"patch_size {self.patch_size} must be divisible by 2**n_pool = {div}")
            if self.variant in ("decoder", "both") and self.dec_levels > self.n_pool - 1:
                raise ValueError(f"dec_levels={self.dec_levels} needs n_pool >= {self.dec_levels + 1}")
            if self.dec_width % self.dec_heads or self.vit_width % self.vit_heads:
                raise ValueError("transformer widths must be divisible by their head counts")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a dict; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        d = self.to_dict()
        d.update(changes)
        return ModelConfig.from_dict(d)


def full_config(variant: Variant = "decoder", num_classes: int = 6) -> ModelConfig:
    """The paper-sized TransUNet (GPU only): ~33 M parameters decoder-only, ~117 M encoder-only."""
    return ModelConfig(variant=variant, num_classes=num_classes, patch_size=(128, 128, 128))


def small_config(variant: Variant = "decoder", num_classes: int = 6) -> ModelConfig:
    """A CPU-sized TransUNet for the shipped phantom model and tests' speed budget."""
    return ModelConfig(
        variant=variant,
        num_classes=num_classes,
        patch_size=(64, 64, 64),
        base_features=8,
        max_features=64,
        n_pool=4,
        vit_layers=2,
        vit_width=64,
        vit_heads=4,
        vit_mlp=128,
        dec_width=64,
        dec_heads=4,
        dec_ffn=128,
        dec_queries=10,
        dec_layers=1,
        mask_dim=8,
    )


def tiny_config(variant: Variant = "decoder", num_classes: int = 6, arch: Arch = "transunet") -> ModelConfig:
    """A very small configuration for unit tests (32^3 patches)."""
    return ModelConfig(
        arch=arch,
        variant=variant,
        num_classes=num_classes,
        patch_size=(32, 32, 32),
        base_features=4,
        max_features=16,
        n_pool=4,
        vit_layers=1,
        vit_width=16,
        vit_heads=2,
        vit_mlp=32,
        dec_width=16,
        dec_heads=2,
        dec_ffn=32,
        dec_queries=6,
        dec_layers=1,
        mask_dim=4,
        monai_channels=(4, 8, 16),
        feature_size=12,
        init_filters=8,
    )
