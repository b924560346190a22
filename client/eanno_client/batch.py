"""Annotate cases with bounded concurrency: while requests are in flight the next cases are read and
decoded, results are written as they arrive, and one failed case never stops the others."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eanno_contracts.errors import ExitCode

from eanno_client.atomic import write_text_atomic
from eanno_client.cases import Case
from eanno_client.connection import Connection, ServerConnectionError
from eanno_client.endpoints import EndpointPool
from eanno_client.orientation import to_canonical
from eanno_client.outputs import CasePaths, OutputOptions, write_case
from eanno_client.readers import read_volume
from eanno_client.report import kept
from eanno_client.sanity import check_ct_like, check_extent
from eanno_client.volume import InputError

log = logging.getLogger(__name__)
FAILURE_LOG = "failures.jsonl"


@dataclass(frozen=True)
class BatchOptions:
    """What to do for every case of a batch."""

    out: Path
    outputs: OutputOptions = field(default_factory=OutputOptions)
    series_uid: str | None = None
    threshold: float | None = None
    rules: dict[str, Any] | None = None
    concurrency: int = 2
    resume: bool = False  # --continue: skip cases whose outputs are all present
    force: bool = False  # --force: annotate inputs whose intensities do not look like CT


@dataclass
class CaseResult:
    """The outcome of one case, as printed by --json."""

    case: str
    input: str
    status: str  # "done", "skipped" or "failed"
    seconds: float = 0.0
    lesions: int | None = None
    candidates_removed: int | None = None
    output: str = ""
    note: str = ""
    error: str = ""
    flags: list[str] = field(default_factory=list)  # the report's reasons to distrust this case
    endpoint: str = ""  # the server that answered (with several --url)
    attempts: int | None = None  # a failed request: how many times it was sent (1: not retried)
    retries: int = 0  # a done case: how many times its request was sent again (server busy or unavailable)
    exit_code: int | None = (
        None  # a failed case: its error's code (1 bad input, 5 a missing optional package)
    )


def output_of(case: Case, options: BatchOptions) -> str:
    """Where a case's outputs are: its folder (case layout) or its labels file (flat layout)."""
    paths = CasePaths.for_case(options.out, case.name, options.outputs.layout)
    return str(paths.labels if paths.flat else paths.root)


def is_complete(case: Case, options: BatchOptions) -> bool:
    """Whether every output of the case exists (each is renamed into place only when whole)."""
    paths = CasePaths.for_case(options.out, case.name, options.outputs.layout)
    is_dicom = case.path.is_dir()
    return all(p.is_file() for p in paths.expected(options.outputs, is_dicom))


def error_text(e: BaseException) -> str:
    """The reason shown for a failed case: never empty, and a library's bare exception says what it is."""
    text = str(e).strip()
    if isinstance(e, (InputError, ServerConnectionError)) and text:
        return text
    # not one of ours: a library's own exception; name its type so the reason is never '' or a bare 'x'
    return (
        f"{type(e).__name__}: {text}"
        if text
        else f"{type(e).__name__} (no message; rerun with -vv for the traceback)"
    )


def _send(
    conn: Connection | EndpointPool, volume: Any, spacing: Any, affine: Any, options: BatchOptions
) -> tuple[Any, Any, dict[str, Any], str, int]:
    """Send one canonical volume; (labels, removed, report, URL of the server that answered, retries)."""
    if isinstance(conn, EndpointPool):
        (labels, removed, report), url = conn.annotate(
            volume, spacing, affine, options.threshold, options.rules
        )
        return labels, removed, report, url, conn.last_retries(url)
    labels, removed, report = conn.annotate(volume, spacing, affine, options.threshold, options.rules)
    return labels, removed, report, conn.config.url, conn.last_retries


def annotate_case(conn: Connection | EndpointPool, case: Case, options: BatchOptions) -> CaseResult:
    """Read, reorient, send, receive and write one case; exceptions propagate to the caller."""
    start = time.perf_counter()
    volume = read_volume(case.path, options.series_uid)
    warning = check_ct_like(volume.data, case.path, options.force)
    flag = check_extent(volume.data.shape, volume.spacing, case.path)
    if flag:
        log.warning("%s: %s", case.path, flag)
        volume.note = f"{volume.note}; {flag}" if volume.note else flag
    if warning:
        log.warning("%s: %s", case.path, warning)
        volume.note = f"{volume.note}; {warning}" if volume.note else warning
    canonical = to_canonical(volume.data, volume.affine)
    labels, removed, report, url, retries = _send(
        conn, canonical.data, canonical.spacing, canonical.affine, options
    )
    paths = CasePaths.for_case(options.out, case.name, options.outputs.layout)
    out = write_case(paths, case.name, volume, canonical, labels, removed, report, options.outputs)
    lesions = out.get("lesions", [])
    n_kept = sum(1 for x in lesions if kept(x))
    return CaseResult(
        case.name,
        str(case.path),
        "done",
        round(time.perf_counter() - start, 3),
        n_kept,
        len(lesions) - n_kept,
        output_of(case, options),
        volume.note,
        endpoint=url,
        flags=list(out.get("flags") or []),
        retries=retries,
    )


def write_failure_log(out: Path, failures: list[CaseResult]) -> Path | None:
    """OUT/failures.jsonl, one JSON object per failed case of this run; removed when none failed."""
    path = out / FAILURE_LOG
    if not failures:
        path.unlink(missing_ok=True)
        return None
    lines = [json.dumps({"case": r.case, "input": r.input, "error": r.error}) for r in failures]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def run_batch(
    conn: Connection | EndpointPool,
    cases: list[Case],
    options: BatchOptions,
    on_result: Callable[[CaseResult], None] = lambda r: None,
) -> list[CaseResult]:
    """Annotate every case with at most `concurrency` cases between reading and writing; results in input order."""
    if options.concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {options.concurrency}")
    options.out.mkdir(parents=True, exist_ok=True)
    results: dict[int, CaseResult] = {}
    failures: list[CaseResult] = []
    todo: list[tuple[int, Case]] = []
    for i, case in enumerate(cases):
        if options.resume and is_complete(case, options):
            results[i] = CaseResult(
                case.name,
                str(case.path),
                "skipped",
                output=output_of(case, options),
                note="outputs already present",
            )
            on_result(results[i])
        else:
            todo.append((i, case))
    # Submitting lazily keeps at most `concurrency` volumes in memory at once.
    with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="eanno-case") as pool:
        pending: dict[Future[CaseResult], tuple[int, Case]] = {}
        queue = iter(todo)
        try:
            while True:
                while len(pending) < options.concurrency and (item := next(queue, None)) is not None:
                    pending[pool.submit(annotate_case, conn, item[1], options)] = item
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, case = pending.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as e:  # one bad case must not stop the batch; the log says why
                        log.debug("case %s failed", case.name, exc_info=True)
                        result = CaseResult(
                            case.name,
                            str(case.path),
                            "failed",
                            error=error_text(e),
                            attempts=getattr(e, "attempts", None),
                            exit_code=int(getattr(e, "exit_code", ExitCode.BAD_INPUT)),
                        )
                        failures.append(result)
                        write_failure_log(options.out, failures)
                    results[i] = result
                    on_result(result)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    write_failure_log(options.out, failures)
    return [results[i] for i in sorted(results)]


def batch_exit_code(results: list[CaseResult]) -> ExitCode:
    """0 when no case failed; 5 when a case failed on a missing optional package (install it, then
    --continue); else 4: the batch finished, some cases failed (each in OUT/failures.jsonl)."""
    failed = [r for r in results if r.status == "failed"]
    if not failed:
        return ExitCode.OK
    if any(r.exit_code == ExitCode.MISSING_DEPENDENCY for r in failed):
        return ExitCode.MISSING_DEPENDENCY
    return ExitCode.PARTIAL


def batch_summary(results: list[CaseResult], seconds: float, out: Path) -> dict[str, Any]:
    """The --json object: counts, timing and every case's result."""
    count = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    return {
        "out": str(out),
        **count,
        "seconds": round(seconds, 3),
        "failure_log": str(out / FAILURE_LOG) if count["failed"] else None,
        "cases": [asdict(r) for r in results],
    }
