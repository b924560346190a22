"""The review status file beside each case (CASE/review.json) and the team's progress over a folder."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eanno_client.atomic import write_text_atomic
from eanno_client.review_io import MODEL_LABELS, REVISED_NAMES
from eanno_client.volume import InputError

STATUS_FILE = "review.json"
STATUS_FORMAT = "eanno-review-status/1"
STATES = ("approved", "needs_changes")


def status_path(case: Path) -> Path:
    """Where a case folder's status lives."""
    return case / STATUS_FILE


def read_status(case: Path) -> dict[str, Any] | None:
    """A case's status, or None when it has not been reviewed; InputError for a damaged file."""
    path = status_path(case)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable review status file ({e})") from e
    if not isinstance(data, dict) or data.get("format") != STATUS_FORMAT or data.get("status") not in STATES:
        raise InputError(
            f"{path}: not a review status file (expected format {STATUS_FORMAT!r} and a status "
            f"in {list(STATES)})"
        )
    return data


def new_status(
    previous: dict[str, Any] | None, case: str, status: str, reviewer: str, comment: str, now: datetime
) -> dict[str, Any]:
    """The next status record; earlier decisions move to its history, newest last."""
    if status not in STATES:
        raise ValueError(f"status must be one of {list(STATES)}, got {status!r}")
    if not reviewer.strip():
        raise ValueError("reviewer must not be empty")
    history = []
    if previous is not None:
        history = [
            *previous.get("history", []),
            {k: previous.get(k) for k in ("status", "reviewer", "comment", "time")},
        ]
    return {
        "format": STATUS_FORMAT,
        "case": case,
        "status": status,
        "reviewer": reviewer.strip(),
        "comment": comment,
        "time": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "history": history,
    }


def set_status(
    case: Path, status: str, reviewer: str, comment: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """Record a decision for the case folder, written atomically; returns the record."""
    if not case.is_dir():
        raise InputError(f"{case}: not a case folder")
    record = new_status(
        read_status(case), case.name, status, reviewer, comment, now or datetime.now(timezone.utc)
    )
    write_text_atomic(status_path(case), json.dumps(record, indent=2) + "\n")
    return record


def _is_case(folder: Path) -> bool:
    return folder.is_dir() and ((folder / MODEL_LABELS).is_file() or status_path(folder).is_file())


def progress(root: Path) -> dict[str, Any]:
    """Every case under root (annotate output folders) with its status; counts per status and reviewer."""
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    cases = [c for c in sorted(root.iterdir()) if not c.name.startswith(".") and _is_case(c)]
    if not cases and _is_case(root):
        cases = [root]
    if not cases:
        raise InputError(f"{root}: holds no case folders (CASE/{MODEL_LABELS} or CASE/{STATUS_FILE})")
    rows: list[dict[str, Any]] = []
    counts = {"approved": 0, "needs_changes": 0, "pending": 0}
    reviewers: dict[str, dict[str, int]] = {}
    for case in cases:
        st = read_status(case)
        state = st["status"] if st else "pending"
        counts[state] += 1
        row = {
            "case": case.name,
            "status": state,
            "reviewer": st["reviewer"] if st else None,
            "time": st["time"] if st else None,
            "comment": st.get("comment", "") if st else "",
            "revised": any((case / n).is_file() for n in REVISED_NAMES if n != MODEL_LABELS),
        }
        if st:
            who = reviewers.setdefault(st["reviewer"], {"approved": 0, "needs_changes": 0})
            who[state] += 1
        rows.append(row)
    done = counts["approved"]
    return {
        "root": str(root),
        "cases": len(rows),
        "counts": counts,
        "done_fraction": round(done / len(rows), 4),
        "reviewers": reviewers,
        "items": rows,
        "pending": [r["case"] for r in rows if r["status"] == "pending"],
        "needs_changes": [r["case"] for r in rows if r["status"] == "needs_changes"],
    }


def format_progress(p: dict[str, Any]) -> str:
    """The progress as a few lines of text: counts, who reviewed what, what is pending or needs changes."""
    c = p["counts"]
    lines = [
        f"{p['cases']} case(s): {c['approved']} approved, {c['needs_changes']} need changes, "
        f"{c['pending']} pending ({100 * p['done_fraction']:.0f}% done)"
    ]
    for who, n in sorted(p["reviewers"].items()):
        lines.append(f"  {who}: {n['approved']} approved, {n['needs_changes']} need changes")
    for r in p["items"]:
        if r["status"] == "needs_changes":
            lines.append(
                f"needs changes: {r['case']} ({r['reviewer']}, {r['time']})"
                + (f": {r['comment']}" if r["comment"] else "")
            )
    if p["pending"]:
        lines.append("pending: " + ", ".join(p["pending"]))
    return "\n".join(lines)
