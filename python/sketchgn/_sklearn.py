"""Input checks shared by the estimators, and their base classes: scikit-learn's when it is
importable (BaseEstimator, the mixins, NotFittedError, validate_data's feature-name and
n_features_in_ bookkeeping), else stand-ins here that behave alike, so the estimators work with
NumPy alone. The checks that come first (shape, dtype, sparse, row counts, non-finite values) are
ours in both cases, with messages that carry scikit-learn's phrases where its checks look for
them ("Reshape your data", "0 feature(s)", "Complex data not supported", "sparse")."""

import inspect
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import DataConversionWarning, NotFittedError
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_array, check_is_fitted
    try:
        from sklearn.utils.validation import validate_data  # scikit-learn >= 1.6
    except ImportError:
        validate_data = None
    HAVE_SKLEARN = True
    HAVE_TAGS = hasattr(BaseEstimator, "__sklearn_tags__")  # the tags API of >= 1.6
    # check_array's switch for the non-finite check was renamed in 1.6
    _FINITE = ("ensure_all_finite" if "ensure_all_finite" in inspect.signature(check_array)
               .parameters else "force_all_finite")
except ImportError:
    HAVE_SKLEARN = HAVE_TAGS = False

    class NotFittedError(ValueError, AttributeError):
        """predict/score/save before fit (scikit-learn's NotFittedError when it is installed)."""

    class DataConversionWarning(UserWarning):
        """A column vector y given where a 1-D array was expected."""

    class BaseEstimator:
        """The parameter protocol of scikit-learn's BaseEstimator (the estimators override
        get_params, set_params and __repr__ anyway)."""

    class RegressorMixin:
        _estimator_type = "regressor"

    class ClassifierMixin:
        _estimator_type = "classifier"


def is_sparse(X):
    return type(X).__module__.startswith("scipy.sparse")


def precheck_X(X, name="X"):
    """Refuses what neither path converts: sparse input, not 2-D, complex or text dtypes, no
    samples or no features. Returns X as an array (a DataFrame's values)."""
    if is_sparse(X):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array "
                        f"({name}.toarray())")
    a = np.asarray(X)
    if a.ndim < 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got shape "
                         f"{a.shape}. Reshape your data either using array.reshape(-1, 1) if "
                         f"your data has a single feature or array.reshape(1, -1) if it "
                         f"contains a single sample.")
    if a.ndim > 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), got shape "
                         f"{a.shape}")
    if a.dtype.kind == "c":
        raise ValueError(f"{name}: Complex data not supported; expected a real numeric array, "
                         f"got dtype {a.dtype}")
    if a.dtype.kind in "USVMm":
        raise ValueError(f"{name}: expected a real numeric array, got dtype {a.dtype}")
    if a.shape[0] < 1:
        raise ValueError(f"{name}: expected at least one sample, found 0 sample(s) "
                         f"(shape={a.shape}) while a minimum of 1 is required.")
    if a.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one feature, found 0 feature(s) "
                         f"(shape={a.shape}) while a minimum of 1 is required.")
    return a


def as_float32(a, name="X"):
    """a as a C-contiguous float32 array, copied only when its dtype or layout differs; object
    arrays are converted number by number (a TypeError or ValueError names the culprit)."""
    if a.dtype.kind == "O":
        try:
            a = a.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: expected a real numeric array: {e}") from None
    return np.ascontiguousarray(a, dtype=np.float32)


def assert_finite(a, name):
    """ValueError naming the first non-finite value of a (n,) or (n, k) array."""
    bad = ~np.isfinite(a)
    if bad.any():
        where = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(a[tuple(where)]) else "infinity"
        at = f"sample {where[0]}" + (f", column {where[1]}" if a.ndim == 2 else "")
        raise ValueError(f"Input {name} contains {kind} (first at {at}); remove or impute the "
                         f"samples with missing values")


def feature_names(X):
    """The column names of a DataFrame-like X when they are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None:
        return None
    names = np.asarray(list(cols), dtype=object)
    return names if len(names) and all(isinstance(c, str) for c in names) else None


def check_X(est, X, reset):
    """X (n, d) as a C-contiguous float32 array for fit (reset: record n_features_in_ and
    feature_names_in_) or for predict (check them). Non-finite values are the caller's to
    check: fit leaves them to the library, whose message names the sample and column."""
    a = precheck_X(X)
    if not reset:
        d = est.n_features_in_
        if a.shape[1] != d and not (HAVE_SKLEARN and feature_names(X) is not None):
            raise ValueError(f"X has {a.shape[1]} features, but {type(est).__name__} is "
                             f"expecting {d} features as input (it has {a.shape[1]} features, "
                             f"the model was fitted with {d})")
    if HAVE_SKLEARN:
        kw = {"dtype": np.float32, "order": "C", _FINITE: False}
        if validate_data is not None:
            return validate_data(est, X, reset=reset, **kw)
        return est._validate_data(X, reset=reset, **kw)
    names = feature_names(X)
    if reset:
        est.n_features_in_ = a.shape[1]
        if names is not None:
            est.feature_names_in_ = names
        elif hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    else:
        fitted = getattr(est, "feature_names_in_", None)
        if fitted is not None and names is not None and \
                (len(names) != len(fitted) or (names != fitted).any()):
            missing = sorted(set(fitted) - set(names))
            unseen = sorted(set(names) - set(fitted))
            raise ValueError("The feature names should match those that were passed during fit."
                             + (f" Missing: {', '.join(missing)}." if missing else "")
                             + (f" Unseen at fit time: {', '.join(unseen)}." if unseen else "")
                             + ("" if missing or unseen else
                                " Feature names must be in the same order as they were in fit."))
    return as_float32(a)


def check_fitted(est):
    """NotFittedError (scikit-learn's when installed) before fit."""
    msg = (f"This {type(est).__name__} instance is not fitted yet; call 'fit' with appropriate "
           f"arguments before using this estimator.")
    if HAVE_SKLEARN:
        check_is_fitted(est, "W_", msg=msg)
    elif not hasattr(est, "W_"):
        raise NotFittedError(msg)


def check_rows(n, y, name="y"):
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} rows (one per sample of X), got shape {y.shape}")


def _not_none(y, est):
    if y is None:
        raise ValueError(f"{type(est).__name__} requires y to be passed, but the target y is None")


def check_y_regression(est, y, n):
    """Targets (n,) or (n, k) as a float32 (n, k) array, and y's number of dimensions."""
    _not_none(y, est)
    if is_sparse(y):
        raise TypeError("y: sparse targets are not supported; pass a dense array")
    y = np.asarray(y)
    if y.dtype.kind in "cUSVMm":
        raise ValueError(f"y: expected a real numeric array, got dtype {y.dtype}")
    y = as_float32(y, "y") if y.dtype.kind == "O" else y
    check_rows(n, y)
    if y.ndim > 2:
        raise ValueError(f"y: expected shape (n,) or (n, k), got {y.shape}")
    Y = np.ascontiguousarray(y.reshape(n, -1), dtype=np.float32)
    if Y.shape[1] < 1:
        raise ValueError(f"y: expected at least one target column, got shape {y.shape}")
    assert_finite(Y if y.ndim == 2 else Y[:, 0], "y")
    return Y, y.ndim


def check_y_labels(est, y, n):
    """Labels (n,) of a classification task: a column vector is raveled with scikit-learn's
    DataConversionWarning; continuous targets are refused (scikit-learn's type_of_target)."""
    _not_none(y, est)
    if is_sparse(y):
        raise TypeError("y: sparse labels are not supported; pass a dense array")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change "
                      "the shape of y to (n_samples,), for example using ravel().",
                      DataConversionWarning, stacklevel=3)
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array of labels (n,), got shape {y.shape}")
    check_rows(n, y)
    if y.dtype.kind == "f":
        assert_finite(y, "y")
    if HAVE_SKLEARN:
        check_classification_targets(y)
    elif y.dtype.kind == "f" and (y != np.round(y)).any():
        raise ValueError("Unknown label type: continuous (y has non-integer values); a "
                         "classifier needs discrete labels: use SketchGNRegressor for a "
                         "regression target")
    elif y.dtype.kind == "c":
        raise ValueError(f"Unknown label type: y has dtype {y.dtype}")
    return y
