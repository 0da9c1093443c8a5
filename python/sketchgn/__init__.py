"""sketchgn — wide two-layer ReLU networks trained with sketched Gauss-Newton steps, from Python.

A ctypes binding over libsketchgn.so (found through $SKETCHGN_LIB, the copy `pip install ./python`
puts in the package, the source tree's build/, or the system loader), with scikit-learn
estimators (derived from its BaseEstimator when it is installed; NumPy alone suffices):

    from sketchgn import SketchGNRegressor
    reg = SketchGNRegressor(width=1024, steps=10, seed=1).fit(X, y)
    reg.predict(X); reg.score(X, y)

Errors from the library raise SketchGNError (SketchGNInputError, also a ValueError, for bad
input) carrying the library's message.

On a CPU model OpenBLAS does not know, the import sets OPENBLAS_CORETYPE to the kernels the CPU
supports before the library loads, as the sketchgn CLI does (faster GEMMs, and losses identical
to the CLI's). NumPy's wheels from PyPI bring their own OpenBLAS, so the import order does not
matter with them; a NumPy linked against the system OpenBLAS (Debian's) imported first fixes the
kernels for both, and fit warns when they are the slow generic ones."""

from . import _lib
from ._lib import SketchGNError, SketchGNInputError, blas_kernels, library_path, version

# Before the library loads OpenBLAS: the CLI's choice of kernels (see _lib.fix_blas_kernels).
_lib.fix_blas_kernels()

from .data import load_data
from .estimators import NotFittedError, SketchGNClassifier, SketchGNRegressor

__version__ = "0.1.0"
__all__ = ["SketchGNRegressor", "SketchGNClassifier", "SketchGNError", "SketchGNInputError",
           "NotFittedError", "blas_kernels", "library_path", "load_data", "version"]
