"""The interposer's fake-GPU timing checks, as a benchmark that writes a result file (`make bench-fake`).

Why a bench and not `make test`: these tests (pytest marker ``fake_timing``) run tenants on the fake libcuda, whose
kernels the host's CPUs simulate, and judge a share, a wait or a charge it measured. Their verdicts depend on the
host's speed and load: on CI's 2 cores a few missed their tolerance in most runs, a different few each time. The
project keeps such targets in benchmarks; this one runs them ``--rounds`` times on this host and writes, per test,
how often it passed with the first line of each failure (the figures the test measured), beside what the host was
(CPUs, model, load before and after). Run it before and after a change to the interposer's C sources (csrc/).

    python hami_plugins_nvidia/bench/fake_timing.py --out hami-out/bench/fake-timing.json [--rounds 2] [-k expr]

Exit status: 0 when every test passed in every round, 1 when any failed, 2 when pytest could not run them or none
matched.
Figures from here are the fake libcuda's on this host, never a hardware result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = "hami_plugins_nvidia/tests/interposer"
MARK = "fake_timing"
MESSAGE_CHARS = 400  # a failure's first line is its figures; the traceback stays in the JUnit file
PROVENANCE = ("fake libcuda (hami_plugins_nvidia/tests/interposer/fake_cuda): a GPU simulated by this host's CPUs; "
              "shares and charges depend on the host's speed and load; not a hardware result")


def host_facts() -> dict:
    """What the figures depend on: CPUs, their model, the load, the interpreter."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "machine": platform.machine(), "python": platform.python_version(),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def read_junit(path: Path) -> list[dict]:
    """One row per test case of a pytest JUnit XML file: id, outcome, seconds, the failure's first line."""
    rows = []
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        ident = f"{module}.py::{case.get('name', '')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = next(iter((el.get("message") or el.text or "").strip().splitlines()), "")[:MESSAGE_CHARS]
                break
        rows.append({"id": ident, "outcome": outcome, "seconds": round(float(case.get("time", 0) or 0), 2),
                     "message": message})
    return rows


def merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """Per test: rounds run, passed, failed (with each failure's line), total seconds."""
    merged: dict[str, dict] = {}
    for rows in rounds:
        for r in rows:
            m = merged.setdefault(r["id"], {"id": r["id"], "runs": 0, "passed": 0, "failed": 0, "skipped": 0,
                                            "seconds": 0.0, "failures": []})
            m["runs"] += 1
            m["seconds"] = round(m["seconds"] + r["seconds"], 2)
            if r["outcome"] == "passed":
                m["passed"] += 1
            elif r["outcome"] == "skipped":
                m["skipped"] += 1
            else:
                m["failed"] += 1
                m["failures"].append(r["message"])
    return sorted(merged.values(), key=lambda m: (-m["failed"], m["id"]))


def run_round(extra: list[str], junit: Path) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TESTS, "-m", MARK,
           f"--junitxml={junit}", *extra]
    return subprocess.call(cmd, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "hami-out" / "bench" / "fake-timing.json",
                    help="the result file (JSON); default hami-out/bench/fake-timing.json")
    ap.add_argument("--rounds", type=int, default=1, help="how many times to run the set (1..20)")
    ap.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    args = ap.parse_args(argv)
    if not 1 <= args.rounds <= 20:
        print(f"--rounds must be 1..20, not {args.rounds}", file=sys.stderr)
        return 2
    extra = ["-k", args.keyword] if args.keyword else []
    started = dt.datetime.now(dt.UTC)
    before, revision = host_facts(), git_revision()  # what ran: the tree at the start
    rounds, t0 = [], time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hami-fake-timing-") as tmp:
        for i in range(args.rounds):
            junit = Path(tmp) / f"round-{i}.xml"
            rc = run_round(extra, junit)
            if not junit.exists():
                print(f"pytest wrote no results (exit {rc})", file=sys.stderr)
                return 2
            rounds.append(read_junit(junit))
    tests = merge_rounds(rounds)
    if not tests:  # a bench that measured nothing must not read as a pass
        print(f"no {MARK} test matched" + (f" -k {args.keyword!r}" if args.keyword else ""), file=sys.stderr)
        return 2
    failed = [t for t in tests if t["failed"]]
    result = {
        "what": "the interposer's fake-GPU timing checks (pytest -m fake_timing " + TESTS + ")",
        "provenance": PROVENANCE,
        "command": "python hami_plugins_nvidia/bench/fake_timing.py " + " ".join(argv or sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - t0, 1),
        "git_revision": revision,
        "host_before": before,
        "loadavg_after_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "rounds": args.rounds,
        "summary": {"tests": len(tests), "passed_every_round": sum(t["passed"] == t["runs"] for t in tests),
                    "failed_at_least_once": len(failed), "skipped": sum(t["skipped"] == t["runs"] for t in tests),
                    "runs_failed": sum(t["failed"] for t in tests), "runs": sum(t["runs"] for t in tests)},
        "tests": tests,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    s = result["summary"]
    print(f"\nfake-GPU timing checks on this host ({before['cpus_usable']} CPUs, {args.rounds} round(s)): "
          f"{s['passed_every_round']} of {s['tests']} passed every round, {s['failed_at_least_once']} failed "
          f"at least once; written to {args.out}")
    for t in failed:
        print(f"  {t['failed']}/{t['runs']} failed  {t['id']}  {t['failures'][0][:160]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
