// One CPU path = the hot kernels compiled for one instruction set. Each path lives in its own
// translation unit, compiled with that ISA's flags, and is only called after the CPU (and OS)
// were checked at load time. Keep this header free of C++ library templates: anything inline
// that an ISA unit instantiates could be merged by the linker into the generic code.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace enclave {

// C = op(A) op(B) + beta C with explicit strides, so transposes and sub-blocks are just views.
// op(A)(i, p) = a[i*rsa + p*csa], op(B)(p, j) = b[p*rsb + j*csb], C(i, j) = c[i*ldc + j].
struct GemmProblem {
  int64_t m, n, k;
  const float* a;
  int64_t rsa, csa;
  const float* b;
  int64_t rsb, csb;
  float* c;
  int64_t ldc;
  float beta;
};

struct CpuPath {
  const char* name;  // "avx512", "avx2-fma", "generic"
  int mr, nr;        // micro-tile; sub-problems for threads are split on these multiples
  size_t workspace_floats;  // per thread, for the packed panels
  void (*gemm)(const GemmProblem& p, float* workspace);
  void (*row_sum_squares)(const float* x, int64_t rows, int64_t cols, double* out);
  void (*add_row_vector)(float* x, int64_t rows, int64_t cols, const float* v);
  void (*col_sum)(const float* x, int64_t rows, int64_t cols, const float* w, float* out, double beta);
  void (*scale_rows)(const float* x, int64_t rows, int64_t cols, const float* s, float* out);
  void (*axpy)(double alpha, const float* x, float* y, int64_t n);
  void (*relu)(const float* x, float* out, int64_t n);
  void (*relu_backward)(const float* x, const float* dy, float* out, int64_t n);
  void (*add_gaussian_noise)(float* y, int64_t n, double std, const uint32_t* uniform);
};

const CpuPath* cpu_path_generic();
#if defined(ENCLAVE_HAVE_X86_PATHS)
const CpuPath* cpu_path_avx2();
const CpuPath* cpu_path_avx512();
#endif

}  // namespace enclave
