/* sketchgn.h — the public C API: models, backends, training sessions (datasets, preprocessing and
 * model files: sketchgn_io.h).
 * Letters fixed project-wide: n samples, d input dimension, m hidden width, k outputs,
 * s sketch rows, b mini-batch size. Every array is float32, row-major, unless it says otherwise.
 * Functions that can fail return an sgn_status; sgn_last_error() holds the message. */
#ifndef SKETCHGN_H
#define SKETCHGN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SGN_VERSION "0.1.0"

/* Marks the library's public functions (this header and sketchgn_io.h): the library is built with
 * -fvisibility=hidden, so libsketchgn.so exports exactly these (scripts/check-exports.sh). */
#if defined(__GNUC__) || defined(__clang__)
#define SGN_API __attribute__((visibility("default")))
#else
#define SGN_API
#endif

typedef enum sgn_status {
  SGN_OK = 0,
  SGN_E_RUNTIME = 1,     /* a failure while running: allocation, numerical breakdown, I/O */
  SGN_E_INPUT = 2,       /* bad input or usage: shapes, options, files */
  SGN_E_INTERRUPTED = 3, /* sgn_session_interrupt stopped a step: the session is as it was
                            after the last completed step */
} sgn_status;

/* The message of the last failed call on this thread: one line, at most 511 bytes, in
 * thread-local storage owned by the library, valid until the next failing call on this thread.
 * Successful calls do not clear it: read it only after a status other than SGN_OK or a NULL
 * return. "" if nothing has failed. */
SGN_API const char *sgn_last_error(void);
/* The library's version (the SGN_VERSION it was built with); static, never NULL. Compare it with
 * the header's SGN_VERSION to catch a header/library mismatch. */
SGN_API const char *sgn_version(void);

/* ---- backends ---- */

typedef enum sgn_device { SGN_DEVICE_AUTO = 0, SGN_DEVICE_CPU, SGN_DEVICE_GPU } sgn_device;
typedef struct sgn_backend sgn_backend;

/* Opens a backend. AUTO takes the GPU when one answers and otherwise the CPU, silently
 * (sgn_backend_name tells which). GPU returns NULL with a message when the build has no CUDA
 * backend or no device answers. The caller owns the backend: close it after every session on it
 * is freed. A backend must not be used from two threads at once. */
SGN_API sgn_backend *sgn_backend_open(sgn_device device);
/* Frees the backend and its GPU handles; NULL is a no-op. Free its sessions first. */
SGN_API void sgn_backend_close(sgn_backend *be);
/* "cpu" or "gpu"; static, owned by the library. */
SGN_API const char *sgn_backend_name(const sgn_backend *be);

/* ---- models ---- */

typedef enum sgn_init {
  SGN_INIT_SYMMETRIC = 0, /* neurons in two mirrored halves: f == 0 at the start (m even) */
  SGN_INIT_GAUSSIAN,      /* the theory's plain initialization */
} sgn_init;

/* f(x) = m^-1/2 A^T relu(W x). W is trained, A is fixed. */
typedef struct sgn_model {
  int64_t d, m, k;
  float *W; /* (m, d) row-major, N(0, 1) at initialization */
  float *A; /* (m, k) row-major, entries +-1 (or the separate-outputs pattern), never trained */
} sgn_model;

/* A fresh model for inputs of d columns (the library applies no normalization: that is the
 * CLI's --normalize, sgn_prep in sketchgn_io.h), m hidden neurons and k outputs. W is N(0, 1)
 * and A is +-1, drawn from seed by the counter-based generator of rng.h, so the same on every
 * backend. Needs d, m, k >= 1, and m even for SGN_INIT_SYMMETRIC; NULL with the message
 * otherwise or when memory is short. The caller owns the model; W and A may be edited in place
 * but not replaced. */
SGN_API sgn_model *sgn_model_create(int64_t d, int64_t m, int64_t k, sgn_init init, uint64_t seed);
/* A model whose k outputs each have their own hidden layer of m neurons ("separate outputs",
 * README "Many outputs"): k m neurons in all, all heads initialized alike (as the k output
 * columns of sgn_model_create(d, m, k, init, seed)), so its Gauss-Newton matrix is block
 * diagonal. Head c owns neurons [c h, (c + 1) h) and [k h + c h, k h + (c + 1) h), h = m / 2;
 * A[r, c] = +-sqrt(k) on head c's neurons and 0 elsewhere, so output c is m^-1/2 times the sum
 * over its own m neurons. Needs k >= 2 and m a multiple of 64; NULL with the message otherwise. */
SGN_API sgn_model *sgn_model_create_separate(int64_t d, int64_t m, int64_t k, sgn_init init,
                                             uint64_t seed);
/* 1 when the model has the separate-outputs layout above (its A says so), else 0. */
SGN_API int sgn_model_is_separate(const sgn_model *model);
/* Frees the model with its W and A; NULL is a no-op. */
SGN_API void sgn_model_free(sgn_model *model);

/* out (n, k) = f(X) for X (n, d), both caller-owned host memory, with model->W as it is (call
 * sgn_session_sync first). Runs on a temporary CPU backend, as sgn_evaluate_with with the
 * default budget (what the machine has): n m floats of work when they fit, else neurons in
 * chunks and, if need be, rows in blocks. SGN_E_INPUT if n < 1 or not even one row fits (the
 * message names the bytes), SGN_E_RUNTIME when an allocation fails. */
SGN_API sgn_status sgn_model_predict(const sgn_model *model, const float *X, int64_t n, float *out);

/* ---- training ---- */

typedef enum sgn_solver {
  SGN_SOLVER_GD = 0,    /* full-batch gradient descent */
  SGN_SOLVER_ADAM,      /* mini-batch Adam; one step is one epoch */
  SGN_SOLVER_GN_EXACT,  /* Gram-Gauss-Newton: form G, Cholesky, solve */
  SGN_SOLVER_GN_CG,     /* Gauss-Newton with plain CG on G g = r */
  SGN_SOLVER_GN_SKETCH, /* Gauss-Newton with PCG preconditioned by a sketch of J (the method) */
  SGN_SOLVER_GN_GRAM,   /* Gauss-Newton with PCG preconditioned by the Cholesky of an exact Gram */
  SGN_SOLVER_AUTO,      /* the cost model's choice, made by sgn_session_create
                           (sgn_session_solver tells which, and why): adam when the network has
                           fewer parameters than targets (m d < n k), else the fastest of
                           gn-exact, gn-gram and gn-sketch that fits in memory */
} sgn_solver;

/* Sketches of J for gn-sketch (README "Sketches"); new kinds are appended, values stay. */
typedef enum sgn_sketch {
  SGN_SKETCH_SRHT = 0,    /* tensor SRHT: Hadamard transforms, m and d padded to powers of two */
  SGN_SKETCH_GAUSSIAN,    /* Gaussian Khatri-Rao sketch: the reference, O(n s (m + d)) */
  SGN_SKETCH_SRFT,        /* tensor SRFT: the SRHT with a real Fourier transform (FFTW/cuFFT) */
  SGN_SKETCH_COUNTSKETCH, /* TensorSketch: CountSketches of both factors convolved by FFT */
} sgn_sketch;

/* The arithmetic of gn-sketch's sketch Gram Y Y^T, the n^2 s flops that build its
 * preconditioner (README "Precision"); new values are appended, values stay. Every precision adds
 * the Gram's column panels in float64 and factors it in float64; they differ in the panels' sums:
 * float64 (DSYRK), or float32 over panels of at most 4096 columns (SSYRK / SGEMM, tensor cores on
 * a GPU) with Y's entries rounded first to nearest-even at 10 (tf32) or 7 (bf16) mantissa bits.
 * The CPU computes tf32 and bf16 exactly as a GPU does up to summation order, at float32 speed:
 * it shows what they cost in accuracy, not what they gain in time. */
typedef enum sgn_precision {
  SGN_PRECISION_FP64 = 0, /* float64 sums (the default) */
  SGN_PRECISION_FP32,     /* float32 sums over panels, float64 between them */
  SGN_PRECISION_TF32,     /* Y rounded to TF32 (10 mantissa bits), then as fp32 */
  SGN_PRECISION_BF16,     /* Y rounded to bfloat16 (7 mantissa bits), then as fp32 */
} sgn_precision;

/* When a PCG solver rebuilds its preconditioner. */
typedef enum sgn_refresh {
  SGN_REFRESH_DEFAULT = 0, /* always for gn-sketch (the paper), auto for gn-gram */
  SGN_REFRESH_ALWAYS,      /* every step */
  SGN_REFRESH_AUTO,        /* when PCG needs > 1.5x the iterations it needed after the last build */
  SGN_REFRESH_EVERY,       /* every refresh_every steps */
} sgn_refresh;

typedef struct sgn_options {
  sgn_solver solver;
  sgn_sketch sketch;
  double sketch_ratio; /* s = ratio * n rows (default 4) */
  sgn_refresh refresh;
  int refresh_every;     /* with SGN_REFRESH_EVERY */
  double damping;        /* lambda; < 0 means 1e-6 * mean(G_ii), recomputed each step */
  double lr;             /* eta; < 0 means the solver's default (1 for Gauss-Newton,
                            1.8 n / lambda_max(G) for gd, 1e-3 for adam) */
  double cg_tol;         /* relative residual per solve (default 1e-3) */
  int cg_max;            /* iteration cap per solve (default 100) */
  int64_t batch;         /* samples per step; 0 = all (gd, gn-*), 128 for adam */
  int line_search;       /* -1 default (on for gn-*, off for gd/adam), 0 off, 1 on */
  uint64_t seed;         /* drives sketches and batches (the model's seed is separate) */
  double max_memory;     /* bytes a session may allocate on its backend; 0: what the backend has
                            (physical memory on the CPU, free device memory on the GPU) */
  int64_t chunk_neurons; /* neurons per chunk of the Jacobian products: 0 = automatic (all m at
                            once when the (n, m) float work fits max_memory, else the widest
                            multiple of 64 that fits); N >= 2 forces chunks of N (N/2 of each
                            half); N >= m means no chunking. See sgn_session_chunk_neurons. */
  double ridge;          /* Gauss-Newton solvers: the objective becomes
                            1/(2n) (sum ||f(x_i) - y_i||^2 + rho ||W - W0||^2), W0 the weights the
                            session starts from (weight decay towards the initialization; in the
                            lazy regime the run converges to kernel ridge regression with the
                            network's tangent kernel). rho = ridge * mean(G_ii) of the initial
                            Gram. 0: none (interpolate); < 0: chosen by leave-one-out on the
                            initial Gram of up to SGN_RIDGE_SAMPLE samples (sgn_session_ridge
                            tells the choice). gd and adam refuse a ridge > 0 and ignore auto. */
  /* gn-sketch: the sketch Gram's arithmetic (default FP64); the other solvers form no sketch
   * Gram and ignore it */
  sgn_precision precision;
  /* The Jacobian products' GEMM inputs (forward, J v, J^T g; README "Precision"): FP32 (the
   * default: float32 with TF32 off), or TF32 / BF16: X and W, V or the masked coefficients
   * rounded to nearest-even at 10 or 7 mantissa bits, then summed in float32 (tensor cores on a
   * GPU, emulated at float32 speed on the CPU). The rounded X W^T also sets the ReLU mask, so the
   * Gram and the sketch see the neurons it turns on. FP64 is refused (no float64 products). */
  sgn_precision product_precision;
} sgn_options;

/* Samples the automatic ridge's leave-one-out sees (a seeded random subset of larger sets). */
#define SGN_RIDGE_SAMPLE 2048

/* The defaults: gn-sketch, srht, sketch_ratio 4, refresh DEFAULT (refresh_every 1), damping -1
 * (auto), lr -1 (the solver's), cg_tol 1e-3, cg_max 100, batch 0, line_search -1, seed 1,
 * max_memory 0, chunk_neurons 0, ridge 0 (the CLI and the Python estimators default to auto),
 * precision FP64, product_precision FP32. */
SGN_API sgn_options sgn_options_default(void);

/* What one step did. Times in milliseconds; the five phases add up to step_ms. */
typedef struct sgn_step_info {
  int64_t step; /* 1, 2, ... (0 is the evaluation before any update) */
  double loss;  /* 1/(2n) sum ||f(x_i) - y_i||^2 on the full training set, after the step */
  double loss_before;
  double lr;          /* the step size taken (after line search) */
  double damping;     /* lambda of the solve */
  int damping_raised; /* times lambda was raised tenfold after a failed factorization, a CG
                          breakdown, or a CG stall that its restart did not cure */
  int cg_iters;       /* CG/PCG iterations (0 for gd, adam, gn-exact) */
  int cg_capped;      /* 1 if the solve hit cg_max before cg_tol */
  double cg_relres;   /* the relative residual reached */
  int refreshed;      /* 1 if the preconditioner was rebuilt this step */
  int ls_halvings;    /* line-search halvings */
  int ls_failed;      /* 1 if no step size lowered the loss; W is unchanged */
  double step_ms, forward_ms, sketch_ms, precond_ms, solve_ms, update_ms;
  int cg_restarts; /* 1 if CG stalled and restarted from its true residual (pcg.h) */
  double objective, objective_before; /* what the step lowers: loss plus the ridge's penalty
                                         (options.ridge; loss itself without one) */
} sgn_step_info;

typedef struct sgn_session sgn_session;

/* Attaches training data X (n, d), Y (n, k) (host memory, used as given, copied: the caller may
 * free them after the call) and a model to a backend, and evaluates the step-0 loss. W and A are
 * copied to the backend; training changes that copy, and only sgn_session_sync writes model->W.
 * be and model must outlive the session. opt == NULL means the defaults; *opt is copied.
 * Everything the steps need is allocated here (O(nd + md) floats, two n x m bit masks, the
 * products' work of n x m floats or, when that does not fit max_memory, of n x chunk floats,
 * plus n^2 doubles for gn-sketch and gn-gram, (nk)^2 for gn-exact); steps allocate nothing.
 * NULL with the message:
 * SGN_E_INPUT for n < 1 or invalid options (sketch_ratio < 1, cg_tol outside (0, 1),
 * cg_max < 1, batch < 0, refresh_every < 1 with EVERY, a precision that is no sgn_precision, a
 * product_precision other than FP32, TF32, BF16)
 * or a run needing more than max_memory even in the smallest neuron chunks (the message names
 * the bytes needed and available), or chunk_neurons 1 or negative; SGN_E_RUNTIME when an allocation fails (the message names the
 * bytes) or the backend fails ("<backend> backend: <its error>", e.g. a CUDA error); nothing
 * stays allocated then. */
SGN_API sgn_session *sgn_session_create(sgn_backend *be, sgn_model *model, const float *X,
                                        const float *Y, int64_t n, const sgn_options *opt);
/* One training step; zeroes and fills *info (non-NULL). SGN_E_INTERRUPTED when
 * sgn_session_interrupt stopped it (see there). SGN_OK also when the line search found no step size that lowers the loss (info->ls_failed, W unchanged): stop then. SGN_E_RUNTIME when
 * every step size diverges or the solve fails even with raised damping; W stays the last good
 * one (the step counter still advances). SGN_E_RUNTIME also when the backend fails inside the
 * step (a CUDA error, a failed scratch allocation: "<backend> backend: <its error>"); the
 * session's backend state is then lost, and this and every later call that runs backend work
 * (steps, outputs, sync, test, save/load state) returns the same error. Free it (that works)
 * and, to go on, start again on a fresh backend. */
SGN_API sgn_status sgn_session_step(sgn_session *ses, sgn_step_info *info);
/* Asks the step running on ses (or the next one, if none is running) to stop at its next check:
 * after each CG/PCG iteration, between the phases of a step, before each line-search trial and
 * each Adam mini-batch, and inside the long backend calls: between the blocks of a Cholesky
 * factorization, of the exact Gram, of a sketch and of the sketch's R (on the CPU every few
 * 10^9 flops; the GPU checks before each factorization). That step then returns
 * SGN_E_INTERRUPTED with W, the step counter, the optimizer's state and the training time as
 * they were after the last completed step, and the request is spent (the next step runs
 * normally). Async-signal-safe and callable from another thread: it only sets a flag, so a
 * signal handler or a timer can call it. Work inside one Jacobian product is not cut short. */
SGN_API void sgn_session_interrupt(sgn_session *ses);
/* Neurons per chunk of the session's Jacobian products, 0 when all m go at once (what
 * chunk_neurons asked, or what sgn_session_create chose to fit the memory budget). No backend
 * work. */
SGN_API int64_t sgn_session_chunk_neurons(const sgn_session *ses);
/* The current training loss (1/(2n) sum ||f - y||^2). This getter and the three below do no
 * backend work. */
SGN_API double sgn_session_loss(const sgn_session *ses);
/* The training loss at step 0 (before any update). */
SGN_API double sgn_session_initial_loss(const sgn_session *ses);
/* The ridge the session solves with, relative to mean(G_ii) of the initial Gram (options.ridge,
 * or what leave-one-out chose for a ridge < 0); 0 for none. */
SGN_API double sgn_session_ridge(const sgn_session *ses);
/* Steps taken so far, and the training time they took (the sum of their step_ms). */
SGN_API int64_t sgn_session_steps(const sgn_session *ses);
SGN_API double sgn_session_time_ms(const sgn_session *ses);
/* Copies the trained W (m, d) back into model->W. SGN_OK, or SGN_E_RUNTIME when the backend
 * has failed (see sgn_session_step; model->W is then not written). */
SGN_API sgn_status sgn_session_sync(sgn_session *ses);
/* out (n, k), caller-owned host memory = the network's outputs on the training set at the
 * current W. SGN_OK, or SGN_E_RUNTIME when the backend has failed (out unspecified). */
SGN_API sgn_status sgn_session_outputs(const sgn_session *ses, float *out);

/* Called on the stepping thread after every CG/PCG iteration (gn-cg, gn-sketch, gn-gram) with
 * the iteration count and relative residual; fn NULL turns it off. */
typedef void (*sgn_progress_fn)(void *user, int cg_iter, double relres);
SGN_API void sgn_session_set_progress(sgn_session *ses, sgn_progress_fn fn, void *user);

/* A held-out set evaluated at the current W: Xt (nt, d), Yt (nt, k), copied to the backend (the
 * caller may free them). At most once per session. SGN_E_INPUT for nt < 1 or a second call,
 * SGN_E_RUNTIME when memory is short (the message names the bytes) or the backend has failed;
 * no test set is attached then. */
SGN_API sgn_status sgn_session_attach_test(sgn_session *ses, const float *Xt, const float *Yt,
                                           int64_t nt);
/* *loss (non-NULL) = the loss on the attached test set; out (nt, k) receives its outputs unless
 * NULL. SGN_E_INPUT when no test set is attached, SGN_E_RUNTIME when the backend has failed
 * (*loss and out unspecified). */
SGN_API sgn_status sgn_session_test(sgn_session *ses, double *loss, float *out);

/* The session's whole state (weights, optimizer moments, preconditioner, counters) as bytes, so
 * a run resumed from it continues exactly as the uninterrupted run would on the same backend.
 * *buf is malloc'ed; free it. SGN_E_RUNTIME when memory is short or the backend has failed
 * (nothing to free then). */
SGN_API sgn_status sgn_session_save_state(sgn_session *ses, void **buf, size_t *bytes);
/* Restores a state saved from a session with the same data, model shape, solver and batch: the
 * weights, seed, step counter, step-0 loss and training time (model->W only on sync). The format
 * is opaque and tied to this version. SGN_E_INPUT on a bad magic, a mismatch or a wrong size;
 * SGN_E_RUNTIME when the backend has failed. */
SGN_API sgn_status sgn_session_load_state(sgn_session *ses, const void *buf, size_t bytes);
/* The solver the session runs (SGN_SOLVER_AUTO resolved), and for AUTO one line saying why
 * ("" otherwise); the string lives as long as the session. */
SGN_API sgn_solver sgn_session_solver(const sgn_session *ses);
SGN_API const char *sgn_session_solver_reason(const sgn_session *ses);
/* The solver a saved state was taken with, or -1 if buf is not a session state. */
SGN_API int sgn_state_solver(const void *buf, size_t bytes);
/* Frees the session's backend memory; NULL is a no-op, and a session whose backend failed is
 * freed like any other. The model and backend stay. */
SGN_API void sgn_session_free(sgn_session *ses);

/* *loss = the loss of a model on data X (n, d), Y (n, k) (host memory), computed on the backend
 * with the same forward pass as training, so it matches the training loss exactly; out (n, k)
 * receives the outputs unless NULL. sgn_evaluate_with with opt NULL: the default budget. */
SGN_API sgn_status sgn_evaluate(sgn_backend *be, const sgn_model *model, const float *X,
                                const float *Y, int64_t n, double *loss, float *out);
/* sgn_evaluate within the memory budget of opt (NULL: the defaults), as a session would keep it:
 * opt->max_memory (0: what the backend has) and opt->chunk_neurons (0: automatic; other fields
 * are not used). Allocates, for the call, n (d + 2k) floats, an n x m bit mask, n k doubles,
 * W and A, and the forward pass's work: n m floats when all of it fits the budget (then the
 * loss is exactly the training loss), else n x chunk floats in the widest neuron chunk that fits
 * (or chunk_neurons), else rows go in blocks of the most that fit at the narrowest chunk
 * (results agree to float rounding). Y and loss NULL: outputs only (prediction). SGN_E_INPUT if
 * n < 1, chunk_neurons is 1 or negative, or not even one row fits the budget (the message names
 * the bytes needed and available); SGN_E_RUNTIME when an allocation fails (the message names the
 * bytes) or the backend fails ("<backend> backend: <its error>"; *loss and out unspecified).
 * Nothing stays allocated either way. */
SGN_API sgn_status sgn_evaluate_with(sgn_backend *be, const sgn_model *model, const float *X,
                                     const float *Y, int64_t n, const sgn_options *opt,
                                     double *loss, float *out);

/* ---- names ----
 * One table of the names every front end uses for the enums above (and sketchgn_io's task and
 * normalization): the CLI's flags, bench's CSV, the JSON log and the Python binding. */

typedef enum sgn_name_kind {
  SGN_NAMES_SOLVER = 0, /* sgn_solver: gd adam gn-exact gn-cg gn-sketch gn-gram auto */
  SGN_NAMES_SKETCH,     /* sgn_sketch: srht gaussian srft countsketch */
  SGN_NAMES_DEVICE,     /* sgn_device: auto cpu gpu */
  SGN_NAMES_INIT,       /* sgn_init: symmetric gaussian */
  SGN_NAMES_REFRESH,    /* sgn_refresh: default always auto every */
  SGN_NAMES_TASK,       /* sgn_task: regression classify */
  SGN_NAMES_NORMALIZE,  /* sgn_normalize: unit none standard standard+unit sphere */
  SGN_NAMES_PRECISION,  /* sgn_precision: fp64 fp32 tf32 bf16 */
} sgn_name_kind;

/* The name of enum value `value` of `kind`; static, owned by the library. NULL when kind or
 * value is out of range. */
SGN_API const char *sgn_name(sgn_name_kind kind, int value);
/* The value whose name is exactly `name` (case-sensitive), or -1 when there is none. */
SGN_API int sgn_name_value(sgn_name_kind kind, const char *name);
/* The names of `kind` in value order, NULL-terminated (for help texts and "expected one of");
 * NULL for a kind out of range. Static, owned by the library. */
SGN_API const char *const *sgn_name_list(sgn_name_kind kind);

#ifdef __cplusplus
}
#endif
#endif
