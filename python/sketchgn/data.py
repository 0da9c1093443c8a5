"""load_data: any data SPEC of the CLI (synth, CSV, NPY, IDX, fashion-mnist) as NumPy arrays,
read by the library's own loaders, so Python trains on exactly the data `sketchgn train` sees."""

import os
from ctypes import byref

import numpy as np

from . import _lib


def load_data(spec, targets=None):
    """(X, y) for a data SPEC such as "fashion-mnist:train,n=2000" or "synth:n=512,d=16".

    X is (n, d) float32. y is (n,) when the data has one target column, else (n, k); class labels
    (IDX, fashion-mnist) come as int64. targets is the CLI's --targets (CSV columns, or the NPY
    targets file). Bad specs raise SketchGNInputError with the loader's message."""
    L = _lib.lib()
    ds = _lib.Dataset()
    t = None if targets is None else os.fsencode(targets)
    _lib.check(L.sgn_data_load(os.fsencode(spec), t, byref(ds)), "load_data")
    try:
        X = np.ctypeslib.as_array(ds.X, shape=(ds.n, ds.d)).copy()
        Y = np.ctypeslib.as_array(ds.Y, shape=(ds.n, ds.k)).copy()
    finally:
        L.sgn_dataset_free(byref(ds))
    y = Y[:, 0] if ds.k == 1 else Y
    return X, (y.astype(np.int64) if ds.labels else y)
