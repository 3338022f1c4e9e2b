"""Derive openb pod-list variants the project was not given (multigpu10, gpushare60, cpu250, ...).

The FGD paper evaluates 17 workload variants of the openb trace; nine are public. Their composition shows how
they were derived from ``default`` (all figures from the public files):

- ``multigpuXX``: every ``default`` pod is kept and multi-GPU pods (2/4/8 GPUs) drawn with replacement from
  ``default``'s multi-GPU pods are added until they make up XX % of the total GPU request
  (multigpu20: 247 multi-GPU pods, 20.4 %; multigpu40: 669, 40.2 %; everything else equal to ``default``).
- ``gpushareXX``: the number of GPU pods stays (7064) and CPU-only pods are untouched; non-sharing GPU pods are
  replaced by sharing pods drawn with replacement from ``default``'s sharing pods until sharing pods make up
  XX % of the GPU request (gpushare40: 4001 sharing / 3001 one-GPU / 62 multi-GPU).
- ``gpuspecXX``: the same pods; XX % of the GPU pods get a ``gpu_spec`` (gpuspec25: 1759 of 7064). The two
  public gpuspec files pick their pods independently (only 199 of gpuspec10's 732 are among gpuspec25's).
  The spec value is drawn from the published gpuspec10 + gpuspec25 specs of pods with the same GPU count.
- ``cpuNNN``: the GPU pods of ``default`` unchanged, CPU-only pods sub-sampled (without replacement) or
  over-sampled (with replacement) to NN.N % of all pods (cpu050: 375 of 7439; cpu200: 1768 of 8832).

Every draw uses ``random.Random(seed)``; the paper's own variants came from an unpublished script, so a
variant made here matches a published one in composition, not row for row (``--check`` compares the
regenerated public variants with the files). Output: ``openb_pod_list_<name>.csv`` in the openb format,
readable by ``hami-scheduler simulate --pods FILE --nodes openb_node_list_gpu_node.csv``.

    python scheduler/benchmarks/gen_variants.py --out /tmp/openb-extra multigpu10 gpushare60 cpu250
    python scheduler/benchmarks/gen_variants.py --check
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hami_scheduler.sim.trace import TracePod, default_trace_dir, load_pods

from hami_hal.errors import InputError

#: Unseen variants the LOO/generalisation check uses by default.
UNSEEN = ("multigpu10", "multigpu30", "multigpu50", "gpushare20", "gpushare60", "gpushare100",
          "gpuspec20", "gpuspec33", "cpu100", "cpu250")
HEADER = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"]
NAME = re.compile(r"^(multigpu|gpushare|gpuspec|cpu)(\d{2,3})$")


def is_share(p: TracePod) -> bool:
    return p.num_gpu == 1 and p.gpu_milli < 1000


def gpu_request(pods: list[TracePod]) -> int:
    return sum(p.gpu_request_milli for p in pods)


def multigpu(base: tuple[TracePod, ...], pct: int, rng: random.Random) -> list[TracePod]:
    """Add multi-GPU pods drawn from ``base`` until they are ``pct`` % of the GPU request."""
    out = list(base)
    pool = [p for p in base if p.num_gpu > 1]
    multi = sum(p.gpu_request_milli for p in pool)
    total = gpu_request(out)
    while multi < pct / 100 * total:
        pick = rng.choice(pool)
        out.append(pick)
        multi += pick.gpu_request_milli
        total += pick.gpu_request_milli
    return out


def gpushare(base: tuple[TracePod, ...], pct: int, rng: random.Random) -> list[TracePod]:
    """Swap GPU pods between sharing and non-sharing (drawn from ``base``) until sharing is ``pct`` % of the
    GPU request: non-sharing pods become sharing ones above ``default``'s share, the reverse below it."""
    out = list(base)
    total = gpu_request(out)
    share = sum(p.gpu_request_milli for p in out if is_share(p))
    up = share < pct / 100 * total
    pool = [p for p in base if p.num_gpu and is_share(p) == up]
    slots = [i for i, p in enumerate(out) if p.num_gpu and is_share(p) != up]
    rng.shuffle(slots)
    while slots and (share < pct / 100 * total if up else share > pct / 100 * total):
        i = slots.pop()
        pick = rng.choice(pool)
        total += pick.gpu_request_milli - out[i].gpu_request_milli
        share += pick.gpu_request_milli if up else -out[i].gpu_request_milli
        out[i] = pick
    return out


def gpuspec(base: tuple[TracePod, ...], pct: int, rng: random.Random, specs: dict[int, list]) -> list[TracePod]:
    """Give ``pct`` % of the GPU pods a model constraint drawn from ``specs`` (by GPU count)."""
    out = [replace(p, gpu_spec=()) for p in base]
    gpu = [i for i, p in enumerate(out) if p.num_gpu]
    for i in rng.sample(gpu, round(pct / 100 * len(gpu))):
        choices = specs.get(out[i].num_gpu)
        if choices:
            out[i] = replace(out[i], gpu_spec=rng.choice(choices))
    return out


def cpu_only(base: tuple[TracePod, ...], per_mille: int, rng: random.Random) -> list[TracePod]:
    """CPU-only pods sub- or over-sampled to ``per_mille`` / 10 % of all pods."""
    gpu = [p for p in base if p.num_gpu]
    cpu = [p for p in base if not p.num_gpu]
    share = per_mille / 1000
    want = round(share / (1 - share) * len(gpu)) if share < 1 else 0
    if want <= len(cpu):
        keep = sorted(rng.sample(range(len(cpu)), want))
        return gpu + [cpu[i] for i in keep]
    return gpu + cpu + [rng.choice(cpu) for _ in range(want - len(cpu))]


def published_specs(trace_dir: str) -> dict[int, list[tuple[str, ...]]]:
    """Every gpu_spec of the public gpuspec variants, by the pod's GPU count (draws keep their frequency)."""
    out: dict[int, list[tuple[str, ...]]] = {}
    for v in ("gpuspec10", "gpuspec25"):
        for p in load_pods(trace_dir, v):
            if p.gpu_spec:
                out.setdefault(p.num_gpu, []).append(p.gpu_spec)
    return out


def make_variant(trace_dir: str, name: str, seed: int = 2026) -> list[TracePod]:
    """The pods of variant ``name`` (e.g. ``multigpu30``) derived from ``default``, renamed in order."""
    m = NAME.match(name)
    if not m:
        raise InputError("variant", name, "is not multigpuXX, gpushareXX, gpuspecXX or cpuNNN")
    family, num = m.group(1), int(m.group(2))
    if family != "cpu" and not 0 <= num <= 100 or family == "cpu" and not 0 <= num < 1000:
        raise InputError("variant", name, "asks for a share outside 0..100 %")
    base = load_pods(trace_dir, "default")
    rng = random.Random(f"{seed}:{name}")
    build: dict[str, Callable[[], list[TracePod]]] = {
        "multigpu": lambda: multigpu(base, num, rng),
        "gpushare": lambda: gpushare(base, num, rng),
        "gpuspec": lambda: gpuspec(base, num, rng, published_specs(trace_dir)),
        "cpu": lambda: cpu_only(base, num, rng),
    }
    pods = build[family]()
    return [replace(p, name=f"openb-pod-{i:05d}") for i, p in enumerate(pods)]


def write_pods(pods: list[TracePod], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        for p in pods:
            w.writerow([p.name, p.cpu_milli, p.memory_mib, p.num_gpu, p.gpu_milli, "|".join(p.gpu_spec)])
    return path


def composition(pods: list[TracePod] | tuple[TracePod, ...]) -> dict:
    """The composition row of scheduling-benchmark §3.1 for a pod list."""
    total = gpu_request(list(pods))
    gpu = [p for p in pods if p.num_gpu]
    return {
        "pods": len(pods),
        "cpu_only": len(pods) - len(gpu),
        "share": sum(1 for p in gpu if is_share(p)),
        "multi": sum(1 for p in gpu if p.num_gpu > 1),
        "spec": sum(1 for p in gpu if p.gpu_spec),
        "gpu_request": round(total / 1000, 1),
        "share_pct": round(100 * sum(p.gpu_request_milli for p in gpu if is_share(p)) / total, 1),
        "multi_pct": round(100 * sum(p.gpu_request_milli for p in gpu if p.num_gpu > 1) / total, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="*", default=list(UNSEEN))
    ap.add_argument("--trace-dir", default=str(default_trace_dir()))
    ap.add_argument("--out", default="/tmp/openb-extra", help="folder for the generated pod lists")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--check", action="store_true", help="regenerate the public derived variants, compare")
    a = ap.parse_args(argv)
    try:
        if a.check:
            for v in ("multigpu20", "multigpu40", "gpushare40", "gpushare80", "gpuspec10", "gpuspec25",
                      "cpu050", "cpu200"):
                print(f"{v:11} published {composition(load_pods(a.trace_dir, v))}")
                print(f"{'':11} generated {composition(make_variant(a.trace_dir, v, a.seed))}")
            return 0
        for v in a.variants:
            path = write_pods(make_variant(a.trace_dir, v, a.seed), Path(a.out) / f"openb_pod_list_{v}.csv")
            print(f"{path}: {composition(load_pods_file(path))}")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def load_pods_file(path: Path) -> tuple[TracePod, ...]:
    from hami_scheduler.sim.listfile import load_pod_file

    return load_pod_file(str(path))


if __name__ == "__main__":
    sys.exit(main())
