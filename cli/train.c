/* train.c — `sketchgn train`: its options (the table at the end), and a whole run: load and
 * preprocess the data, create (or resume) the model, step until --steps, --target-rel or
 * --time-limit, and log each step (a line on stderr, a progress bar on a terminal, one JSON
 * object per line with --log-json). Output files (log, model, checkpoints) are written to
 * FILE.tmp and renamed. SIGINT and SIGTERM stop the step in flight within about a second (a CG
 * iteration, or a block of a factorization, a Gram or a sketch), save the last completed step
 * (--save and the checkpoint) and exit 130; a second one exits at once. */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <zlib.h>

#include "commands.h"
#include "opts.h"
#include "util.h"

sgn_train_config sgn_train_config_default(void) {
  sgn_train_config cfg = {0};
  cfg.task = SGN_TASK_REGRESSION;
  cfg.normalize = SGN_NORMALIZE_SPHERE;
  cfg.width = 1024;
  cfg.init = SGN_INIT_SYMMETRIC;
  cfg.seed = 1;
  cfg.device = SGN_DEVICE_AUTO;
  cfg.opt = sgn_options_default();
  cfg.opt.solver = SGN_SOLVER_AUTO;
  cfg.opt.ridge = -1; /* auto */
  cfg.steps = 100;
  cfg.tol = 1e-3;
  cfg.patience = 2;
  return cfg;
}

/* ---- data preparation shared with eval and predict ---- */

sgn_status sgn_prepare_inputs(const sgn_model_meta *meta, const sgn_dataset *ds, const char *what,
                              float **X) {
  if (ds->d != meta->prep.d_in)
    return sgn_fail(SGN_E_INPUT, "%s has %lld input columns, the model expects %lld", what,
                    (long long)ds->d, (long long)meta->prep.d_in);
  *X = sgn_calloc((size_t)(ds->n * sgn_prep_dim(&meta->prep)), sizeof(float));
  if (!*X) return SGN_E_RUNTIME;
  sgn_prep_apply(&meta->prep, ds->X, ds->n, *X);
  return SGN_OK;
}

sgn_status sgn_prepare_targets(const sgn_model_meta *meta, const sgn_dataset *ds,
                               const int64_t *cls, int64_t k, const char *what, float **Y) {
  if (meta->task == SGN_TASK_CLASSIFY) {
    *Y = sgn_calloc((size_t)(ds->n * k), sizeof(float));
    if (!*Y) return SGN_E_RUNTIME;
    for (int64_t i = 0; i < ds->n; i++) (*Y)[i * k + cls[i]] = 1.0f;
    return SGN_OK;
  }
  if (ds->k != k)
    return sgn_fail(SGN_E_INPUT, "%s has %lld target columns, the model has %lld outputs", what,
                    (long long)ds->k, (long long)k);
  *Y = sgn_calloc((size_t)(ds->n * k), sizeof(float));
  if (!*Y) return SGN_E_RUNTIME;
  memcpy(*Y, ds->Y, (size_t)(ds->n * k) * sizeof(float));
  sgn_prep_targets_apply(&meta->prep, *Y, ds->n);
  return SGN_OK;
}

void sgn_regression_metrics(const float *F, const float *Y, int64_t n, int64_t k, double *mse,
                            double *r2) {
  double sse = 0, sst = 0;
  for (int64_t c = 0; c < k; c++) {
    double mean = 0;
    for (int64_t i = 0; i < n; i++) mean += Y[i * k + c];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
      const double e = (double)F[i * k + c] - Y[i * k + c], t = (double)Y[i * k + c] - mean;
      sse += e * e, sst += t * t;
    }
  }
  *mse = sse / (double)(n * k);
  *r2 = sst > 0 ? 1 - sse / sst : NAN;
}

double sgn_accuracy(const float *F, const int64_t *cls, int64_t n, int64_t k) {
  int64_t right = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t best = 0;
    for (int64_t c = 1; c < k; c++)
      if (F[i * k + c] > F[i * k + best]) best = c;
    right += best == cls[i];
  }
  return (double)right / (double)n;
}

/* ---- logging ---- */

typedef struct step_eval {
  double train_acc, test_loss, test_acc;         /* NAN when not measured */
  double train_mse, train_r2, test_mse, test_r2; /* regression only, else NAN */
} step_eval;

static void json_num(FILE *f, const char *key, double v) {
  if (isnan(v)) fprintf(f, ",\"%s\":null", key);
  else fprintf(f, ",\"%s\":%.9g", key, v);
}

static void log_json(FILE *f, const sgn_step_info *in, const step_eval *ev, double time_s,
                     const char *solver, const char *device, const char *stop) {
  fprintf(f,
          "{\"step\":%lld,\"loss\":%.9g,\"time_s\":%.6f,\"step_ms\":%.3f,\"cg_iters\":%d,"
          "\"solver\":\"%s\",\"device\":\"%s\",\"forward_ms\":%.3f,\"sketch_ms\":%.3f,"
          "\"precond_ms\":%.3f,\"solve_ms\":%.3f,\"update_ms\":%.3f,\"lr\":%.6g,"
          "\"damping\":%.6g,\"cg_relres\":%.3g,\"cg_capped\":%s,\"refreshed\":%s,"
          "\"ls_halvings\":%d,\"ls_failed\":%s,\"damping_raised\":%d,\"cg_restarts\":%d",
          (long long)in->step, in->loss, time_s, in->step_ms, in->cg_iters, solver, device,
          in->forward_ms, in->sketch_ms, in->precond_ms, in->solve_ms, in->update_ms, in->lr,
          in->damping, in->cg_relres, in->cg_capped ? "true" : "false",
          in->refreshed ? "true" : "false", in->ls_halvings, in->ls_failed ? "true" : "false",
          in->damping_raised, in->cg_restarts);
  json_num(f, "train_acc", ev->train_acc);
  json_num(f, "test_loss", ev->test_loss);
  json_num(f, "test_acc", ev->test_acc);
  json_num(f, "train_mse", ev->train_mse);
  json_num(f, "train_rmse", sqrt(ev->train_mse));
  json_num(f, "train_r2", ev->train_r2);
  json_num(f, "test_mse", ev->test_mse);
  json_num(f, "test_rmse", sqrt(ev->test_mse));
  json_num(f, "test_r2", ev->test_r2);
  if (stop) fprintf(f, ",\"stop\":\"%s\"", stop);
  fputs("}\n", f);
  fflush(f);
}

static void log_human(const sgn_step_info *in, const step_eval *ev, double loss0, double time_s) {
  char extra[192] = "";
  int len = 0;
  if (!isnan(ev->train_acc))
    len += snprintf(extra + len, sizeof extra - len, "  acc %.4f", ev->train_acc);
  if (!isnan(ev->train_r2))
    len += snprintf(extra + len, sizeof extra - len, "  r2 %.4f", ev->train_r2);
  if (!isnan(ev->test_loss))
    len += snprintf(extra + len, sizeof extra - len, "  test %.4e", ev->test_loss);
  if (!isnan(ev->test_acc))
    len += snprintf(extra + len, sizeof extra - len, " acc %.4f", ev->test_acc);
  if (!isnan(ev->test_r2))
    len += snprintf(extra + len, sizeof extra - len, " rmse %.4g r2 %.4f", sqrt(ev->test_mse),
                    ev->test_r2);
  if (in->damping_raised)
    snprintf(extra + len, sizeof extra - len, "  damping raised to %.2g", in->damping);
  if (in->step == 0 && in->step_ms == 0) {
    fprintf(stderr, "step %4d  loss %.4e%s\n", 0, in->loss, extra);
    return;
  }
  fprintf(stderr,
          "step %4lld  loss %.4e  rel %.2e%s  lr %.3g  cg %3d%s%s  | fwd %.1f sk %.1f pc %.1f "
          "solve %.1f upd %.1f ms  (%.2f s)\n",
          (long long)in->step, in->loss, loss0 > 0 ? in->loss / loss0 : 0, extra, in->lr,
          in->cg_iters,
          in->cg_capped     ? " (cap)"
          : in->cg_restarts ? " (restart)"
                            : "",
          in->refreshed ? " R" : "", in->forward_ms, in->sketch_ms, in->precond_ms, in->solve_ms,
          in->update_ms, time_s);
}

/* The progress bar on a terminal: steps done, and CG iterations inside the current step. */
typedef struct progress {
  int on;
  int64_t step, steps;
  int cg_max;
} progress;

static void progress_draw(progress *p, int cg_iter, double relres) {
  const int width = 30;
  int fill = p->steps > 0 ? (int)((double)(p->step - 1) * width / (double)p->steps) : 0;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  if (cg_iter > 0)
    fprintf(stderr, "\r\033[K[%s] step %lld/%lld  cg %d/%d  relres %.2e", bar, (long long)p->step,
            (long long)p->steps, cg_iter, p->cg_max, relres);
  else fprintf(stderr, "\r\033[K[%s] step %lld/%lld", bar, (long long)p->step, (long long)p->steps);
  fflush(stderr);
}

static void progress_cg(void *user, int cg_iter, double relres) {
  progress *p = user;
  if (p->on) progress_draw(p, cg_iter, relres);
}

static void progress_clear(progress *p) {
  if (p->on) fputs("\r\033[K", stderr);
}

/* ---- signals ----
 * The first SIGINT or SIGTERM is acknowledged at once and asks the session to stop at its next
 * check (after the current CG iteration, between phases, between the blocks of a Cholesky, a
 * Gram or a sketch: backend.h set_stop); the step in flight is dropped, the last completed one
 * saved. A second one exits at once. --time-limit arms SIGALRM for what is left of it before
 * each step, and stops the step the same way. */

static volatile sig_atomic_t interrupted; /* the signal, 0 if none */
static volatile sig_atomic_t time_up;
static sgn_session *volatile sig_session;

static void say(const char *msg) {
  ssize_t r = write(STDERR_FILENO, msg, strlen(msg));
  (void)r;
}

static void on_signal(int sig) {
  if (interrupted) {
    say("\nsketchgn: second interrupt: exiting now, nothing saved\n");
    _exit(130);
  }
  interrupted = sig;
  sgn_session_interrupt(sig_session);
  say(sig == SIGINT ? "\nsketchgn: SIGINT: stopping the step in flight and saving the last "
                      "completed step (again to quit at once)\n"
                    : "\nsketchgn: SIGTERM: stopping the step in flight and saving the last "
                      "completed step (again to quit at once)\n");
}

static void on_alarm(int sig) {
  (void)sig;
  time_up = 1;
  sgn_session_interrupt(sig_session);
}

/* SIGALRM after sec seconds; 0 disarms. */
static void arm_alarm(double sec) {
  struct itimerval it = {0};
  if (sec > 0) {
    it.it_value.tv_sec = (time_t)sec;
    it.it_value.tv_usec = (suseconds_t)((sec - (double)it.it_value.tv_sec) * 1e6);
    if (!it.it_value.tv_sec && !it.it_value.tv_usec) it.it_value.tv_usec = 1;
  }
  setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- output files ---- */

/* Writes a checkpoint of the session to path, with the class labels and the run's settings. */
static sgn_status write_checkpoint(sgn_session *ses, sgn_model *model, const sgn_model_meta *meta,
                                   const sgn_model_extra *x, const char *path) {
  void *state;
  size_t bytes;
  sgn_status st = sgn_session_sync(ses);
  if (st == SGN_OK) st = sgn_session_save_state(ses, &state, &bytes);
  if (st != SGN_OK) return st;
  st = sgn_checkpoint_save_extra(path, model, meta, x, state, bytes);
  free(state);
  return st;
}

/* "crc32=XXXXXXXX n=N d=D k=K": a fingerprint of the raw training data (X, Y and text labels), so
 * a resumed run can refuse other data. */
static void data_fingerprint(const sgn_dataset *ds, char **text, char *buf, size_t cap) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const Bytef *x = (const Bytef *)ds->X, *y = (const Bytef *)ds->Y;
  for (size_t left = (size_t)(ds->n * ds->d) * sizeof(float); left;) {
    uInt c = left > (1u << 30) ? (1u << 30) : (uInt)left;
    crc = crc32(crc, x, c), x += c, left -= c;
  }
  for (size_t left = ds->Y ? (size_t)(ds->n * ds->k) * sizeof(float) : 0; left;) {
    uInt c = left > (1u << 30) ? (1u << 30) : (uInt)left;
    crc = crc32(crc, y, c), y += c, left -= c;
  }
  for (int64_t i = 0; text && i < ds->n; i++)
    if (text[i]) crc = crc32(crc, (const Bytef *)text[i], (uInt)strlen(text[i]) + 1);
  snprintf(buf, cap, "crc32=%08lx n=%lld d=%lld k=%lld", (unsigned long)crc, (long long)ds->n,
           (long long)ds->d, (long long)ds->k);
}

/* The checkpoint's run text: "arg=TOKEN" per command-line token (backslash and newline escaped),
 * then "fingerprint=..." (malloc'ed, NULL when out of memory). */
static char *run_text(const sgn_train_config *cfg, const char *fingerprint) {
  size_t cap = strlen(fingerprint) + 16;
  for (int i = 0; i < cfg->nargs; i++) cap += 2 * strlen(cfg->args[i]) + 8;
  char *t = malloc(cap), *q = t;
  if (!t) return NULL;
  for (int i = 0; i < cfg->nargs; i++) {
    q += sprintf(q, "arg=");
    for (const char *p = cfg->args[i]; *p; p++) {
      if (*p == '\\' || *p == '\n') *q++ = '\\', *q++ = *p == '\n' ? 'n' : '\\';
      else *q++ = *p;
    }
    *q++ = '\n';
  }
  sprintf(q, "fingerprint=%s\n", fingerprint);
  return t;
}

/* ---- the run ---- */

typedef struct run run;
static sgn_status save_model(const char *path, const run *r);

struct run {
  sgn_dataset ds, test;
  sgn_model_meta meta;
  sgn_model *model;
  sgn_backend *be;
  sgn_session *ses;
  float *X, *Y, *Xt, *Yt, *F, *Ft; /* prepared data and host outputs */
  char **text, **test_text;        /* text class labels of ds and test, or NULL */
  sgn_labels labels;               /* the classes when classifying */
  int64_t *cls, *test_cls;         /* (n), (nt) the rows' classes when classifying */
  sgn_model_extra extra;           /* what the model file and checkpoints hold beyond meta */
  void *state;
  size_t state_bytes;
  FILE *jf;
  char *ckpt_path;
};

static void run_free(run *r) {
  if (r->jf) fclose(r->jf);
  free(r->ckpt_path);
  sgn_data_text_free(r->text, r->ds.n);
  sgn_data_text_free(r->test_text, r->test.n);
  free(r->cls), free(r->test_cls);
  r->extra.labels = NULL, r->extra.nlabels = 0; /* borrowed from r->labels */
  sgn_model_extra_free(&r->extra);
  sgn_labels_free(&r->labels);
  free(r->state);
  free(r->X), free(r->Y), free(r->Xt), free(r->Yt), free(r->F), free(r->Ft);
  sgn_session_free(r->ses);
  sgn_backend_close(r->be);
  sgn_model_free(r->model);
  sgn_prep_free(&r->meta.prep);
  sgn_dataset_free(&r->ds);
  sgn_dataset_free(&r->test);
}

/* The model file: the model, its preprocessing and class labels (not the run's settings). */
static sgn_status save_model(const char *path, const run *r) {
  sgn_model_extra x = {r->extra.nlabels, r->extra.labels, NULL};
  return sgn_model_save_extra(path, r->model, &r->meta, &x);
}

/* Checks that an output file can be created, before any training time is spent on it. */
static sgn_status check_writable(const char *flag, const char *path) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 16);
  if (!tmp) return sgn_fail(SGN_E_RUNTIME, "out of memory");
  snprintf(tmp, len + 16, "%s.probe.tmp", path);
  FILE *f = fopen(tmp, "wx");
  sgn_status st = SGN_OK;
  if (!f) st = sgn_fail(SGN_E_INPUT, "%s %s: cannot write: %s", flag, path, strerror(errno));
  else fclose(f), remove(tmp);
  free(tmp);
  return st;
}

/* Everything before the first step. Returns an exit status (0 to go on). */
static int run_setup(const sgn_train_config *cfg, run *r) {
  char data_what[300], test_what[300];
  if (!cfg->data) {
    fprintf(stderr, "sketchgn train: --data is required\n");
    return 2;
  }
  snprintf(data_what, sizeof data_what, "--data '%s'", cfg->data);
  snprintf(test_what, sizeof test_what, "--test '%s'", cfg->test ? cfg->test : "");
  sgn_status st = SGN_OK;
#define TRY(call)                           \
  do {                                      \
    if ((st = (call)) != SGN_OK) goto fail; \
  } while (0)
  if (cfg->save) TRY(check_writable("--save", cfg->save));
  if (cfg->checkpoint) TRY(check_writable("--checkpoint", cfg->checkpoint));
  const int classify = cfg->task == SGN_TASK_CLASSIFY;
  const sgn_data_want want = {.text_labels = classify};
  TRY(sgn_data_load_ex(cfg->data, cfg->targets, &want, &r->ds, &r->text));
  if (cfg->test)
    TRY(sgn_data_load_ex(cfg->test, cfg->test_targets, &want, &r->test, &r->test_text));
  char fingerprint[96];
  data_fingerprint(&r->ds, r->text, fingerprint, sizeof fingerprint);

  if (cfg->resume) {
    TRY(sgn_checkpoint_load_extra(cfg->resume, &r->model, &r->meta, &r->extra, &r->state,
                                  &r->state_bytes));
    if (r->meta.task != cfg->task)
      TRY(sgn_fail(SGN_E_INPUT, "--resume %s: the checkpoint was trained with --task %s",
                   cfg->resume, r->meta.task == SGN_TASK_CLASSIFY ? "classify" : "regression"));
    const char *fp = r->extra.run ? strstr(r->extra.run, "fingerprint=") : NULL;
    if (fp && strncmp(fp + 12, fingerprint, strlen(fingerprint)))
      TRY(sgn_fail(SGN_E_INPUT,
                   "%s: not the data the checkpoint %s was trained on (its %.*s, this data's %s)",
                   data_what, cfg->resume, (int)strcspn(fp + 12, "\n"), fp + 12, fingerprint));
    if (classify) {
      char **names = r->extra.labels;
      r->extra.labels = NULL, r->extra.nlabels = 0;
      TRY(sgn_labels_adopt(&r->labels, r->meta.classes, names));
    }
  } else {
    r->meta.task = cfg->task;
    if (classify) {
      TRY(sgn_labels_fit(&r->ds, r->text, data_what, cfg->quiet, &r->labels));
      r->meta.classes = r->labels.K;
    }
    TRY(sgn_prep_fit(&r->meta.prep, r->ds.X, r->ds.n, r->ds.d, cfg->normalize, cfg->bias));
    if (!classify && cfg->target_scale == SGN_TARGET_SCALE_STANDARD)
      TRY(sgn_prep_fit_targets(&r->meta.prep, r->ds.Y, r->ds.n, r->ds.k));
    int64_t k = classify ? r->meta.classes : r->ds.k;
    const sgn_solver sv = cfg->opt.solver;
    const int separate = k > 1 && (cfg->outputs == SGN_OUTPUTS_SEPARATE ||
                                   (cfg->outputs == SGN_OUTPUTS_AUTO && cfg->width % 64 == 0 &&
                                    (sv == SGN_SOLVER_GN_GRAM || sv == SGN_SOLVER_AUTO)));
    r->model = separate ? sgn_model_create_separate(sgn_prep_dim(&r->meta.prep), cfg->width, k,
                                                    cfg->init, cfg->seed)
                        : sgn_model_create(sgn_prep_dim(&r->meta.prep), cfg->width, k, cfg->init,
                                           cfg->seed);
    if (!r->model) TRY(sgn_last_status());
  }
  r->extra.nlabels = r->labels.names ? r->labels.K : 0;
  r->extra.labels = r->labels.names;
  free(r->extra.run);
  if (!(r->extra.run = run_text(cfg, fingerprint))) TRY(sgn_fail(SGN_E_RUNTIME, "out of memory"));
  int64_t k = r->model->k;
  if (classify) {
    TRY(sgn_labels_classes(&r->labels, &r->ds, r->text, data_what, &r->cls));
    if (cfg->test)
      TRY(sgn_labels_classes(&r->labels, &r->test, r->test_text, test_what, &r->test_cls));
  }
  TRY(sgn_prepare_inputs(&r->meta, &r->ds, data_what, &r->X));
  TRY(sgn_prepare_targets(&r->meta, &r->ds, r->cls, k, data_what, &r->Y));
  if (cfg->test) {
    TRY(sgn_prepare_inputs(&r->meta, &r->test, test_what, &r->Xt));
    TRY(sgn_prepare_targets(&r->meta, &r->test, r->test_cls, k, test_what, &r->Yt));
  }
  r->F = sgn_calloc((size_t)(r->ds.n * k), sizeof(float));
  if (cfg->test) r->Ft = sgn_calloc((size_t)(r->test.n * k), sizeof(float));
  if (!r->F || (cfg->test && !r->Ft)) TRY(SGN_E_RUNTIME);

  r->be = sgn_backend_open(cfg->device);
  if (!r->be) TRY(cfg->device == SGN_DEVICE_GPU ? SGN_E_INPUT : SGN_E_RUNTIME);
  if (cfg->device == SGN_DEVICE_AUTO && !cfg->quiet && !strcmp(sgn_backend_name(r->be), "cpu"))
    fprintf(stderr, "sketchgn: no GPU backend available; training on the CPU\n");
  sgn_options opt = cfg->opt;
  if (r->state && opt.solver == SGN_SOLVER_AUTO && sgn_state_solver(r->state, r->state_bytes) >= 0)
    opt.solver = (sgn_solver)sgn_state_solver(r->state, r->state_bytes); /* what auto chose then */
  r->ses = sgn_session_create(r->be, r->model, r->X, r->Y, r->ds.n, &opt);
  if (!r->ses) TRY(sgn_last_status());
  if (cfg->opt.solver == SGN_SOLVER_AUTO && !cfg->quiet && !r->state)
    fprintf(stderr, "sketchgn train: --solver auto: %s\n", sgn_session_solver_reason(r->ses));
  if (cfg->test) TRY(sgn_session_attach_test(r->ses, r->Xt, r->Yt, r->test.n));
  if (r->state && (st = sgn_session_load_state(r->ses, r->state, r->state_bytes)) != SGN_OK) {
    fprintf(stderr, "sketchgn train: --resume %s: %s\n", cfg->resume, sgn_last_error());
    return st == SGN_E_RUNTIME ? 1 : 2;
  }

  if (cfg->checkpoint || cfg->save) {
    const char *base = cfg->checkpoint ? cfg->checkpoint : cfg->save;
    r->ckpt_path = malloc(strlen(base) + 6);
    if (!r->ckpt_path) TRY(sgn_fail(SGN_E_RUNTIME, "out of memory"));
    sprintf(r->ckpt_path, cfg->checkpoint ? "%s" : "%s.ckpt", base);
  }
  if (cfg->log_json) { /* written line by line under its own name; a resumed run appends */
    r->jf = fopen(cfg->log_json, cfg->resume ? "a" : "w");
    if (!r->jf)
      TRY(sgn_fail(SGN_E_INPUT, "--log-json %s: cannot write: %s", cfg->log_json, strerror(errno)));
  }
  return 0;
#undef TRY
fail:
  fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
  return st == SGN_E_RUNTIME ? 1 : 2;
}

/* Train and test accuracy / test loss at the current W (NAN where not measured). The losses are
 * the session's, in the units it trains in; MSE and R^2 are of the outputs mapped back to the
 * targets' units against the targets as loaded. */
static void evaluate(run *r, step_eval *ev) {
  ev->train_acc = ev->test_loss = ev->test_acc = NAN;
  ev->train_mse = ev->train_r2 = ev->test_mse = ev->test_r2 = NAN;
  int64_t k = r->model->k;
  const int cls = r->meta.task == SGN_TASK_CLASSIFY;
  sgn_session_outputs(r->ses, r->F);
  if (cls) {
    ev->train_acc = sgn_accuracy(r->F, r->cls, r->ds.n, k);
  } else {
    sgn_prep_targets_undo(&r->meta.prep, r->F, r->ds.n);
    sgn_regression_metrics(r->F, r->ds.Y, r->ds.n, k, &ev->train_mse, &ev->train_r2);
  }
  if (r->Xt && sgn_session_test(r->ses, &ev->test_loss, r->Ft) == SGN_OK) {
    if (cls) {
      ev->test_acc = sgn_accuracy(r->Ft, r->test_cls, r->test.n, k);
    } else {
      sgn_prep_targets_undo(&r->meta.prep, r->Ft, r->test.n);
      sgn_regression_metrics(r->Ft, r->test.Y, r->test.n, k, &ev->test_mse, &ev->test_r2);
    }
  }
}

/* ---- the stop rule ----
 * After every step, the first of these that holds ends the run (README "Stopping"): an
 * interrupt; no step size lowers the loss; --target-rel reached; the loss floor (training loss
 * at most LOSS_FLOOR times the step-0 loss: float32 products can go no lower on real data; off
 * with --tol 0 like the next rule);
 * converged (the relative decrease (before - after) / before of the objective, the loss plus
 * the ridge's penalty, below --tol in two steps running);
 * with --test, --patience steps without a better test score (accuracy when classifying, else
 * the test loss; the model saved is then the one of the best step); the --steps cap; --time-limit. The reason is printed on stderr and
 * written as "stop" into the last JSON line. */
#define LOSS_FLOOR 1e-10
#define SLOW_STEPS 2 /* steps running below --tol */
#define STOP_CAP "step cap"
#define STOP_TIME "time limit"
#define STOP_TARGET "target reached"

typedef struct stop_rule {
  int slow;                      /* steps running with a relative decrease below --tol */
  double best_test, best_loss;   /* the best test score so far (test_score), and the training
                                    loss then */
  int64_t best_step, since_best; /* its step; steps since */
  float *best_W;                 /* (m, d) the weights of the best step (host) */
  step_eval best_ev;
  int keep_best; /* the run ended after its best step: save best_W */
} stop_rule;

/* Higher is better: test accuracy when classifying, else minus the test loss. */
static double test_score(const step_eval *ev) {
  return !isnan(ev->test_acc) ? ev->test_acc : -ev->test_loss;
}

/* A new best test score: remember the step and its weights. */
static void stop_track_best(stop_rule *sr, run *r, const sgn_step_info *info, const step_eval *ev) {
  const size_t md = (size_t)(r->model->m * r->model->d);
  if (!sr->best_W && !(sr->best_W = malloc(md * sizeof(float)))) return;
  if (sgn_session_sync(r->ses) != SGN_OK) return;
  memcpy(sr->best_W, r->model->W, md * sizeof(float));
  sr->best_test = test_score(ev), sr->best_step = info->step, sr->best_loss = info->loss;
  sr->best_ev = *ev, sr->since_best = 0;
}

/* The reason to stop after this step, or NULL to go on. */
static const char *stop_check(stop_rule *sr, const sgn_train_config *cfg, run *r,
                              const sgn_step_info *info, const step_eval *ev, double loss0,
                              double time_s) {
  /* the objective: the loss, plus the ridge's penalty with one (whose optimum the loss only
   * approaches from both sides) */
  const double drop = info->objective_before > 0
                          ? (info->objective_before - info->objective) / info->objective_before
                          : 0;
  sr->slow = cfg->tol > 0 && drop < cfg->tol ? sr->slow + 1 : 0;
  if (!isnan(ev->test_loss)) {
    if (test_score(ev) > sr->best_test) stop_track_best(sr, r, info, ev);
    else sr->since_best++;
  }
  const char *why = NULL;
  if (interrupted) why = "interrupted";
  else if (info->ls_failed) why = "no step size lowers the loss";
  else if (cfg->target_rel > 0 && info->loss <= cfg->target_rel * loss0) why = STOP_TARGET;
  else if (cfg->tol > 0 && info->loss <= LOSS_FLOOR * loss0)
    why = "loss floor (1e-10 of the step-0 loss)";
  else if (sr->slow >= SLOW_STEPS) why = "converged (loss decrease below --tol for 2 steps)";
  else if (cfg->patience > 0 && sr->best_step >= 0 && sr->since_best >= cfg->patience)
    why = "no better test score for --patience steps";
  else if (info->step >= cfg->steps) why = STOP_CAP;
  else if (cfg->time_limit > 0 && time_s >= cfg->time_limit) why = STOP_TIME;
  sr->keep_best = why && sr->best_W && sr->best_step >= 0 && sr->best_step < info->step &&
                  cfg->patience > 0;
  return why;
}

int sgn_train_run(const sgn_train_config *cfg) {
  run r = {0};
  int rc = run_setup(cfg, &r);
  if (rc) {
    run_free(&r);
    return rc;
  }
  const char *solver = sgn_name(SGN_NAMES_SOLVER, sgn_session_solver(r.ses));
  const char *device = sgn_backend_name(r.be);
  const int64_t chunk = sgn_session_chunk_neurons(r.ses);
  char chunk_note[64] = "";
  if (chunk > 0)
    snprintf(chunk_note, sizeof chunk_note, "  neurons in chunks of %lld", (long long)chunk);
  char ridge[96] = "";
  if (sgn_session_ridge(r.ses) > 0 ||
      (cfg->opt.ridge < 0 && sgn_session_solver(r.ses) >= SGN_SOLVER_GN_EXACT))
    snprintf(ridge, sizeof ridge, "  ridge %.3g%s", sgn_session_ridge(r.ses),
             cfg->opt.ridge < 0 && !cfg->resume ? " (auto)" : "");
  char width[96];
  if (sgn_model_is_separate(r.model))
    snprintf(width, sizeof width, "width %lld per output, separate outputs (%lld neurons)",
             (long long)(r.model->m / r.model->k), (long long)r.model->m);
  else snprintf(width, sizeof width, "width %lld", (long long)r.model->m);
  if (!cfg->quiet)
    fprintf(stderr, "sketchgn: %s  n=%lld d=%lld k=%lld  %s  solver %s%s  device %s%s%s\n",
            cfg->data, (long long)r.ds.n, (long long)r.model->d, (long long)r.model->k, width,
            solver, ridge, device, chunk_note, cfg->resume ? "  (resumed)" : "");

  progress bar = {!cfg->quiet && isatty(STDERR_FILENO), 0, cfg->steps, cfg->opt.cg_max};
  sgn_session_set_progress(r.ses, progress_cg, &bar);
  interrupted = 0, time_up = 0;
  sig_session = r.ses;
  struct sigaction sa = {0}, al = {0}, old_int, old_term, old_alrm;
  sa.sa_handler = on_signal;
  al.sa_handler = on_alarm;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGALRM, &al, &old_alrm);

  sgn_step_info info = {0};
  step_eval ev;
  info.step = sgn_session_steps(r.ses);
  info.loss = sgn_session_loss(r.ses);
  double loss0 = sgn_session_initial_loss(r.ses);
  double time_s = sgn_session_time_ms(r.ses) * 1e-3;
  evaluate(&r, &ev);
  if (r.jf && !cfg->resume)
    log_json(r.jf, &info, &ev, 0, solver, device, info.step >= cfg->steps ? STOP_CAP : NULL);
  if (!cfg->quiet && !cfg->resume) log_human(&info, &ev, loss0, 0);
  const char *why = STOP_CAP;
  int step_failed = 0; /* a numerical failure: W is still the last good model */
  int64_t cut = 0;     /* the step an interrupt or the time limit stopped, 0 if none */
  double cut_s = 0;    /* training seconds when it stopped */
  stop_rule sr = {.best_test = -INFINITY, .best_step = -1, .best_loss = info.loss, .best_ev = ev};
  if (!isnan(ev.test_loss)) stop_track_best(&sr, &r, &info, &ev);
  while (info.step < cfg->steps && !interrupted) {
    if (cfg->target_rel > 0 && info.loss <= cfg->target_rel * loss0) {
      why = STOP_TARGET;
      break;
    }
    if (cfg->time_limit > 0 && time_s >= cfg->time_limit) {
      why = STOP_TIME;
      break;
    }
    bar.step = info.step + 1;
    if (bar.on) progress_draw(&bar, 0, 0);
    if (cfg->time_limit > 0) arm_alarm(cfg->time_limit - time_s);
    sgn_step_info next;
    sgn_status st = sgn_session_step(r.ses, &next);
    if (cfg->time_limit > 0) arm_alarm(0);
    progress_clear(&bar);
    if (st == SGN_E_INTERRUPTED) {
      cut = next.step, cut_s = time_s + next.step_ms * 1e-3;
      if (!interrupted) why = STOP_TIME;
      break;
    }
    info = next;
    time_s = sgn_session_time_ms(r.ses) * 1e-3;
    if (st != SGN_OK) {
      fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
      rc = 1, step_failed = 1, why = "failed";
      break;
    }
    evaluate(&r, &ev);
    const char *stop = stop_check(&sr, cfg, &r, &info, &ev, loss0, time_s);
    if (stop) why = stop;
    if (r.jf) log_json(r.jf, &info, &ev, time_s, solver, device, stop);
    if (!cfg->quiet) log_human(&info, &ev, loss0, time_s);
    if (cfg->checkpoint_every > 0 && info.step % cfg->checkpoint_every == 0 &&
        write_checkpoint(r.ses, r.model, &r.meta, &r.extra, r.ckpt_path) != SGN_OK) {
      fprintf(stderr, "sketchgn train: checkpoint: %s\n", sgn_last_error());
      rc = 1;
      break;
    }
    if (stop) break;
  }
  sigaction(SIGALRM, &old_alrm, NULL);

  if (interrupted && rc == 0) {
    char dropped[64] = "";
    if (cut) snprintf(dropped, sizeof dropped, " (step %lld dropped)", (long long)cut);
    fprintf(stderr, "sketchgn: interrupted after step %lld%s", (long long)info.step, dropped);
    if (cfg->save) {
      sgn_status st = sgn_session_sync(r.ses);
      if (st == SGN_OK) st = save_model(cfg->save, &r);
      if (st == SGN_OK) fprintf(stderr, "; model written to %s", cfg->save);
      else fprintf(stderr, "; model not written: %s", sgn_last_error());
    }
    if (r.ckpt_path && write_checkpoint(r.ses, r.model, &r.meta, &r.extra, r.ckpt_path) == SGN_OK)
      fprintf(stderr, "; checkpoint written to %s (continue with --resume %s)", r.ckpt_path,
              r.ckpt_path);
    else if (r.ckpt_path) fprintf(stderr, "; checkpoint failed: %s", sgn_last_error());
    else fprintf(stderr, "; no --checkpoint or --save path, nothing saved");
    fputc('\n', stderr);
    rc = 130;
  } else if (rc == 0 && !cfg->quiet) {
    if (cut)
      fprintf(stderr,
              "sketchgn: --time-limit %g stopped step %lld at %.3f s of training; the step is "
              "dropped\n",
              cfg->time_limit, (long long)cut, cut_s);
    fprintf(stderr, "sketchgn: stop: %s after %lld steps, %.2f s: loss %.4e (%.2e of initial)", why,
            (long long)info.step, time_s, info.loss, loss0 > 0 ? info.loss / loss0 : 0);
    if (sr.keep_best)
      fprintf(stderr, "; keeping step %lld (test loss %.4e)", (long long)sr.best_step,
              sr.best_ev.test_loss);
    const step_eval *fin = sr.keep_best ? &sr.best_ev : &ev;
    if (!isnan(fin->test_acc)) fprintf(stderr, ", test accuracy %.4f", fin->test_acc);
    if (!isnan(fin->test_r2))
      fprintf(stderr, ", test rmse %.4g r2 %.4f", sqrt(fin->test_mse), fin->test_r2);
    fputc('\n', stderr);
  }
  if ((rc == 0 || step_failed) && cfg->save) {
    if (step_failed) fprintf(stderr, "sketchgn: saving the last good model to %s\n", cfg->save);
    sgn_status st = sgn_session_sync(r.ses);
    if (st == SGN_OK && sr.keep_best && !step_failed)
      memcpy(r.model->W, sr.best_W, (size_t)(r.model->m * r.model->d) * sizeof(float));
    if (st == SGN_OK) st = save_model(cfg->save, &r);
    if (st != SGN_OK) {
      fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
      rc = st == SGN_E_INPUT ? 2 : 1;
    }
  }
  if (r.jf) {
    int bad = ferror(r.jf) | fclose(r.jf);
    r.jf = NULL;
    if (bad) {
      fprintf(stderr, "sketchgn train: --log-json %s: write failed\n", cfg->log_json);
      rc = rc ? rc : 1;
    }
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sig_session = NULL;
  free(sr.best_W);
  run_free(&r);
  return rc;
}

/* ---- sketchgn train: the options ---- */

static const char *const onoff_names[] = {"off", "on", NULL};

static const opt_spec opt_test = {.name = "test",
                                  .kind = OPT_STRING,
                                  .arg = "SPEC",
                                  .what = "a data SPEC",
                                  .help = "held-out data evaluated after every step"};
static const opt_spec opt_test_targets = {.name = "test-targets",
                                          .kind = OPT_STRING,
                                          .arg = "T",
                                          .what = "a value",
                                          .help = "--targets for the --test data"};
static const opt_spec opt_task = {
    .name = "task",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_TASK,
    .help = "classify: integer labels become k one-hot 0/1 outputs; reports accuracy"};
static const opt_spec opt_normalize = {
    .name = "normalize",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_NORMALIZE,
    .help =
        "sphere: per-feature z-score, one constant sqrt(d) appended, then unit norm per sample "
        "(d + 1 inputs; keeps each sample's norm as an angle; tables and images alike); "
        "standard+unit: z-score, then unit norm (drops the norm); unit: center, then unit norm; "
        "standard: z-score only"};
static const char *const target_scale_names[] = {"standard", "none", NULL};
static const opt_spec opt_target_scale = {
    .name = "target-scale",
    .kind = OPT_CHOICE,
    .local = target_scale_names,
    .help =
        "regression: standard trains on each target column's z-score (training set's mean and "
        "std, stored with the model; outputs, MSE and R^2 in the targets' units); none: on the "
        "targets as they are"};
static const opt_spec opt_bias = {
    .name = "bias", .kind = OPT_FLAG, .help = "append a constant 1 feature after normalizing"};
static const opt_spec opt_width = {.name = "width",
                                   .kind = OPT_INT,
                                   .arg = "M",
                                   .lo = 1,
                                   .hi = INT64_MAX,
                                   .help = "hidden width m, >= 1, even with --init symmetric"};
static const opt_spec opt_init = {
    .name = "init",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_INIT,
    .help = "symmetric: mirrored neuron pairs, so f == 0 at the start"};
static const char *const outputs_names[] = {"auto", "shared", "separate", NULL};
static const opt_spec opt_outputs = {
    .name = "outputs",
    .kind = OPT_CHOICE,
    .local = outputs_names,
    .help =
        "with k > 1 outputs: shared: one hidden layer of M neurons for all; separate: one of "
        "M neurons each, initialized alike, so the Gauss-Newton system splits per output",
    .dflt = "auto: separate with gn-gram or auto, M % 64 == 0"};
static const opt_spec opt_damping = {.name = "damping",
                                     .kind = OPT_REAL,
                                     .arg = "L",
                                     .rlo = 0,
                                     .rhi = INFINITY,
                                     .hi_open = 1,
                                     .help = "lambda in (G + lambda I) g = r, >= 0",
                                     .dflt = "auto, 1e-6 * mean(G_ii) each step"};
/* --ridge auto|R into a double: -1 for auto */
static int parse_ridge(const char *s, void *dst, char *msg, size_t cap) {
  char *end;
  if (!strcmp(s, "auto")) {
    *(double *)dst = -1;
    return 0;
  }
  errno = 0;
  const double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v) || v < 0) {
    snprintf(msg, cap, "expected auto or a number >= 0, got '%s'", s);
    return -1;
  }
  *(double *)dst = v;
  return 0;
}
static const opt_spec opt_ridge = {
    .name = "ridge",
    .kind = OPT_CUSTOM,
    .arg = "auto|R",
    .parse = parse_ridge,
    .help = "Gauss-Newton: add R * mean(G_ii) * ||W - W0||^2 / 2n to the loss (weight decay "
            "towards the start: kernel ridge regression in the lazy regime); 0: interpolate",
    .dflt = "auto: leave-one-out on the initial Gram of up to 2048 samples"};
static const opt_spec opt_lr = {.name = "lr",
                                .kind = OPT_REAL,
                                .arg = "ETA",
                                .rlo = 0,
                                .rhi = INFINITY,
                                .lo_open = 1,
                                .hi_open = 1,
                                .help = "step size eta, > 0",
                                .dflt = "1 for gn-*, 1.8 n / lambda_max(G) for gd, 1e-3 for adam"};
static const opt_spec opt_line_search = {.name = "line-search",
                                         .kind = OPT_CHOICE,
                                         .local = onoff_names,
                                         .help = "halve the step until the loss decreases",
                                         .dflt = "on for gn-*, off for gd and adam"};
static const opt_spec opt_batch = {.name = "batch",
                                   .kind = OPT_INT,
                                   .arg = "B",
                                   .lo = 1,
                                   .hi = INT64_MAX,
                                   .help = "samples per step, >= 1",
                                   .dflt = "all samples; 128 for adam"};
static const opt_spec opt_steps = {.name = "steps",
                                   .kind = OPT_INT,
                                   .arg = "T",
                                   .lo = 0,
                                   .hi = INT64_MAX,
                                   .help =
                                       "maximum number of steps (a cap: the stop rule below "
                                       "usually ends the run first), >= 0"};
static const opt_spec opt_target_rel = {
    .name = "target-rel",
    .kind = OPT_REAL,
    .arg = "R",
    .rlo = 0,
    .rhi = 1,
    .lo_open = 1,
    .hi_open = 1,
    .zero_ok = 1,
    .help = "stop at loss <= R * step-0 loss; 0 < R < 1, 0 = off",
    .dflt = "off"};
static const opt_spec opt_time_limit = {.name = "time-limit",
                                        .kind = OPT_REAL,
                                        .arg = "SEC",
                                        .rlo = 0,
                                        .rhi = INFINITY,
                                        .lo_open = 1,
                                        .hi_open = 1,
                                        .help = "stop after SEC seconds of training, > 0",
                                        .dflt = "none"};
static const opt_spec opt_tol = {
    .name = "tol",
    .kind = OPT_REAL,
    .arg = "R",
    .rlo = 0,
    .rhi = 1,
    .hi_open = 1,
    .help =
        "converged: relative loss decrease below R in 2 steps running, or loss at 1e-10 "
        "of step 0; 0 = off"};
static const opt_spec opt_patience = {
    .name = "patience",
    .kind = OPT_INT,
    .arg = "N",
    .lo = 0,
    .hi = INT64_MAX,
    .help =
        "with --test: stop after N steps without a better test score (accuracy when "
        "classifying, else the test loss) and keep the best step's model; 0 = off"};
static const opt_spec opt_log_json = {.name = "log-json",
                                      .kind = OPT_STRING,
                                      .arg = "FILE",
                                      .what = "a file name",
                                      .help = "write one JSON object per step to FILE"};
static const opt_spec opt_save = {.name = "save",
                                  .kind = OPT_STRING,
                                  .arg = "FILE",
                                  .what = "a file name",
                                  .help = "write the trained model to FILE"};
static const opt_spec opt_checkpoint_every = {.name = "checkpoint-every",
                                              .kind = OPT_INT,
                                              .arg = "N",
                                              .lo = 1,
                                              .hi = INT64_MAX,
                                              .help = "write a checkpoint every N steps",
                                              .dflt = "never"};
static const opt_spec opt_checkpoint = {.name = "checkpoint",
                                        .kind = OPT_STRING,
                                        .arg = "FILE",
                                        .what = "a file name",
                                        .help = "where checkpoints go",
                                        .dflt = "the --save path + .ckpt"};
static const opt_spec opt_resume = {
    .name = "resume",
    .kind = OPT_STRING,
    .arg = "FILE",
    .what = "a file name",
    .help = "continue a run from a checkpoint (same data and solver)"};
static const opt_spec opt_quiet = {
    .name = "quiet", .kind = OPT_FLAG, .help = "no per-step lines on stderr"};

/* A warning, not an error: s close to n leaves the sketched preconditioner near singular. The
 * estimate is the Gaussian (Marchenko-Pastur) condition number ((1 + sqrt(n/s))/(1 - sqrt(n/s)))^2. */
static void train_warn(const sgn_train_config *cfg) {
  double r = cfg->opt.sketch_ratio;
  if (cfg->quiet || cfg->opt.solver != SGN_SOLVER_GN_SKETCH || r >= 2) return;
  double q = sqrt(1.0 / r);
  if (q >= 1)
    fprintf(stderr,
            "sketchgn train: warning: --sketch-ratio %g gives s = n rows; the "
            "preconditioner is near singular (use 2 or more)\n",
            r);
  else
    fprintf(stderr,
            "sketchgn train: warning: --sketch-ratio %g: expect a preconditioned "
            "condition number near %.0f (use 2 or more)\n",
            r, pow((1 + q) / (1 - q), 2));
}

/* ---- train --resume: the settings stored in the checkpoint ---- */

/* Options that fix what a checkpoint is: given on resume with another value, an error. The rest
 * (stopping, CG tolerances, step size, device, output files, --test) may change; --data and --targets
 * may name the same data anew (a moved file), which the data's fingerprint checks. */
static int fixed_by_checkpoint(const opt_spec *s) {
  return s == &opt_task || s == &opt_normalize || s == &opt_bias || s == &opt_width ||
         s == &opt_init || s == &opt_seed || s == &opt_solver || s == &opt_batch ||
         s == &opt_outputs || s == &opt_ridge || s == &opt_target_scale;
}

/* Where entry e's value lives and how many bytes it takes. */
static size_t value_size(const opt_entry *e) {
  switch (e->spec->kind) {
  case OPT_INT: return e->spec->narrow ? sizeof(int) : sizeof(int64_t);
  case OPT_U64: return sizeof(uint64_t);
  case OPT_REAL:
  case OPT_SIZE: return sizeof(double);
  case OPT_STRING: return sizeof(const char *);
  case OPT_CUSTOM: /* --precond-refresh: two fields of sgn_options, below; --ridge: a double */
    return e->spec == &opt_ridge ? sizeof(double) : 0;
  default: return sizeof(int);
  }
}

/* Entry e's value at v as the command line writes it. */
static void value_text(const opt_entry *e, const void *v, char *buf, size_t cap) {
  const opt_spec *sp = e->spec;
  switch (sp->kind) {
  case OPT_STRING: opts_shown(*(char *const *)v ? *(char *const *)v : "(none)", buf, cap); break;
  case OPT_INT:
    snprintf(buf, cap, "%lld",
             sp->narrow ? (long long)*(const int *)v : (long long)*(const int64_t *)v);
    break;
  case OPT_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)v); break;
  case OPT_FLAG: snprintf(buf, cap, "%s", *(const int *)v ? "(given)" : "(not given)"); break;
  case OPT_CHOICE: {
    const char *name = sp->local ? sp->local[*(const int *)v]
                                 : sgn_name(sp->names, *(const int *)v);
    snprintf(buf, cap, "%s", name ? name : "?");
    break;
  }
  case OPT_CUSTOM:
    if (sp->name && !strcmp(sp->name, "ridge")) {
      const double r = *(const double *)v;
      if (r < 0) snprintf(buf, cap, "auto");
      else snprintf(buf, cap, "%g", r);
      break;
    }
    snprintf(buf, cap, "another value");
    break;
  default: snprintf(buf, cap, "another value"); break;
  }
}

typedef struct stored_run {
  sgn_model_extra x;
  char **argv; /* "train", the stored tokens, then the command line's, NULL */
  int argc;
} stored_run;

static void stored_run_free(stored_run *sr) {
  for (int i = 1; i < sr->argc; i++) free(sr->argv[i]);
  free(sr->argv);
  sgn_model_extra_free(&sr->x);
}

/* train --resume FILE [flags]: the run's settings are the checkpoint's stored command line with
 * the flags given now on top; a flag that fixes the checkpoint (fixed_by_checkpoint) with another
 * value is an error naming it. *cfg is rewritten; returns 0 or an exit status. A checkpoint
 * without stored settings (an older one) leaves *cfg as parsed. */
static int resume_merge(opt_cmd *cmd, sgn_train_config *cfg, int argc, char **argv,
                        stored_run *sr) {
  sgn_model *m = NULL;
  sgn_model_meta meta;
  void *state = NULL;
  size_t bytes;
  sgn_status st = sgn_checkpoint_load_extra(cfg->resume, &m, &meta, &sr->x, &state, &bytes);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);
  free(state);
  if (st != SGN_OK) {
    fprintf(stderr, "sketchgn train: --resume %s: %s\n", cfg->resume, sgn_last_error());
    return st == SGN_E_RUNTIME ? 1 : 2;
  }
  int ntok = 0;
  for (const char *p = sr->x.run; p && (p = strstr(p, "arg=")); p += 4)
    if (p == sr->x.run || p[-1] == '\n') ntok++;
  if (ntok == 0) return 0;
  sr->argv = calloc((size_t)(ntok + argc + 1), sizeof *sr->argv);
  if (!sr->argv) return opts_error("train", "out of memory");
  sr->argv[sr->argc++] = "train";
  for (const char *p = sr->x.run; *p;) {
    const char *e = strchr(p, '\n');
    if (!strncmp(p, "arg=", 4)) {
      char *t = malloc((size_t)(e - p)), *q = t;
      if (!t) return opts_error("train", "out of memory");
      for (p += 4; p < e; p++) {
        if (*p == '\\' && p + 1 < e) p++, *q++ = *p == 'n' ? '\n' : *p;
        else *q++ = *p;
      }
      *q = 0;
      sr->argv[sr->argc++] = t;
    }
    p = e + 1;
  }
  const int stored = sr->argc;
  for (int i = 1; i < argc; i++)
    if (!(sr->argv[sr->argc++] = strdup(argv[i]))) return opts_error("train", "out of memory");

  /* U: the command line as parsed; S: the stored tokens alone; then S with U's flags on top */
  const sgn_train_config U = *cfg;
  int seen[64];
  for (int i = 0; i < cmd->count && i < 64; i++) seen[i] = cmd->opts[i].seen;
  *cfg = sgn_train_config_default();
  if (opts_parse(cmd, stored, sr->argv) != OPTS_RUN)
    return opts_error("train", "--resume %s: the stored settings do not parse", U.resume);
  char *base = (char *)cfg;
  const char *ubase = (const char *)&U;
  for (int i = 0; i < cmd->count && i < 64; i++) {
    const opt_entry *e = &cmd->opts[i];
    if (!e->spec || !seen[i]) continue;
    size_t off = (size_t)((char *)e->dst - base), size = value_size(e);
    if (e->spec == &opt_refresh) {
      cfg->opt.refresh = U.opt.refresh, cfg->opt.refresh_every = U.opt.refresh_every;
      continue;
    }
    int same;
    if (e->spec->kind == OPT_STRING) {
      const char *a = *(char *const *)(base + off), *b = *(char *const *)(ubase + off);
      same = a && b ? !strcmp(a, b) : a == b;
    } else {
      same = !memcmp(base + off, ubase + off, size);
    }
    if (!same && fixed_by_checkpoint(e->spec)) {
      char was[96];
      value_text(e, base + off, was, sizeof was);
      return opts_error("train",
                        "--%s: the checkpoint %s was trained with --%s %s; a resumed run keeps "
                        "it (leave the flag out, or start a new run)",
                        e->spec->name, U.resume, e->spec->name, was);
    }
    memcpy(base + off, ubase + off, size);
  }
  cfg->resume = U.resume;
  return 0;
}

static int train_checked(sgn_train_config *cfg);

int sgn_cmd_train(int argc, char **argv) {
  sgn_train_config cfg = sgn_train_config_default();
  sgn_options *o = &cfg.opt;
  opt_entry opts[] = {
      {.help = "Data and model:"},
      {.spec = &opt_data,
       .dst = &cfg.data,
       .help = "training data (required), e.g. synth:n=1024,d=32,k=1,seed=1"},
      {.spec = &opt_targets, .dst = &cfg.targets},
      {.spec = &opt_test, .dst = &cfg.test},
      {.spec = &opt_test_targets, .dst = &cfg.test_targets},
      {.spec = &opt_task, .dst = &cfg.task},
      {.spec = &opt_normalize, .dst = &cfg.normalize},
      {.spec = &opt_bias, .dst = &cfg.bias},
      {.spec = &opt_target_scale, .dst = &cfg.target_scale},
      {.spec = &opt_width, .dst = &cfg.width},
      {.spec = &opt_init, .dst = &cfg.init},
      {.spec = &opt_outputs, .dst = &cfg.outputs},
      {.spec = &opt_seed, .dst = &cfg.seed},
      {.help = "Solver:"},
      {.spec = &opt_solver, .dst = &o->solver},
      {.spec = &opt_sketch, .dst = &o->sketch},
      {.spec = &opt_sketch_ratio, .dst = &o->sketch_ratio},
      {.spec = &opt_precision, .dst = &o->precision},
      {.spec = &opt_product_precision, .dst = &o->product_precision},
      {.spec = &opt_refresh, .dst = o},
      {.spec = &opt_damping, .dst = &o->damping},
      {.spec = &opt_ridge, .dst = &o->ridge},
      {.spec = &opt_lr, .dst = &o->lr},
      {.spec = &opt_line_search, .dst = &o->line_search},
      {.spec = &opt_cg_tol, .dst = &o->cg_tol},
      {.spec = &opt_cg_max, .dst = &o->cg_max},
      {.spec = &opt_batch, .dst = &o->batch},
      {.help = "Stopping:"},
      {.spec = &opt_steps, .dst = &cfg.steps},
      {.spec = &opt_target_rel, .dst = &cfg.target_rel},
      {.spec = &opt_time_limit, .dst = &cfg.time_limit},
      {.spec = &opt_tol, .dst = &cfg.tol},
      {.spec = &opt_patience, .dst = &cfg.patience},
      {.help = "Run:"},
      {.spec = &opt_device, .dst = &cfg.device},
      {.spec = &opt_max_memory, .dst = &o->max_memory},
      {.spec = &opt_chunk_neurons, .dst = &o->chunk_neurons},
      {.spec = &opt_log_json, .dst = &cfg.log_json},
      {.spec = &opt_save, .dst = &cfg.save},
      {.spec = &opt_checkpoint_every, .dst = &cfg.checkpoint_every},
      {.spec = &opt_checkpoint, .dst = &cfg.checkpoint},
      {.spec = &opt_resume, .dst = &cfg.resume},
      {.spec = &opt_quiet, .dst = &cfg.quiet},
  };
  opt_cmd cmd = {"train",
                 "usage: sketchgn train --data SPEC [options]\n"
                 "\n"
                 "Trains f(x) = m^-1/2 A^T relu(W x) (W trained, A fixed +-1) on the loss\n"
                 "1/(2n) sum ||f(x_i) - y_i||^2, printing one line per step on stderr. A\n"
                 "regression trains on standardized targets (--target-scale): its loss is half\n"
                 "the mean squared error of the standardized targets, while MSE, RMSE, R^2 and\n"
                 "predictions are in the targets' own units.\n",
                 "Exit status: 0 success, 1 runtime failure, 2 usage or bad input, 130\n"
                 "interrupted.\n",
                 opts, OPTS_COUNT(opts)};
  int rc = opts_parse(&cmd, argc, argv);
  if (rc == OPTS_HELP) {
    cfg = sgn_train_config_default(); /* the help shows the defaults */
    opts_help(stdout, &cmd);
    return 0;
  }
  if (rc != OPTS_RUN) return rc;
  stored_run sr = {0};
  if (cfg.resume && (rc = resume_merge(&cmd, &cfg, argc, argv, &sr)) != 0) {
    stored_run_free(&sr);
    return rc;
  }
  /* what the checkpoints store: the merged command line on resume, else this one */
  cfg.args = (const char *const *)(sr.argv ? sr.argv + 1 : argv + 1);
  cfg.nargs = sr.argv ? sr.argc - 1 : argc - 1;
  rc = train_checked(&cfg);
  stored_run_free(&sr);
  return rc;
}

/* The checks that involve more than one option, then the run. */
static int train_checked(sgn_train_config *cfg_in) {
  sgn_train_config cfg = *cfg_in;
  sgn_options *o = &cfg.opt;
  o->seed = cfg.seed;

  /* Checks that involve more than one option, so the order on the command line is free. */
  if (!cfg.data)
    return opts_error("train",
                      "--data: missing; a data SPEC is required "
                      "(e.g. --data synth:n=1024,d=32)");
  if (cfg.checkpoint_every > 0 && !cfg.checkpoint && !cfg.save)
    return opts_error("train", "--checkpoint-every: needs --checkpoint FILE or --save FILE");
  if (cfg.test_targets && !cfg.test)
    return opts_error("train", "--test-targets: needs --test SPEC");
  if (o->ridge > 0 && (o->solver == SGN_SOLVER_GD || o->solver == SGN_SOLVER_ADAM))
    return opts_error("train", "--ridge: needs a Gauss-Newton solver (--solver %s has none)",
                      sgn_name(SGN_NAMES_SOLVER, o->solver));
  if (o->ridge > 0 && o->batch > 0)
    return opts_error("train", "--ridge: needs full-batch steps (leave --batch out)");
  if (cfg.task == SGN_TASK_CLASSIFY && cfg.target_scale != SGN_TARGET_SCALE_STANDARD)
    return opts_error("train",
                      "--target-scale none: only for --task regression (classification trains "
                      "on one-hot targets, never scaled)");
  if (cfg.init == SGN_INIT_SYMMETRIC && cfg.width % 2 != 0)
    return opts_error("train",
                      "--width: --init symmetric needs an even width, got %" PRId64
                      " (use an even width or --init gaussian)",
                      cfg.width);
  train_warn(&cfg);
  fflush(stdout);
  return sgn_train_run(&cfg);
}
