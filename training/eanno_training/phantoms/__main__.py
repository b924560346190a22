"""`python -m eanno_training.phantoms --out DIR --n N --seed S`."""

from .cli import main

main()
