"""`--rules`: a site's post-processing overrides as a YAML file, a JSON file, or inline JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from eanno_contracts.errors import EannoError


class RulesOptionError(EannoError, ValueError):
    """The --rules value is neither a readable YAML/JSON file nor a JSON object; the message says which."""


def read_rules_option(value: str) -> dict[str, Any]:
    """The overrides a --rules value names: a file (YAML is a superset of JSON) or an inline JSON object.

    Only parsed here; the server validates the keys and answers INVALID_ARG naming a bad one.
    """
    path = Path(value)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise RulesOptionError(f"{path}: cannot read the rules file ({e.strerror or e})") from e
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise RulesOptionError(f"{path}: not valid YAML/JSON: {e}") from e
        where = str(path)
    else:
        try:
            data = json.loads(value)
        except json.JSONDecodeError as e:
            raise RulesOptionError(f"not a rules file and not valid JSON: {e}") from e
        where = "inline JSON"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesOptionError(
            f"{where}: expected a mapping of rule names to values, got {type(data).__name__}"
        )
    return data
