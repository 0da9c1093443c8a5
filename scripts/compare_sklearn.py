#!/usr/bin/env python3
"""compare_sklearn.py — sketchgn with its defaults against scikit-learn's MLP on scikit-learn's
bundled tables (diabetes: regression, breast cancer and wine: classification).

Each table is split 75/25 with train_test_split(random_state=0) and written as CSV (inputs, then
the target as the last column, a header row) under --out. sketchgn runs `train --data train.csv
--test test.csv [--task classify] --device cpu` with every other option at its default (plus
--normalize MODE for each mode in --normalize, and each ';'-separated set of flags in --runs) and
reports the final test score from its JSON log, and with --no-test the same run without --test
(no test-based stop: it ends converged or at the cap) scored by `eval` on the test CSV. scikit-learn's MLPRegressor / MLPClassifier (hidden_layer_sizes=(100,), max_iter=2000,
random_state=0) runs on StandardScaler-scaled inputs. Prints one Markdown table row per run:
data, tool, settings, test score (accuracy or R^2), seconds.

  python3 scripts/compare_sklearn.py [--bin build/sketchgn] [--out /tmp/sgn-tables]
                                     [--normalize default,standard+unit,unit,standard]
                                     [--runs '--ridge 0;--normalize unit --ridge 0'] [--no-test]
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

TABLES = [("diabetes", load_diabetes, False), ("breast-cancer", load_breast_cancer, True),
          ("wine", load_wine, True)]


def write_csv(path, X, y):
    cols = [f"x{j}" for j in range(X.shape[1])] + ["y"]
    data = np.column_stack([X, y])
    np.savetxt(path, data, delimiter=",", header=",".join(cols), comments="", fmt="%.9g")


def run_sketchgn(binary, train, test, classify, extra):
    log = train + ".jsonl"
    cmd = [binary, "train", "--data", train, "--test", test, "--device", "cpu", "--quiet",
           "--log-json", log] + (["--task", "classify"] if classify else []) + extra
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if res.returncode != 0:
        return None, secs, res.stderr.strip()
    rows = [json.loads(line) for line in open(log) if line.strip()]
    # the saved model is the best test step when the patience rule ended the run
    key = "test_acc" if classify else "test_r2"
    score = max(r[key] for r in rows[1:]) if "patience" in rows[-1].get("stop", "") \
        else rows[-1][key]
    return score, secs, f"{len(rows) - 1} steps, stop: {rows[-1].get('stop')}"


def run_sketchgn_no_test(binary, train, test, classify, extra):
    model = train + ".model"
    cmd = [binary, "train", "--data", train, "--device", "cpu", "--quiet", "--save", model] + \
        (["--task", "classify"] if classify else []) + extra
    t0 = time.time()
    res = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    if res.returncode != 0:
        return None, secs, res.stderr.strip()
    ev = subprocess.run([binary, "eval", "--model", model, "--data", test, "--device", "cpu"],
                        capture_output=True, text=True)
    if ev.returncode != 0:
        return None, secs, ev.stderr.strip()
    key = "accuracy" if classify else "r2"
    vals = dict(line.split(None, 1) for line in ev.stdout.splitlines() if " " in line)
    return float(vals[key].split()[0]), secs, "no --test, eval"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/sketchgn")
    ap.add_argument("--out", default="/tmp/sgn-tables")
    ap.add_argument("--normalize", default="default")
    ap.add_argument("--runs", default="", help="';'-separated sets of extra train flags")
    ap.add_argument("--no-test", action="store_true",
                    help="train without --test; score with eval")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print("| data | tool | settings | test score | seconds | notes |")
    print("|---|---|---|---|---|---|")
    for name, loader, classify in TABLES:
        X, y = loader(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
        train, test = (os.path.join(a.out, f"{name}-{p}.csv") for p in ("train", "test"))
        write_csv(train, Xtr, ytr)
        write_csv(test, Xte, yte)
        what = "accuracy" if classify else "R^2"
        sets = [[] if mode == "default" else ["--normalize", mode]
                for mode in a.normalize.split(",") if mode]
        sets += [r.split() for r in a.runs.split(";") if r.strip()]
        for extra in sets:
            score, secs, note = (run_sketchgn_no_test if a.no_test else run_sketchgn)(
                a.bin, train, test, classify, extra)
            s = "failed" if score is None else f"{score:.4f}"
            print(f"| {name} | sketchgn | {' '.join(extra) or 'defaults'} | {what} {s} | "
                  f"{secs:.2f} | {note} |")
        sc = StandardScaler().fit(Xtr)
        mlp = (MLPClassifier if classify else MLPRegressor)(hidden_layer_sizes=(100,),
                                                           max_iter=2000, random_state=0)
        t0 = time.time()
        mlp.fit(sc.transform(Xtr), ytr)
        secs = time.time() - t0
        pred = mlp.predict(sc.transform(Xte))
        score = accuracy_score(yte, pred) if classify else r2_score(yte, pred)
        print(f"| {name} | scikit-learn MLP | StandardScaler, (100,), max_iter 2000 | "
              f"{what} {score:.4f} | {secs:.2f} | |")


if __name__ == "__main__":
    main()
