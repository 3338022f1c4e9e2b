"""HAMI_SM_TURNS_LOG's files, summarised per tenant (issue 18, judgeab).

The library (csrc/turns.c turns_log) writes one file per process, <path>.<pid>: a head line ("# hami-vgpu turns log:
pid P, HAMI_SM_TURNS_COUNT_COARSE=0|1, ...") and one line per stay-test judgement at the start of the tenant's own
window, key=value words:

  t_ns      CLOCK_MONOTONIC ns (one clock for every process of the node: a pair's two files interleave by it)
  pid dev slot lim n   the process, its device, its board slot, its SM limit, the tenants taking turns
  busy_bp   the figure judged: its busy share in its own windows, 1/100 % (k_ns over own_ns, decaying sums over
            ~two periods, by the rule in force: coarse_rule)
  alt_bp    the same by the other rule (alt_k_ns over alt_own_ns): coarse_rule 0 counts precise kernels only and
            scales its windows' time to the precise share; 1 (HAMI_SM_TURNS_COUNT_COARSE=1) counts the coarse marks'
            estimates too and keeps its windows' time whole
  kp_ns kc_ns   its precise kernels and its coarse marks' estimates over the same horizon
  prec_bp   the demand windows' precise share over it, 1/100 %
  verdict   in (busy_bp >= 70 %), miss (below, not yet out), out (judged out: TURN_MISSES misses in a row)

Since trainloss a '#' line each time turns come on or go off for the process ("# edge t_ns=... turns=on|off n want
capped shared turn_bp nbr_bp nbr_lim backoff": what turn_wanted read then), which the judgements' parser skips;
read_log keeps them as `edges` (bench/train_pairs_read.py places them in the measured window).

Per tenant (file): judgements, in / miss / out, and at the out, miss and in judgements the coarse share of its
kernels (kc / (kp + kc)), the figure judged and the other rule's figure, min-max (median).

    .venv/bin/python hami_plugins_nvidia/bench/turns_log.py DIR_OR_FILE... [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

HEAD = re.compile(r"^# hami-vgpu turns log: pid (?P<pid>\d+), HAMI_SM_TURNS_COUNT_COARSE=(?P<rule>[01]),")
#: the words of a judgement line, all integers but the verdict
INT_KEYS = ("t_ns", "pid", "dev", "slot", "lim", "n", "busy_bp", "k_ns", "own_ns", "alt_bp", "alt_k_ns", "alt_own_ns",
            "kp_ns", "kc_ns", "prec_bp", "misses", "coarse_rule")
VERDICTS = ("in", "miss", "out")
FILE_NAME = re.compile(r".+\.\d+$")  # <path>.<pid>
#: --json's "kind": what the issue-18 judge recognises as a turns-log summary (an experiment's, never judged)
JSON_KIND = "TurnsLogSummary"
#: a turns-on / turns-off line (turns.c turns_log_edge): all integers but turns
EDGE = re.compile(r"^# edge t_ns=(?P<t_ns>\d+) pid=(?P<pid>\d+) dev=(?P<dev>\d+) turns=(?P<turns>on|off) n=(?P<n>\d+) "
                  r"want=(?P<want>\d) capped=(?P<capped>\d) shared=(?P<shared>\d) turn_bp=(?P<turn_bp>-?\d+) "
                  r"nbr_bp=(?P<nbr_bp>-?\d+) nbr_lim=(?P<nbr_lim>\d+) backoff=(?P<backoff>\d)$")


def parse_edge(line: str) -> dict | None:
    """A turns-on / turns-off line as a dict (turns: "on" or "off", the rest integers), None for any other line."""
    m = EDGE.match(line.strip())
    if not m:
        return None
    return {k: (v if k == "turns" else int(v)) for k, v in m.groupdict().items()}


def parse_line(line: str) -> dict | None:
    """One judgement line as a dict, None for a head or note line ('#') or a line that is not whole (a cut write)."""
    if not line.strip() or line.startswith("#"):
        return None
    words = dict(w.partition("=")[::2] for w in line.split())
    if any(k not in words for k in (*INT_KEYS, "verdict")) or words["verdict"] not in VERDICTS:
        return None
    try:
        out: dict = {k: int(words[k]) for k in INT_KEYS}
    except ValueError:
        return None
    out["verdict"] = words["verdict"]
    return out


def read_log(path: Path) -> dict:
    """A file's head (pid, coarse_rule; None where the head is missing), its judgements, and whether it was capped."""
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    head = HEAD.match(lines[0]) if lines else None
    return {"file": path.name, "pid": int(head["pid"]) if head else None,
            "coarse_rule": int(head["rule"]) if head else None,
            "judgements": [j for j in map(parse_line, lines) if j],
            "edges": [e for e in map(parse_edge, lines) if e],
            "capped": any(ln.startswith("# capped") for ln in lines),
            "bad_lines": sum(1 for ln in lines if ln.strip() and not ln.startswith("#") and not parse_line(ln))}


def coarse_pct(j: dict) -> float:
    """The coarse share of its kernels over the judgement's horizon, %: kc / (kp + kc); 0 with no kernels."""
    k = j["kp_ns"] + j["kc_ns"]
    return 100.0 * j["kc_ns"] / k if k > 0 else 0.0


def _span(xs: list[float]) -> dict | None:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs), "n": len(xs)} if xs else None


def summarise(log: dict) -> dict:
    """Per tenant: counts by verdict and, at each verdict, the coarse share, the figure and the other rule's figure."""
    js = log["judgements"]
    out = {"file": log["file"], "pid": log["pid"], "coarse_rule": log["coarse_rule"], "judgements": len(js),
           "capped": log["capped"], "bad_lines": log["bad_lines"],
           "lim": js[0]["lim"] if js else None,
           "first_s": js[0]["t_ns"] / 1e9 if js else None, "last_s": js[-1]["t_ns"] / 1e9 if js else None}
    for v in VERDICTS:
        sel = [j for j in js if j["verdict"] == v]
        out[v] = len(sel)
        out[f"coarse_at_{v}"] = _span([coarse_pct(j) for j in sel])
        out[f"busy_at_{v}"] = _span([j["busy_bp"] / 100 for j in sel])
        out[f"alt_at_{v}"] = _span([j["alt_bp"] / 100 for j in sel])
        out[f"prec_at_{v}"] = _span([j["prec_bp"] / 100 for j in sel])
    return out


def log_files(paths: list[Path]) -> list[Path]:
    """The turns logs among paths: files as given, folders searched (recursively) for <name>.<pid> files with the
    log's head line."""
    found = []
    for p in paths:
        if p.is_file():
            found.append(p)
            continue
        for f in sorted(p.rglob("*")):
            if f.is_file() and FILE_NAME.match(f.name):
                with f.open(errors="replace") as fh:
                    if HEAD.match(fh.readline()):
                        found.append(f)
    return found


def cell(s: dict | None, fmt: str = ".1f") -> str:
    return f"{s['min']:{fmt}}-{s['max']:{fmt}} ({s['median']:{fmt}})" if s else "-"


def markdown(rows: list[dict]) -> str:
    lines = ["| file | rule | limit | judged | in | miss | out | coarse % at out | at miss | at in | busy % at out | "
             "at miss | at in | other rule's busy % at out | at miss |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['coarse_rule']} | {r['lim']} | {r['judgements']}{' (capped)' if r['capped'] else ''} "
                     f"| {r['in']} | {r['miss']} | {r['out']} | {cell(r['coarse_at_out'])} | {cell(r['coarse_at_miss'])} "
                     f"| {cell(r['coarse_at_in'])} | {cell(r['busy_at_out'])} | {cell(r['busy_at_miss'])} "
                     f"| {cell(r['busy_at_in'])} | {cell(r['alt_at_out'])} | {cell(r['alt_at_miss'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path, help="turns log files or folders holding them")
    ap.add_argument("--json", type=Path, help="also write the per-tenant summaries as JSON")
    a = ap.parse_args(argv)
    missing = [str(p) for p in a.paths if not p.exists()]
    if missing:
        ap.error(f"no such file or folder: {', '.join(missing)[:200]}")
    rows = [summarise(read_log(f)) for f in log_files(a.paths)]
    if not rows:
        print("no turns logs found (files named <path>.<pid> whose first line is the log's head)", file=sys.stderr)
        return 1
    sys.stdout.write(markdown(rows))
    if a.json:  # an object with its own kind: the issue-18 judge reads a record's JSON files and notes this one
        a.json.write_text(json.dumps({"kind": JSON_KIND, "tenants": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
