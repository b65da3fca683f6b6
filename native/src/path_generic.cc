// Portable path: baseline ISA of the target (SSE2 on x86-64, NEON on arm64), plain C++ that
// the compiler vectorises. Used on CPUs without AVX2/FMA and on non-x86 machines.
#include "cpu_path.h"

namespace enclave {
namespace generic_path {

#define PATH_NAME "generic"
#if defined(__aarch64__)
enum { MR = 8, NR = 12 };
#else
enum { MR = 4, NR = 8 };
#endif
static const int64_t KC = 256, MC = 128, NC = 2016;
typedef double vd __attribute__((vector_size(16)));
typedef unsigned long long vl __attribute__((vector_size(16)));

static inline vd vsqrt(vd x) {
  for (int l = 0; l < (int)(sizeof(vd) / sizeof(double)); ++l) x[l] = __builtin_sqrt(x[l]);
  return x;
}

static inline void micro_kernel(int64_t kc, const float* pa, const float* pb, float* c, int64_t ldc, int mode,
                                float beta) {
  float acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < NR; ++j) acc[r][j] += pa[r] * pb[j];
    pa += MR;
    pb += NR;
  }
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    for (int j = 0; j < NR; ++j)
      cr[j] = mode == 0 ? acc[r][j] : mode == 1 ? beta * cr[j] + acc[r][j] : cr[j] + acc[r][j];
  }
}

#include "path_body.inc"

}  // namespace generic_path

const CpuPath* cpu_path_generic() { return &generic_path::kPath; }

}  // namespace enclave
