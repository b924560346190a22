"""Print how long `--help` takes for every command and subcommand of the project's console scripts.

Each command runs as its own process (as a user types it), in interleaved rounds; the table gives the
median and the spread (min-max) in seconds. Subcommands are read from each group's own `--help`.

    .venv/bin/python scripts/help_times.py              # 5 rounds
    .venv/bin/python scripts/help_times.py --rounds 3 --json help_times.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = (
    "eanno-client",
    "eanno-train",
    "eanno-eval",
    "eanno-calibrate",
    "eanno-convert",
    "eanno-export",
    "eanno-server",
    "eanno-postproc",
)
TARGET_S = 1.0


def _exe(name: str) -> str | None:
    """The console script beside this interpreter (the project's .venv), else on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def subcommands(help_text: str) -> list[str]:
    """The names listed under click's 'Commands:' heading."""
    _, sep, rest = help_text.partition("Commands:")
    if not sep:
        return []
    return [m.group(1) for line in rest.splitlines() if (m := re.match(r"^  (\S+)", line))]


def timed(argv: list[str]) -> tuple[float, str, int]:
    """Seconds, stdout and exit code of one run."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc.stdout, proc.returncode


BASELINE = [sys.executable, "-c", "import click"]  # the floor of any click command line on this machine


def commands() -> list[list[str]]:
    """The baseline, then every `--help` command line: each script, then each of its subcommands."""
    out: list[list[str]] = [BASELINE]
    for name in SCRIPTS:
        exe = _exe(name)
        if exe is None:
            print(f"# {name}: not installed, left out", file=sys.stderr)
            continue
        _, text, _ = timed([exe, "--help"])
        out.append([exe, "--help"])
        out.extend([exe, sub, "--help"] for sub in subcommands(text))
    return out


def main() -> int:
    """Time every command's --help (and the baseline, in the same rounds); exit 1 when any median passes the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    cmds = commands()
    times: dict[str, list[float]] = {}
    codes: dict[str, int] = {}
    for _ in range(args.rounds):  # interleaved: each round runs every command once
        for argv in cmds:
            key = (
                "(baseline) python -c 'import click'"
                if argv is BASELINE
                else " ".join([Path(argv[0]).name, *argv[1:]])
            )
            seconds, _, rc = timed(argv)
            times.setdefault(key, []).append(seconds)
            codes[key] = rc
    rows = {
        k: {
            "median_s": round(statistics.median(v), 3),
            "min_s": round(min(v), 3),
            "max_s": round(max(v), 3),
            "exit_code": codes[k],
        }
        for k, v in times.items()
    }
    width = max(map(len, rows))
    print(f"{'command':<{width}}  median   (min-max) s   [{args.rounds} rounds, target < {TARGET_S} s]")
    for key, r in rows.items():
        flag = (
            ""
            if r["median_s"] < TARGET_S and r["exit_code"] == 0
            else "  <-- over target"
            if r["exit_code"] == 0
            else f"  <-- exit {r['exit_code']}"
        )
        print(f"{key:<{width}}  {r['median_s']:6.2f}   ({r['min_s']:.2f}-{r['max_s']:.2f}){flag}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    slow = [k for k, r in rows.items() if r["median_s"] >= TARGET_S or r["exit_code"] != 0]
    print(f"{len(rows) - len(slow)}/{len(rows)} under {TARGET_S} s")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
