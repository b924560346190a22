"""Domain errors: the command turns them into clear messages and a non-zero exit."""

from __future__ import annotations

from eanno_contracts.errors import EannoError


class RulesError(EannoError, ValueError):
    """A rules file or override that is not valid (unknown key, wrong type, lo > hi)."""


class InputError(EannoError, ValueError):
    """An input array that refine cannot work on (shape, dimensions, values)."""
