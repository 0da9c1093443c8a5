"""Tests of the Python binding: the same losses as the CLI on the same data and seed, input
validation, errors carrying the library's message, pickling, the parameter protocol, and the
README's Python snippet. `make test` runs them with PYTHONPATH=python and SKETCHGN_BIN set."""

import ctypes
import json
import os
import pickle
import re
import shutil
import subprocess
import sys

# The problems here are tiny, where threads only add overhead (100x on a loaded two-core
# machine); results do not depend on the thread count. Set before OpenMP and OpenBLAS load, and
# inherited by the CLI runs. SKETCHGN_TEST_THREADS overrides.
os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = \
    os.environ.get("SKETCHGN_TEST_THREADS", "1")

import sketchgn  # noqa: E402  (before NumPy, so OpenBLAS runs the kernels the CLI runs)
from sketchgn import (NotFittedError, SketchGNClassifier, SketchGNError, SketchGNInputError,
                      SketchGNRegressor)
from sketchgn import _lib

import numpy as np
import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("SKETCHGN_BIN", os.path.join(ROOT, "build", "sketchgn"))
needs_cli = pytest.mark.skipif(not os.access(CLI, os.X_OK), reason=f"no CLI binary at {CLI}")

# Small problems: the machine running `make test` has two cores shared with other jobs.
SMALL = dict(width=256, steps=3, seed=7, device="cpu")


def data(n=120, d=5, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = np.stack([np.sin(2 * X[:, j % d]) + X[:, (j + 1) % d] * X[:, (j + 2) % d]
                  for j in range(k)], axis=1).astype(np.float32)
    return X, Y


def labels_of(X):
    return ((X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)).astype(np.int64)  # classes 0, 1, 2


def cli_train(tmp_path, X, Y, *args):
    """Runs `sketchgn train` on X, Y written as NPY; returns the JSON log's records."""
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Y.npy", Y)
    log = tmp_path / "log.jsonl"
    subprocess.run([CLI, "train", "--data", str(tmp_path / "X.npy"), "--targets",
                    str(tmp_path / "Y.npy"), "--log-json", str(log), "--quiet", *args],
                   check=True)
    return [json.loads(line) for line in log.read_text().splitlines()]


def g9(v):
    """A double as the JSON log prints it (%.9g)."""
    return float(f"{v:.9g}")


# ---- the ctypes structs match the C headers ----

@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_struct_layouts_match_the_headers(tmp_path):
    structs = {"sgn_model": _lib.Model, "sgn_options": _lib.Options,
               "sgn_step_info": _lib.StepInfo, "sgn_prep": _lib.Prep,
               "sgn_model_meta": _lib.ModelMeta, "sgn_dataset": _lib.Dataset}
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "sketchgn.h"',
             '#include "sketchgn_io.h"', 'int main(void) {']
    for cname, py in structs.items():
        lines.append(f'  printf("{cname} size %zu\\n", sizeof({cname}));')
        for field, _ in py._fields_:
            lines.append(f'  printf("{cname} {field} %zu\\n", offsetof({cname}, {field}));')
    lines += ["  return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    subprocess.run(["cc", "-std=c11", "-I", os.path.join(ROOT, "include"), str(src), "-o",
                    str(tmp_path / "layout")], check=True)
    out = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True,
                         text=True).stdout
    want = {}
    for cname, py in structs.items():
        want[f"{cname} size"] = ctypes.sizeof(py)
        for field, _ in py._fields_:
            want[f"{cname} {field}"] = getattr(py, field).offset
    got = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    assert got == want


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_name_kinds_match_the_header(tmp_path):
    src = tmp_path / "kinds.c"
    src.write_text('#include <stdio.h>\n#include "sketchgn.h"\nint main(void) {\n'
                   + "".join(f'  printf("{kind} %d\\n", (int)SGN_NAMES_{kind.upper()});\n'
                             for kind in _lib.NAME_KINDS)
                   + "  return 0;\n}\n")
    subprocess.run(["cc", "-std=c11", "-I", os.path.join(ROOT, "include"), str(src), "-o",
                    str(tmp_path / "kinds")], check=True)
    out = subprocess.run([str(tmp_path / "kinds")], check=True, capture_output=True,
                         text=True).stdout
    assert {k: int(v) for k, v in (line.split() for line in out.splitlines())} == _lib.NAME_KINDS


def test_names_come_from_the_library():
    assert list(_lib.names("solver")) == ["gd", "adam", "gn-exact", "gn-cg", "gn-sketch",
                                          "gn-gram", "auto"]
    assert _lib.names("sketch")["countsketch"] == 3
    assert _lib.name_of("normalize", 2) == "standard"
    assert _lib.names("normalize")["sphere"] == 4 and _lib.names("normalize")["standard+unit"] == 3
    with pytest.raises(ValueError, match="expected one of 'srht', 'gaussian', 'srft'"):
        SketchGNRegressor(sketch="fft", device="cpu").fit(*data())


# ---- the binding uses the public API only ----

def public_functions():
    """The functions declared (SGN_API) in the public headers."""
    names = set()
    for h in ("sketchgn.h", "sketchgn_io.h"):
        with open(os.path.join(ROOT, "include", h)) as f:
            text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        names |= set(re.findall(r"\bSGN_API\b[^;(]*?\b(sgn_\w+)\s*\(", text))
    return names


@pytest.mark.skipif(shutil.which("nm") is None, reason="no nm")
def test_binding_calls_only_exported_public_functions():
    exported = set()
    out = subprocess.run(["nm", "-D", "--defined-only", _lib.library_path()], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if len(line.split()) == 3:
            exported.add(line.split()[2].split("@")[0])
    public = public_functions()
    assert "sgn_session_create" in public and "sgn_model_load" in public
    called = set(_lib._PROTOTYPES)
    assert called - public == set(), "the binding declares functions outside the public headers"
    assert called - exported == set(), "the binding calls functions the library does not export"


# ---- the same losses as the CLI ----

@needs_cli
def test_blas_kernels_match_the_cli():
    info = subprocess.run([CLI, "info"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(kernels: (\w+)", info)
    if not m:
        pytest.skip("sketchgn info does not name the OpenBLAS kernels")
    assert sketchgn.blas_kernels() == m.group(1)


@needs_cli
def test_regressor_losses_match_the_cli(tmp_path):
    X, Y = data(k=2)
    log = cli_train(tmp_path, X, Y, "--width", "256", "--steps", "3", "--seed", "7",
                    "--device", "cpu", "--save", str(tmp_path / "m.sgn"))
    reg = SketchGNRegressor(**SMALL).fit(X, Y)
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]
    assert g9(reg.loss_) == log[-1]["loss"]
    assert reg.n_iter_ == 3 and reg.backend_ == "cpu"
    assert reg.loss_curve_[-1] < 0.5 * reg.loss_curve_[0]

    # the CLI's saved model predicts what the estimator predicts
    subprocess.run([CLI, "predict", "--model", str(tmp_path / "m.sgn"), "--data",
                    str(tmp_path / "X.npy"), "--targets", str(tmp_path / "Y.npy"), "--out",
                    str(tmp_path / "p.npy"), "--device", "cpu"], check=True)
    np.testing.assert_allclose(reg.predict(X), np.load(tmp_path / "p.npy"), rtol=1e-5, atol=1e-6)
    cli_model = SketchGNRegressor.load(tmp_path / "m.sgn")
    np.testing.assert_array_equal(cli_model.W_, reg.W_)
    np.testing.assert_array_equal(cli_model.predict(X), reg.predict(X))


@needs_cli
def test_regressor_options_match_the_cli(tmp_path):
    X, Y = data()
    log = cli_train(tmp_path, X, Y[:, 0], "--width", "128", "--steps", "2", "--seed", "3",
                    "--device", "cpu", "--solver", "gn-cg", "--normalize", "standard",
                    "--bias", "--damping", "1e-4", "--cg-tol", "1e-4", "--init", "gaussian",
                    "--ridge", "0.3")
    reg = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu", solver="gn-cg",
                            normalize="standard", bias=True, damping=1e-4, cg_tol=1e-4,
                            init="gaussian", ridge=0.3).fit(X, Y[:, 0])
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]
    assert reg.predict(X).shape == (X.shape[0],)
    assert reg.ridge_ == 0.3


def test_ridge_auto_is_chosen_and_bad_ridges_are_refused():
    X, Y = data()
    reg = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu").fit(X, Y[:, 0])
    assert reg.ridge_ > 0  # leave-one-out's choice (the grid's least value is 1e-5)
    assert SketchGNRegressor(width=128, steps=1, device="cpu", ridge=0).fit(X, Y[:, 0]).ridge_ == 0
    for bad in (-1, float("nan"), "some", True):
        with pytest.raises(ValueError, match="ridge"):
            SketchGNRegressor(ridge=bad).fit(X, Y[:, 0])


@needs_cli
def test_precision_matches_the_cli(tmp_path):
    X, Y = data()
    log = cli_train(tmp_path, X, Y[:, 0], "--width", "128", "--steps", "2", "--seed", "3",
                    "--device", "cpu", "--solver", "gn-sketch", "--precision", "bf16")
    reg = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu", solver="gn-sketch",
                            precision="bf16").fit(X, Y[:, 0])
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]
    with pytest.raises(ValueError, match="precision"):
        SketchGNRegressor(precision="fp16").fit(X, Y[:, 0])


@needs_cli
def test_product_precision_matches_the_cli(tmp_path):
    X, Y = data()
    log = cli_train(tmp_path, X, Y[:, 0], "--width", "128", "--steps", "2", "--seed", "3",
                    "--device", "cpu", "--solver", "gn-sketch", "--product-precision", "bf16")
    reg = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu", solver="gn-sketch",
                            product_precision="bf16").fit(X, Y[:, 0])
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]
    fp32 = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu", solver="gn-sketch",
                             product_precision="fp32").fit(X, Y[:, 0])
    assert fp32.loss_curve_ != reg.loss_curve_  # the rounding shows
    for bad in ("fp64", "fp16"):
        with pytest.raises(ValueError, match="product_precision"):
            SketchGNRegressor(product_precision=bad).fit(X, Y[:, 0])


@needs_cli
@pytest.mark.parametrize("sketch", ["srft", "countsketch"])
def test_fft_sketches_match_the_cli(tmp_path, sketch):
    X, Y = data()
    log = cli_train(tmp_path, X, Y[:, 0], "--width", "128", "--steps", "2", "--seed", "3",
                    "--device", "cpu", "--solver", "gn-sketch", "--sketch", sketch)
    reg = SketchGNRegressor(width=128, steps=2, seed=3, device="cpu", solver="gn-sketch",
                            sketch=sketch).fit(X, Y[:, 0])
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]


@needs_cli
def test_classifier_losses_match_the_cli(tmp_path):
    X, _ = data(n=150)
    y = labels_of(X)
    log = cli_train(tmp_path, X, y, "--task", "classify", "--width", "256", "--steps", "3",
                    "--seed", "7", "--device", "cpu")
    clf = SketchGNClassifier(**SMALL).fit(X, y)
    assert [g9(v) for v in clf.loss_curve_] == [r["loss"] for r in log]
    assert list(clf.classes_) == [0, 1, 2]
    assert abs(clf.score(X, y) - log[-1]["train_acc"]) <= 1.0 / len(y)

    # arbitrary labels map to 0..K-1 in sorted order: the same network
    names = np.array(["cat", "dog", "eel"])[y]
    clf2 = SketchGNClassifier(**SMALL).fit(X, names)
    assert clf2.loss_curve_ == clf.loss_curve_
    np.testing.assert_array_equal(clf2.predict(X), np.array(["cat", "dog", "eel"])[clf.predict(X)])


@needs_cli
def test_model_files_work_both_ways(tmp_path):
    X, _ = data(n=100)
    y = labels_of(X)
    clf = SketchGNClassifier(**SMALL).fit(X, y)
    clf.save(tmp_path / "py.sgn")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    out = subprocess.run([CLI, "eval", "--model", str(tmp_path / "py.sgn"), "--data",
                          str(tmp_path / "X.npy"), "--targets", str(tmp_path / "y.npy"),
                          "--device", "cpu"], check=True, capture_output=True, text=True).stdout
    acc = float(re.search(r"accuracy ([0-9.]+)", out).group(1))
    assert abs(acc - clf.score(X, y)) < 1e-6
    back = SketchGNClassifier.load(tmp_path / "py.sgn")
    np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
    with pytest.raises(SketchGNInputError, match="classification model"):
        SketchGNRegressor.load(tmp_path / "py.sgn")

    X, Y = data()
    reg = SketchGNRegressor(normalize="standard", bias=True, **SMALL).fit(X, Y[:, 0])
    reg.save(tmp_path / "reg.sgn")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "t.npy", Y[:, 0])
    out = subprocess.run([CLI, "eval", "--model", str(tmp_path / "reg.sgn"), "--data",
                          str(tmp_path / "X.npy"), "--targets", str(tmp_path / "t.npy"),
                          "--device", "cpu"], check=True, capture_output=True, text=True).stdout
    assert float(re.search(r"loss (\S+)", out).group(1)) == pytest.approx(reg.loss_, rel=1e-5)
    back = SketchGNRegressor.load(tmp_path / "reg.sgn")
    assert back.normalize == "standard" and back.bias and back.width == 256
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))


# ---- training behaviour ----

def test_steps_and_target_rel_stop_training():
    X, Y = data()
    assert SketchGNRegressor(width=64, steps=0, device="cpu").fit(X, Y).n_iter_ == 0
    reg = SketchGNRegressor(width=256, steps=20, target_rel=0.5, device="cpu").fit(X, Y)
    assert reg.loss_ <= 0.5 * reg.loss_curve_[0]
    assert reg.loss_curve_[-2] > 0.5 * reg.loss_curve_[0]  # stopped at the first step below
    reg = SketchGNRegressor(width=64, steps=20, time_limit=1e-9, device="cpu").fit(X, Y)
    assert reg.n_iter_ == 1


def test_verbose_prints_each_step(capsys):
    X, Y = data()
    SketchGNRegressor(width=64, steps=2, device="cpu", verbose=True).fit(X, Y)
    err = capsys.readouterr().err
    assert re.search(r"step +0 +loss", err) and re.search(r"step +2 +loss .* cg", err)
    SketchGNRegressor(width=64, steps=1, device="cpu").fit(X, Y)
    assert capsys.readouterr().err == ""


def test_score_is_r2():
    X, Y = data(k=2)
    reg = SketchGNRegressor(width=128, steps=2, device="cpu").fit(X, Y)
    Y, P = Y.astype(np.float64), reg.predict(X).astype(np.float64)
    r2 = 1 - ((Y - P) ** 2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)
    assert reg.score(X, Y) == pytest.approx(r2.mean(), rel=1e-9)


# ---- regression targets: standardized for training, predicted in y's units ----

def affine_data(a=1.0, b=0.0, n=128):
    """A learnable task whose targets a t + b are exact in float32 for a a power of two: t a
    multiple of 2^-10 below 2^3 (as tests/test_workflow.c's)."""
    X, Y = data(n=n, d=3)
    t = np.round((np.sin(3 * X[:, 0]) + X[:, 1] * X[:, 2]).astype(np.float64) * 1024) / 1024
    y = a * t + b
    assert (y.astype(np.float32).astype(np.float64) == y).all()
    return X, y


def test_regressor_predicts_mean_plus_scale_times_the_output():
    X, y = affine_data(50.0, 1000.0)
    reg = SketchGNRegressor(width=64, steps=3, device="cpu").fit(X, y)
    y32 = y.astype(np.float32).astype(np.float64)
    assert reg.target_mean_.shape == (1,) and reg.target_scale_.shape == (1,)
    assert abs(reg.target_mean_[0] - y32.mean()) <= 1e-12 * (abs(y32.mean()) + y32.std())
    assert abs(reg.target_scale_[0] - y32.std()) <= 1e-12 * y32.std()
    f = reg._outputs(X)[:, 0].astype(np.float64)  # the network's raw outputs
    want = reg.target_mean_[0] + reg.target_scale_[0] * f
    P = reg.predict(X)
    # one rounding of mean + scale f to float32: 2^-24 (|mean| + scale |f|), asserted with 2x
    assert (np.abs(P - want) <= 2.0 ** -23 * (abs(reg.target_mean_[0])
                                              + reg.target_scale_[0] * np.abs(f))).all()
    assert reg.loss_curve_[0] == pytest.approx(0.5, rel=1e-6)  # f = 0: half the mean of z^2
    assert reg.score(X, y) > 0  # better than the mean after 3 steps
    # the same numbers from the CLI: the file carries the statistics both ways
    raw = SketchGNRegressor(width=64, steps=3, device="cpu", target_scale="none").fit(X, y)
    assert raw.target_mean_ is None and raw.loss_curve_[0] == pytest.approx(
        0.5 * (y32 ** 2).mean(), rel=1e-6)


def test_regressor_is_affine_equivariant():
    """Trained on a y + b (a a power of two, everything exact as argued in
    tests/test_workflow.c), the network is the same and the predictions are a P + b up to
    their rounding to float32: |P' - (a P + b)| <= 2^-24 (|P'| + a |P|), asserted with 2x."""
    a, b = 4.0, -1000.0
    X, y = affine_data()
    _, y2 = affine_data(a, b)
    r1 = SketchGNRegressor(width=64, steps=3, device="cpu").fit(X, y)
    r2 = SketchGNRegressor(width=64, steps=3, device="cpu").fit(X, y2)
    np.testing.assert_array_equal(r1.W_, r2.W_)
    assert r2.target_mean_[0] == a * r1.target_mean_[0] + b
    assert r2.target_scale_[0] == a * r1.target_scale_[0]
    P1, P2 = r1.predict(X), r2.predict(X)
    assert (np.abs(P2 - (a * P1 + b)) <= 2.0 ** -23 * (np.abs(P2) + a * np.abs(P1))).all()
    assert r2.score(X, y2) == pytest.approx(r1.score(X, y), abs=1e-6)


@needs_cli
def test_target_statistics_travel_through_model_files(tmp_path):
    X, y = affine_data(50.0, 1000.0)
    log = cli_train(tmp_path, X, y.astype(np.float32), "--width", "64", "--steps", "3",
                    "--device", "cpu", "--save", str(tmp_path / "cli.sgn"))
    reg = SketchGNRegressor(width=64, steps=3, device="cpu").fit(X, y)
    assert [g9(v) for v in reg.loss_curve_] == [r["loss"] for r in log]
    cli_model = SketchGNRegressor.load(tmp_path / "cli.sgn")
    assert cli_model.target_scale == "standard"
    np.testing.assert_array_equal(cli_model.target_mean_, reg.target_mean_)
    np.testing.assert_array_equal(cli_model.target_scale_, reg.target_scale_)
    np.testing.assert_array_equal(cli_model.predict(X), reg.predict(X))
    reg.save(tmp_path / "py.sgn")
    subprocess.run([CLI, "predict", "--model", str(tmp_path / "py.sgn"), "--data",
                    str(tmp_path / "X.npy"), "--out", str(tmp_path / "p.npy"), "--device", "cpu"],
                   check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy")[:, 0], reg.predict(X))
    back = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(back.target_mean_, reg.target_mean_)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    # an unscaled model stays unscaled through a file
    raw = SketchGNRegressor(width=64, steps=1, device="cpu", target_scale="none").fit(X, y)
    raw.save(tmp_path / "raw.sgn")
    again = SketchGNRegressor.load(tmp_path / "raw.sgn")
    assert again.target_scale == "none" and again.target_mean_ is None
    np.testing.assert_array_equal(again.predict(X), raw.predict(X))


def test_classifier_refuses_target_scaling_off():
    X, _ = data()
    with pytest.raises(ValueError, match="^target_scale='none': only for SketchGNRegressor"):
        SketchGNClassifier(width=16, target_scale="none", device="cpu").fit(X, labels_of(X))
    clf = SketchGNClassifier(width=16, steps=1, device="cpu").fit(X, labels_of(X))
    assert clf.target_mean_ is None


# ---- separate outputs ----

def separate_pattern(A):
    """Whether A (m, k) is sgn_model_create_separate's: each row +-sqrt(k) in one column, 0 in
    the others, every column owning m / k rows."""
    m, k = A.shape
    nonzero = A != 0
    return bool((nonzero.sum(axis=1) == 1).all() and (nonzero.sum(axis=0) == m // k).all()
                and np.allclose(np.abs(A[nonzero]), np.sqrt(k)))


@pytest.mark.parametrize("solver", ["gn-gram", "gn-sketch"])
def test_separate_outputs_classifier_fits_predicts_and_round_trips(tmp_path, solver):
    X, _ = data(n=150)
    y = labels_of(X)
    clf = SketchGNClassifier(width=64, steps=3, seed=7, device="cpu", solver=solver,
                             outputs="separate").fit(X, y)
    assert clf.outputs_ == "separate" and clf.solver_ == solver
    # W_ (m, d_in + 1): the default normalization, sphere, appends one constant coordinate
    assert clf.W_.shape == (3 * 64, 6) and clf.A_.shape == (3 * 64, 3) and separate_pattern(clf.A_)
    model = clf._model_struct()
    assert _lib.lib().sgn_model_is_separate(ctypes.byref(model)) == 1
    assert clf.loss_ < 0.5 * clf.loss_curve_[0] and clf.score(X, y) > 0.8
    assert clf.predict(X).shape == (150,) and clf.decision_function(X).shape == (150, 3)

    clf.save(tmp_path / "sep.sgn")
    back = SketchGNClassifier.load(tmp_path / "sep.sgn")
    assert back.outputs_ == "separate" and back.outputs == "separate" and back.width == 64
    np.testing.assert_array_equal(back.A_, clf.A_)
    np.testing.assert_array_equal(back.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    again = pickle.loads(pickle.dumps(clf))
    assert again.get_params() == clf.get_params() and again.outputs_ == "separate"
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


@needs_cli
def test_separate_outputs_match_the_cli(tmp_path):
    X, _ = data(n=150)
    y = labels_of(X)
    log = cli_train(tmp_path, X, y, "--task", "classify", "--width", "64", "--steps", "3",
                    "--seed", "7", "--device", "cpu", "--solver", "gn-sketch", "--outputs",
                    "separate", "--save", str(tmp_path / "cli.sgn"))
    clf = SketchGNClassifier(width=64, steps=3, seed=7, device="cpu", solver="gn-sketch",
                             outputs="separate").fit(X, y)
    assert [g9(v) for v in clf.loss_curve_] == [r["loss"] for r in log]
    cli_model = SketchGNClassifier.load(tmp_path / "cli.sgn")
    assert cli_model.outputs_ == "separate" and cli_model.width == 64
    np.testing.assert_array_equal(cli_model.W_, clf.W_)
    np.testing.assert_array_equal(cli_model.predict(X), clf.predict(X))

    # and the CLI reads the binding's separate model
    clf.save(tmp_path / "py.sgn")
    out = subprocess.run([CLI, "eval", "--model", str(tmp_path / "py.sgn"), "--data",
                          str(tmp_path / "X.npy"), "--targets", str(tmp_path / "Y.npy"),
                          "--device", "cpu"], check=True, capture_output=True, text=True).stdout
    assert abs(float(re.search(r"accuracy ([0-9.]+)", out).group(1)) - clf.score(X, y)) < 1e-6


@pytest.mark.parametrize("cls, k, params, want", [
    (SketchGNClassifier, 3, dict(solver="gn-gram"), "separate"),
    (SketchGNClassifier, 3, dict(solver="auto"), "separate"),
    (SketchGNClassifier, 3, dict(solver="adam"), "shared"),
    (SketchGNClassifier, 3, dict(solver="gn-sketch"), "shared"),
    (SketchGNClassifier, 3, dict(solver="gn-gram", width=96), "shared"),  # not a multiple of 64
    (SketchGNClassifier, 3, dict(solver="gn-gram", outputs="shared"), "shared"),
    (SketchGNClassifier, 3, dict(solver="adam", outputs="separate"), "separate"),
    (SketchGNRegressor, 2, dict(solver="gn-gram"), "separate"),
    (SketchGNRegressor, 1, dict(solver="gn-gram"), "shared"),
    (SketchGNRegressor, 1, dict(solver="gn-gram", outputs="separate"), "shared"),  # k = 1
])
def test_outputs_auto_follows_the_cli_rule(cls, k, params, want):
    X, Y = data(k=k)
    y = labels_of(X) if cls is SketchGNClassifier else Y
    est = cls(**{"width": 64, "steps": 0, "device": "cpu", **params}).fit(X, y)
    assert est.outputs_ == want
    assert est.W_.shape[0] == est.width * (k if want == "separate" else 1)
    model = est._model_struct()
    assert _lib.lib().sgn_model_is_separate(ctypes.byref(model)) == (want == "separate")


def test_separate_outputs_errors():
    X, _ = data()
    y = labels_of(X)
    with pytest.raises(ValueError, match="^outputs='both': expected one of 'auto', 'shared', "
                                         "'separate'"):
        SketchGNClassifier(outputs="both", device="cpu").fit(X, y)
    with pytest.raises(SketchGNInputError, match="solver='gn-exact'.*outputs='separate'"):
        SketchGNClassifier(width=64, solver="gn-exact", outputs="separate",
                           device="cpu").fit(X, y)
    # auto with gn-exact is shared, which gn-exact trains
    assert SketchGNClassifier(width=64, steps=1, solver="gn-exact",
                              device="cpu").fit(X, y).outputs_ == "shared"
    with pytest.raises(SketchGNInputError, match="multiple of 64"):
        SketchGNClassifier(width=100, outputs="separate", device="cpu").fit(X, y)


def test_verbose_names_separate_outputs(capsys):
    X, _ = data()
    SketchGNClassifier(width=64, steps=0, device="cpu", solver="gn-gram",
                       verbose=True).fit(X, labels_of(X))
    assert "k=3  width 64 per output, separate outputs (192 neurons)  solver gn-gram" in \
        capsys.readouterr().err
    SketchGNClassifier(width=64, steps=0, device="cpu", solver="adam",
                       verbose=True).fit(X, labels_of(X))
    assert "k=3  width 64  solver adam" in capsys.readouterr().err


# ---- input validation ----

def test_float32_c_order_input_is_not_copied():
    from sketchgn.estimators import _matrix
    X, _ = data()
    assert _matrix(X) is X
    assert _matrix(X.astype(np.float64)).dtype == np.float32
    assert _matrix(np.asfortranarray(X)).flags.c_contiguous


@pytest.mark.parametrize("X, message", [
    (np.zeros(10, np.float32), "2-D"),
    (np.zeros((2, 3, 4), np.float32), "2-D"),
    (np.zeros((0, 3), np.float32), "at least one sample"),
    (np.array([["a", "b"], ["c", "d"]]), "real numeric"),
    (np.ones((4, 2), np.complex64), "real numeric"),
])
def test_bad_X_is_a_value_error(X, message):
    with pytest.raises(ValueError, match=message):
        SketchGNRegressor(width=8, steps=1, device="cpu").fit(X, np.zeros(len(X)))


def test_bad_y_is_a_value_error():
    X, Y = data()
    with pytest.raises(ValueError, match="expected 120 rows"):
        SketchGNRegressor(width=8, device="cpu").fit(X, Y[:-1])
    with pytest.raises(ValueError, match=r"\(n,\) or \(n, k\)"):
        SketchGNRegressor(width=8, device="cpu").fit(X, Y.reshape(-1, 1, 1))
    with pytest.raises(ValueError, match="two classes"):
        SketchGNClassifier(width=8, device="cpu").fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="1-D array of labels"):
        SketchGNClassifier(width=8, device="cpu").fit(X, np.zeros((len(X), 2)))


def test_predict_checks_the_features_and_the_fit():
    X, Y = data()
    with pytest.raises(NotFittedError):
        SketchGNRegressor().predict(X)
    reg = SketchGNRegressor(width=16, steps=1, device="cpu").fit(X, Y)
    with pytest.raises(ValueError, match="has 4 features, the model was fitted with 5"):
        reg.predict(X[:, :4])


@pytest.mark.parametrize("params, name", [
    (dict(solver="newton"), "solver"), (dict(width=0), "width"), (dict(steps=-1), "steps"),
    (dict(cg_tol=1.5), "cg_tol"), (dict(device="tpu"), "device"), (dict(lr=0), "lr"),
    (dict(normalize="l2"), "normalize"), (dict(seed=-1), "seed"), (dict(width=2.5), "width"),
    (dict(outputs="per-class"), "outputs"), (dict(outputs=None), "outputs"),
    (dict(target_scale="minmax"), "target_scale"),
])
def test_bad_parameters_name_themselves(params, name):
    X, Y = data()
    with pytest.raises(ValueError, match=f"^{name}="):
        SketchGNRegressor(**params).fit(X, Y)


# ---- errors carry the library's message ----

def test_library_errors_carry_its_message():
    X, Y = data()
    X[3, 1] = np.nan
    with pytest.raises(SketchGNInputError, match="non-finite value at sample 3, column 1") as e:
        SketchGNRegressor(width=16, device="cpu").fit(X, Y)
    assert isinstance(e.value, ValueError) and isinstance(e.value, SketchGNError)
    assert "non-finite value" in _lib.last_error()

    X, Y = data()
    with pytest.raises(SketchGNInputError, match="symmetric initialization needs an even width"):
        SketchGNRegressor(width=15, device="cpu").fit(X, Y)


def test_missing_gpu_is_reported():
    X, Y = data()
    try:
        SketchGNRegressor(width=16, steps=1, device="gpu").fit(X, Y)
    except SketchGNError as e:
        assert "gpu" in str(e).lower() or "cuda" in str(e).lower()
    # else a GPU answered and trained: nothing to check


# ---- pickling and parameters ----

@pytest.mark.parametrize("cls", [SketchGNRegressor, SketchGNClassifier])
def test_pickle_round_trip_predicts_identically(cls):
    X, Y = data()
    y = labels_of(X) if cls is SketchGNClassifier else Y[:, 0]
    est = cls(width=64, steps=2, normalize="standard", bias=True, device="cpu").fit(X, y)
    state = est.__getstate__()
    assert isinstance(state["_model_bytes"], bytes) and "W_" not in state
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.W_, est.W_)
    assert back.get_params() == est.get_params() and back.loss_curve_ == est.loss_curve_
    unfitted = pickle.loads(pickle.dumps(cls(width=32)))
    assert unfitted.width == 32 and not hasattr(unfitted, "W_")


def test_get_params_and_set_params():
    reg = SketchGNRegressor(width=64, solver="gn-exact")
    params = reg.get_params()
    assert params["width"] == 64 and params["solver"] == "gn-exact" and params["seed"] == 1
    assert set(params) >= {"width", "solver", "sketch", "steps", "damping", "device", "seed", "lr",
                           "cg_tol", "target_rel", "normalize", "verbose"}
    assert reg.set_params(width=32, steps=5) is reg and reg.width == 32 and reg.steps == 5
    with pytest.raises(ValueError, match="invalid parameter 'widht'"):
        reg.set_params(widht=3)
    clone = type(reg)(**reg.get_params())
    assert clone.get_params() == reg.get_params()
    assert repr(reg) == "SketchGNRegressor(solver='gn-exact', steps=5, width=32)"


# ---- the README's Python snippet ----

def readme_block(heading, lang):
    for name in ("README.md", "docs_snippets.md"):
        path = os.path.join(ROOT, name)
        if os.path.exists(path):
            text = open(path).read()
            if f"## {heading}" in text:
                section = text.split(f"## {heading}", 1)[1]
                return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)
    pytest.skip(f"no '## {heading}' section in README.md or docs_snippets.md")


def test_readme_python_snippet_runs(tmp_path):
    code = readme_block("Use from Python", "python")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "R^2" in r.stdout and "accuracy" in r.stdout and "error:" in r.stdout


# ---- data through the library's loaders ----

def test_load_data_reads_specs_as_the_cli_does():
    X, y = sketchgn.load_data("synth:n=50,d=6,k=2,seed=3")
    assert X.shape == (50, 6) and X.dtype == np.float32 and y.shape == (50, 2)
    X1, y1 = sketchgn.load_data("synth:n=50,d=6,seed=3")
    assert y1.shape == (50,)
    with pytest.raises(SketchGNInputError, match="load_data: .*nope"):
        sketchgn.load_data("nope.csv")


def fashion_mnist_present():
    folder = os.environ.get("SKETCHGN_DATA", "/usr/share/datasets/fashion-mnist")
    return os.path.exists(os.path.join(folder, "train-labels-idx1-ubyte.gz"))


@needs_cli
@pytest.mark.skipif(not fashion_mnist_present(), reason="no Fashion-MNIST files")
def test_fashion_mnist_test_accuracy_matches_the_cli(tmp_path):
    train, test = "fashion-mnist:train,n=300", "fashion-mnist:test,n=1000"
    log = tmp_path / "fm.jsonl"
    subprocess.run([CLI, "train", "--data", train, "--test", test, "--task", "classify",
                    "--width", "256", "--steps", "2", "--device", "cpu", "--quiet",
                    "--log-json", str(log)], check=True)
    cli = json.loads(log.read_text().splitlines()[-1])
    X, y = sketchgn.load_data(train)
    Xt, yt = sketchgn.load_data(test)
    assert y.dtype == np.int64 and X.shape == (300, 784)
    clf = SketchGNClassifier(width=256, steps=2, device="cpu").fit(X, y)
    assert g9(clf.loss_) == cli["loss"]
    assert abs(clf.score(Xt, yt) - cli["test_acc"]) <= 0.005
