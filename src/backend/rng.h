/* rng.h — the project's one random number generator: counter-based, so any element of any
 * stream can be drawn independently, in any order, identically on the CPU and the GPU.
 * value = mix(seed, stream, index); splitmix64 finalizers chained. */
#ifndef SGN_RNG_H
#define SGN_RNG_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SGN_HD __host__ __device__ __forceinline__
#else
#define SGN_HD static inline
#endif

/* Streams: each use of randomness draws from its own, so no two are correlated. */
enum {
  SGN_STREAM_INIT_W = 1, /* model W */
  SGN_STREAM_INIT_A,     /* model A signs */
  SGN_STREAM_SKETCH_D1,  /* SRHT / SRFT / CountSketch signs on the neuron side */
  SGN_STREAM_SKETCH_D2,  /* SRHT / SRFT / CountSketch signs on the input side */
  SGN_STREAM_SKETCH_P,   /* SRHT / SRFT sampled neuron-side coordinates */
  SGN_STREAM_SKETCH_Q,   /* SRHT / SRFT sampled input-side coordinates */
  SGN_STREAM_SKETCH_G1,  /* Gaussian sketch, neuron side (m, s) */
  SGN_STREAM_SKETCH_G2,  /* Gaussian sketch, input side (d, s) */
  SGN_STREAM_BATCH,      /* mini-batch permutations */
  SGN_STREAM_SYNTH_X,    /* synthetic inputs */
  SGN_STREAM_SYNTH_TEACHER,
  SGN_STREAM_POWER,     /* power-iteration start vector */
  SGN_STREAM_STEP_SEED, /* per-step seeds derived from the run seed */
  SGN_STREAM_SKETCH_H1, /* CountSketch buckets of the neurons, h1: [m] -> [s] */
  SGN_STREAM_SKETCH_H2, /* CountSketch buckets of the input coordinates, h2: [d] -> [s] */
};

SGN_HD uint64_t sgn_rng_mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* 64 random bits: element `index` of `stream` under `seed`. */
SGN_HD uint64_t sgn_rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  return sgn_rng_mix(sgn_rng_mix(sgn_rng_mix(seed) ^ stream) ^ index);
}

/* Uniform in (0, 1), never 0 or 1 (53 bits). */
SGN_HD double sgn_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return ((double)(sgn_rng_u64(seed, stream, index) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* +1.0f or -1.0f */
SGN_HD float sgn_rng_sign(uint64_t seed, uint64_t stream, uint64_t index) {
  return (sgn_rng_u64(seed, stream, index) >> 63) ? -1.0f : 1.0f;
}

/* Uniform integer in [0, bound), bound < 2^32, exact (multiply-shift). */
SGN_HD uint64_t sgn_rng_below(uint64_t seed, uint64_t stream, uint64_t index, uint64_t bound) {
  return ((sgn_rng_u64(seed, stream, index) >> 32) * bound) >> 32;
}

/* Standard normal, Box-Muller on draws 2 index and 2 index + 1. */
SGN_HD double sgn_rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  double u1 = sgn_rng_uniform(seed, stream, 2 * index);
  double u2 = sgn_rng_uniform(seed, stream, 2 * index + 1);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
