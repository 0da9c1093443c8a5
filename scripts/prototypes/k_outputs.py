#!/usr/bin/env python3
"""Prototype: PCG iterations of the k-output Gauss-Newton step, and what to do about them.

Not part of the product (NumPy only, float64, no sketchgn code).  It rebuilds, in NumPy, the
design's model  f(x) = m^-1/2 A^T relu(W x)  (W (m, d) N(0,1), A (m, k) +-1 fixed, symmetric
init so f = 0), on Fashion-MNIST (first n training images, first `--ntest` test images; inputs
centred by the training mean, then unit norm per sample; one-hot targets, k = 10), and takes 3
Gauss-Newton steps  W <- W - J^T g,  (G + lambda I) g = r,  r = f - y,
lambda = 1e-6 mean(G_ii), solved by PCG from g = 0 to relative residual ||b - A g|| / ||b|| <= 1e-3
(full step, eta = 1, no line search).  For each direction it measures

  * PCG iterations at steps 1, 2, 3 (for block-diagonal models: the max over the k blocks);
  * the preconditioned condition number at step 1, estimated by Lanczos from the PCG
    coefficients (extreme Ritz values of the CG tridiagonal: a lower bound on the true kappa;
    "1" when the preconditioner is exact; for block-diagonal models the max over blocks);
  * the loss 1/(2n) sum ||f - y||^2 and the test accuracy (argmax f) after 3 steps;
  * setup seconds per step (everything before PCG: Grams, factorizations, coarse spaces) and
    solve seconds per step (PCG, or the triangular solves of an exact factor), mean over the
    3 steps, measured in this prototype on the machine that runs it.

Directions (see the table in k_outputs.md):
  a      baseline: preconditioner I_k (x) (G1 + lambda I)^-1, G1 = (X X^T) o (M M^T) / m,
         applied through the explicit inverse of its Cholesky factor.
  b-topq second level on top of (a): q Ritz vectors of the symmetrically preconditioned operator
         L^-1 (G + lambda) L^-T from a Lanczos run (full reorthogonalization, 2q + 20 steps,
         rebuilt each step); balancing (BNN) coarse correction with the exact Galerkin matrix,
         which Lanczos gives for free.  q = 20, 100.
  b-nicS Nicolaides-style coarse space Z = I_k (x) U_s (U_s: top s = 20, 50 eigenvectors of
         G1, so ks = 200, 500 coarse vectors), G Z built from the Kronecker structure
         (s n^2 m + s n m k^2 flops, not ks matvecs), balancing correction on top of (a).
  c1     sketched k x k output coupling per eigen-direction of G1: in the eigenbasis U of G1,
         P = sum_a C_a (x) u_a u_a^T, C_a[c,e] = 1/m sum_r A_rc A_re ||S^T X^T (u_a o M_:r)||^2
         with a Gaussian sketch S (d x 32); C_a rescaled to the exact diagonal lambda_a + lambda.
  c2     block-Jacobi in a rotated output basis: Q = eigenvectors of A^T A, exact Cholesky of
         each rotated diagonal block K o (M diag((AQ)_c^2) M^T) / m (k factorizations).
  d      orthogonal output patterns by construction: m/16 distinct w, each shared by a group of
         16 neurons whose A rows are rows of a 16 x 16 Sylvester-Hadamard matrix restricted to
         columns 1..k (each column sums to 0, so f = 0 at init, and the k columns are orthogonal
         within every group, so G = I_k (x) G1 at init); solved as (a).
  e      separate outputs, copied hidden layer: output c has its own W_c (k copies of the same
         init, width m each) and a_c = A[:, c]; G is block diagonal, G_c = K o (M_c M_c^T)/m.
         Step 1: one Cholesky (all blocks equal), no PCG.  Later steps, three variants:
         e-stale  PCG per block, operator the explicit G_c, preconditioner the step-1 factor;
         e-mean   PCG per block with the factor of the current mean block (one Cholesky/step);
         e-exact  a Cholesky per block per step (k factorizations), no PCG.
  f      separate outputs, split hidden layer: the m neurons (pairs) split among the k outputs
         (m/k each, scale m_c^-1/2); f-mean: PCG per block with the current mean block's factor,
         f-exact: a Cholesky per block per step.
  ref    (only when n k <= --ref-max) the exact Cholesky of the full nk x nk G: no iterations,
         the reference loss and accuracy for (a)-(c).

Run (one BLAS thread; about 5 minutes at n = 1000 and 7 at n = 2000 on one core of the dev
machine; `ref` only runs when n k <= 10000):
    OPENBLAS_NUM_THREADS=1 python3 scripts/prototypes/k_outputs.py --n 1000
    OPENBLAS_NUM_THREADS=1 python3 scripts/prototypes/k_outputs.py --n 2000 --only a,b-top20,b-nic,c,d,e,f
The Markdown table goes to stdout, per-direction progress (with the loss after each step) to
stderr.  Results and conclusions: scripts/prototypes/k_outputs.md.
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
TOL = 1e-3
MAXIT = 1000


# ----------------------------------------------------------------------------- data
def read_idx(name):
    for path in (os.path.join(DATA, name), os.path.join(DATA, name + ".gz")):
        if os.path.exists(path):
            raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
            nd = raw[3]
            shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(shape)
    sys.exit("missing %s under %s" % (name, DATA))


def load(n, ntest, k=10):
    xtr = read_idx("train-images-idx3-ubyte")[:n].reshape(n, -1).astype(np.float64)
    ytr = read_idx("train-labels-idx1-ubyte")[:n].astype(int)
    xte = read_idx("t10k-images-idx3-ubyte")[:ntest].reshape(ntest, -1).astype(np.float64)
    yte = read_idx("t10k-labels-idx1-ubyte")[:ntest].astype(int)
    mu = xtr.mean(0)
    xtr -= mu
    xte -= mu
    xtr /= np.linalg.norm(xtr, axis=1, keepdims=True)
    xte /= np.maximum(np.linalg.norm(xte, axis=1, keepdims=True), 1e-300)
    return xtr, np.eye(k)[ytr], xte, yte


# ----------------------------------------------------------------------------- models
class Coupled:
    """f = m^-1/2 A^T relu(W x): one hidden layer shared by the k outputs."""

    def __init__(self, W, A):
        self.W, self.A = W, A
        self.m = W.shape[0]

    def mask(self, X):
        return (X @ self.W.T > 0).astype(np.float64)

    def forward(self, X):
        return np.maximum(X @ self.W.T, 0) @ self.A / np.sqrt(self.m)

    def bind(self, X, K):
        """Freeze the masks at the current W: the linearization for this step."""
        self.X, self.K, self.M = X, K, self.mask(X)
        n, d = X.shape
        self.kroute = n <= 2 * d  # K (n^2 m) route when cheaper than J, J^T (2 n m d)

    def G1(self):
        return self.K * (self.M @ self.M.T) / self.m

    def matvec(self, V):
        """G V for V (n, k) or a batch (b, n, k)."""
        B = (V @ self.A.T) * self.M
        if self.kroute:
            C = self.K @ B
        else:
            C = self.X @ (self.X.T @ B)
        return (C * self.M) @ self.A / self.m

    def step(self, g):
        JTg = ((g @ self.A.T) * self.M).T @ self.X / np.sqrt(self.m)
        self.W = self.W - JTg


class Heads:
    """Output c = m_c^-1/2 a_c^T relu(W_c x): a separate hidden layer per output."""

    def __init__(self, Ws, As):
        self.Ws, self.As = list(Ws), list(As)

    def forward(self, X):
        return np.stack([np.maximum(X @ W.T, 0) @ a / np.sqrt(len(a))
                         for W, a in zip(self.Ws, self.As)], 1)

    def bind(self, X, K):
        self.X, self.K = X, K
        self.Ms = [(X @ W.T > 0).astype(np.float64) for W in self.Ws]
        self.grams = {}

    def gram(self, c):
        """G_c = K o (M_c M_c^T) / m_c, formed once per step (a_c^2 = 1)."""
        if c not in self.grams:
            M = self.Ms[c]
            self.grams[c] = self.K * (M @ M.T) / M.shape[1]
        return self.grams[c]

    def step(self, g):
        for c in range(len(self.Ws)):
            a, M = self.As[c], self.Ms[c]
            self.Ws[c] = self.Ws[c] - (np.outer(a, g[:, c]) * M.T) @ self.X / np.sqrt(len(a))


def init_pairs(rng, m, d, k):
    w = rng.standard_normal((m // 2, d))
    a = rng.choice([-1.0, 1.0], (m // 2, k))
    W = np.repeat(w, 2, 0)
    A = np.repeat(a, 2, 0)
    A[1::2] *= -1
    return W, A


def hadamard(p):
    H = np.ones((1, 1))
    while H.shape[0] < p:
        H = np.block([[H, H], [H, -H]])
    return H


# ----------------------------------------------------------------------------- PCG
def pcg(apply_A, apply_P, b, tol=TOL, maxit=MAXIT):
    """PCG from 0 on arrays of any shape; returns x, iterations, Lanczos kappa estimate."""
    x = np.zeros_like(b)
    r = b.copy()
    nb = np.linalg.norm(b)
    if nb == 0:
        return x, 0, 1.0
    z = apply_P(r)
    p = z.copy()
    rz = np.vdot(r, z)
    alphas, betas = [], []
    it = 0
    while np.linalg.norm(r) > tol * nb and it < maxit:
        Ap = apply_A(p)
        alpha = rz / np.vdot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        it += 1
        alphas.append(alpha)
        if np.linalg.norm(r) <= tol * nb:
            break
        z = apply_P(r)
        rz_new = np.vdot(r, z)
        beta = rz_new / rz
        betas.append(beta)
        rz = rz_new
        p = z + beta * p
    return x, it, lanczos_kappa(alphas, betas)


def lanczos_kappa(alphas, betas):
    j = len(alphas)
    if j <= 1:
        return 1.0
    T = np.zeros((j, j))
    for i in range(j):
        T[i, i] = 1 / alphas[i] + (betas[i - 1] / alphas[i - 1] if i > 0 else 0)
        if i + 1 < j:
            T[i, i + 1] = T[i + 1, i] = np.sqrt(betas[i]) / alphas[i]
    th = np.linalg.eigvalsh(T)
    return th[-1] / th[0]


def chol_inv(S):
    """Inverse of the Cholesky factor (NumPy has no triangular solve; same flops order)."""
    return np.linalg.inv(np.linalg.cholesky(S))


# ----------------------------------------------------------------------------- solvers
# Each solver: (model, r, lam, ctx) -> (g, iters, kappa, setup_s, solve_s).  ctx is a dict the
# solver may keep across steps.
def base_setup(model, lam):
    G1 = model.G1()
    n = G1.shape[0]
    Li = chol_inv(G1 + lam * np.eye(n))
    return G1, Li


def solve_a(model, r, lam, ctx):
    t0 = time.perf_counter()
    _, Li = base_setup(model, lam)
    t1 = time.perf_counter()
    g, it, kap = pcg(lambda V: model.matvec(V) + lam * V, lambda V: Li.T @ (Li @ V), r)
    return g, it, kap, t1 - t0, time.perf_counter() - t1


def balancing(apply_P, Z, AZ, E):
    """BNN / A-DEF2-symmetric two-level preconditioner; Z, AZ (q, n, k), E = Z^T A Z."""
    Ei = np.linalg.inv(E)
    q = Z.shape[0]
    Zf, AZf = Z.reshape(q, -1), AZ.reshape(q, -1)

    def apply(V):
        v = V.reshape(-1)
        c = Ei @ (Zf @ v)                   # E^-1 Z^T v
        w = v - AZf.T @ c                  # (I - A Z E^-1 Z^T) v
        y = apply_P(w.reshape(V.shape)).reshape(-1)
        y = y - Zf.T @ (Ei @ (AZf @ y))    # (I - Z E^-1 Z^T A) y
        return (y + Zf.T @ c).reshape(V.shape)
    return apply


def lanczos_ritz(apply_S, shape, steps, rng):
    """Lanczos with full reorthogonalization on a symmetric operator; returns Ritz values,
    Ritz vectors Y (j, *shape) and S Y (exact, from the three-term relation)."""
    N = int(np.prod(shape))
    Q = np.zeros((steps + 1, N))
    q = rng.standard_normal(N)
    Q[0] = q / np.linalg.norm(q)
    al, be = [], []
    j = 0
    for j in range(steps):
        w = apply_S(Q[j].reshape(shape)).reshape(-1)
        a = Q[j] @ w
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        w -= Q[:j + 1].T @ (Q[:j + 1] @ w)
        b = np.linalg.norm(w)
        al.append(a)
        be.append(b)
        Q[j + 1] = w / b
    j = steps
    T = np.diag(al) + np.diag(be[:-1], 1) + np.diag(be[:-1], -1)
    th, Sv = np.linalg.eigh(T)
    Y = Sv.T @ Q[:j]
    SY = th[:, None] * Y + be[-1] * Sv[-1][:, None] * Q[j][None, :]
    return th, Y.reshape((j,) + shape), SY.reshape((j,) + shape)


def make_solve_b_top(q):
    def solve(model, r, lam, ctx):
        t0 = time.perf_counter()
        _, Li = base_setup(model, lam)
        L = np.linalg.inv(Li)
        n, k = r.shape

        def S(V):  # L^-1 (G + lam) L^-T on (n, k)
            U = Li.T @ V
            return Li @ (model.matvec(U) + lam * U)
        th, Y, SY = lanczos_ritz(S, (n, k), 2 * q + 20, ctx.setdefault("rng", np.random.default_rng(5)))
        sel = np.argsort(th)[-q:]
        Z = np.einsum("ij,qjk->qik", Li.T, Y[sel])     # L^-T y
        AZ = np.einsum("ij,qjk->qik", L, SY[sel])      # (G + lam) L^-T y = L S y
        P = balancing(lambda V: Li.T @ (Li @ V), Z, AZ, np.diag(th[sel]))
        t1 = time.perf_counter()
        g, it, kap = pcg(lambda V: model.matvec(V) + lam * V, P, r)
        return g, it, kap, t1 - t0, time.perf_counter() - t1
    return solve


def make_solve_b_nic(s):
    def solve(model, r, lam, ctx):
        t0 = time.perf_counter()
        G1, Li = base_setup(model, lam)
        n, k = r.shape
        ev, U = np.linalg.eigh(G1)
        Us = U[:, -s:]                                  # (n, s)
        M, A, m = model.M, model.A, model.m
        AA = (A[:, :, None] * A[:, None, :]).reshape(m, k * k)
        # G (e_c (x) u_a) at (i, e) = 1/m sum_r A_rc A_re M_ir [K (M o u_a)]_ir
        GZ = np.empty((k, s, n, k))                     # [c, a, i, e]
        for a in range(s):
            Ya = model.K @ (M * Us[:, a:a + 1])         # (n, m)
            GZ[:, a] = (((M * Ya) @ AA) / m).reshape(n, k, k).transpose(1, 0, 2)
        GZ += lam * np.einsum("ia,ce->caie", Us, np.eye(k))
        Z = np.einsum("ia,ce->caie", Us, np.eye(k)).reshape(k * s, n, k)
        GZ = GZ.reshape(k * s, n, k)
        E = np.einsum("pik,qik->pq", Z, GZ)
        E = (E + E.T) / 2
        P = balancing(lambda V: Li.T @ (Li @ V), Z, GZ, E)
        t1 = time.perf_counter()
        g, it, kap = pcg(lambda V: model.matvec(V) + lam * V, P, r)
        return g, it, kap, t1 - t0, time.perf_counter() - t1
    return solve


def solve_c1(model, r, lam, ctx, s=32, chunk=128):
    t0 = time.perf_counter()
    G1 = model.G1()
    n, k = r.shape
    ev, U = np.linalg.eigh(G1)
    rng = ctx.setdefault("rng", np.random.default_rng(7))
    XS = model.X @ rng.standard_normal((model.X.shape[1], s)) / np.sqrt(s)   # (n, s)
    M, A, m = model.M, model.A, model.m
    q = np.empty((n, m))
    for r0 in range(0, m, chunk):
        T = (M[:, r0:r0 + chunk, None] * XS[:, None, :]).reshape(n, -1)       # (n, chunk*s)
        Y = (U.T @ T).reshape(n, -1, s)
        q[:, r0:r0 + chunk] = (Y * Y).sum(2)
    AA = (A[:, :, None] * A[:, None, :]).reshape(m, k * k)
    C = (q @ AA / m).reshape(n, k, k)
    dg = np.sqrt(np.einsum("acc->ac", C))
    C = C / dg[:, :, None] / dg[:, None, :] * (ev + lam)[:, None, None]   # exact diagonal
    Ci = np.linalg.inv(C)
    t1 = time.perf_counter()

    def P(V):
        Vt = U.T @ V
        return U @ np.einsum("ace,ae->ac", Ci, Vt)
    g, it, kap = pcg(lambda V: model.matvec(V) + lam * V, P, r)
    return g, it, kap, t1 - t0, time.perf_counter() - t1


def solve_c2(model, r, lam, ctx):
    t0 = time.perf_counter()
    n, k = r.shape
    A, M, m = model.A, model.M, model.m
    Q = np.linalg.eigh(A.T @ A)[1]
    AQ = A @ Q
    Lis = np.stack([chol_inv(model.K * ((M * AQ[:, c] ** 2) @ M.T) / m + lam * np.eye(n))
                    for c in range(k)])
    t1 = time.perf_counter()

    def P(V):
        W = V @ Q
        out = np.stack([Lis[c].T @ (Lis[c] @ W[:, c]) for c in range(k)], 1)
        return out @ Q.T
    g, it, kap = pcg(lambda V: model.matvec(V) + lam * V, P, r)
    return g, it, kap, t1 - t0, time.perf_counter() - t1


def solve_ref(model, r, lam, ctx):
    """Exact Cholesky of the full nk x nk G (ordering (c, i))."""
    t0 = time.perf_counter()
    n, k = r.shape
    A, M, m, K = model.A, model.M, model.m, model.K
    G = np.empty((k * n, k * n))
    for c in range(k):
        for e in range(c, k):
            B = K * ((M * (A[:, c] * A[:, e])) @ M.T) / m
            G[c * n:(c + 1) * n, e * n:(e + 1) * n] = B
            G[e * n:(e + 1) * n, c * n:(c + 1) * n] = B.T
    G[np.diag_indices(k * n)] += lam
    L = np.linalg.cholesky(G)
    del G
    t1 = time.perf_counter()
    g = block_trsv(L, r.T.reshape(-1), n, lower=True)
    g = block_trsv(L.T, g, n, lower=False)
    return g.reshape(k, n).T, 0, 1.0, t1 - t0, time.perf_counter() - t1


def block_trsv(L, b, nb, lower):
    """Block substitution with a triangular L (NumPy has no trsv; dense solves on the
    diagonal blocks only)."""
    N = b.shape[0]
    y = np.empty_like(b)
    blocks = range(0, N, nb) if lower else range(N - nb, -1, -nb)
    for s in blocks:
        e = s + nb
        rhs = b[s:e] - (L[s:e, :s] @ y[:s] if lower else L[s:e, e:] @ y[e:])
        y[s:e] = np.linalg.solve(L[s:e, s:e], rhs)
    return y


# heads (block-diagonal) solvers: per-block PCG with explicit G_c
def heads_pcg(model, r, lam, Li_of_block):
    n, k = r.shape
    g = np.empty_like(r)
    its, kaps, solve = [], [], 0.0
    for c in range(k):
        Gc = model.gram(c) + lam * np.eye(n)
        Li = Li_of_block(c)
        t = time.perf_counter()
        g[:, c], it, kap = pcg(lambda v: Gc @ v, lambda v: Li.T @ (Li @ v), r[:, c])
        solve += time.perf_counter() - t
        its.append(it)
        kaps.append(kap)
    return g, max(its), max(kaps), solve


def make_solve_heads(mode):
    """mode: 'stale' (step-1 factor), 'mean' (current mean block), 'exact' (one per block)."""
    def solve(model, r, lam, ctx):
        n, k = r.shape
        t0 = time.perf_counter()
        if mode == "exact":
            Lis = [chol_inv(model.gram(c) + lam * np.eye(n)) for c in range(k)]
            t1 = time.perf_counter()
            g = np.stack([Lis[c].T @ (Lis[c] @ r[:, c]) for c in range(k)], 1)
            return g, 0, 1.0, t1 - t0, time.perf_counter() - t1
        if ctx.get("copies") and "Li1" not in ctx:
            # step 1 of the copied model: all blocks are equal, one factor solves all of them
            ctx["Li1"] = Li = chol_inv(model.gram(0) + lam * np.eye(n))
            t1 = time.perf_counter()
            g = Li.T @ (Li @ r)
            return g, 0, 1.0, t1 - t0, time.perf_counter() - t1
        if mode == "stale":
            Li = ctx["Li1"]
        else:
            Gm = sum(model.gram(c) for c in range(k)) / k
            Li = chol_inv(Gm + lam * np.eye(n))
        setup = time.perf_counter() - t0
        # the explicit per-block Grams are part of the setup too
        t0 = time.perf_counter()
        g, it, kap, solve = heads_pcg(model, r, lam, lambda c: Li)
        setup += time.perf_counter() - t0 - solve
        return g, it, kap, setup, solve
    return solve


# ----------------------------------------------------------------------------- driver
def build_model(kind, rng, m, d, k):
    if kind in ("coupled",):
        return Coupled(*init_pairs(rng, m, d, k))
    if kind == "hadamard":
        p = 16
        H = hadamard(p)[:, 1:k + 1]
        w = rng.standard_normal((m // p, d))
        return Coupled(np.repeat(w, p, 0), np.tile(H, (m // p, 1)))
    if kind == "copies":
        W, A = init_pairs(rng, m, d, k)
        return Heads([W.copy() for _ in range(k)], [A[:, c].copy() for c in range(k)])
    if kind == "split":
        W, A = init_pairs(rng, m, d, k)
        pairs = np.array_split(np.arange(m // 2), k)
        idx = [np.sort(np.concatenate([2 * p, 2 * p + 1])) for p in pairs]
        return Heads([W[i] for i in idx], [A[i, c] for c, i in enumerate(idx)])
    raise ValueError(kind)


DIRECTIONS = [
    # name, model kind, solver factory, ctx
    ("a", "coupled", lambda: solve_a, {}),
    ("b-top20", "coupled", lambda: make_solve_b_top(20), {}),
    ("b-top100", "coupled", lambda: make_solve_b_top(100), {}),
    ("b-nic20", "coupled", lambda: make_solve_b_nic(20), {}),
    ("b-nic50", "coupled", lambda: make_solve_b_nic(50), {}),
    ("c1", "coupled", lambda: solve_c1, {}),
    ("c2", "coupled", lambda: solve_c2, {}),
    ("d", "hadamard", lambda: solve_a, {}),
    ("e-stale", "copies", lambda: make_solve_heads("stale"), {"copies": True}),
    ("e-mean", "copies", lambda: make_solve_heads("mean"), {"copies": True}),
    ("e-exact", "copies", lambda: make_solve_heads("exact"), {}),
    ("f-mean", "split", lambda: make_solve_heads("mean"), {}),
    ("f-exact", "split", lambda: make_solve_heads("exact"), {}),
    ("ref", "coupled", lambda: solve_ref, {}),
]


def run(name, kind, solver, ctx, data, args):
    X, Y, Xt, yt = data
    n, d = X.shape
    k = Y.shape[1]
    rng = np.random.default_rng(args.seed)
    model = build_model(kind, rng, args.m, d, k)
    K = X @ X.T
    its, kap1, setups, solves, losses = [], None, [], [], []
    for step in range(args.steps):
        model.bind(X, K)
        f = model.forward(X)
        r = f - Y
        losses.append(0.5 * np.sum(r * r) / n)
        # G_ii = ||x_i||^2 (number of active neurons of i) / width, the same in every block
        Ms = [model.M] if isinstance(model, Coupled) else model.Ms
        lam = 1e-6 * np.mean([np.mean(np.diag(K) * Mc.mean(1)) for Mc in Ms])
        g, it, kap, ts, tv = solver(model, r, lam, ctx)
        its.append(it)
        setups.append(ts)
        solves.append(tv)
        if step == 0:
            kap1 = kap
        model.step(g)
    f = model.forward(X)
    loss = 0.5 * np.sum((f - Y) ** 2) / n
    acc = np.mean(np.argmax(model.forward(Xt), 1) == yt)
    return dict(name=name, its=its, kappa=kap1, loss=loss, losses=losses, acc=acc,
                setup=np.mean(setups), solve=np.mean(solves))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--ntest", type=int, default=2000)
    ap.add_argument("--m", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma-separated direction names or prefixes")
    ap.add_argument("--ref-max", type=int, default=10000, help="run 'ref' only when n k <= this")
    args = ap.parse_args()
    data = load(args.n, args.ntest)
    k = data[1].shape[1]
    want = [w for w in args.only.split(",") if w]
    rows = []
    print("# n=%d ntest=%d m=%d k=%d seed=%d steps=%d threads=%s" % (
        args.n, args.ntest, args.m, k, args.seed, args.steps,
        os.environ.get("OPENBLAS_NUM_THREADS", "default")), file=sys.stderr)
    for name, kind, factory, ctx in DIRECTIONS:
        if want and not any(name == w or name.startswith(w) for w in want):
            continue
        if name == "ref" and args.n * k > args.ref_max:
            continue
        t = time.perf_counter()
        res = run(name, kind, factory(), dict(ctx), data, args)
        rows.append(res)
        print("%-9s its %s kappa1 %.1f loss %.2e acc %.4f losses %s  (%.0f s)" % (
            name, res["its"], res["kappa"], res["loss"], res["acc"],
            " ".join("%.3g" % l for l in res["losses"]), time.perf_counter() - t),
            file=sys.stderr, flush=True)
    print("| direction | PCG its step 1 / 2 / 3 | kappa step 1 | loss after %d | test acc after %d "
          "| setup s/step | solve s/step |" % (args.steps, args.steps))
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %.2e | %.4f | %.2f | %.2f |" % (
            r["name"], " / ".join(map(str, r["its"])),
            "1 (exact)" if r["kappa"] == 1.0 else "%.1f" % r["kappa"],
            r["loss"], r["acc"], r["setup"], r["solve"]))


if __name__ == "__main__":
    main()
