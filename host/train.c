/* train.c — a whole run as the CLI drives it: load data, create the model, open a backend, step
 * until --steps, --target-rel or --time-limit, and log each step (a human line on stderr,
 * one JSON object per line with --log-json). The log file is written to FILE.tmp and renamed. */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "util.h"

static const char *solver_names[] = {"gd", "adam", "gn-exact", "gn-cg", "gn-sketch", "gn-gram"};

sgn_train_config sgn_train_config_default(void) {
  sgn_train_config cfg = {0};
  cfg.width = 1024;
  cfg.init = SGN_INIT_SYMMETRIC;
  cfg.seed = 1;
  cfg.device = SGN_DEVICE_AUTO;
  cfg.opt = sgn_options_default();
  cfg.steps = 20;
  return cfg;
}

static void log_json(FILE *f, const sgn_step_info *in, double time_s, const char *solver,
                     const char *device) {
  fprintf(f,
          "{\"step\":%lld,\"loss\":%.9g,\"time_s\":%.6f,\"step_ms\":%.3f,\"cg_iters\":%d,"
          "\"solver\":\"%s\",\"device\":\"%s\",\"forward_ms\":%.3f,\"sketch_ms\":%.3f,"
          "\"precond_ms\":%.3f,\"solve_ms\":%.3f,\"update_ms\":%.3f,\"lr\":%.6g,"
          "\"damping\":%.6g,\"cg_relres\":%.3g,\"cg_capped\":%s,\"refreshed\":%s,"
          "\"ls_halvings\":%d,\"ls_failed\":%s}\n",
          (long long)in->step, in->loss, time_s, in->step_ms, in->cg_iters, solver, device,
          in->forward_ms, in->sketch_ms, in->precond_ms, in->solve_ms, in->update_ms, in->lr,
          in->damping, in->cg_relres, in->cg_capped ? "true" : "false",
          in->refreshed ? "true" : "false", in->ls_halvings, in->ls_failed ? "true" : "false");
}

static void log_human(const sgn_step_info *in, double loss0, double time_s) {
  if (in->step == 0) {
    fprintf(stderr, "step %4d  loss %.4e\n", 0, in->loss);
    return;
  }
  fprintf(stderr,
          "step %4lld  loss %.4e  rel %.2e  lr %.3g  cg %3d%s%s  | fwd %.1f sk %.1f pc %.1f "
          "solve %.1f upd %.1f ms  (%.2f s)\n",
          (long long)in->step, in->loss, loss0 > 0 ? in->loss / loss0 : 0, in->lr, in->cg_iters,
          in->cg_capped ? " (cap)" : "", in->refreshed ? " R" : "", in->forward_ms, in->sketch_ms,
          in->precond_ms, in->solve_ms, in->update_ms, time_s);
}

int sgn_train_run(const sgn_train_config *cfg) {
  sgn_dataset ds;
  sgn_model *model = NULL;
  sgn_backend *be = NULL;
  sgn_session *ses = NULL;
  FILE *jf = NULL;
  char *tmp = NULL;
  int rc = 0;

  if (!cfg->data) {
    fprintf(stderr, "sketchgn train: --data is required\n");
    return 2;
  }
  if (sgn_data_load(cfg->data, &ds) != SGN_OK) {
    fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
    return 2;
  }
  model = sgn_model_create(ds.d, cfg->width, ds.k, cfg->init, cfg->seed);
  if (!model) {
    fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
    rc = 2;
    goto done;
  }
  be = sgn_backend_open(cfg->device);
  if (!be) {
    fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
    rc = cfg->device == SGN_DEVICE_GPU ? 2 : 1;
    goto done;
  }
  if (cfg->device == SGN_DEVICE_AUTO && !cfg->quiet && strcmp(sgn_backend_name(be), "cpu") == 0)
    fprintf(stderr, "sketchgn: no GPU backend available; training on the CPU\n");
  ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &cfg->opt);
  if (!ses) {
    fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
    rc = 1;
    goto done;
  }
  if (cfg->log_json) {
    tmp = malloc(strlen(cfg->log_json) + 8);
    sprintf(tmp, "%s.tmp", cfg->log_json);
    jf = fopen(tmp, "w");
    if (!jf) {
      fprintf(stderr, "sketchgn train: --log-json %s: cannot write %s\n", cfg->log_json, tmp);
      rc = 2;
      goto done;
    }
  }
  const char *solver = solver_names[cfg->opt.solver];
  const char *device = sgn_backend_name(be);
  if (!cfg->quiet)
    fprintf(stderr, "sketchgn: %s  n=%lld d=%lld k=%lld  width %lld  solver %s  device %s\n",
            cfg->data, (long long)ds.n, (long long)ds.d, (long long)ds.k, (long long)cfg->width,
            solver, device);

  sgn_step_info info = {0};
  info.loss = sgn_session_loss(ses);
  double loss0 = info.loss, time_s = 0;
  if (jf) log_json(jf, &info, 0, solver, device);
  if (!cfg->quiet) log_human(&info, loss0, 0);
  const char *why = "steps done";
  for (int64_t t = 1; t <= cfg->steps; t++) {
    if (cfg->target_rel > 0 && info.loss <= cfg->target_rel * loss0) {
      why = "target reached";
      break;
    }
    if (cfg->time_limit > 0 && time_s >= cfg->time_limit) {
      why = "time limit";
      break;
    }
    sgn_status st = sgn_session_step(ses, &info);
    time_s += info.step_ms * 1e-3;
    if (st != SGN_OK) {
      fprintf(stderr, "sketchgn train: %s\n", sgn_last_error());
      rc = 1;
      break;
    }
    if (jf) log_json(jf, &info, time_s, solver, device);
    if (!cfg->quiet) log_human(&info, loss0, time_s);
    if (info.ls_failed) {
      why = "no step size lowers the loss";
      break;
    }
  }
  if (rc == 0 && cfg->target_rel > 0 && info.loss <= cfg->target_rel * loss0) why = "target reached";
  if (!cfg->quiet && rc == 0)
    fprintf(stderr, "sketchgn: %s after %lld steps, %.2f s: loss %.4e (%.2e of initial)\n", why,
            (long long)info.step, time_s, info.loss, loss0 > 0 ? info.loss / loss0 : 0);
  if (jf) {
    int bad = ferror(jf) | fclose(jf);
    jf = NULL;
    if (bad || rename(tmp, cfg->log_json)) {
      fprintf(stderr, "sketchgn train: --log-json %s: write failed\n", cfg->log_json);
      remove(tmp);
      rc = rc ? rc : 1;
    }
  }
  if (rc == 0) sgn_session_sync(ses);

done:
  if (jf) {
    fclose(jf);
    remove(tmp);
  }
  free(tmp);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
  return rc;
}
