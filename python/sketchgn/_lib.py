"""ctypes bindings to libsketchgn.so: the structs of its public headers (include/sketchgn.h,
include/sketchgn_io.h) and the functions of those headers that the package calls, nothing else.
Enum names come from the library's own name table (sgn_name_list), so the binding accepts exactly
what the CLI accepts. The library is loaded on first use from $SKETCHGN_LIB, else the copy
installed inside the package (`pip install ./python` puts it there, with the CUDA plugin beside
it when one was built), else build/libsketchgn.so of the source tree this package sits in, else
the system loader's libsketchgn.so.0 (an installed library on the loader's path or
LD_LIBRARY_PATH)."""

import ctypes
import os
import threading
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int64, c_uint64, c_void_p

SGN_OK, SGN_E_RUNTIME, SGN_E_INPUT = 0, 1, 2

# sgn_name_kind: the kinds of the library's name table (python/tests checks them against
# sketchgn.h). The names and their values come from the library (names()).
NAME_KINDS = {"solver": 0, "sketch": 1, "device": 2, "init": 3, "refresh": 4, "task": 5,
              "normalize": 6, "precision": 7}


class SketchGNError(RuntimeError):
    """A failure reported by libsketchgn; the message is sgn_last_error()'s."""

    status = SGN_E_RUNTIME


class SketchGNInputError(SketchGNError, ValueError):
    """Bad input or options, as judged by libsketchgn (SGN_E_INPUT)."""

    status = SGN_E_INPUT


# ---- the structs, laid out as in the headers (python/tests checks them with a C compiler) ----

class Model(ctypes.Structure):  # sgn_model
    _fields_ = [("d", c_int64), ("m", c_int64), ("k", c_int64),
                ("W", POINTER(c_float)),  # (m, d) row-major
                ("A", POINTER(c_float))]  # (m, k) row-major: +-1, or separate outputs' pattern


class Options(ctypes.Structure):  # sgn_options
    _fields_ = [("solver", c_int), ("sketch", c_int), ("sketch_ratio", c_double),
                ("refresh", c_int), ("refresh_every", c_int), ("damping", c_double),
                ("lr", c_double), ("cg_tol", c_double), ("cg_max", c_int), ("batch", c_int64),
                ("line_search", c_int), ("seed", c_uint64), ("max_memory", c_double),
                ("chunk_neurons", c_int64), ("ridge", c_double),
                ("precision", c_int),  # sgn_precision: names("precision")
                ("product_precision", c_int)]  # the same names, fp32 tf32 bf16


class StepInfo(ctypes.Structure):  # sgn_step_info
    _fields_ = [("step", c_int64), ("loss", c_double), ("loss_before", c_double),
                ("lr", c_double), ("damping", c_double), ("damping_raised", c_int),
                ("cg_iters", c_int), ("cg_capped", c_int), ("cg_relres", c_double),
                ("refreshed", c_int), ("ls_halvings", c_int), ("ls_failed", c_int),
                ("step_ms", c_double), ("forward_ms", c_double), ("sketch_ms", c_double),
                ("precond_ms", c_double), ("solve_ms", c_double), ("update_ms", c_double),
                ("cg_restarts", c_int), ("objective", c_double),
                ("objective_before", c_double)]


class Prep(ctypes.Structure):  # sgn_prep
    _fields_ = [("mode", c_int), ("bias", c_int), ("d_in", c_int64),
                ("mean", POINTER(c_float)),      # (d_in)
                ("scale", POINTER(c_float)),     # (d_in)
                ("k_y", c_int64),                # target columns standardized, 0: none
                ("y_mean", POINTER(c_double)),   # (k_y)
                ("y_scale", POINTER(c_double))]  # (k_y)


class ModelMeta(ctypes.Structure):  # sgn_model_meta
    _fields_ = [("task", c_int), ("classes", c_int64), ("prep", Prep)]


class Dataset(ctypes.Structure):  # sgn_dataset
    _fields_ = [("n", c_int64), ("d", c_int64), ("k", c_int64),
                ("X", POINTER(c_float)),  # (n, d) row-major
                ("Y", POINTER(c_float)),  # (n, k) row-major
                ("labels", c_int)]


_f32p = POINTER(c_float)
_f64p = POINTER(c_double)

# name: (restype, argtypes)
_PROTOTYPES = {
    "sgn_last_error": (c_char_p, []),
    "sgn_name_list": (POINTER(c_char_p), [c_int]),
    "sgn_version": (c_char_p, []),
    "sgn_backend_open": (c_void_p, [c_int]),
    "sgn_backend_close": (None, [c_void_p]),
    "sgn_backend_name": (c_char_p, [c_void_p]),
    "sgn_model_create": (POINTER(Model), [c_int64, c_int64, c_int64, c_int, c_uint64]),
    "sgn_model_create_separate": (POINTER(Model), [c_int64, c_int64, c_int64, c_int, c_uint64]),
    "sgn_model_is_separate": (c_int, [POINTER(Model)]),
    "sgn_model_free": (None, [POINTER(Model)]),
    "sgn_model_predict": (c_int, [POINTER(Model), _f32p, c_int64, _f32p]),
    "sgn_options_default": (Options, []),
    "sgn_session_create": (c_void_p, [c_void_p, POINTER(Model), _f32p, _f32p, c_int64,
                                      POINTER(Options)]),
    "sgn_session_step": (c_int, [c_void_p, POINTER(StepInfo)]),
    "sgn_session_loss": (c_double, [c_void_p]),
    "sgn_session_initial_loss": (c_double, [c_void_p]),
    "sgn_session_ridge": (c_double, [c_void_p]),
    "sgn_session_steps": (c_int64, [c_void_p]),
    "sgn_session_time_ms": (c_double, [c_void_p]),
    "sgn_session_sync": (c_int, [c_void_p]),
    "sgn_session_solver": (c_int, [c_void_p]),
    "sgn_session_free": (None, [c_void_p]),
    "sgn_prep_dim": (c_int64, [POINTER(Prep)]),
    "sgn_prep_fit": (c_int, [POINTER(Prep), _f32p, c_int64, c_int64, c_int, c_int]),
    "sgn_prep_apply": (None, [POINTER(Prep), _f32p, c_int64, _f32p]),
    "sgn_prep_fit_targets": (c_int, [POINTER(Prep), _f32p, c_int64, c_int64]),
    "sgn_prep_targets_apply": (None, [POINTER(Prep), _f32p, c_int64]),
    "sgn_prep_targets_undo": (None, [POINTER(Prep), _f32p, c_int64]),
    "sgn_prep_free": (None, [POINTER(Prep)]),
    "sgn_model_save": (c_int, [c_char_p, POINTER(Model), POINTER(ModelMeta)]),
    "sgn_model_load": (c_int, [c_char_p, POINTER(POINTER(Model)), POINTER(ModelMeta)]),
    "sgn_data_load": (c_int, [c_char_p, c_char_p, POINTER(Dataset)]),
    "sgn_dataset_free": (None, [POINTER(Dataset)]),
}

_lock = threading.Lock()
_lib = None


def library_path():
    """Where the library is loaded from: $SKETCHGN_LIB, else the package's own copy, else the
    source tree's build/, else the loader's libsketchgn.so.0."""
    env = os.environ.get("SKETCHGN_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "libsketchgn.so"),
                 os.path.normpath(os.path.join(here, "..", "..", "build", "libsketchgn.so"))):
        if os.path.exists(path):
            return path
    return "libsketchgn.so.0"


def lib():
    """The loaded library, with argument and result types declared."""
    global _lib
    with _lock:
        if _lib is None:
            path = library_path()
            try:
                handle = ctypes.CDLL(path)
            except OSError as e:
                raise SketchGNError(
                    f"cannot load the sketchgn library {path!r} ({e}); install the package with "
                    "'pip install ./python', run 'make' in the source tree, or set SKETCHGN_LIB "
                    "to libsketchgn.so"
                ) from None
            for name, (restype, argtypes) in _PROTOTYPES.items():
                fn = getattr(handle, name)
                fn.restype, fn.argtypes = restype, argtypes
            _lib = handle
        return _lib


def last_error():
    return (lib().sgn_last_error() or b"").decode("utf-8", "replace")


def check(status, what=None):
    """Raises the exception for a non-OK sgn_status, carrying sgn_last_error()."""
    if status == SGN_OK:
        return
    msg = last_error() or f"sketchgn call failed with status {status}"
    if what:
        msg = f"{what}: {msg}"
    raise (SketchGNInputError if status == SGN_E_INPUT else SketchGNError)(msg)


def check_ptr(ptr, what, error=SketchGNError):
    """Raises error with sgn_last_error() when a constructor returned NULL."""
    if not ptr:
        raise error(f"{what}: {last_error() or 'failed'}")
    return ptr


def fptr(a):
    """The float* of a C-contiguous float32 array (no copy)."""
    return a.ctypes.data_as(_f32p)


def dptr(a):
    """The double* of a C-contiguous float64 array (no copy)."""
    return a.ctypes.data_as(_f64p)


def version():
    return lib().sgn_version().decode()


_names = {}


def names(kind):
    """{name: enum value} of one kind of the library's name table ("solver", "sketch", "device",
    "init", "refresh", "task", "normalize", "precision"), in value order:
    sgn_name_list(SGN_NAMES_<KIND>)."""
    with _lock:
        table = _names.get(kind)
    if table is None:
        lst = lib().sgn_name_list(NAME_KINDS[kind])
        if not lst:
            raise SketchGNError(f"the sketchgn library has no {kind} names")
        table = {}
        while lst[len(table)] is not None:
            table[lst[len(table)].decode()] = len(table)
        with _lock:
            _names[kind] = table
    return table


def name_of(kind, value):
    """The name of enum value `value` of `kind` (the inverse of names(kind))."""
    for name, v in names(kind).items():
        if v == value:
            return name
    raise SketchGNError(f"unknown {kind} value {value} from the sketchgn library")


# ---- OpenBLAS kernels, as the CLI picks them ----
#
# OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded. NumPy's wheels from PyPI carry their
# own OpenBLAS (another library, with its own kernel choice), so with them the import order does
# not matter: the variable only has to be set before libsketchgn (and the system OpenBLAS it
# links) is loaded. A NumPy built against the system OpenBLAS (Debian's python3-numpy) shares it
# with libsketchgn: imported first, it fixes the kernels for both, and fit warns.

# Loads the library as the package will and prints the kernels its OpenBLAS picked, then the
# files of the BLAS libraries that came with it.
_PROBE = ("import ctypes, sys; b = ctypes.CDLL(sys.argv[1]); "
          "b.openblas_get_corename.restype = ctypes.c_char_p; "
          "print(b.openblas_get_corename().decode()); "
          "print('\\n'.join(sorted({l.split()[-1] for l in open('/proc/self/maps') "
          "if 'blas' in l.split()[-1]})))")


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_core():
    """The OpenBLAS kernels the CPU's features support (as the CLI chooses them), or None."""
    flags = _cpu_flags()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def _mapped_files():
    try:
        with open("/proc/self/maps") as f:
            return {os.path.realpath(line.split()[-1]) for line in f if "/" in line}
    except OSError:
        return None


# Why fix_blas_kernels left OpenBLAS alone although it would run Prescott ("shared" or None).
_blas_note = None


def fix_blas_kernels():
    """Does what `sketchgn` does at startup (cli/main.c, blas_core_fixup): OpenBLAS falls back to
    its generic Prescott kernels on a CPU model it does not know, even one with AVX2 or AVX-512
    (3-5x slower GEMMs, and different rounding from the CLI). When OPENBLAS_CORETYPE is unset and
    the library is not loaded yet, a child process loads it and reports the kernels its OpenBLAS
    picks; if Prescott, and that OpenBLAS is not already loaded here (by a NumPy that links the
    same system OpenBLAS), set OPENBLAS_CORETYPE to what the CPU supports. Returns the value
    set, or None."""
    global _blas_note
    if _lib is not None or os.environ.get("OPENBLAS_CORETYPE") or \
            not os.path.exists("/proc/cpuinfo"):
        return None
    core = _cpu_core()
    if core is None:
        return None
    import subprocess
    import sys
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE, library_path()], capture_output=True,
                             text=True, timeout=60).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    if not out or out[0].strip() != "Prescott":
        return None
    here = _mapped_files()
    blas = {os.path.realpath(p) for p in out[1:] if p.strip()}
    if here is None or blas & here:
        _blas_note = "shared"  # too late: this process runs that OpenBLAS already
        return None
    os.environ["OPENBLAS_CORETYPE"] = core
    return core


def blas_kernels():
    """The kernels of the OpenBLAS libsketchgn calls (openblas_get_corename), or None."""
    try:
        fn = lib().openblas_get_corename
    except AttributeError:
        return None
    fn.restype, fn.argtypes = c_char_p, []
    return fn().decode()


_warned = False


def warn_slow_blas():
    """Warns once when this process runs the Prescott kernels on a CPU with better ones."""
    global _warned
    if _warned:
        return
    _warned = True
    core = _cpu_core()
    if core and not os.environ.get("OPENBLAS_CORETYPE") and blas_kernels() == "Prescott":
        import warnings
        why = ("a NumPy linked against the same system OpenBLAS was imported before sketchgn"
               if _blas_note == "shared" else "OPENBLAS_CORETYPE was not set when it loaded")
        warnings.warn(f"OpenBLAS runs its generic Prescott kernels in this process ({why}); "
                      f"import sketchgn first, or set OPENBLAS_CORETYPE={core} before Python "
                      f"starts, for 3-5x faster training and losses identical to the sketchgn "
                      f"CLI's", RuntimeWarning, stacklevel=4)
