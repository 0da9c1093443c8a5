"""scikit-learn conformance and safe predictions: check_estimator on both estimators (when
scikit-learn is installed), the shapes scorers expect, predict_proba's temperature, feature names,
non-finite inputs, labels, the tol stop rule, the estimators without scikit-learn, and the import
order against NumPy."""

import os
import re
import subprocess
import sys
import warnings

os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = \
    os.environ.get("SKETCHGN_TEST_THREADS", "1")

import sketchgn  # noqa: E402
from sketchgn import SketchGNClassifier, SketchGNRegressor  # noqa: E402
from sketchgn import _sklearn  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

needs_sklearn = pytest.mark.skipif(not _sklearn.HAVE_SKLEARN, reason="no scikit-learn")
try:
    import pandas as pd
except ImportError:
    pd = None
needs_pandas = pytest.mark.skipif(pd is None, reason="no pandas")

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("SKETCHGN_BIN", os.path.join(ROOT, "build", "sketchgn"))
SMALL = dict(width=64, steps=4, seed=3, device="cpu")


def blobs(n=160, d=4, k=2, seed=0):
    """k well separated classes 0..k-1 in d dimensions."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.standard_normal((n, d)) + 3.0 * np.eye(k, d)[y]
    return X.astype(np.float32), y


# ---- scikit-learn's own checks ----

# Small but not too small: check_classifiers_train wants a training accuracy above 0.83, which
# width 64 reaches in 10 steps on its blobs at any thread count (5 steps does not always).
@needs_sklearn
@pytest.mark.parametrize("cls", [SketchGNRegressor, SketchGNClassifier])
def test_check_estimator_passes(cls):
    from sklearn.utils.estimator_checks import check_estimator
    est = cls(width=64, steps=10, device="cpu")
    failed = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            results = check_estimator(est, on_fail=None)  # scikit-learn >= 1.6
        except TypeError:
            results = None
        if results is not None:
            failed = [f"{r['check_name']}: {r['exception']!r}" for r in results
                      if r["status"] == "failed"]
        else:
            for e, check in check_estimator(est, generate_only=True):
                try:
                    check(e)
                except Exception as ex:  # noqa: BLE001  (collect them all)
                    failed.append(f"{getattr(check, 'func', check).__name__}: {ex!r}")
    assert failed == []


# ---- outputs scorers understand ----

def test_binary_decision_function_and_predict_proba():
    X, y = blobs()
    labels = np.array(["no", "yes"])[y]
    clf = SketchGNClassifier(**SMALL).fit(X, labels)
    F = clf._forward(X)
    dec = clf.decision_function(X)
    assert dec.shape == (len(X),)
    np.testing.assert_array_equal(dec, F[:, 1] - F[:, 0])
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(dec > 0).astype(int)])
    P = clf.predict_proba(X)
    assert P.shape == (len(X), 2) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-12)
    assert 0 < clf.temperature_ < np.inf


def test_temperature_minimizes_the_training_log_loss():
    X, y = blobs(n=150, k=3, seed=1)
    X[:, :2] += np.random.default_rng(2).standard_normal((150, 2)) * 2  # overlap the classes
    clf = SketchGNClassifier(**SMALL).fit(X, y)
    F = clf._forward(X).astype(np.float64)

    def loss(T):
        Z = F / T
        Z -= Z.max(axis=1, keepdims=True)
        return float((np.log(np.exp(Z).sum(axis=1)) - Z[np.arange(len(y)), y]).mean())

    T = clf.temperature_
    assert loss(T) <= min(loss(0.9 * T), loss(1.1 * T))
    assert clf.decision_function(X).shape == (150, 3)


@needs_sklearn
def test_cross_val_scores_are_finite():
    from sklearn.model_selection import cross_val_score
    X, y = blobs(n=120)
    X += np.random.default_rng(3).standard_normal(X.shape).astype(np.float32)  # not separable
    for scoring in ("roc_auc", "neg_log_loss", "accuracy"):
        scores = cross_val_score(SketchGNClassifier(**SMALL), X, y, scoring=scoring, cv=3,
                                 error_score="raise")
        assert np.isfinite(scores).all(), scoring
    scores = cross_val_score(SketchGNRegressor(**SMALL), X, X[:, 0] * 2, cv=3, scoring="r2",
                             error_score="raise")
    assert np.isfinite(scores).all()


# ---- safe predictions ----

def test_non_finite_values_are_refused_at_predict_and_in_y():
    X, y = blobs()
    reg = SketchGNRegressor(**SMALL).fit(X, y.astype(float))
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[7, 2] = bad
        with pytest.raises(ValueError, match=r"Input X contains (NaN|infinity) "
                                             r"\(first at sample 7, column 2\)"):
            reg.predict(Xb)
        yb = y.astype(float)
        yb[5] = bad
        with pytest.raises(ValueError, match=r"Input y contains (NaN|infinity) "
                                             r"\(first at sample 5\)"):
            SketchGNRegressor(**SMALL).fit(X, yb)
    clf = SketchGNClassifier(**SMALL).fit(X, y)
    Xb = X.copy()
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(Xb)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict_proba(Xb)
    Xb[0, 0] = 0
    Xb[3, 1] = np.inf
    with pytest.raises(ValueError, match="Input X contains NaN or infinity.*sample 3, column 1"):
        SketchGNClassifier(**SMALL).fit(Xb, y)


def test_one_dimensional_X_says_reshape():
    X, y = blobs()
    with pytest.raises(ValueError, match="Reshape your data"):
        SketchGNRegressor(**SMALL).fit(X[:, 0], y)
    reg = SketchGNRegressor(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="Reshape your data"):
        reg.predict(X[0])
    assert reg.n_features_in_ == 4 and not hasattr(reg, "feature_names_in_")


@needs_pandas
@pytest.mark.parametrize("cls", [SketchGNRegressor, SketchGNClassifier])
def test_dataframe_columns_are_kept_and_checked(cls):
    X, y = blobs()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = cls(**SMALL).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c", "d"])
    assert est.feature_names_in_.dtype == object and est.n_features_in_ == 4
    with warnings.catch_warnings():  # scikit-learn warns that X has no feature names
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(est.predict(df), est.predict(X))
    with pytest.raises(ValueError, match="order|feature names"):
        est.predict(df[["b", "a", "c", "d"]])
    with pytest.raises(ValueError, match="missing|feature names"):
        est.predict(df[["a", "b", "c"]])
    with pytest.raises(ValueError, match="unseen|feature names"):
        est.predict(df.rename(columns={"d": "e"}))


def test_labels_of_any_kind_map_to_classes():
    X, y = blobs(k=3)
    base = SketchGNClassifier(**SMALL).fit(X, y)
    for labels in (np.array(["cat", "dog", "eel"])[y], np.array([-7, 10, 300])[y],
                   np.array([-1.0, 2.0, 5.0])[y], list(np.array(["x", "y", "z"])[y])):
        clf = SketchGNClassifier(**SMALL).fit(X, labels)
        classes = np.unique(labels)
        np.testing.assert_array_equal(clf.classes_, classes)
        assert clf.loss_curve_ == base.loss_curve_  # labels in the same order: the same 0..K-1
        np.testing.assert_array_equal(clf.predict(X), classes[base.predict(X)])


def test_continuous_y_is_refused_by_the_classifier():
    X, _ = blobs()
    y = np.linspace(0, 1, len(X))
    with pytest.raises(ValueError, match="Unknown label type"):
        SketchGNClassifier(**SMALL).fit(X, y)


def test_y_none_is_refused():
    X, _ = blobs()
    for cls in (SketchGNRegressor, SketchGNClassifier):
        with pytest.raises(ValueError, match="requires y to be passed"):
            cls(**SMALL).fit(X, None)


# ---- solver="auto" and the tol stop rule ----

def test_solver_auto_is_resolved():
    X, y = blobs()
    reg = SketchGNRegressor(width=64, steps=2, device="cpu", solver="auto").fit(X, y)
    assert reg.solver_ in ("gn-exact", "gn-gram", "gn-sketch")
    # a solver named explicitly is the one that runs (auto is the default since it became the CLI's)
    assert SketchGNRegressor(**{**SMALL, "solver": "gn-sketch"}).fit(X, y).solver_ == "gn-sketch"


def test_tol_stops_after_two_small_steps_in_a_row():
    X, y = blobs()
    y = np.sin(X[:, 0]) + X[:, 1]
    full = SketchGNRegressor(width=64, steps=30, device="cpu", solver="gd").fit(X, y)
    assert full.n_iter_ == 30
    curve = np.array(full.loss_curve_)
    small = (curve[:-1] - curve[1:]) < 0.02 * curve[:-1]  # small[i]: step i + 1 was small
    pairs = np.flatnonzero(small[:-1] & small[1:])
    assert len(pairs), "gd should slow down within 30 steps"
    tol = SketchGNRegressor(width=64, steps=30, device="cpu", solver="gd", tol=0.02).fit(X, y)
    assert tol.n_iter_ == pairs[0] + 2  # the second of the first two small steps in a row
    assert tol.loss_curve_ == full.loss_curve_[:tol.n_iter_ + 1]
    assert SketchGNRegressor(width=64, steps=30, device="cpu", solver="gd",
                             tol=0.0).fit(X, y).n_iter_ == 30
    with pytest.raises(ValueError, match="^tol="):
        SketchGNRegressor(tol=-1).fit(X, y)


# ---- without scikit-learn; import order ----

def package_env(**extra):
    """The environment for a child Python that imports this very sketchgn package from /."""
    env = dict(os.environ, **extra)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(sketchgn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [parent, env.get("PYTHONPATH")]))
    return env


def run_python(code):
    env = package_env()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300, cwd="/")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_estimators_work_without_sklearn():
    out = run_python(
        "import sys; sys.modules['sklearn'] = None\n"
        "import numpy as np, sketchgn\n"
        "from sketchgn import _sklearn, SketchGNClassifier, SketchGNRegressor, NotFittedError\n"
        "assert not _sklearn.HAVE_SKLEARN\n"
        "rng = np.random.default_rng(0); X = rng.standard_normal((80, 3)).astype(np.float32)\n"
        "y = np.where(X[:, 0] > 0, 'a', 'b')\n"
        "kw = dict(width=32, steps=3, device='cpu')\n"
        "clf = SketchGNClassifier(**kw).fit(X, y)\n"
        "assert clf.decision_function(X).shape == (80,) and clf.predict_proba(X).shape == (80, 2)\n"
        "assert set(clf.predict(X)) <= {'a', 'b'} and clf.n_features_in_ == 3\n"
        "reg = SketchGNRegressor(**kw).fit(X, X[:, 0])\n"
        "assert reg.predict(X).shape == (80,)\n"
        "def refused(f, pattern, exc=ValueError):\n"
        "    try: f()\n"
        "    except exc as e: assert pattern in str(e), str(e); return\n"
        "    raise AssertionError(pattern)\n"
        "refused(lambda: SketchGNRegressor().predict(X), 'not fitted', NotFittedError)\n"
        "refused(lambda: reg.predict(X[0]), 'Reshape your data')\n"
        "refused(lambda: reg.predict(np.full((2, 3), np.nan)), 'Input X contains NaN')\n"
        "refused(lambda: reg.predict(X[:, :2]), 'X has 2 features, but SketchGNRegressor is "
        "expecting 3')\n"
        "refused(lambda: SketchGNClassifier(**kw).fit(X, X[:, 0]), 'Unknown label type')\n"
        "try:\n"
        "    import pandas as pd\n"
        "except ImportError:\n"
        "    pd = None\n"
        "if pd is not None:\n"
        "    df = pd.DataFrame(X, columns=['a', 'b', 'c'])\n"
        "    reg.fit(df, X[:, 0]); assert list(reg.feature_names_in_) == ['a', 'b', 'c']\n"
        "    refused(lambda: reg.predict(df[['c', 'b', 'a']]), 'same order')\n"
        "print('ok', sketchgn.SketchGNRegressor.__mro__[1].__module__)\n")
    assert out.startswith("ok sketchgn._sklearn")


@pytest.mark.skipif(not os.access(CLI, os.X_OK), reason=f"no CLI binary at {CLI}")
def test_numpy_imported_first():
    """NumPy before sketchgn: with a NumPy that carries its own OpenBLAS (PyPI's wheels) the
    library still gets the CLI's kernels; with one that shares the system OpenBLAS (Debian's),
    the kernels are NumPy's, and fit says so when they are the slow generic ones."""
    info = subprocess.run([CLI, "info"], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(kernels: (\w+)", info)
    if not m:
        pytest.skip("sketchgn info does not name the OpenBLAS kernels")
    env = package_env()
    env.pop("OPENBLAS_CORETYPE", None)
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import numpy as np\n"
            "def blas():\n"
            "    with open('/proc/self/maps') as f:\n"
            "        return {l.split()[-1] for l in f if 'blas' in l}\n"
            "numpy_blas = blas()\n"
            "import sketchgn\n"
            "X = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    sketchgn.SketchGNRegressor(width=16, steps=1, device='cpu').fit(X, X[:, 0])\n"
            "lib_blas = blas()\n"
            "print(sketchgn.blas_kernels(), bool(numpy_blas & lib_blas),\n"
            "      any('Prescott' in str(x.message) for x in w))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env, timeout=300, cwd="/")
    assert r.returncode == 0, r.stderr
    kernels, shared, warned = r.stdout.split()
    if shared == "False":
        assert kernels == m.group(1)
    else:
        assert warned == str(kernels == "Prescott" and m.group(1) != "Prescott")
