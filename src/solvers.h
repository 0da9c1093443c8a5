/* solvers.h — what solvers.c offers the library beyond the public API: the byte count of a
 * session's buffers and of an evaluation's, from the same lists sgn_session_create and
 * sgn_evaluate_with allocate, so the cost model (--solver auto) checks memory with the very
 * numbers the session will check. */
#ifndef SGN_SOLVERS_H
#define SGN_SOLVERS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "sketchgn.h"

/* Bytes sgn_session_create allocates for opt->solver (resolved, not AUTO) on dm.n samples of a
 * model (dm.d, dm.m, dm.k), with the products' neurons in chunks of dm.mc (0: all m at once).
 * be == NULL: the workspace sizes of the CPU backend. */
size_t sgn_session_mem_bytes(const sgn_backend *be, sgn_dims dm, const sgn_options *opt);

/* The fewest bytes such a session can run in: at the narrowest chunk the session would take
 * (opt->chunk_neurons when it forces one, else 64 neurons, or none when that is not smaller);
 * what the session refuses to go below. */
size_t sgn_session_mem_bytes_min(const sgn_backend *be, sgn_dims dm, const sgn_options *opt);

/* Bytes sgn_evaluate_with allocates to evaluate dm.n samples (dm.d, dm.m, dm.k) in one block of
 * rows with neurons in chunks of dm.mc; with_targets 0: outputs only (prediction). */
size_t sgn_evaluate_mem_bytes(sgn_dims dm, int with_targets);

#endif
