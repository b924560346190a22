"""Domain errors: the command turns them into clear messages and a non-zero exit."""

from __future__ import annotations


class RulesError(ValueError):
    """A rules file or override that is not valid (unknown key, wrong type, lo > hi)."""


class InputError(ValueError):
    """An input array that refine cannot work on (shape, dimensions, values)."""
