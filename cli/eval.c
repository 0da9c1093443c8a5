/* eval.c — `sketchgn eval` (a saved model's loss, and accuracy when it classifies) and
 * `sketchgn predict` (its outputs as CSV or NPY): one option table, one forward pass on the
 * chosen backend under the same memory budget as training. A regression's loss is in the units
 * it trained in (standardized targets, as train's loss); its outputs, MSE and R^2 are mapped back
 * to the targets' units. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "opts.h"
#include "train.h"
#include "util.h"

/* Exit status for a failed library call: 1 for runtime failures (memory, I/O), 2 for bad input. */
static int fail_status(void) { return sgn_last_status() == SGN_E_RUNTIME ? 1 : 2; }

/* ---- the runs ---- */

typedef struct loaded {
  sgn_model *model;
  sgn_model_meta meta;
  sgn_model_extra extra;
  sgn_labels labels; /* the classes when classifying */
  sgn_dataset ds;    /* ds.k == 0: unlabeled (predict only) */
  char **text;       /* text class labels of ds, or NULL */
  int64_t *cls;      /* (n) the rows' classes when classifying and labeled */
  float *X, *Y, *F; /* Y in training units; F in the targets' units after load_and_forward */
  double loss;      /* in training units */
} loaded;

static void loaded_free(loaded *l) {
  free(l->X), free(l->Y), free(l->F), free(l->cls);
  sgn_data_text_free(l->text, l->ds.n);
  sgn_labels_free(&l->labels);
  sgn_model_extra_free(&l->extra);
  sgn_model_free(l->model);
  sgn_prep_free(&l->meta.prep);
  sgn_dataset_free(&l->ds);
}

/* Loads the model and data and runs the forward pass on the chosen backend. predict also takes
 * data without targets (only the model's input columns, or an NPY without --targets). */
static int load_and_forward(const char *cmd, const sgn_eval_config *cfg, int predict, loaded *l) {
  if (!cfg->model || !cfg->data) {
    fprintf(stderr, "sketchgn %s: --model and --data are required\n", cmd);
    return 2;
  }
  char what[600];
  snprintf(what, sizeof what, "--data '%s' (model %s)", cfg->data, cfg->model);
  if (sgn_model_load_extra(cfg->model, &l->model, &l->meta, &l->extra) != SGN_OK) {
    fprintf(stderr, "sketchgn %s: %s\n", cmd, sgn_last_error());
    return fail_status();
  }
  const int classify = l->meta.task == SGN_TASK_CLASSIFY;
  char **names = l->extra.labels;
  l->extra.labels = NULL, l->extra.nlabels = 0;
  const sgn_data_want want = {.inputs = predict ? l->meta.prep.d_in : 0, .text_labels = classify};
  if ((classify && sgn_labels_adopt(&l->labels, l->meta.classes, names) != SGN_OK) ||
      sgn_data_load_ex(cfg->data, cfg->targets, &want, &l->ds, &l->text) != SGN_OK ||
      sgn_prepare_inputs(&l->meta, &l->ds, what, &l->X) != SGN_OK ||
      (l->ds.k > 0 && classify &&
       sgn_labels_classes(&l->labels, &l->ds, l->text, what, &l->cls) != SGN_OK) ||
      (l->ds.k > 0 &&
       sgn_prepare_targets(&l->meta, &l->ds, l->cls, l->model->k, what, &l->Y) != SGN_OK)) {
    fprintf(stderr, "sketchgn %s: %s\n", cmd, sgn_last_error());
    return fail_status();
  }
  l->F = sgn_calloc((size_t)(l->ds.n * l->model->k), sizeof(float));
  sgn_backend *be = sgn_backend_open(cfg->device);
  if (!l->F || !be) {
    fprintf(stderr, "sketchgn %s: %s\n", cmd, sgn_last_error());
    return !be && cfg->device == SGN_DEVICE_GPU ? 2 : 1;
  }
  sgn_options opt = sgn_options_default();
  opt.max_memory = cfg->max_memory, opt.chunk_neurons = cfg->chunk_neurons;
  sgn_status st = sgn_evaluate_with(be, l->model, l->X, l->Y, l->ds.n, &opt, l->Y ? &l->loss : NULL,
                                    l->F);
  sgn_backend_close(be);
  if (st != SGN_OK) {
    fprintf(stderr, "sketchgn %s: %s\n", cmd, sgn_last_error());
    return st == SGN_E_INPUT ? 2 : 1;
  }
  if (!classify) sgn_prep_targets_undo(&l->meta.prep, l->F, l->ds.n);
  return 0;
}

int sgn_eval_run(const sgn_eval_config *cfg) {
  loaded l = {0};
  int rc = load_and_forward("eval", cfg, 0, &l);
  if (rc == 0) {
    printf("loss %.9g\n", l.loss);
    if (l.meta.task != SGN_TASK_CLASSIFY) {
      double mse, r2;
      sgn_regression_metrics(l.F, l.ds.Y, l.ds.n, l.model->k, &mse, &r2);
      printf("mse %.9g\nrmse %.9g\nr2 %.9g\n", mse, sqrt(mse), r2);
      printf("units %s\n", l.meta.prep.k_y > 0
                               ? "loss in standardized targets (as trained), mse and rmse in "
                                 "the targets' own units"
                               : "loss, mse and rmse in the targets' own units (trained on "
                                 "them unscaled)");
    }
    if (l.meta.task == SGN_TASK_CLASSIFY)
      printf("accuracy %.6f\n", sgn_accuracy(l.F, l.cls, l.ds.n, l.model->k));
    printf("samples %lld\n", (long long)l.ds.n);
  }
  loaded_free(&l);
  return rc;
}

/* ",LABEL", quoted (RFC 4180) when it holds a comma, a quote or a blank at either end. */
static void write_label(FILE *f, const char *s) {
  size_t len = strlen(s);
  if (!strpbrk(s, ",\"") && len && s[0] != ' ' && s[len - 1] != ' ') {
    fprintf(f, ",%s", s);
    return;
  }
  fputs(",\"", f);
  for (; *s; s++) fputs(*s == '"' ? "\"\"" : (char[]){*s, 0}, f);
  fputc('"', f);
}

/* Writes F (n, k) [+ class column, the labels the model was trained on] as CSV to f. */
static int write_csv(FILE *f, const loaded *l) {
  int64_t k = l->model->k;
  int cls = l->meta.task == SGN_TASK_CLASSIFY;
  char buf[32];
  for (int64_t c = 0; c < k; c++) fprintf(f, "%sout%lld", c ? "," : "", (long long)c);
  fputs(cls ? ",class\n" : "\n", f);
  for (int64_t i = 0; i < l->ds.n; i++) {
    int64_t best = 0;
    for (int64_t c = 0; c < k; c++) {
      fprintf(f, "%s%.9g", c ? "," : "", l->F[i * k + c]);
      if (l->F[i * k + c] > l->F[i * k + best]) best = c;
    }
    if (cls) write_label(f, sgn_labels_name(&l->labels, best, buf));
    fputc('\n', f);
  }
  return ferror(f);
}

/* Writes F (n, k) as a float32 NPY (v1.0); classes are not included (argmax of the rows). */
static int write_npy(FILE *f, const loaded *l) {
  char header[128];
  int len = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)l->ds.n, (long long)l->model->k);
  int total = 10 + len + 1, pad = (64 - total % 64) % 64;
  unsigned short hlen = (unsigned short)(len + pad + 1);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  fputc(hlen & 0xff, f), fputc(hlen >> 8, f);
  fwrite(header, 1, (size_t)len, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(l->F, sizeof(float), (size_t)(l->ds.n * l->model->k), f);
  return ferror(f);
}

int sgn_predict_run(const sgn_eval_config *cfg) {
  loaded l = {0};
  int rc = load_and_forward("predict", cfg, 1, &l);
  if (rc == 0 && !cfg->out) {
    rc = write_csv(stdout, &l) ? 1 : 0;
  } else if (rc == 0) {
    size_t len = strlen(cfg->out);
    int npy = len > 4 && !strcmp(cfg->out + len - 4, ".npy");
    char *tmp = malloc(len + 5);
    FILE *f = tmp ? (sprintf(tmp, "%s.tmp", cfg->out), fopen(tmp, "wb")) : NULL;
    if (!f) {
      fprintf(stderr, "sketchgn predict: --out %s: cannot write\n", cfg->out);
      rc = 2;
    } else {
      int bad = npy ? write_npy(f, &l) : write_csv(f, &l);
      bad |= fclose(f);
      if (bad || rename(tmp, cfg->out)) {
        fprintf(stderr, "sketchgn predict: --out %s: write failed\n", cfg->out);
        remove(tmp);
        rc = 1;
      }
    }
    free(tmp);
  }
  loaded_free(&l);
  return rc;
}

/* ---- sketchgn eval / predict: the options ---- */

static const opt_spec opt_model = {.name = "model",
                                   .kind = OPT_STRING,
                                   .arg = "FILE",
                                   .what = "a file name",
                                   .help = "a model written by 'sketchgn train --save' (required)",
                                   .dflt = ""};
static const opt_spec opt_out = {.name = "out",
                                 .kind = OPT_STRING,
                                 .arg = "FILE",
                                 .what = "a file name",
                                 .help = "FILE.csv (outputs, then the class) or FILE.npy (outputs)",
                                 .dflt = "CSV on stdout"};

static int eval_main(int argc, char **argv, int predict) {
  sgn_eval_config cfg = {0};
  opt_entry opts[] = {
      {.spec = &opt_model, .dst = &cfg.model},
      {.spec = &opt_data, .dst = &cfg.data, .help = "the data, as for train (required)"},
      {.spec = &opt_targets, .dst = &cfg.targets, .help = "as for train"},
      {.spec = &opt_device, .dst = &cfg.device, .help = "where to run"},
      {.spec = &opt_max_memory,
       .dst = &cfg.max_memory,
       .help = "refuse to run in more, e.g. 512M, 8G (bytes, K, M, G)"},
      {.spec = &opt_chunk_neurons,
       .dst = &cfg.chunk_neurons,
       .help = "forward N neurons at a time (N >= 2; 0: to fit --max-memory)"},
      {.spec = &opt_out, .dst = &cfg.out},
  };
  opt_cmd cmd = {
      predict ? "predict" : "eval",
      predict ? "usage: sketchgn predict --model FILE --data SPEC [options]\n"
                "\n"
                "Writes a saved model's outputs on the data, one row per sample (and the\n"
                "predicted class when the model classifies), in the targets' own units.\n"
              : "usage: sketchgn eval --model FILE --data SPEC [options]\n"
                "\n"
                "Prints a saved model's loss 1/(2n) sum ||f(x_i) - y_i||^2 on the data (and\n"
                "its accuracy when the model classifies; MSE, RMSE and R^2 when it regresses).\n"
                "A regression trained on standardized targets reports the loss as it trained\n"
                "(half the mean squared error of the standardized targets), MSE and RMSE in the\n"
                "targets' own units; the line 'units' says which.\n",
      "Exit status: 0 success, 1 runtime failure, 2 usage or bad input.\n", opts,
      OPTS_COUNT(opts) - !predict}; /* --out is the last entry, predict's only */
  int rc = opts_parse(&cmd, argc, argv);
  if (rc == OPTS_HELP) {
    cfg = (sgn_eval_config){0};
    opts_help(stdout, &cmd);
    return 0;
  }
  if (rc != OPTS_RUN) return rc;
  if (!cfg.model) return opts_error(cmd.name, "--model: missing; a model file is required");
  if (!cfg.data) return opts_error(cmd.name, "--data: missing; a data SPEC is required");
  return predict ? sgn_predict_run(&cfg) : sgn_eval_run(&cfg);
}

int sgn_cmd_eval(int argc, char **argv) { return eval_main(argc, argv, 0); }
int sgn_cmd_predict(int argc, char **argv) { return eval_main(argc, argv, 1); }
