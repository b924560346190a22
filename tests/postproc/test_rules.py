"""The rules file: packaged defaults are the paper's, overrides are partial, errors are specific."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from eanno_postproc import Rules, RulesError, default_rules_text, load_rules, refine


def test_defaults_are_the_published_limits() -> None:
    r = load_rules()
    assert r.theta == 0.003
    assert r.connectivity == 26
    assert r.hu_clip == (-1000.0, 1000.0)
    assert r.pancreas_dilation_voxels == 1
    assert dict(r.volume_ratio_limit) == {"pdac": 133.0, "cyst": 83.0, "pnet": 46.0}
    assert r.duct_classes == ("cyst", "pnet")
    assert dict(r.hu_window) == {"pdac": (-206.0, 185.0), "cyst": (-33.0, 222.0), "pnet": (-16.0, 270.0)}


def test_printed_defaults_parse_back_to_the_defaults() -> None:
    assert Rules.from_dict(yaml.safe_load(default_rules_text())) == Rules.defaults()


def test_partial_override_keeps_the_other_defaults() -> None:
    r = Rules.from_dict({"theta": 0.01, "hu_window": {"cyst": [-40, 230]}})
    assert r.theta == 0.01
    assert r.hu_window["cyst"] == (-40.0, 230.0)
    assert r.hu_window["pdac"] == (-206.0, 185.0)
    assert r.volume_ratio_limit == Rules.defaults().volume_ratio_limit


def test_to_dict_round_trips_through_json() -> None:
    r = Rules.from_dict({"connectivity": 6, "duct_classes": ["cyst"]})
    assert Rules.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_override_over_a_given_base() -> None:
    base = Rules.from_dict({"connectivity": 18})
    assert Rules.from_dict({"theta": 0.5}, base=base).connectivity == 18


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"thetta": 0.1}, ["unknown key 'thetta'", "theta"]),
        ({"hu_window": {"ipmn": [0, 1]}}, ["unknown class 'ipmn'", "hu_window"]),
        ({"theta": "0.1"}, ["theta", "expected a number", "'0.1'"]),
        ({"theta": True}, ["theta", "expected a number"]),
        ({"theta": 0}, ["theta must be in (0, 1]"]),
        ({"theta": 1.5}, ["theta must be in (0, 1]"]),
        ({"connectivity": 8}, ["connectivity must be 6, 18 or 26, got 8"]),
        ({"connectivity": 26.0}, ["connectivity", "expected an integer"]),
        ({"pancreas_dilation_voxels": 0}, ["pancreas_dilation_voxels must be >= 1"]),
        ({"hu_clip": [1000, -1000]}, ["hu_clip", "lo > hi (1000 > -1000)"]),
        ({"hu_window": {"pnet": [300, 10]}}, ["hu_window.pnet", "lo > hi"]),
        ({"hu_window": {"pnet": [10]}}, ["hu_window.pnet", "expected [lo, hi]"]),
        ({"hu_window": {"pnet": [10, float("nan")]}}, ["hu_window.pnet[1]", "finite"]),
        ({"volume_ratio_limit": {"cyst": -1}}, ["volume_ratio_limit.cyst must be >= 0"]),
        ({"volume_ratio_limit": 5}, ["volume_ratio_limit", "expected a mapping"]),
        ({"duct_classes": ["cyst", "duct"]}, ["duct_classes", "'duct'"]),
        (["theta", 0.1], ["expected a mapping"]),
    ],
)
def test_bad_rules_name_the_key_and_the_problem(data, words) -> None:
    with pytest.raises(RulesError) as info:
        Rules.from_dict(data)
    for word in words:
        assert word in str(info.value)


def test_rules_file_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "mine.yaml"
    bad.write_text("theta: 0.01\nconectivity: 6\n")
    with pytest.raises(RulesError, match=r"mine\.yaml: unknown key 'conectivity'"):
        load_rules(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("theta: [0.01\n")
    with pytest.raises(RulesError, match=r"broken\.yaml: not valid YAML"):
        load_rules(broken)
    with pytest.raises(RulesError, match=r"absent\.yaml: cannot read"):
        load_rules(tmp_path / "absent.yaml")


def test_rules_file_with_only_changes_and_json(tmp_path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("volume_ratio_limit:\n  pnet: 50\n")
    assert load_rules(f).volume_ratio_limit["pnet"] == 50.0
    j = tmp_path / "r.json"
    j.write_text(json.dumps({"connectivity": 6}))
    assert load_rules(j).connectivity == 6
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing changed\n")
    assert load_rules(empty) == Rules.defaults()


def test_rules_error_is_a_value_error() -> None:
    assert issubclass(RulesError, ValueError)


def test_refine_takes_overrides_as_a_mapping() -> None:
    ct = np.zeros((5, 5, 5), np.int16)
    lab = np.zeros((5, 5, 5), np.uint8)
    lab[0, 0, 0], lab[0, 0, 1] = 1, 3
    assert refine(ct, lab, rules={"connectivity": 6}).report["rules"]["connectivity"] == 6
    with pytest.raises(RulesError, match="unknown key 'conectivity'"):
        refine(ct, lab, rules={"conectivity": 6})
