// AVX-512F path: 12x32 register tile (24 zmm accumulators), B loaded as two zmm per step and
// each A value broadcast from memory. Compiled with -mavx512f -mfma; only called when the CPU
// and OS report AVX-512F (checked in addon.cc).
#include <immintrin.h>

#include "cpu_path.h"

namespace enclave {
namespace avx512_path {

#define PATH_NAME "avx512"
enum { MR = 12, NR = 32 };
static const int64_t KC = 256, MC = 144, NC = 2048;
typedef double vd __attribute__((vector_size(64)));
typedef unsigned long long vl __attribute__((vector_size(64)));

static inline vd vsqrt(vd x) { return (vd)_mm512_sqrt_pd((__m512d)x); }

static inline __attribute__((always_inline)) void micro_kernel(int64_t kc, const float* pa, const float* pb,
                                                               float* c, int64_t ldc, int mode, float beta) {
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(pb);
    const __m512 b1 = _mm512_load_ps(pb + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(pa[r]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
    pa += MR;
    pb += NR;
  }
  const __m512 vb = _mm512_set1_ps(beta);
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    for (int h = 0; h < 2; ++h) {
      __m512 v = acc[r][h];
      if (mode == 1) v = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16 * h), v);
      else if (mode == 2) v = _mm512_add_ps(_mm512_loadu_ps(cr + 16 * h), v);
      _mm512_storeu_ps(cr + 16 * h, v);
    }
  }
}

#include "path_body.inc"

}  // namespace avx512_path

const CpuPath* cpu_path_avx512() { return &avx512_path::kPath; }

}  // namespace enclave
