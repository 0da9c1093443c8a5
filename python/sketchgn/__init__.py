"""sketchgn — wide two-layer ReLU networks trained with sketched Gauss-Newton steps, from Python.

A ctypes binding over libsketchgn.so (found through $SKETCHGN_LIB, the source tree's build/, or
the system loader), with scikit-learn style estimators:

    from sketchgn import SketchGNRegressor
    reg = SketchGNRegressor(width=1024, steps=10, seed=1).fit(X, y)
    reg.predict(X); reg.score(X, y)

Errors from the library raise SketchGNError (SketchGNInputError, also a ValueError, for bad
input) carrying the library's message.

Import sketchgn before NumPy: on a CPU model OpenBLAS does not know, the import then sets
OPENBLAS_CORETYPE to the kernels the CPU supports, as the sketchgn CLI does (faster GEMMs, and
losses identical to the CLI's)."""

from . import _lib
from ._lib import SketchGNError, SketchGNInputError, blas_kernels, library_path, version

# Before NumPy loads OpenBLAS: the CLI's choice of OpenBLAS kernels (see _lib.fix_blas_kernels).
_lib.fix_blas_kernels()

from .data import load_data
from .estimators import NotFittedError, SketchGNClassifier, SketchGNRegressor

__version__ = "0.1.0"
__all__ = ["SketchGNRegressor", "SketchGNClassifier", "SketchGNError", "SketchGNInputError",
           "NotFittedError", "blas_kernels", "library_path", "load_data", "version"]
