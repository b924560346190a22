"""`python -m eanno_training` = `eanno-train` (also what torchrun's -m runs)."""

from eanno_training.cli import main

main()
