"""`eanno-train`: pre-train, fine-tune, write phantoms, evaluate. Runs unchanged under torchrun (DDP)."""

from __future__ import annotations

import click
from eanno_contracts.cli import ErrorGroup, add_version

from .phantom_eval_cli import calibrate, evaluate
from .phantoms.cli import phantoms_command
from .train_cli import finetune, pretrain


@click.group(cls=ErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, fine-tune and evaluate EfficientAnno segmenters (3D TransUNet and MONAI backbones).

    \b
    Typical use:
      eanno-train phantoms --n 10 --seed 1 --out phantoms/          # synthetic cases on disk
      eanno-train pretrain --data atlas/ --label-table my_table.yaml --out runs/pre
      eanno-train finetune --data pancreas/ --init runs/pre/best.pt --out runs/ft
      eanno-train evaluate --phantoms 20 --seed 99 --json            # the shipped model
    Multi-GPU / multi-node: prefix any training command with `torchrun --nproc_per_node=G`.
    """


# one definition each; `phantoms` is also the phantoms package's own command (two entry points)
for _command in (pretrain, finetune, evaluate, phantoms_command, calibrate):
    main.add_command(_command)

add_version(main, "eanno-training")  # --version on the command and every subcommand
