#!/usr/bin/env python3
"""plot_scaling.py — reads the CSVs of scripts/scaling.sh (m_sweep.csv, n_sweep.csv, d_sweep.csv
in DIR), prints one least-squares log-log slope of step_ms per solver and sweep, checks the
design's scaling claims, and, when matplotlib is importable, draws per sweep a log-log PNG (one
line and fitted slope per solver) and a stacked bar of the time per phase.

usage: plot_scaling.py DIR [--out DIR]
"""
import argparse
import csv
import math
import os
import sys

SWEEPS = [("m_sweep", "m"), ("n_sweep", "n"), ("d_sweep", "d")]
PHASES = ["forward_ms", "sketch_ms", "precond_ms", "solve_ms", "update_ms"]


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def slope(xs, ys):
    """Least-squares slope of log y on log x."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((a - mx) ** 2 for a in lx)
    if sxx == 0:
        return float("nan")
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sxx


def fixed_of(rows, var):
    """The sizes held fixed in a sweep, as text: 'n=512 d=4'."""
    keys = [k for k in ("n", "m", "d", "k") if k != var]
    vals = {k: sorted({int(r[k]) for r in rows}) for k in keys}
    return " ".join(f"{k}={','.join(map(str, v))}" for k, v in vals.items())


def by_solver(rows, var):
    out = {}
    for r in rows:
        out.setdefault(r["solver"], []).append(r)
    for s in out:
        out[s].sort(key=lambda r: int(r[var]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--out", help="where the PNGs go (default: DIR)")
    args = ap.parse_args()
    out = args.out or args.dir
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
        print("plot_scaling.py: matplotlib missing (scripts/install-deps.sh): slopes only",
              file=sys.stderr)

    slopes = {}
    fixed = {}
    for name, var in SWEEPS:
        path = os.path.join(args.dir, name + ".csv")
        if not os.path.exists(path):
            print(f"plot_scaling.py: {path}: missing, skipped", file=sys.stderr)
            continue
        rows = read_rows(path)
        if not rows:
            continue
        fixed[var] = fixed_of(rows, var)
        groups = by_solver(rows, var)
        print(f"{name}: step time vs {var} at {fixed[var]} ({rows[0]['device']})")
        for s, rs in groups.items():
            xs = [int(r[var]) for r in rs]
            ys = [float(r["step_ms"]) for r in rs]
            if len(xs) >= 2 and min(ys) > 0:
                slopes[(var, s)] = slope(xs, ys)
            pts = ", ".join(f"{x}: {y:.1f} ms" for x, y in zip(xs, ys))
            print(f"  {s:10s} slope {slopes.get((var, s), float('nan')):5.2f}   ({pts})")
        if plt is None:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        for s, rs in groups.items():
            xs = [int(r[var]) for r in rs]
            ys = [float(r["step_ms"]) for r in rs]
            ax.plot(xs, ys, "o-", label=f"{s} (slope {slopes.get((var, s), float('nan')):.2f})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(var)
        ax.set_ylabel("median step time (ms)")
        ax.set_title(f"step time vs {var}, {fixed[var]}, {rows[0]['device']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{name}.png"), dpi=120)
        plt.close(fig)

        # stacked phases: one panel per swept size (its own linear scale), one bar per solver
        solvers = list(groups)
        xs_all = sorted({int(r[var]) for r in rows})
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        fig, axes = plt.subplots(1, len(xs_all), figsize=(2.2 * len(xs_all) + 1.5, 4.2),
                                 squeeze=False)
        for i, x in enumerate(xs_all):
            ax = axes[0][i]
            for j, s in enumerate(solvers):
                r = next((r for r in groups[s] if int(r[var]) == x), None)
                bottom = 0.0
                for p, ph in enumerate(PHASES):
                    h = float(r[ph]) / 1e3 if r else 0.0
                    ax.bar(j, h, 0.8, bottom=bottom, color=colors[p % len(colors)],
                           label=ph[:-3] if i == 0 and j == 0 else None)
                    bottom += h
            ax.set_xticks(range(len(solvers)))
            ax.set_xticklabels([s.replace("gn-", "") for s in solvers], rotation=45, fontsize=8)
            ax.set_title(f"{var}={x}", fontsize=9)
            ax.tick_params(axis="y", labelsize=8)
            if i == 0:
                ax.set_ylabel("seconds per step, by phase")
        fig.legend(loc="upper right", fontsize=8)
        fig.suptitle(f"time per phase, {fixed[var]}, {rows[0]['device']}", fontsize=10)
        fig.tight_layout(rect=(0, 0, 0.88, 0.95))
        fig.savefig(os.path.join(out, f"{name}_phases.png"), dpi=120)
        plt.close(fig)

    # the design's scaling claims (README, Performance)
    print("checks:")
    checks = []
    sk_m = slopes.get(("m", "gn-sketch"))
    if sk_m is not None:
        checks.append((sk_m <= 1.15, f"gn-sketch slope in m {sk_m:.2f} <= 1.15"))
    ex_n = slopes.get(("n", "gn-exact"))
    sk_n = slopes.get(("n", "gn-sketch"))
    if ex_n is not None:
        checks.append((ex_n >= 1.7, f"gn-exact slope in n {ex_n:.2f} >= 1.7 ({fixed.get('n')})"))
    if ex_n is not None and sk_n is not None:
        checks.append((sk_n < ex_n, f"gn-sketch slope in n {sk_n:.2f} < gn-exact's {ex_n:.2f}"))
    for ok, text in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}")
    if plt is not None:
        print(f"plots: {out}/{{m,n,d}}_sweep.png and {{m,n,d}}_sweep_phases.png")


if __name__ == "__main__":
    main()
