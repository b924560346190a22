"""Review status files (CASE/review.json) and the team's progress, through the command line."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from eanno_client.cli import main
from eanno_client.review_status import STATUS_FILE, new_status, read_status


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Four annotated case folders (labels.nii.gz need only exist for the progress listing)."""
    for case in ("c1", "c2", "c3", "c4"):
        (tmp_path / case).mkdir()
        (tmp_path / case / "labels.nii.gz").write_bytes(b"")
    (tmp_path / "not_a_case").mkdir()
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.output


def test_set_writes_the_record_and_keeps_history(out: Path) -> None:
    code, _ = run(
        "status",
        "set",
        str(out / "c1"),
        "--needs-changes",
        "--comment",
        "tail cyst missed",
        "--reviewer",
        "alice",
    )
    assert code == 0
    code, text = run("status", "set", str(out / "c1"), "--approved", "--reviewer", "bob", "--json")
    assert code == 0
    record = json.loads(text)
    assert (record["status"], record["reviewer"], record["case"]) == ("approved", "bob", "c1")
    assert [(h["status"], h["reviewer"], h["comment"]) for h in record["history"]] == [
        ("needs_changes", "alice", "tail cyst missed")
    ]
    assert read_status(out / "c1") == record
    assert datetime.fromisoformat(record["time"]).tzinfo is not None
    assert sorted(p.name for p in (out / "c1").iterdir()) == [
        "labels.nii.gz",
        STATUS_FILE,
    ]  # no temporary left


def test_progress_counts_who_and_pending(out: Path) -> None:
    run("status", "set", str(out / "c1"), "--approved", "--reviewer", "alice")
    run("status", "set", str(out / "c2"), "--approved", "--reviewer", "bob")
    run("status", "set", str(out / "c3"), "--needs-changes", "--reviewer", "alice", "--comment", "duct")
    (out / "c2" / "revised.nii.gz").write_bytes(b"")
    code, text = run("status", str(out), "--json")
    assert code == 0
    p = json.loads(text)
    assert p["counts"] == {"approved": 2, "needs_changes": 1, "pending": 1}
    assert p["cases"] == 4 and p["done_fraction"] == 0.5
    assert p["reviewers"] == {
        "alice": {"approved": 1, "needs_changes": 1},
        "bob": {"approved": 1, "needs_changes": 0},
    }
    assert p["pending"] == ["c4"] and p["needs_changes"] == ["c3"]
    assert [i["revised"] for i in p["items"]] == [False, True, False, False]
    code, text = run("status", str(out))
    assert code == 0
    assert text.splitlines()[0] == "4 case(s): 2 approved, 1 need changes, 1 pending (50% done)"
    assert "needs changes: c3 (alice, " in text and text.rstrip().endswith("pending: c4")


def test_reviewer_from_the_environment(out: Path) -> None:
    res = CliRunner().invoke(
        main, ["status", "set", str(out / "c4"), "--approved"], env={"EANNO_REVIEWER": "carol"}
    )
    assert res.exit_code == 0
    assert read_status(out / "c4")["reviewer"] == "carol"


def test_usage_and_damaged_files(out: Path) -> None:
    code, text = run("status", "set", str(out / "c1"))
    assert code == 2 and "give --approved or --needs-changes" in text
    (out / "c2" / STATUS_FILE).write_text("{not json")
    code, text = run("status", str(out))
    assert code == 1 and f"{out / 'c2' / STATUS_FILE}: not a readable review status file" in text
    code, text = run("status", str(out / "not_a_case"))
    assert code == 1 and "holds no case folders" in text


def test_new_status_validates() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="status must be one of"):
        new_status(None, "c", "maybe", "alice", "", now)
    with pytest.raises(ValueError, match="reviewer must not be empty"):
        new_status(None, "c", "approved", " ", "", now)
    assert new_status(None, "c", "approved", "alice", "", now)["time"] == "2026-11-27T12:00:00+00:00"
