"""SketchGNRegressor and SketchGNClassifier: scikit-learn style estimators over libsketchgn.

fit() runs what `sketchgn train` runs, through the same library calls: the preprocessing
(sgn_prep_fit on the training inputs, then sgn_prep_apply; for a regression sgn_prep_fit_targets
and sgn_prep_targets_apply on its targets, and sgn_prep_targets_undo on its outputs), the model
(sgn_model_create with the seed, or sgn_model_create_separate by the rule of the CLI's
--outputs), the options and the step loop with its stopping rules. The same data, options and
seed therefore give the CLI's losses bit for bit. The fitted network lives in NumPy arrays (W_,
A_, prep_mean_, prep_scale_, target_mean_, target_scale_); a pickle carries it as the bytes of a
sketchgn model file."""

import inspect
import os
import sys
import tempfile
from ctypes import POINTER, byref

import numpy as np

from . import _lib
from ._lib import (Model, ModelMeta, Prep, SketchGNInputError, StepInfo, check, check_ptr, dptr,
                   fptr)
from ._sklearn import (HAVE_TAGS, BaseEstimator, ClassifierMixin, NotFittedError,
                       RegressorMixin, as_float32, assert_finite, check_fitted, check_rows,
                       check_X, check_y_labels, check_y_regression, precheck_X)

# the CLI's loss floor (cli/train.c LOSS_FLOOR): a run stops at this fraction of its step-0 loss
LOSS_FLOOR = 1e-10

# the CLI's --outputs choices (cli/train.c): with k > 1 outputs, one hidden layer shared by all
# ("shared") or one of `width` neurons per output ("separate"); "auto" picks as the CLI does
OUTPUTS = ("auto", "shared", "separate")

# the CLI's --target-scale choices: a regression trains on its targets standardized per column
# ("standard", its outputs mapped back) or on the targets as they are ("none")
TARGET_SCALES = ("standard", "none")

# the CLI's --product-precision choices: the library's precision names past fp64 (no float64
# products), their values names("precision")'s
PRODUCT_PRECISIONS = ("fp32", "tf32", "bf16")


def _separate_outputs(outputs, solver, width, k):
    """Whether `sketchgn train --outputs OUTPUTS --solver SOLVER --width WIDTH` gives k outputs
    their own hidden layers (cli/train.c run_setup): never for k = 1; with "auto", when the
    solver is gn-gram or auto and the width is a multiple of 64."""
    return k > 1 and (outputs == "separate" or
                      (outputs == "auto" and width % 64 == 0 and solver in ("gn-gram", "auto")))


__all__ = ["SketchGNRegressor", "SketchGNClassifier", "NotFittedError"]


def _matrix(X, name="X"):
    """X as a C-contiguous float32 (n, d) array, copied only when its dtype or layout differs."""
    return as_float32(precheck_X(X, name), name)


def _prep_struct(mode, bias, mean, scale, y_mean=None, y_scale=None):
    """An sgn_prep over the NumPy arrays mean, scale (d_in) float32 and, for standardized
    targets, y_mean, y_scale (k) float64 (None: none); they must outlive it."""
    if y_mean is None:
        return Prep(mode, int(bias), mean.shape[0], fptr(mean), fptr(scale))
    return Prep(mode, int(bias), mean.shape[0], fptr(mean), fptr(scale), y_mean.shape[0],
                dptr(y_mean), dptr(y_scale))


def _copy_floats(ptr, shape):
    return np.ctypeslib.as_array(ptr, shape=shape).copy()


class _SketchGN(BaseEstimator):
    """The parameters, training loop and persistence shared by the two estimators."""

    _task = "regression"  # a name of the library's task table (sgn_task)

    def __init__(self, width=1024, solver="auto", sketch="srht", sketch_ratio=4.0, steps=100,
                 damping=None, ridge="auto", lr=None, cg_tol=1e-3, cg_max=100, batch=None,
                 target_rel=0.0, time_limit=None, tol=1e-3, normalize="sphere", bias=False,
                 init="symmetric", outputs="auto", device="auto", seed=1, verbose=False,
                 target_scale="standard", precision="fp64", product_precision="fp32"):
        self.width = width
        self.precision = precision
        self.product_precision = product_precision
        self.solver = solver
        self.sketch = sketch
        self.sketch_ratio = sketch_ratio
        self.steps = steps
        self.damping = damping
        self.ridge = ridge
        self.lr = lr
        self.cg_tol = cg_tol
        self.cg_max = cg_max
        self.batch = batch
        self.target_rel = target_rel
        self.time_limit = time_limit
        self.tol = tol
        self.normalize = normalize
        self.bias = bias
        self.init = init
        self.outputs = outputs
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.target_scale = target_scale

    # ---- scikit-learn's parameter protocol ----

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep=True):
        """The constructor arguments as a dict (deep is accepted for scikit-learn; no nesting)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Sets constructor arguments; returns self. Unknown names raise ValueError."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters: {', '.join(valid)}")
            setattr(self, name, value)
        return self

    if HAVE_TAGS:
        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.target_tags.multi_output = self._multi_output
            return tags
    else:
        def _more_tags(self):
            return {"multioutput": self._multi_output}

    def __repr__(self):
        params = inspect.signature(_SketchGN.__init__).parameters.values()
        defaults = {p.name: p.default for p in params}
        args = [f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults.get(k)]
        return f"{type(self).__name__}({', '.join(args)})"

    def _check_params(self):
        """ValueError naming the parameter, with the CLI's ranges and names (the library's)."""
        for name in ("solver", "sketch", "normalize", "init", "device", "precision"):
            table = _lib.names(name)
            v = getattr(self, name)
            if not isinstance(v, str) or v not in table:
                raise ValueError(f"{name}={v!r}: expected one of {', '.join(map(repr, table))}")
        if self.product_precision not in PRODUCT_PRECISIONS:
            raise ValueError(f"product_precision={self.product_precision!r}: expected one of "
                             f"{', '.join(map(repr, PRODUCT_PRECISIONS))}")
        if not isinstance(self.outputs, str) or self.outputs not in OUTPUTS:
            raise ValueError(f"outputs={self.outputs!r}: expected one of "
                             f"{', '.join(map(repr, OUTPUTS))}")
        if not isinstance(self.target_scale, str) or self.target_scale not in TARGET_SCALES:
            raise ValueError(f"target_scale={self.target_scale!r}: expected one of "
                             f"{', '.join(map(repr, TARGET_SCALES))}")
        if self._task == "classify" and self.target_scale != "standard":
            raise ValueError(f"target_scale={self.target_scale!r}: only for SketchGNRegressor "
                             f"(a classifier trains on one-hot targets, never scaled)")

        def integer(name, lo, hi=2**63 - 1, none_ok=False):
            v = getattr(self, name)
            if v is None and none_ok:
                return
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) \
                    or not lo <= v <= hi:
                raise ValueError(f"{name}={v!r}: expected an integer >= {lo}"
                                 + (" or None" if none_ok else ""))

        def real(name, ok, what, none_ok=False):
            v = getattr(self, name)
            if v is None and none_ok:
                return
            number = isinstance(v, (int, float, np.integer, np.floating))
            if isinstance(v, (bool, np.bool_)) or not number or not np.isfinite(v) or not ok(v):
                raise ValueError(f"{name}={v!r}: expected {what}" + (" or None" if none_ok else ""))

        integer("width", 1)
        integer("steps", 0)
        integer("cg_max", 1, 2**31 - 1)
        integer("batch", 1, none_ok=True)
        integer("seed", 0, 2**64 - 1)
        real("sketch_ratio", lambda v: v >= 1, "a number >= 1")
        real("damping", lambda v: v >= 0, "a number >= 0", none_ok=True)
        if not (isinstance(self.ridge, str) and self.ridge == "auto"):
            real("ridge", lambda v: v >= 0, "'auto' or a number >= 0")
        real("lr", lambda v: v > 0, "a number > 0", none_ok=True)
        real("cg_tol", lambda v: 0 < v < 1, "a number > 0 and < 1")
        real("target_rel", lambda v: 0 <= v < 1, "a number >= 0 and < 1 (0: off)")
        real("time_limit", lambda v: v > 0, "a number of seconds > 0", none_ok=True)
        real("tol", lambda v: v >= 0, "a number >= 0", none_ok=True)

    def _options(self):
        o = _lib.lib().sgn_options_default()
        o.solver = _lib.names("solver")[self.solver]
        o.sketch = _lib.names("sketch")[self.sketch]
        o.precision = _lib.names("precision")[self.precision]
        o.product_precision = _lib.names("precision")[self.product_precision]
        o.sketch_ratio = float(self.sketch_ratio)
        o.damping = -1.0 if self.damping is None else float(self.damping)
        o.ridge = -1.0 if isinstance(self.ridge, str) else float(self.ridge)
        o.lr = -1.0 if self.lr is None else float(self.lr)
        o.cg_tol = float(self.cg_tol)
        o.cg_max = int(self.cg_max)
        o.batch = 0 if self.batch is None else int(self.batch)
        o.seed = int(self.seed)
        return o

    # ---- training ----

    def _train(self, X, Y, classes):
        """Fits the preprocessing on X (n, d_in) float32 and trains on Y (n, k) float32."""
        self._check_params()
        L = _lib.lib()
        _lib.warn_slow_blas()
        n, d_in = X.shape
        k = Y.shape[1]
        mode = _lib.names("normalize")[self.normalize]
        prep = Prep()
        status = L.sgn_prep_fit(byref(prep), fptr(X), n, d_in, mode, int(bool(self.bias)))
        check(status, "fit" if status == _lib.SGN_OK or np.isfinite(X).all() else
              "fit: Input X contains NaN or infinity")
        try:
            mean, scale = _copy_floats(prep.mean, (d_in,)), _copy_floats(prep.scale, (d_in,))
        finally:
            L.sgn_prep_free(byref(prep))
        Xp = self._prep_apply(X, mode, bool(self.bias), mean, scale)
        y_mean = y_scale = None
        if self._task == "regression" and self.target_scale == "standard":
            prep = Prep()
            check(L.sgn_prep_fit_targets(byref(prep), fptr(Y), n, k), "fit")
            try:
                y_mean = np.ctypeslib.as_array(prep.y_mean, shape=(k,)).copy()
                y_scale = np.ctypeslib.as_array(prep.y_scale, shape=(k,)).copy()
            finally:
                L.sgn_prep_free(byref(prep))
            Y = Y.copy()
            tp = _prep_struct(mode, bool(self.bias), mean, scale, y_mean, y_scale)
            L.sgn_prep_targets_apply(byref(tp), fptr(Y), n)

        separate = _separate_outputs(self.outputs, self.solver, int(self.width), k)
        if separate and self.solver == "gn-exact":
            raise SketchGNInputError(
                f"fit: solver='gn-exact' forms the coupled Gram of shared outputs, and "
                f"outputs='separate' gives each of the {k} outputs its own hidden layer (use "
                f"solver='gn-gram', which solves their block-diagonal Gram, or outputs='shared')")
        create = L.sgn_model_create_separate if separate else L.sgn_model_create
        model = check_ptr(create(Xp.shape[1], int(self.width), k, _lib.names("init")[self.init],
                                 int(self.seed)), "fit", SketchGNInputError)
        be = ses = None
        try:
            be = check_ptr(L.sgn_backend_open(_lib.names("device")[self.device]), "fit",
                           SketchGNInputError)
            opt = self._options()
            separate = bool(L.sgn_model_is_separate(model))
            ses = check_ptr(L.sgn_session_create(be, model, fptr(Xp), fptr(Y), n, byref(opt)),
                            "fit")
            backend = L.sgn_backend_name(be).decode()
            solver = _lib.name_of("solver", L.sgn_session_solver(ses))
            ridge = L.sgn_session_ridge(ses)
            loss0 = L.sgn_session_initial_loss(ses)
            curve = [L.sgn_session_loss(ses)]
            if self.verbose:
                width = (f"width {self.width} per output, separate outputs "
                         f"({model.contents.m} neurons)" if separate else f"width {self.width}")
                print(f"sketchgn: n={n} d={Xp.shape[1]} k={k}  {width}  solver "
                      f"{self.solver}  device {backend}\nstep    0  loss {curve[0]:.4e}",
                      file=sys.stderr, flush=True)
            # the stopping rules of `sketchgn train` (README "Stopping"): steps (a cap), target_rel,
            # time_limit (seconds of training, the sum of step_ms), a failed line search; and with
            # tol > 0 the loss floor (LOSS_FLOOR of the step-0 loss) and two steps in a row that
            # lower the loss by less than tol of its value before the step
            info = StepInfo()
            small = 0
            step = L.sgn_session_steps(ses)
            while step < self.steps:
                if self.target_rel > 0 and curve[-1] <= self.target_rel * loss0:
                    break
                if self.time_limit is not None and \
                        L.sgn_session_time_ms(ses) >= 1e3 * self.time_limit:
                    break
                check(L.sgn_session_step(ses, byref(info)), f"fit: step {step + 1}")
                step = info.step
                curve.append(info.loss)
                if self.verbose:
                    print(f"step {info.step:4d}  loss {info.loss:.4e}  rel "
                          f"{info.loss / loss0 if loss0 > 0 else 0:.2e}  lr {info.lr:.3g}  cg "
                          f"{info.cg_iters:3d}{' (cap)' if info.cg_capped else ''}"
                          f"{' R' if info.refreshed else ''}  ({info.step_ms:.1f} ms)",
                          file=sys.stderr, flush=True)
                if info.ls_failed:
                    break
                if self.tol:
                    if info.loss <= LOSS_FLOOR * loss0:
                        break
                    before = info.objective_before  # the loss plus the ridge's penalty
                    small = small + 1 if before <= 0 or \
                        (before - info.objective) < self.tol * before else 0
                    if small >= 2:
                        break
            check(L.sgn_session_sync(ses), "fit")
            m = model.contents
            W, A = _copy_floats(m.W, (m.m, m.d)), _copy_floats(m.A, (m.m, m.k))
            loss, time_ms = L.sgn_session_loss(ses), L.sgn_session_time_ms(ses)
        finally:
            if ses:
                L.sgn_session_free(ses)
            if be:
                L.sgn_backend_close(be)
            L.sgn_model_free(model)

        self.W_, self.A_ = W, A                    # (m, d), (m, k) float32
        self.prep_mean_, self.prep_scale_ = mean, scale  # (d_in) float32
        self.target_mean_, self.target_scale_ = y_mean, y_scale  # (k) float64, or None
        self.n_features_in_ = d_in
        self.n_outputs_ = k
        self.loss_ = loss                          # final training loss, sgn_session_loss
        self.loss_curve_ = curve                   # the loss at step 0, 1, ...
        self.n_iter_ = len(curve) - 1
        self.train_time_ms_ = time_ms
        self.backend_ = backend
        self.solver_ = solver                      # the solver run (solver="auto" resolved)
        self.outputs_ = "separate" if separate else "shared"  # outputs="auto" resolved
        self.ridge_ = ridge                        # the ridge solved with (ridge="auto" resolved)
        if classes is not None:
            self.classes_ = classes
        if self.verbose:
            print(f"sketchgn: {self.n_iter_} steps, {time_ms / 1e3:.2f} s: loss {loss:.4e} "
                  f"({loss / loss0 if loss0 > 0 else 0:.2e} of initial)", file=sys.stderr,
                  flush=True)

    @staticmethod
    def _prep_apply(X, mode, bias, mean, scale):
        L = _lib.lib()
        prep = _prep_struct(mode, bias, mean, scale)
        out = np.empty((X.shape[0], L.sgn_prep_dim(byref(prep))), dtype=np.float32)
        L.sgn_prep_apply(byref(prep), fptr(X), X.shape[0], fptr(out))
        return out

    def _prep_fitted(self):
        """The fitted sgn_prep (over this estimator's arrays)."""
        return _prep_struct(_lib.names("normalize")[self.normalize], bool(self.bias),
                            self.prep_mean_, self.prep_scale_, getattr(self, "target_mean_", None),
                            getattr(self, "target_scale_", None))

    # ---- the fitted network ----

    def _check_fitted(self):
        check_fitted(self)

    def _forward(self, X):
        """The network's outputs (n, k) float32 on X (n, d_in), preprocessed as in training and
        mapped back to the targets' units (sgn_prep_targets_undo): X is checked as at fit
        (features, their names, non-finite values)."""
        self._check_fitted()
        X = check_X(self, X, reset=False)
        assert_finite(X, "X")
        F = self._outputs(X)
        if getattr(self, "target_mean_", None) is not None:
            prep = self._prep_fitted()
            _lib.lib().sgn_prep_targets_undo(byref(prep), fptr(F), F.shape[0])
        return F

    def _outputs(self, X):
        """The network's raw outputs (in the units it trained in) on a checked float32 X."""
        Xp = self._prep_apply(X, _lib.names("normalize")[self.normalize], bool(self.bias),
                              self.prep_mean_, self.prep_scale_)
        out = np.empty((X.shape[0], self.n_outputs_), dtype=np.float32)
        model = self._model_struct()
        check(_lib.lib().sgn_model_predict(byref(model), fptr(Xp), X.shape[0], fptr(out)),
              "predict")
        return out

    def _model_struct(self):
        m, d = self.W_.shape
        return Model(d, m, self.A_.shape[1], fptr(self.W_), fptr(self.A_))

    # ---- model files and pickling ----

    def save(self, path):
        """Writes the fitted network as a sketchgn model file (for `sketchgn eval|predict`)."""
        self._check_fitted()
        model = self._model_struct()
        classify = self._task == "classify"
        meta = ModelMeta(_lib.names("task")[self._task], self.n_outputs_ if classify else 0,
                         self._prep_fitted())
        check(_lib.lib().sgn_model_save(os.fsencode(path), byref(model), byref(meta)), "save")

    def _load_file(self, path):
        """Reads a model file into the fitted attributes; returns its task and class count."""
        L = _lib.lib()
        mp, meta = POINTER(Model)(), ModelMeta()
        check(L.sgn_model_load(os.fsencode(path), byref(mp), byref(meta)), "load")
        try:
            m, p = mp.contents, meta.prep
            self.W_, self.A_ = _copy_floats(m.W, (m.m, m.d)), _copy_floats(m.A, (m.m, m.k))
            self.prep_mean_ = _copy_floats(p.mean, (p.d_in,))
            self.prep_scale_ = _copy_floats(p.scale, (p.d_in,))
            if p.k_y > 0:
                self.target_mean_ = np.ctypeslib.as_array(p.y_mean, shape=(p.k_y,)).copy()
                self.target_scale_ = np.ctypeslib.as_array(p.y_scale, shape=(p.k_y,)).copy()
            else:
                self.target_mean_ = self.target_scale_ = None
            if meta.task == _lib.names("task")["regression"]:
                self.target_scale = "standard" if p.k_y > 0 else "none"
            separate = bool(L.sgn_model_is_separate(mp))
            self.normalize = _lib.name_of("normalize", p.mode)
            # width: the neurons of one output's hidden layer for separate outputs (m = k width)
            self.bias, self.width = bool(p.bias), int(m.m // m.k if separate else m.m)
            self.n_features_in_, self.n_outputs_ = int(p.d_in), int(m.k)
            self.outputs_ = "separate" if separate else "shared"
            return _lib.name_of("task", meta.task), int(meta.classes)
        finally:
            L.sgn_model_free(mp)
            L.sgn_prep_free(byref(meta.prep))

    @classmethod
    def load(cls, path):
        """An estimator holding the network of a model file (from save, or from
        `sketchgn train --save`)."""
        est = cls()
        task, classes = est._load_file(path)
        if est.n_outputs_ > 1:
            est.outputs = est.outputs_  # the layout of the file's network, as width
        if task != cls._task:
            raise SketchGNInputError(f"load: {path} holds a "
                                     f"{'classification' if task == 'classify' else task} model")
        if task == "classify":
            est.classes_ = np.arange(classes)
        est._after_load()
        return est

    def _after_load(self):
        pass

    def __getstate__(self):
        state = dict(self.__dict__)
        if hasattr(self, "W_"):
            for key in ("W_", "A_", "prep_mean_", "prep_scale_", "target_mean_",
                        "target_scale_"):
                state.pop(key, None)
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.sgn")
                self.save(path)
                with open(path, "rb") as f:
                    state["_model_bytes"] = f.read()
        return state

    def __setstate__(self, state):
        data = state.pop("_model_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.sgn")
                with open(path, "wb") as f:
                    f.write(data)
                self._load_file(path)


class SketchGNRegressor(RegressorMixin, _SketchGN):
    """A wide two-layer ReLU network f(x) = m^-1/2 A^T relu(W x) trained by libsketchgn on the
    loss 1/(2n) sum ||f(x_i) - y_i||^2. y is (n,) or (n, k); predict returns the same shape.

    Parameters mirror `sketchgn train`: width (m), solver ('gn-sketch', 'gn-exact', 'gn-cg',
    'gn-gram', 'gd', 'adam', 'auto': the cost model's choice, the default), sketch ('srht',
    'srft', 'gaussian', 'countsketch'; README "Sketches"), sketch_ratio, precision (gn-sketch's
    sketch Gram: 'fp64', the default, 'fp32', 'tf32', 'bf16'; README "Precision"),
    product_precision (the Jacobian products' GEMM inputs: 'fp32', the default, 'tf32', 'bf16';
    README "Precision"), steps (the cap, 100),
    damping (None: 1e-6 mean(G_ii) per step), ridge ('auto', the default: chosen by
    leave-one-out on the initial Gram of up to 2048 samples; a number R >= 0: add
    R mean(G_ii) ||W - W0||^2 / 2n to the loss, weight decay towards the start; 0: interpolate;
    Gauss-Newton solvers only, the fitted value in ridge_), lr (None: the solver's default), cg_tol, cg_max, batch
    (None: all samples; 128 for adam), target_rel (stop at loss <= target_rel * initial loss; 0:
    off), time_limit (stop after this many seconds of training; None: off), tol (default 1e-3,
    the CLI's rule: stop after two steps in a row that each lower the loss by less than tol times
    its value before the step, or at the loss floor 1e-10 of the step-0 loss; None or 0: off),
    normalize ('sphere', the default: per-feature z-score, one constant coordinate sqrt(d)
    appended, then unit norm per sample, so the sample's norm is kept as an angle; 'standard+unit':
    z-score then unit norm; 'unit', 'none', 'standard'), bias, init ('symmetric', 'gaussian'),
    outputs (with k > 1 outputs: 'shared', one hidden layer of width neurons for all outputs;
    'separate', one hidden layer of width neurons per output, all initialized alike, so the
    Gauss-Newton system splits per output and gn-gram's solve needs few iterations (width a
    multiple of 64; solver 'gn-exact' refuses it); 'auto', the default: separate when the solver
    is 'gn-gram' or 'auto' and width is a multiple of 64, else shared; one output is always
    shared), device ('auto', 'cpu', 'gpu'), seed, verbose (per-step losses on stderr),
    target_scale ('standard', the default: train on each target column's z-score over the
    training set and map the outputs back, so predict and score are in y's units while loss_ and
    loss_curve_ are half the mean squared error of the standardized targets; 'none': train on y
    as it is; a classifier accepts only 'standard' and never scales). The names are the
    library's (sgn_name_list).

    Fitted attributes: W_ (m, d), A_ (m, k) (m = width, or k width with separate outputs),
    prep_mean_, prep_scale_ (n_features_in_), target_mean_, target_scale_ (n_outputs_ float64:
    the training targets' mean and std per column, 1 where it is 0; predict returns target_mean_
    + target_scale_ * the network's output; None with target_scale='none'), n_features_in_,
    feature_names_in_ (when X was a
    DataFrame with string column names; predict then requires the same columns in the same
    order), loss_ (final training loss), loss_curve_ (losses at steps 0, 1, ...), n_iter_,
    train_time_ms_, backend_ ('cpu' or 'gpu'), solver_ (the solver run: solver='auto' resolved),
    outputs_ ('shared' or 'separate': outputs='auto' resolved, as sgn_model_is_separate tells).
    load() sets width (per output), target_scale and, for k > 1 outputs, outputs to the file's
    network."""

    _task = "regression"
    _multi_output = True

    def fit(self, X, y):
        """Trains on X (n, d) and y (n,) or (n, k); returns self."""
        X = check_X(self, X, reset=True)
        Y, self._y_ndim = check_y_regression(self, y, X.shape[0])
        self._train(X, Y, None)
        return self

    def _after_load(self):
        self._y_ndim = 1 if self.n_outputs_ == 1 else 2

    def predict(self, X):
        """f(X): (n,) when fitted with 1-D y, else (n, k); float64 (the library's float32
        outputs, widened as scikit-learn expects of a regressor)."""
        F = self._forward(X).astype(np.float64)
        return F[:, 0] if self._y_ndim == 1 else F

    def score(self, X, y, sample_weight=None):
        """The coefficient of determination R^2, averaged over outputs (as scikit-learn's)."""
        p = np.asarray(self.predict(X), dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        check_rows(p.shape[0], y)
        y, p = y.reshape(y.shape[0], -1), p.reshape(p.shape[0], -1)
        w = np.ones(y.shape[0]) if sample_weight is None else np.asarray(sample_weight, np.float64)
        w = w[:, None]
        num = (w * (y - p) ** 2).sum(axis=0)
        den = (w * (y - np.average(y, axis=0, weights=w[:, 0])) ** 2).sum(axis=0)
        # a constant target scores 1 when predicted exactly, else 0 (scikit-learn's convention)
        r2 = np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0),
                      np.where(num == 0, 1.0, 0.0))
        return float(r2.mean())


def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


# The largest training margin (max minus min output of a sample) times beta: no training
# sample's probability comes closer to 0 or 1 than about e^-20, so the log loss stays finite and
# probabilities keep the order of the outputs when rounded to 10 digits.
_BETA_MARGIN = 20.0


def _fit_inverse_temperature(F, index):
    """beta > 0 minimizing the mean log loss of softmax(beta F) (F (n, K) float32 outputs, index
    (n,) the true classes): the loss is convex in beta, so bisect its derivative
    mean_i(sum_c p_ic F_ic - F_i,y_i) on [1e-3, _BETA_MARGIN] / (largest training margin)."""
    F = F.astype(np.float64)
    margin = float((F.max(axis=1) - F.min(axis=1)).max())
    if not np.isfinite(margin) or margin <= 0:
        return 1.0
    true = F[np.arange(F.shape[0]), index]

    def slope(beta):
        return float(((_softmax(beta * F) * F).sum(axis=1) - true).mean())

    lo, hi = np.log(1e-3 / margin), np.log(_BETA_MARGIN / margin)
    if slope(np.exp(hi)) <= 0:
        return float(np.exp(hi))  # (nearly) separable: as confident as allowed
    if slope(np.exp(lo)) >= 0:
        return float(np.exp(lo))  # outputs no better than chance: near uniform
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if slope(np.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


class SketchGNClassifier(ClassifierMixin, _SketchGN):
    """The network of SketchGNRegressor trained on one-hot targets, as `sketchgn train --task
    classify`: the labels (strings, any integers, any sortable values) become classes_ (sorted)
    and the library sees outputs 0..K-1; the prediction is the class of the largest output.
    A continuous y is refused (scikit-learn's type_of_target: use SketchGNRegressor).

    decision_function: the outputs (n, K), or for two classes (n,) the second output minus the
    first (positive: classes_[1]). predict_proba: softmax(F / temperature_) of the outputs F,
    with temperature_ fitted on the training outputs by minimizing the log loss (bounded so that
    no training probability comes closer to 0 or 1 than about e^-20); a classifier read by load()
    has no training outputs and uses temperature 1. Same parameters and fitted attributes as
    SketchGNRegressor, plus classes_ and temperature_: K classes are k = K outputs, so with
    outputs='auto' (solver 'gn-gram' or 'auto', width a multiple of 64) each class has its own
    hidden layer."""

    _task = "classify"
    _multi_output = False

    def fit(self, X, y):
        """Trains on X (n, d) and labels y (n,); returns self."""
        X = check_X(self, X, reset=True)
        y = check_y_labels(self, y, X.shape[0])
        classes, index = np.unique(y, return_inverse=True)
        index = index.reshape(-1)
        if len(classes) < 2:
            raise ValueError(f"y: expected at least two classes, got one class "
                             f"({classes[0]!r} in all {len(y)} samples)")
        Y = np.zeros((X.shape[0], len(classes)), dtype=np.float32)
        Y[np.arange(X.shape[0]), index] = 1.0
        self._train(X, Y, classes)
        self.temperature_ = 1.0 / _fit_inverse_temperature(self._outputs(X), index)
        return self

    def _after_load(self):
        self.temperature_ = 1.0

    def decision_function(self, X):
        """The outputs (n, K), one column per class of classes_; for two classes (n,): output 1
        minus output 0, positive for classes_[1] (scikit-learn's shapes)."""
        F = self._forward(X)
        return F[:, 1] - F[:, 0] if F.shape[1] == 2 else F

    def predict_proba(self, X):
        """Class probabilities (n, K) float64: softmax(outputs / temperature_)."""
        return _softmax(self._forward(X).astype(np.float64) / self.temperature_)

    def predict_log_proba(self, X):
        """The logarithm of predict_proba."""
        Z = self._forward(X).astype(np.float64) / self.temperature_
        Z -= Z.max(axis=1, keepdims=True)
        return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """The class of the largest output (the first one on ties, as the CLI)."""
        F = self._forward(X)
        return self.classes_[np.argmax(F, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy: the (weighted) fraction of samples whose predicted class is y."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        right = self.predict(X) == y
        return float(np.average(right, weights=sample_weight))
