/* bench.h — `sketchgn bench`: timed training steps over grids of n, m, d, k, solvers and devices,
 * written as CSV; with --kernels, the Jacobian products and the Hadamard transform timed against
 * a plain SGEMM and a copy of the same shapes. All timing is side by side in one process. */
#ifndef SGN_BENCH_H
#define SGN_BENCH_H

/* The whole command: argv[0] is "bench". Returns the exit status: 0 success, 1 a configuration
 * failed at run time (the others still ran), 2 usage error (one line on stderr). */
int sgn_bench_main(int argc, char **argv);

#endif
