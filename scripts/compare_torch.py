#!/usr/bin/env python3
"""compare_torch.py — the same network on the same data in PyTorch, next to sketchgn.

The data (sgn_data_synth) and the initial model (sgn_model_create, symmetric init) come from
build/libsketchgn.so through ctypes, so all runs start from identical X, Y, W and A:
f(x) = m^-1/2 A^T relu(W x), loss 1/(2n) sum ||f(x_i) - y_i||^2, W trained, A fixed.

PyTorch runs, on the same device:
  adam      mini-batch Adam (batch 128, one epoch per step), each learning rate of --lrs for
            --budget seconds; the best one is kept;
  ggn-exact Gram-Gauss-Newton: G = J J^T formed in float64 ((nk)^2, as sketchgn's gn-exact),
            torch.linalg.cholesky, damping 1e-6 mean(G_ii), backtracking line search.
sketchgn runs `build/sketchgn train --log-json` for each of --solvers with --normalize none.
Each reports the seconds to loss <= --target-rel x initial (or its loss after --budget seconds).
Without torch it says so and exits 0.

usage: compare_torch.py [--n N] [--d D] [--m M] [--k K] [--seed S] [--aniso A]
                        [--device auto|cpu|gpu] [--budget SEC] [--target-rel R] [--lrs LIST]
                        [--solvers LIST] [--bin PATH] [--lib PATH]
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

try:
    import torch
except ImportError:
    torch = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--d", type=int, default=32)
    ap.add_argument("--m", type=int, default=4096)
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aniso", type=float, default=1.0)
    ap.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto")
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per run (default 30)")
    ap.add_argument("--target-rel", type=float, default=1e-6)
    ap.add_argument("--lrs", default="1e-4,3e-4,1e-3,3e-3,1e-2,3e-2")
    ap.add_argument("--solvers", default="gn-sketch,gn-exact,gn-gram")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "sketchgn"))
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libsketchgn.so"))
    a = ap.parse_args()
    if a.m % 2:
        ap.error("--m: the symmetric initialization needs an even width")
    return a


# ---- data and model from libsketchgn ----

class Dataset(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int64), ("d", ctypes.c_int64), ("k", ctypes.c_int64),
                ("X", ctypes.POINTER(ctypes.c_float)), ("Y", ctypes.POINTER(ctypes.c_float)),
                ("labels", ctypes.c_int)]


class Model(ctypes.Structure):
    _fields_ = [("d", ctypes.c_int64), ("m", ctypes.c_int64), ("k", ctypes.c_int64),
                ("W", ctypes.POINTER(ctypes.c_float)), ("A", ctypes.POINTER(ctypes.c_float))]


def problem(a):
    """X (n, d), Y (n, k), W (m, d), A (m, k) as float32 CPU tensors."""
    lib = ctypes.CDLL(a.lib)
    lib.sgn_data_synth.restype = ctypes.c_int
    lib.sgn_data_synth.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_uint64, ctypes.c_double,
                                                          ctypes.POINTER(Dataset)]
    lib.sgn_model_create.restype = ctypes.POINTER(Model)
    lib.sgn_model_create.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_int, ctypes.c_uint64]
    lib.sgn_dataset_free.argtypes = [ctypes.POINTER(Dataset)]
    lib.sgn_model_free.argtypes = [ctypes.POINTER(Model)]
    ds = Dataset()
    if lib.sgn_data_synth(a.n, a.d, a.k, a.seed, a.aniso, ctypes.byref(ds)) != 0:
        sys.exit("compare_torch.py: sgn_data_synth failed")
    mp = lib.sgn_model_create(a.d, a.m, a.k, 0, a.seed)  # SGN_INIT_SYMMETRIC
    if not mp:
        sys.exit("compare_torch.py: sgn_model_create failed")

    def tensor(ptr, rows, cols):
        buf = (ctypes.c_float * (rows * cols)).from_address(ctypes.addressof(ptr.contents))
        return torch.frombuffer(bytearray(buf), dtype=torch.float32).reshape(rows, cols)

    X, Y = tensor(ds.X, a.n, a.d), tensor(ds.Y, a.n, a.k)
    W, A = tensor(mp.contents.W, a.m, a.d), tensor(mp.contents.A, a.m, a.k)
    lib.sgn_dataset_free(ctypes.byref(ds))
    lib.sgn_model_free(mp)
    return X, Y, W, A


# ---- PyTorch ----

def forward(X, W, A):
    return torch.relu(X @ W.T) @ A / W.shape[0] ** 0.5


def loss_of(X, Y, W, A):
    return 0.5 * ((forward(X, W, A) - Y) ** 2).sum().item() / X.shape[0]


class Clock:
    """Wall time with device synchronization."""

    def __init__(self, dev):
        self.cuda = dev.type == "cuda"

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


def run_adam(X, Y, W0, A, lr, budget, target, clock):
    """Mini-batch Adam (batch 128, one epoch per step). (seconds to target or None, rel loss)."""
    n = X.shape[0]
    W = W0.clone().requires_grad_(True)
    opt = torch.optim.Adam([W], lr=lr)
    gen = torch.Generator(device="cpu").manual_seed(1)
    l0 = loss_of(X, Y, W.detach(), A)
    t0 = clock.now()
    rel, epochs = 1.0, 0
    while clock.now() - t0 < budget:
        perm = torch.randperm(n, generator=gen).to(X.device)
        for b in range(0, n, 128):
            idx = perm[b:b + 128]
            opt.zero_grad(set_to_none=True)
            ((forward(X[idx], W, A) - Y[idx]) ** 2).sum().div(2 * idx.numel()).backward()
            opt.step()
        epochs += 1
        with torch.no_grad():
            rel = loss_of(X, Y, W, A) / l0
        if rel != rel:  # NaN: this learning rate diverged
            return None, float("inf"), epochs
        if rel <= target:
            return clock.now() - t0, rel, epochs
    return None, rel, epochs


def gram(X, W, A):
    """G = J J^T ((nk)^2, float64), rows (i, c) -> i k + c."""
    n, k, m = X.shape[0], A.shape[1], W.shape[0]
    M = (X @ W.T > 0).double()
    K = X.double() @ X.double().T
    G = torch.zeros(n * k, n * k, dtype=torch.float64, device=X.device)
    for c in range(k):
        for e in range(c, k):
            S = (M * (A[:, c] * A[:, e]).double()) @ M.T / m
            G[c::k, e::k] = K * S
            if e != c:
                G[e::k, c::k] = (K * S).T
    return G


def run_ggn(X, Y, W0, A, budget, target, clock):
    """Exact Gram-Gauss-Newton as sketchgn's gn-exact. (seconds to target or None, rel, steps)."""
    n, k, m = X.shape[0], A.shape[1], W0.shape[0]
    W = W0.clone()
    l0 = loss_of(X, Y, W, A)
    loss, rel, steps = l0, 1.0, 0
    t0 = clock.now()
    while clock.now() - t0 < budget:
        r = (forward(X, W, A) - Y).double().reshape(-1)
        G = gram(X, W, A)
        lam = 1e-6 * G.diagonal().mean()
        G.diagonal().add_(lam)
        L = torch.linalg.cholesky(G)
        g = torch.cholesky_solve(r.unsqueeze(1), L).reshape(n, k).float()
        M = (X @ W.T > 0).float()
        D = ((g @ A.T) * M).T @ X / m ** 0.5  # J^T g (m, d)
        eta = 1.0
        for _ in range(31):
            trial = loss_of(X, Y, W - eta * D, A)
            if trial <= loss:
                break
            eta *= 0.5
        else:
            break
        W = W - eta * D
        loss, steps = trial, steps + 1
        rel = loss / l0
        if rel <= target:
            return clock.now() - t0, rel, steps
    return None, rel, steps


# ---- sketchgn ----

def run_sketchgn(a, solver, device):
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "log.jsonl")
        spec = f"synth:n={a.n},d={a.d},k={a.k},seed={a.seed},aniso={a.aniso:g}"
        cmd = [a.bin, "train", "--data", spec, "--width", str(a.m), "--solver", solver,
               "--normalize", "none", "--seed", str(a.seed), "--steps", "100000",
               "--target-rel", f"{a.target_rel:g}", "--time-limit", f"{a.budget:g}",
               "--device", device, "--log-json", log, "--quiet"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(log):
            return None, float("nan"), 0, " ".join(cmd), p.stderr.strip()
        rows = [json.loads(line) for line in open(log) if line.strip()]
        l0 = rows[0]["loss"]
        for r in rows:
            if r["loss"] <= a.target_rel * l0:
                return r["time_s"], r["loss"] / l0, r["step"], " ".join(cmd), ""
        return None, rows[-1]["loss"] / l0, rows[-1]["step"], " ".join(cmd), ""


def main():
    a = parse_args()
    if torch is None:
        print("compare_torch.py: torch is missing (not importable by %s); nothing to compare"
              % sys.executable)
        return 0

    if a.device == "auto":
        a.device = "gpu" if torch.cuda.is_available() else "cpu"
    dev = torch.device("cuda" if a.device == "gpu" else "cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("compare_torch.py: --device gpu: torch sees no CUDA device")
    if dev.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products, as sketchgn's
    X, Y, W, A = (t.to(dev) for t in problem(a))
    clock = Clock(dev)
    tgt = a.target_rel
    print(f"problem: synth n={a.n} d={a.d} k={a.k} seed={a.seed} aniso={a.aniso:g}, width {a.m}, "
          f"device {a.device} (torch {torch.__version__}), target {tgt:g} x initial loss, "
          f"budget {a.budget:g} s per run")

    results = []
    for solver in a.solvers.split(","):
        t, rel, steps, cmd, err = run_sketchgn(a, solver, a.device)
        if err:
            print(f"sketchgn {solver}: failed: {err}", file=sys.stderr)
        results.append((f"sketchgn {solver}", t, rel, f"{steps} steps"))
    t, rel, steps = run_ggn(X, Y, W, A, a.budget, tgt, clock)
    results.append(("torch ggn-exact (cholesky)", t, rel, f"{steps} steps"))
    best = None
    for lr in [float(v) for v in a.lrs.split(",")]:
        t, rel, ep = run_adam(X, Y, W, A, lr, a.budget, tgt, clock)
        print(f"  torch adam lr {lr:g}: " + (f"{t:.2f} s to target" if t is not None
                                              else f"loss {rel:.3g} of initial after {a.budget:g} s")
              + f", {ep} epochs")
        key = (0, t) if t is not None else (1, rel)
        if best is None or key < best[0]:
            best = (key, lr, t, rel, ep)
    _, lr, t, rel, ep = best
    results.append((f"torch adam (best lr {lr:g})", t, rel, f"{ep} epochs"))

    print(f"{'method':32s} {'time to target':>16s} {'loss / initial':>15s}  work")
    for name, t, rel, work in results:
        ts = f"{t:.2f} s" if t is not None else f"> {a.budget:g} s"
        print(f"{name:32s} {ts:>16s} {rel:15.3g}  {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
