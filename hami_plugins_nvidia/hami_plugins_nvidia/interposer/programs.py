"""Real framework programs for the interposer's GPU checks, each run as its own process:
``python3 programs.py KIND SECONDS`` prints one ``RESULT {json}`` line. Kinds: matmul (bf16 8192^3 loop), train
(a 124 M-parameter transformer training loop built from torch layers, batch BENCH_TRAIN_BATCH, 16x1024), infer (the same model, batch 1 x 128 tokens), graphs
(CUDA graphs on two streams), jax, cupy, torchmem (fill memory until the framework's OOM).

Standalone on purpose (standard library plus the framework it runs): the conformance probe
(``probe.measure_work_conserving``) and ``bench/real_workloads.py`` start it by path. With ``BENCH_GO`` (a
wall-clock time) workers of a pair start measuring together; ``BENCH_FILL=1`` adds the OOM fill to jax/cupy.
"""

from __future__ import annotations

import json
import os
import sys
import time

MIB = 1 << 20


def _emit(**fields) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def _go() -> float:
    """The wall-clock time to start measuring: BENCH_GO; or, with BENCH_GO_FILE, this worker says it finished its
    warm-up (an empty file <BENCH_GO_FILE>.ready.<pid>, as bench_worker.py's workers do) and waits for the go file,
    which the bench writes once every worker of the pair is ready: the time in it plus BENCH_GO_AFTER seconds. A
    fixed BENCH_GO let a slow warm-up start a worker late (issue 18 record 5: 0.3-2.8 s on the H200, its pair tenant
    measuring part of the window alone). 0 (start now) when the file never comes within 10 minutes or holds no
    number."""
    path = os.environ.get("BENCH_GO_FILE")
    if not path:
        return float(os.environ.get("BENCH_GO", "0"))
    with open(f"{path}.ready.{os.getpid()}", "w"):
        pass
    deadline = time.time() + 600
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.002)
    try:
        with open(path) as f:
            return float(f.read()) + float(os.environ.get("BENCH_GO_AFTER", "0"))
    except (OSError, ValueError):
        return 0.0


#: How long the bench waits for every worker of a pair to finish its warm-up, and how far ahead of the moment they
#: all did it sets their GO (each polls for the go file every 2 ms).
READY_WAIT_S = 180.0
GO_LEAD_S = 0.5


def release(go_file, procs: list, wait_s: float = READY_WAIT_S) -> float:
    """The bench's side of _go: writes go_file (a wall-clock time, GO_LEAD_S ahead) once every worker left its
    <go_file>.ready.<pid> beside it, one of them exited (it will not measure; the others still do), or wait_s
    passed; returns that time. procs: the workers' Popen objects."""
    folder, name = os.path.split(os.fspath(go_file))
    deadline = time.monotonic() + wait_s
    while (time.monotonic() < deadline and all(p.poll() is None for p in procs)
           and sum(f.startswith(f"{name}.ready.") for f in os.listdir(folder or ".")) < len(procs)):
        time.sleep(0.02)
    go = time.time() + GO_LEAD_S
    with open(f"{go_file}.part", "w") as f:
        f.write(repr(go))
    os.replace(f"{go_file}.part", go_file)  # whole or absent: a worker never reads half a number
    return go


def _window(step, seconds: float) -> dict:
    """Waits for its GO (_go: a wall-clock time), then calls step() for `seconds`; returns units/s and step
    end times relative to GO (for the policy timeline), and GO itself as `stamps_base` (the window's start `t0`
    without GO). A worker whose warm-up outlasted GO (`late`) starts its window at t0 > GO: its stamps are still
    counted from GO, so readers place them by stamps_base, never by t0 (issue 18 record 5: read from t0, a worker
    1.9-2.8 s late made the policy timeline look ~2 s slow both ways)."""
    go = _go()
    late = time.time() > go > 0
    while time.time() < go:
        time.sleep(0.001)
    busy0 = _region_busy_ns()
    t0 = time.time()
    t0_mono = time.monotonic()  # CLOCK_MONOTONIC, the library's clock (HAMI_SM_TURNS_LOG's t_ns): places its lines
    units, stamps = 0, []
    while time.time() - t0 < seconds:
        units += step()
        stamps.append(round(time.time() - (go or t0), 4))
    dt_ = time.time() - t0
    res = {"rate": units / dt_, "seconds": dt_, "t0": t0, "t0_mono": t0_mono, "late": late, "stamps": stamps,
           "stamps_base": go or t0, "step_ms": _step_ms(stamps, go or t0, t0)}
    busy1 = _region_busy_ns()
    if busy0 is not None and busy1 is not None:
        res["gpu_busy_fraction"] = round((busy1 - busy0) / 1e9 / dt_, 4)
    return res


#: BENCH_WINDOWS=1: the line a worker prints once warm, before its first window; and the steps each window runs
#: unmeasured first (after a pause the caches and the library's state are cold: a worker is stopped between windows).
WINDOWS_READY = "WINDOWS READY"
WINDOW_WARM_STEPS = 2


def _serve(step, seconds: float, kind: str, unit: str, extra=lambda: {}, warmup: int = 0, park=lambda: None) -> None:
    """BENCH_WINDOWS=1 (bench/launch_cost.py's paired alone comparison): one warm process runs many short windows
    on request, so a native and a library worker on the same core can take turns window by window and the host's
    drift hits both alike (issue 18 record 13: three 4 s rounds of each read 85-103 % of native). Prints
    WINDOWS_READY, then for each `go` line on stdin runs WINDOW_WARM_STEPS steps and a measured window of `seconds`
    (one RESULT line: rate, seconds, steps, the step times and `extra()`); any other line or EOF ends it with a
    last RESULT line that counts every step run (`steps_total`, the warm-ups included: launches per step come from
    the library's stats line, which counts them all). Before each RESULT line the worker parks: `park()` (the
    inference loop: a device synchronize) drains its GPU, outside the window, so the SIGSTOP that follows holds none
    of its work and the library none of its measurement open (issue 18 record 14, pausegap: a coarse run left open
    across the stop was charged the stop as doubt, and the library worker held 23 times, 15.5 s)."""
    total, windows = warmup, 0
    print(WINDOWS_READY, flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        for _ in range(WINDOW_WARM_STEPS):
            step()
        total += WINDOW_WARM_STEPS
        busy0 = _region_busy_ns()
        t0 = time.perf_counter()
        units, ends = 0, []
        while (dt := time.perf_counter() - t0) < seconds:
            units += step()
            ends.append(time.perf_counter())
        total += len(ends)
        windows += 1
        busy1 = _region_busy_ns()
        steps = [b - a for a, b in zip([t0, *ends[:-1]], ends, strict=True)]
        charged = {} if busy0 is None or busy1 is None else {"gpu_busy_fraction": round((busy1 - busy0) / 1e9 / dt, 4)}
        park()
        _emit(kind=kind, unit=unit, rate=units / dt, seconds=dt, steps=len(ends), step_ms=_percentiles(steps),
              **charged, **extra())
    _emit(kind=kind, unit=unit, windows=windows, steps_total=total, last=True)


def _step_ms(stamps: list[float], base: float, t0: float) -> dict:
    """The loop's own host time per step (ms): 10th, 50th and 90th percentiles of the step durations, so a run
    that switched between two speeds shows it (the H200 host ran the inference loop at two rates)."""
    ends = [base + s for s in stamps]
    return _percentiles([b - a for a, b in zip([t0, *ends[:-1]], ends, strict=True)])


def _region_busy_ns() -> int | None:
    """GPU busy time the interposer charged this container (its region's device-0 busy_ns: offset 80 in
    hami_region.h's struct hami_region), when BENCH_REGION names the region file; None otherwise."""
    path = os.environ.get("BENCH_REGION")
    try:
        with open(path or "", "rb") as f:
            data = f.read(88)
    except OSError:
        return None
    if len(data) < 88 or int.from_bytes(data[0:4], "little") != 0x48564750:
        return None
    return int.from_bytes(data[80:88], "little")


def _gpt(torch, layers: int = 12, d: int = 768, vocab: int = 50257):
    nn = torch.nn

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(1024, d)
            layer = nn.TransformerEncoderLayer(d, d // 64, 4 * d, dropout=0.0, batch_first=True, norm_first=True,
                                               activation="gelu")
            self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab, bias=False)
            self.head.weight = self.tok.weight

        def forward(self, idx):
            t = idx.shape[1]
            mask = torch.ones(t, t, dtype=torch.bool, device=idx.device).triu(1)  # True = may not attend
            x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
            return self.head(self.norm(self.blocks(x, mask=mask)))

    return GPT().cuda()


def w_train(seconds: float) -> None:
    import torch
    model = _gpt(torch)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)
    # 16 x 1024 by default: at 4 x 512 the H200 sat idle between steps, at 8 x 1024 it was busy 82 % of the
    # time (the interposer's own event timing): the loop must be GPU-bound for the GPU-bound targets
    b, t = (int(v) for v in os.environ.get("BENCH_TRAIN_BATCH", "16x1024").split("x"))
    x = torch.randint(0, 50257, (b, t), device="cuda")

    def step() -> int:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]).float(), x.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # a real loop logs its loss: one host sync per step
        return b * t

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    _emit(kind="train", unit="tokens/s", **_window(step, seconds))


def w_infer(seconds: float) -> None:
    import torch
    model = _gpt(torch).to(torch.bfloat16).eval()
    x = torch.randint(0, 50257, (1, 128), device="cuda")
    submit: list[float] = []
    sync: list[float] = []

    @torch.no_grad()
    def step() -> int:
        t0 = time.perf_counter()
        nxt = model(x)[0, -1].argmax()  # the pass's launches, queued
        t1 = time.perf_counter()
        nxt.item()  # the next token goes back to the host: one sync per pass
        submit.append(t1 - t0)
        sync.append(time.perf_counter() - t1)
        return 1

    for _ in range(5):
        step()
    del submit[:], sync[:]
    if os.environ.get("BENCH_WINDOWS") == "1":
        def split() -> dict:
            out = {"submit_ms": _percentiles(submit), "sync_ms": _percentiles(sync)}
            del submit[:], sync[:]
            return out
        _serve(step, seconds, "infer", "forward passes/s", split, warmup=5, park=torch.cuda.synchronize)
        return
    res = _window(step, seconds)
    # each pass split at its host sync (issue 18's ladder, stage 9): the host's time queuing the launches and the
    # wait for the GPU after them; a library cost per launch grows the first, a drain at the sync the second
    _emit(kind="infer", unit="forward passes/s", **res, submit_ms=_percentiles(submit), sync_ms=_percentiles(sync))


def _percentiles(durations: list[float]) -> dict:
    """10th, 50th and 90th percentiles of durations (s), in ms, and their mean and count."""
    d = sorted(durations)
    if not d:
        return {}
    pick = lambda q: round(1e3 * d[min(len(d) - 1, int(q * len(d)))], 4)  # noqa: E731 - a local percentile
    return {"p10": pick(0.1), "p50": pick(0.5), "p90": pick(0.9), "mean": round(1e3 * sum(d) / len(d), 4), "n": len(d)}


def w_graphs(seconds: float) -> None:
    import torch
    n = 4096
    mlp = torch.nn.Sequential(*[torch.nn.Linear(n, n) for _ in range(4)]).cuda().to(torch.bfloat16)
    streams = [torch.cuda.Stream() for _ in range(2)]
    inputs = [torch.randn(256, n, device="cuda", dtype=torch.bfloat16) for _ in streams]
    graphs = []
    with torch.no_grad():
        for s, inp in zip(streams, inputs, strict=True):
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(2):
                    mlp(inp)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                mlp(inp)
            graphs.append(g)

    def step() -> int:
        for s, g in zip(streams, graphs, strict=True):
            with torch.cuda.stream(s):
                g.replay()
        torch.cuda.synchronize()
        return len(graphs)

    for _ in range(5):
        step()
    _emit(kind="graphs", unit="graph replays/s", **_window(step, seconds))


def _fill(alloc, chunk_mib: int = 256, cap_mib: int = 200_000):
    held, error = [], ""
    try:
        while len(held) * chunk_mib < cap_mib:
            held.append(alloc(chunk_mib))
    except Exception as exc:  # the framework's own error is what we record
        error = f"{type(exc).__module__}.{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return len(held) * chunk_mib, error, held


def w_jax(seconds: float) -> None:
    import jax
    import jax.numpy as jnp
    started = True
    a = jnp.ones((8192, 8192), jnp.bfloat16)
    mm = jax.jit(lambda m: m @ m)
    mm(a).block_until_ready()

    def step() -> int:
        mm(a).block_until_ready()
        return 1

    res = _window(step, seconds)
    mem = {}
    if os.environ.get("BENCH_FILL"):
        got, err, held = _fill(lambda mib: jax.device_put(jnp.ones((mib * MIB // 4,), jnp.float32)).block_until_ready())
        mem = {"filled_mib": got, "oom_error": err}
        del held
    _emit(kind="jax", unit="8192^3 bf16 matmuls/s", started=started, **res, **mem)


def w_cupy(seconds: float) -> None:
    import cupy as cp
    a = cp.ones((8192, 8192), cp.float16)

    def step() -> int:
        a @ a
        cp.cuda.Device().synchronize()
        return 1

    step()
    res = _window(step, seconds)
    mem = {}
    if os.environ.get("BENCH_FILL"):
        got, err, held = _fill(lambda mib: cp.ones((mib * MIB // 4,), cp.float32))
        mem = {"filled_mib": got, "oom_error": err}
        del held
    _emit(kind="cupy", unit="8192^3 fp16 matmuls/s", **res, **mem)


def w_torchmem(seconds: float) -> None:
    import torch
    got, err, held = _fill(lambda mib: torch.empty(mib * MIB, dtype=torch.uint8, device="cuda"))
    _emit(kind="torchmem", filled_mib=got, oom_error=err, reported_total_mib=torch.cuda.mem_get_info()[1] / MIB)


def w_matmul(seconds: float) -> None:
    """The synthetic GPU-bound reference: 8192^3 bf16 matmuls, a host sync every 8."""
    import torch
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)

    def step() -> int:
        for _ in range(8):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        return 8

    for _ in range(3):
        step()
    _emit(kind="matmul", unit="8192^3 bf16 matmuls/s", **_window(step, seconds))


WORKERS = {"matmul": w_matmul, "train": w_train, "infer": w_infer, "graphs": w_graphs, "jax": w_jax, "cupy": w_cupy,
           "torchmem": w_torchmem}



if __name__ == "__main__":
    WORKERS[sys.argv[1]](float(sys.argv[2]))
