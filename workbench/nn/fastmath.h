/* fastmath.h - branch-free float exp and erf for the nn core's hot loops
 * (internal: included by layers.c and heads.c). Both are written so that
 * GCC -O3 vectorises the loops calling them; neither calls libm. */
#ifndef LATHE_NN_FASTMATH_H
#define LATHE_NN_FASTMATH_H

#include <stdint.h>

/* NN_CLONES: an elementwise hot loop compiled twice, for AVX2 and for the
 * x86-64 baseline, the one the CPU has chosen at load time (an ifunc). The
 * results are the same bits on both: no FMA (-ffp-contract=off, and avx2 does
 * not enable fma), and GCC reorders no float sum without -ffast-math, so only
 * elementwise work widens. Off under the sanitizers and outside GCC on x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define NN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define NN_CLONES
#endif

/* exp(x) for float, branch-free so -O3 vectorises the loops that call it:
 * x = n ln2 + r with |r| <= ln2/2 (n rounded by the 1.5*2^23 trick), exp(r) by
 * its degree-6 Taylor polynomial (truncation < 1.3e-7 relative), times 2^n by
 * adding n to the exponent bits. Within 2 ulp of expf on [-87, 88]; inputs are
 * clamped there (exp(-87) is still a normal float). NaN stays NaN. */
static inline float fexp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float t = x * 1.44269504088896341f;
  float n = (t + 12582912.0f) - 12582912.0f;
  float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
  float p =
      1.0f +
      r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f +
                                                                            r * 0.00138888892f)))));
  union {
    float f;
    int32_t i;
  } u = {p};
  n = n == n ? n : 0.0f; /* NaN in, NaN out (p is NaN): never a NaN converted to int */
  u.i += (int32_t)((uint32_t)(int32_t)n << 23); /* shift unsigned: n may be negative */
  return u.f;
}

/* erf(x) by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7 in exact arithmetic,
 * about 3e-7 in float), odd-symmetric, branch-free. */
static inline float ferf(float x) {
  float a = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float y = 1.0f -
            t *
                (0.254829592f + t * (-0.284496736f +
                                     t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f)))) *
                fexp(-a * a);
  return x < 0.0f ? -y : y;
}

#endif
