"""Label conversion tables: packaged tables, YAML files with class maps, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from eanno_training.data import CLASS_NAMES, LabelTable, LabelTableError, load_label_table


def test_eanno_table_is_the_identity_on_the_six_classes() -> None:
    table = load_label_table()
    labels = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    out = table.convert(labels)
    assert table.target == CLASS_NAMES
    assert out.tolist() == [[[0, 1], [2, 3]], [[4, 5], [0, 0]]]  # ids 6 and 7 are unknown -> background


def test_totalsegmentator_pancreas_by_id_and_by_name() -> None:
    table = load_label_table("totalsegmentator")
    labels = np.array([0, 7, 5, 7, 1, 200])
    assert table.convert(labels).tolist() == [0, 1, 0, 1, 0, 0]
    # a different numbering that only a class map can resolve: 3 is the pancreas here
    by_name = LabelTable.from_dict({"source": {"pancreas": "pancreas"}})
    assert by_name.convert(labels, {3: "pancreas", 7: "liver"}).tolist() == [0, 0, 0, 0, 0, 0]
    assert by_name.convert(np.array([3, 7]), {3: "pancreas", 7: "liver"}).tolist() == [1, 0]


def test_table_file_with_its_own_target_set_and_class_map(tmp_path: Path) -> None:
    (tmp_path / "map.json").write_text(json.dumps({"1": "spleen", "2": "kidney_right", "7": "pancreas"}))
    (tmp_path / "organs.yaml").write_text(
        "target: [background, spleen, kidney, pancreas]\n"
        "class_map: map.json\n"
        "source: {spleen: spleen, kidney_right: kidney, kidney_left: 2, pancreas: 3}\n"
    )
    table = load_label_table(tmp_path / "organs.yaml")
    assert table.convert(np.array([0, 1, 2, 7, 9])).tolist() == [0, 1, 2, 3, 0]
    assert table.target_of("kidney_left") == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"target": ["organ", "b"]}, "background"),
        ({"source": {"pancreas": "liver"}}, "liver"),
        ({"source": {"pancreas": 9}}, "9"),
        ({"sauce": {}}, "unknown key"),
    ],
)
def test_bad_tables_say_what_is_wrong(spec: dict, message: str) -> None:
    with pytest.raises(LabelTableError, match=message):
        LabelTable.from_dict(spec)


def test_unknown_table_name_lists_the_packaged_ones() -> None:
    with pytest.raises(LabelTableError, match="totalsegmentator"):
        load_label_table("no-such-table")


def test_negative_labels_are_rejected() -> None:
    with pytest.raises(LabelTableError, match="non-negative"):
        load_label_table().convert(np.array([-1, 2]))
