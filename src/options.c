/* options.c — the options' defaults (sgn_options_default), on their own so the cost model, which
 * reads options, depends on no session code. */
#include "sketchgn.h"

sgn_options sgn_options_default(void) {
  sgn_options o = {0};
  o.solver = SGN_SOLVER_GN_SKETCH;
  o.sketch = SGN_SKETCH_SRHT;
  o.sketch_ratio = 4.0;
  o.refresh = SGN_REFRESH_DEFAULT;
  o.refresh_every = 1;
  o.damping = -1;
  o.lr = -1;
  o.cg_tol = 1e-3;
  o.cg_max = 100;
  o.batch = 0;
  o.line_search = -1;
  o.seed = 1;
  o.max_memory = 0;
  o.chunk_neurons = 0;
  o.ridge = 0;
  o.precision = SGN_PRECISION_FP64;
  o.product_precision = SGN_PRECISION_FP32;
  return o;
}
