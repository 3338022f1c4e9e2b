"""One interposer measurement in its own process (so LD_PRELOAD and the limits apply to it alone).

Prints one JSON line starting with RESULT. Modes:
  mem <torch|torch-exp|torch-async|cupy>  reported total, largest allocation reached, the OOM error
  matmul <seconds>                        bf16 8192^3 matmul throughput in TFLOP/s
  launch <n>                              microseconds per tiny-kernel launch (in-place add on 1 element)
  prio <seconds>                          bf16 8192^3 matmuls in synchronised batches, with each batch's
                                          completion time (CLOCK_MONOTONIC, comparable across processes)
A worker waits for the file named by $BENCH_GO (if set) after warm-up, so two workers start together.
"""

from __future__ import annotations

import json
import os
import sys
import time

MIB = 1 << 20


def _emit(**fields: object) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def _wait_go() -> None:
    go = os.environ.get("BENCH_GO")
    if not go:
        return
    open(go + f".ready.{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)


def _peak_handshake() -> None:
    """Tell the parent we are at peak usage, and wait until it has sampled the device."""
    print("PEAK", flush=True)
    sys.stdin.readline()


def mem_torch(kind: str) -> None:
    import torch

    torch.cuda.init()
    free, total = torch.cuda.mem_get_info()
    dev_total = torch.cuda.get_device_properties(0).total_memory
    chunks, allocated, error = [], 0, ""
    oversized = ""
    try:
        torch.empty(total + 256 * MIB, dtype=torch.uint8, device="cuda")
    except torch.cuda.OutOfMemoryError as exc:
        oversized = type(exc).__name__
    for size_mib in (256, 64, 16, 4):
        while True:
            try:
                chunks.append(torch.empty(size_mib * MIB, dtype=torch.uint8, device="cuda"))
                allocated += size_mib * MIB
            except torch.cuda.OutOfMemoryError as exc:
                error = error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                break
            except RuntimeError as exc:  # anything that is not the framework's normal OOM
                error = f"{type(exc).__name__} (NOT an OOM error): {str(exc).splitlines()[0][:160]}"
                break
    torch.cuda.synchronize()
    reserved = torch.cuda.memory_reserved()
    _peak_handshake()
    _emit(mode="mem", framework=kind, reported_total=total, reported_free=free, device_properties_total=dev_total,
          largest_allocated=allocated, torch_reserved=reserved, oom_error=error, oversized_oom=oversized,
          alloc_conf=os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""))


def mem_cupy() -> None:
    import cupy

    free, total = cupy.cuda.runtime.memGetInfo()
    chunks, allocated, error = [], 0, ""
    for size_mib in (256, 64, 16, 4):
        while True:
            try:
                chunks.append(cupy.empty(size_mib * MIB, dtype=cupy.uint8))
                allocated += size_mib * MIB
            except cupy.cuda.memory.OutOfMemoryError as exc:
                error = error or f"{type(exc).__name__}: {str(exc)[:160]}"
                break
            except Exception as exc:  # noqa: BLE001 - report what the framework raised instead of OOM
                error = f"{type(exc).__name__} (NOT an OOM error): {str(exc)[:160]}"
                break
    cupy.cuda.runtime.deviceSynchronize()
    _peak_handshake()
    _emit(mode="mem", framework="cupy", reported_total=total, reported_free=free, largest_allocated=allocated,
          oom_error=error, pool_total=cupy.get_default_memory_pool().total_bytes())


def _warm_matmul(n: int = 8192):
    """bf16 operands on the GPU, warmed up (20 matmuls), then wait for the parent's go."""
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    c = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(20):
        torch.matmul(a, b, out=c)
    torch.cuda.synchronize()
    _wait_go()
    return torch, n, a, b, c


def matmul(seconds: float) -> None:
    torch, n, a, b, c = _warm_matmul()
    iters = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.matmul(a, b, out=c)
        iters += 1
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    _emit(mode="matmul", iters=iters, seconds=dt, tflops=2 * n**3 * iters / dt / 1e12)


def prio(seconds: float, batch: int = 4) -> None:
    """Like matmul, but synchronised every ``batch`` matmuls (about 6 ms on an H200) so each batch's
    completion time is known: the parent can then count the work done inside the window where two workers
    overlap, however long one of them was held."""
    torch, n, a, b, c = _warm_matmul()
    done = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(batch):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        done.append(time.perf_counter())
    dt = done[-1] - t0
    _emit(mode="prio", batch=batch, flop_per_iter=2 * n**3, start=t0, done=done, seconds=dt,
          tflops=2 * n**3 * batch * len(done) / dt / 1e12)


def launch(n: int) -> None:
    import torch

    x = torch.zeros(1, device="cuda")
    for _ in range(2000):
        x.add_(1)
    torch.cuda.synchronize()
    reps = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            x.add_(1)
        torch.cuda.synchronize()
        reps.append((time.perf_counter() - t0) / n * 1e6)
    reps.sort()
    _emit(mode="launch", n=n, us_per_launch=reps[len(reps) // 2], reps_us=reps)


def main(argv: list[str]) -> None:
    mode = argv[1]
    if mode == "mem":
        mem_cupy() if argv[2] == "cupy" else mem_torch(argv[2])
    elif mode == "matmul":
        matmul(float(argv[2]))
    elif mode == "prio":
        prio(float(argv[2]))
    elif mode == "launch":
        launch(int(argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv)
