// AVX2 + FMA path: 6x16 register tile (12 ymm accumulators, 2 for B, 1 broadcast).
// Compiled with -mavx2 -mfma; only called when the CPU and OS report both.
#include <immintrin.h>

#include "cpu_path.h"

namespace enclave {
namespace avx2_path {

#define PATH_NAME "avx2-fma"
enum { MR = 6, NR = 16 };
static const int64_t KC = 256, MC = 144, NC = 2048;
typedef double vd __attribute__((vector_size(32)));
typedef unsigned long long vl __attribute__((vector_size(32)));

static inline vd vsqrt(vd x) { return (vd)_mm256_sqrt_pd((__m256d)x); }

static inline __attribute__((always_inline)) void micro_kernel(int64_t kc, const float* pa, const float* pb,
                                                               float* c, int64_t ldc, int mode, float beta) {
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(pb);
    const __m256 b1 = _mm256_load_ps(pb + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(pa + r);
      acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
    }
    pa += MR;
    pb += NR;
  }
  const __m256 vb = _mm256_set1_ps(beta);
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    for (int h = 0; h < 2; ++h) {
      __m256 v = acc[r][h];
      if (mode == 1) v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8 * h), v);
      else if (mode == 2) v = _mm256_add_ps(_mm256_loadu_ps(cr + 8 * h), v);
      _mm256_storeu_ps(cr + 8 * h, v);
    }
  }
}

#include "path_body.inc"

}  // namespace avx2_path

const CpuPath* cpu_path_avx2() { return &avx2_path::kPath; }

}  // namespace enclave
