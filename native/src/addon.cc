// N-API glue for the native kernels: argument checks (the JavaScript side checks too; these are
// the memory-safety backstop), CPU path selection, and a small per-environment thread pool.
//
// Context-aware: every worker_thread that loads the addon gets its own EnvState (pool, packing
// buffers, thread setting), released when that environment shuts down.
#include <node_api.h>

#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "conv.h"
#include "cpu_path.h"
#include "napi_args.h"

#if defined(ENCLAVE_HAVE_X86_PATHS)
#include <cpuid.h>
#endif

namespace enclave {
namespace {

const char* const kNoMemory = "KERNEL_OUT_OF_MEMORY";
const int kMaxThreads = 64;
// Below this many flops (2mnk) a gemm runs on the calling thread: waking a helper costs more.
const double kParallelMinFlops = 4.0e6;
// Noise is split across the pool only for large tensors (each pair is independent, so the result is
// bit-identical to one thread).
const int64_t kParallelMinNoise = 1 << 16;
// Elementwise kernels with a transcendental per element split across the pool above this size.
const int64_t kParallelMinElementwise = 1 << 16;

// ---------------------------------------------------------------------------------------------
// CPU paths, best first. AVX state must be enabled by the OS (XCR0), not only present.

#if defined(ENCLAVE_HAVE_X86_PATHS)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((uint64_t)edx << 32) | eax;
}

bool os_saves(uint64_t mask) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  if (!(c & (1u << 27))) return false;  // OSXSAVE
  return (read_xcr0() & mask) == mask;
}
#endif

std::vector<const CpuPath*> supported_paths() {
  std::vector<const CpuPath*> out;
#if defined(ENCLAVE_HAVE_X86_PATHS)
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (__builtin_cpu_supports("avx512f") && fma && os_saves(0xE6)) out.push_back(cpu_path_avx512());
  if (__builtin_cpu_supports("avx2") && fma && os_saves(0x6)) out.push_back(cpu_path_avx2());
#endif
  out.push_back(cpu_path_generic());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Thread pool. A job has `parts` independent parts; the caller and the helpers claim parts until
// none is left, so a helper that the OS has not scheduled yet (a busy, shared machine) delays
// nothing: the caller simply runs that part itself. Claims happen under the mutex and only for
// the current generation, so a late helper can never run a finished job.

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Starts helpers up to parts - 1; returns how many parts can run at once.
  int ensure(int parts) {
    while ((int)threads_.size() < parts - 1) {
      const uint64_t gen = generation_;  // no job is in flight here (JS thread only)
      try {
        threads_.emplace_back([this, gen] { worker(gen); });
      } catch (const std::system_error&) {
        break;
      }
    }
    return (int)threads_.size() + 1;
  }

  void run(int parts, const std::function<void(int)>& fn) {
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &fn;
      parts_ = parts;
      next_ = 0;
      completed_ = 0;
      gen = ++generation_;
    }
    work_cv_.notify_all();
    int part;
    while (claim(gen, &part)) {
      fn(part);
      finish();
    }
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return completed_ == parts_; });
    job_ = nullptr;
  }

 private:
  bool claim(uint64_t gen, int* part) {
    std::lock_guard<std::mutex> lk(mu_);
    if (generation_ != gen || next_ >= parts_) return false;
    *part = next_++;
    return true;
  }

  void finish() {
    std::lock_guard<std::mutex> lk(mu_);
    if (++completed_ == parts_) done_cv_.notify_one();
  }

  void worker(uint64_t seen) {
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        work_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      int part;
      while (claim(seen, &part)) {
        (*job)(part);
        finish();
      }
    }
  }

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int parts_ = 0;
  int next_ = 0;
  int completed_ = 0;
  bool stop_ = false;
};

// ---------------------------------------------------------------------------------------------
// Per-environment state.

struct EnvState;

struct Ops {
  const CpuPath* path;
  EnvState* env;
  int threads;
};

struct Workspace {
  float* data = nullptr;
  size_t floats = 0;
};

struct EnvState {
  std::vector<const CpuPath*> paths;
  std::vector<Ops*> ops;  // one per path, created on demand, freed with the environment
  Pool pool;
  Workspace ws[kMaxThreads];

  ~EnvState() {
    for (auto* o : ops) delete o;
    for (auto& w : ws) std::free(w.data);
  }

  float* workspace(int slot, size_t floats) {
    Workspace& w = ws[slot];
    if (w.floats < floats) {
      std::free(w.data);
      w.data = nullptr;
      w.floats = 0;
      // 64-byte aligned; size rounded up as aligned_alloc requires.
      const size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
      void* p = nullptr;
      if (posix_memalign(&p, 64, bytes) != 0) return nullptr;
      w.data = static_cast<float*>(p);
      w.floats = floats;
    }
    return w.data;
  }
};

void free_env_state(napi_env, void* data, void*) { delete static_cast<EnvState*>(data); }

// ---------------------------------------------------------------------------------------------
// Arguments: the checks are in napi_args.h; Args carries the bound Ops.

struct Args {
  napi_value v[10];
  size_t n = 10;
  Ops* ops = nullptr;
};

bool get_args(napi_env env, napi_callback_info info, size_t expected, Args& a) {
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &a.n, a.v, nullptr, &data) != napi_ok) return fail(env, "bad call");
  a.ops = static_cast<Ops*>(data);
  if (a.n < expected) return fail(env, "too few arguments");
  return true;
}

// ---------------------------------------------------------------------------------------------
// Kernels.

void run_gemm(napi_env env, Ops* ops, const GemmProblem& P, bool* oom) {
  const CpuPath* path = ops->path;
  const double flops = 2.0 * (double)P.m * (double)P.n * (double)P.k;
  const bool split_n = P.n >= P.m;
  const int64_t unit = split_n ? path->nr : path->mr;
  const int64_t extent = split_n ? P.n : P.m;
  int parts = 1;
  if (ops->threads > 1 && flops >= kParallelMinFlops) {
    const int64_t units = (extent + unit - 1) / unit;
    parts = (int)(units < ops->threads ? units : ops->threads);
    if (parts > 1) parts = ops->env->pool.ensure(parts);
  }
  float* ws[kMaxThreads];
  for (int t = 0; t < parts; ++t) {
    ws[t] = ops->env->workspace(t, path->workspace_floats);
    if (!ws[t]) {
      *oom = true;
      return;
    }
  }
  if (parts <= 1) {
    path->gemm(P, ws[0]);
    return;
  }
  // Contiguous ranges of whole micro-tiles, as even as possible.
  const int64_t units = (extent + unit - 1) / unit;
  std::function<void(int)> job = [&](int part) {
    const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
    const int64_t lo = u0 * unit, hi = u1 * unit < extent ? u1 * unit : extent;
    if (hi <= lo) return;
    GemmProblem sub = P;
    if (split_n) {
      sub.n = hi - lo;
      sub.b = P.b + lo * P.csb;
      sub.c = P.c + lo;
    } else {
      sub.m = hi - lo;
      sub.a = P.a + lo * P.rsa;
      sub.c = P.c + lo * P.ldc;
    }
    path->gemm(sub, ws[part]);
  };
  ops->env->pool.run(parts, job);
}

// gemm(transA, transB, m, n, k, a, b, c, beta)
napi_value Gemm(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 9, a)) return nullptr;
  bool ta, tb;
  int64_t m, n, k, la, lb, lc;
  float *pa, *pb, *pc;
  double beta;
  if (!boolean(env, a.v[0], "gemm: transA must be a boolean", &ta) ||
      !boolean(env, a.v[1], "gemm: transB must be a boolean", &tb) ||
      !dim(env, a.v[2], "gemm: m must be an integer in [0, 2^31)", &m) ||
      !dim(env, a.v[3], "gemm: n must be an integer in [0, 2^31)", &n) ||
      !dim(env, a.v[4], "gemm: k must be an integer in [0, 2^31)", &k) ||
      !f32(env, a.v[5], "gemm: a must be a Float32Array", &pa, &la) ||
      !f32(env, a.v[6], "gemm: b must be a Float32Array", &pb, &lb) ||
      !f32(env, a.v[7], "gemm: c must be a Float32Array", &pc, &lc) ||
      !finite(env, a.v[8], "gemm: beta must be a finite number", &beta))
    return nullptr;
  if (la < m * k) return fail(env, "gemm: a has fewer than m*k elements"), nullptr;
  if (lb < k * n) return fail(env, "gemm: b has fewer than k*n elements"), nullptr;
  if (lc < m * n) return fail(env, "gemm: c has fewer than m*n elements"), nullptr;
  if (overlaps(pc, m * n * 4, pa, m * k * 4) || overlaps(pc, m * n * 4, pb, k * n * 4))
    return fail(env, "gemm: c must not overlap a or b"), nullptr;
  GemmProblem P;
  P.m = m;
  P.n = n;
  P.k = k;
  P.a = pa;
  P.rsa = ta ? 1 : k;
  P.csa = ta ? m : 1;
  P.b = pb;
  P.rsb = tb ? 1 : n;
  P.csb = tb ? k : 1;
  P.c = pc;
  P.ldc = n;
  P.beta = (float)beta;
  bool oom = false;
  run_gemm(env, a.ops, P, &oom);
  if (oom) napi_throw_error(env, kNoMemory, "gemm: could not allocate packing buffers");
  return nullptr;
}

// rowSumSquares(x, rows, cols, out: Float64Array)
napi_value RowSumSquares(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 4, a)) return nullptr;
  float* x;
  double* out;
  int64_t lx, lo, rows, cols;
  if (!f32(env, a.v[0], "rowSumSquares: x must be a Float32Array", &x, &lx) ||
      !dim(env, a.v[1], "rowSumSquares: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, a.v[2], "rowSumSquares: cols must be an integer in [0, 2^31)", &cols) ||
      !typed(env, a.v[3], napi_float64_array, "rowSumSquares: out must be a Float64Array", &out, &lo))
    return nullptr;
  if (lx < rows * cols) return fail(env, "rowSumSquares: x has fewer than rows*cols elements"), nullptr;
  if (lo < rows) return fail(env, "rowSumSquares: out has fewer than rows elements"), nullptr;
  a.ops->path->row_sum_squares(x, rows, cols, out);
  return nullptr;
}

// addRowVector(x, rows, cols, v)
napi_value AddRowVector(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 4, a)) return nullptr;
  float *x, *v;
  int64_t lx, lv, rows, cols;
  if (!f32(env, a.v[0], "addRowVector: x must be a Float32Array", &x, &lx) ||
      !dim(env, a.v[1], "addRowVector: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, a.v[2], "addRowVector: cols must be an integer in [0, 2^31)", &cols) ||
      !f32(env, a.v[3], "addRowVector: v must be a Float32Array", &v, &lv))
    return nullptr;
  if (lx < rows * cols) return fail(env, "addRowVector: x has fewer than rows*cols elements"), nullptr;
  if (lv < cols) return fail(env, "addRowVector: v has fewer than cols elements"), nullptr;
  if (rows > 0 && overlaps(x, rows * cols * 4, v, cols * 4))
    return fail(env, "addRowVector: v must not overlap x"), nullptr;
  a.ops->path->add_row_vector(x, rows, cols, v);
  return nullptr;
}

// colSum(x, rows, cols, w | null, out, beta)
napi_value ColSum(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 6, a)) return nullptr;
  float *x, *w = nullptr, *out;
  int64_t lx, lw = 0, lo, rows, cols;
  double beta;
  napi_valuetype wt;
  if (napi_typeof(env, a.v[3], &wt) != napi_ok) return nullptr;
  if (!f32(env, a.v[0], "colSum: x must be a Float32Array", &x, &lx) ||
      !dim(env, a.v[1], "colSum: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, a.v[2], "colSum: cols must be an integer in [0, 2^31)", &cols) ||
      (wt != napi_null && !f32(env, a.v[3], "colSum: w must be a Float32Array or null", &w, &lw)) ||
      !f32(env, a.v[4], "colSum: out must be a Float32Array", &out, &lo) ||
      !finite(env, a.v[5], "colSum: beta must be a finite number", &beta))
    return nullptr;
  if (lx < rows * cols) return fail(env, "colSum: x has fewer than rows*cols elements"), nullptr;
  if (w && lw < rows) return fail(env, "colSum: w has fewer than rows elements"), nullptr;
  if (lo < cols) return fail(env, "colSum: out has fewer than cols elements"), nullptr;
  a.ops->path->col_sum(x, rows, cols, w, out, beta);
  return nullptr;
}

// scaleRows(x, rows, cols, s, out)
napi_value ScaleRows(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 5, a)) return nullptr;
  float *x, *s, *out;
  int64_t lx, ls, lo, rows, cols;
  if (!f32(env, a.v[0], "scaleRows: x must be a Float32Array", &x, &lx) ||
      !dim(env, a.v[1], "scaleRows: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, a.v[2], "scaleRows: cols must be an integer in [0, 2^31)", &cols) ||
      !f32(env, a.v[3], "scaleRows: s must be a Float32Array", &s, &ls) ||
      !f32(env, a.v[4], "scaleRows: out must be a Float32Array", &out, &lo))
    return nullptr;
  if (lx < rows * cols) return fail(env, "scaleRows: x has fewer than rows*cols elements"), nullptr;
  if (ls < rows) return fail(env, "scaleRows: s has fewer than rows elements"), nullptr;
  if (lo < rows * cols) return fail(env, "scaleRows: out has fewer than rows*cols elements"), nullptr;
  a.ops->path->scale_rows(x, rows, cols, s, out);
  return nullptr;
}

// axpy(alpha, x, y)
napi_value Axpy(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 3, a)) return nullptr;
  double alpha;
  float *x, *y;
  int64_t lx, ly;
  if (!finite(env, a.v[0], "axpy: alpha must be a finite number", &alpha) ||
      !f32(env, a.v[1], "axpy: x must be a Float32Array", &x, &lx) ||
      !f32(env, a.v[2], "axpy: y must be a Float32Array", &y, &ly))
    return nullptr;
  if (lx != ly) return fail(env, "axpy: x and y must have the same length"), nullptr;
  a.ops->path->axpy(alpha, x, y, lx);
  return nullptr;
}

const double kSqrt2OverPi = 0.7978845608028654;
const double kGeluC = 0.044715;

// activation(kind: 0 relu | 1 tanh | 2 gelu, x, out)
napi_value Activation(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 3, a)) return nullptr;
  int32_t kind;
  float *x, *out;
  int64_t lx, lo;
  if (napi_get_value_int32(env, a.v[0], &kind) != napi_ok || kind < 0 || kind > 2)
    return fail(env, "activation: unknown kind"), nullptr;
  if (!f32(env, a.v[1], "activation: x must be a Float32Array", &x, &lx) ||
      !f32(env, a.v[2], "activation: out must be a Float32Array", &out, &lo))
    return nullptr;
  if (lo < lx) return fail(env, "activation: out is shorter than x"), nullptr;
  if (kind == 0) {
    a.ops->path->relu(x, out, lx);
  } else if (kind == 1) {
    for (int64_t i = 0; i < lx; ++i) out[i] = (float)std::tanh((double)x[i]);
  } else {
    for (int64_t i = 0; i < lx; ++i) {
      const double v = x[i];
      out[i] = (float)(0.5 * v * (1 + std::tanh(kSqrt2OverPi * (v + kGeluC * v * v * v))));
    }
  }
  return nullptr;
}

// activationBackward(kind, x, dy, out)
napi_value ActivationBackward(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 4, a)) return nullptr;
  int32_t kind;
  float *x, *dy, *out;
  int64_t lx, ld, lo;
  if (napi_get_value_int32(env, a.v[0], &kind) != napi_ok || kind < 0 || kind > 2)
    return fail(env, "activationBackward: unknown kind"), nullptr;
  if (!f32(env, a.v[1], "activationBackward: x must be a Float32Array", &x, &lx) ||
      !f32(env, a.v[2], "activationBackward: dy must be a Float32Array", &dy, &ld) ||
      !f32(env, a.v[3], "activationBackward: out must be a Float32Array", &out, &lo))
    return nullptr;
  if (ld < lx) return fail(env, "activationBackward: dy is shorter than x"), nullptr;
  if (lo < lx) return fail(env, "activationBackward: out is shorter than x"), nullptr;
  if (kind == 0) {
    a.ops->path->relu_backward(x, dy, out, lx);
  } else if (kind == 1) {
    for (int64_t i = 0; i < lx; ++i) {
      const double t = std::tanh((double)x[i]);
      out[i] = (float)(dy[i] * (1 - t * t));
    }
  } else {
    for (int64_t i = 0; i < lx; ++i) {
      const double v = x[i];
      const double u = kSqrt2OverPi * (v + kGeluC * v * v * v);
      const double t = std::tanh(u);
      const double du = kSqrt2OverPi * (1 + 3 * kGeluC * v * v);
      out[i] = (float)(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du));
    }
  }
  return nullptr;
}

// Runs f(lo, hi) over [0, n) on the pool when n is large (elements are independent).
template <typename F>
void elementwise(Ops* ops, int64_t n, const F& f) {
  int parts = 1;
  if (ops->threads > 1 && n >= kParallelMinElementwise) parts = ops->env->pool.ensure(ops->threads);
  if (parts <= 1) {
    f(0, n);
    return;
  }
  std::function<void(int)> job = [&](int part) { f(n * part / parts, n * (part + 1) / parts); };
  ops->env->pool.run(parts, job);
}

bool tempered_params(napi_env env, napi_value* v, double* s, double* t, double* o) {
  return finite(env, v[0], "temperedSigmoid: scale must be a finite number", s) &&
         finite(env, v[1], "temperedSigmoid: inverseTemperature must be a finite number", t) &&
         finite(env, v[2], "temperedSigmoid: offset must be a finite number", o);
}

// temperedSigmoid(x, scale, inverseTemperature, offset, out): out = scale·σ(T·x) − offset.
napi_value TemperedSigmoid(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 5, a)) return nullptr;
  float *x, *out;
  int64_t lx, lo;
  double s, t, o;
  if (!f32(env, a.v[0], "temperedSigmoid: x must be a Float32Array", &x, &lx) ||
      !tempered_params(env, a.v + 1, &s, &t, &o) ||
      !f32(env, a.v[4], "temperedSigmoid: out must be a Float32Array", &out, &lo))
    return nullptr;
  if (lo < lx) return fail(env, "temperedSigmoid: out is shorter than x"), nullptr;
  elementwise(a.ops, lx, [&](int64_t i0, int64_t i1) {
    // float exp (a few ulp, well inside float32 training's error) is several times faster than double.
    const float sf = (float)s, tf = (float)-t, of = (float)o;
    for (int64_t i = i0; i < i1; ++i) out[i] = sf / (1.0f + std::exp(tf * x[i])) - of;
  });
  return nullptr;
}

// temperedSigmoidBackward(y, dy, scale, inverseTemperature, offset, out): with σ = (y + offset)/scale
// from the forward output, out = dy · scale·T·σ(1 − σ) = dy · T·(y + offset)(scale − y − offset)/scale.
napi_value TemperedSigmoidBackward(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 6, a)) return nullptr;
  float *y, *dy, *out;
  int64_t ly, ld, lo;
  double s, t, o;
  if (!f32(env, a.v[0], "temperedSigmoidBackward: y must be a Float32Array", &y, &ly) ||
      !f32(env, a.v[1], "temperedSigmoidBackward: dy must be a Float32Array", &dy, &ld) ||
      !tempered_params(env, a.v + 2, &s, &t, &o) ||
      !f32(env, a.v[5], "temperedSigmoidBackward: out must be a Float32Array", &out, &lo))
    return nullptr;
  if (s == 0) return fail(env, "temperedSigmoidBackward: scale must not be 0"), nullptr;
  if (ld < ly) return fail(env, "temperedSigmoidBackward: dy is shorter than y"), nullptr;
  if (lo < ly) return fail(env, "temperedSigmoidBackward: out is shorter than y"), nullptr;
  const double c = t / s;
  elementwise(a.ops, ly, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double u = (double)y[i] + o;
      out[i] = (float)(dy[i] * c * u * (s - u));
    }
  });
  return nullptr;
}

// softmaxCrossEntropy(logits, labels: Int32Array, rows, classes, loss: Float64Array, grad)
napi_value SoftmaxCrossEntropy(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 6, a)) return nullptr;
  float *logits, *grad;
  int32_t* labels;
  double* loss;
  int64_t ll, lb, rows, classes, lloss, lg;
  if (!f32(env, a.v[0], "softmaxCrossEntropy: logits must be a Float32Array", &logits, &ll) ||
      !typed(env, a.v[1], napi_int32_array, "softmaxCrossEntropy: labels must be an Int32Array", &labels, &lb) ||
      !dim(env, a.v[2], "softmaxCrossEntropy: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, a.v[3], "softmaxCrossEntropy: classes must be an integer in [0, 2^31)", &classes) ||
      !typed(env, a.v[4], napi_float64_array, "softmaxCrossEntropy: loss must be a Float64Array", &loss, &lloss) ||
      !f32(env, a.v[5], "softmaxCrossEntropy: grad must be a Float32Array", &grad, &lg))
    return nullptr;
  if (rows > 0 && classes < 1) return fail(env, "softmaxCrossEntropy: classes must be at least 1"), nullptr;
  if (ll < rows * classes) return fail(env, "softmaxCrossEntropy: logits has fewer than rows*classes elements"), nullptr;
  if (lb < rows) return fail(env, "softmaxCrossEntropy: labels has fewer than rows elements"), nullptr;
  if (lloss < rows) return fail(env, "softmaxCrossEntropy: loss has fewer than rows elements"), nullptr;
  if (lg < rows * classes) return fail(env, "softmaxCrossEntropy: grad has fewer than rows*classes elements"), nullptr;
  for (int64_t i = 0; i < rows; ++i)
    if (labels[i] < 0 || labels[i] >= classes)
      return fail(env, "softmaxCrossEntropy: every label must be in [0, classes)"), nullptr;
  for (int64_t i = 0; i < rows; ++i) {
    const float* z = logits + i * classes;
    float* g = grad + i * classes;
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c)
      if (z[c] > mx) mx = z[c];
    double sum = 0;
    for (int64_t c = 0; c < classes; ++c) sum += std::exp((double)z[c] - mx);
    const double log_sum = std::log(sum) + mx;
    const int32_t y = labels[i];
    loss[i] = log_sum - (double)z[y];
    for (int64_t c = 0; c < classes; ++c) g[c] = (float)(std::exp((double)z[c] - log_sum) - (c == y ? 1.0 : 0.0));
  }
  return nullptr;
}

// addGaussianNoise(y, std, uniform: Uint32Array)
napi_value AddGaussianNoise(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 3, a)) return nullptr;
  float* y;
  uint32_t* u;
  int64_t ly, lu;
  double sd;
  if (!f32(env, a.v[0], "addGaussianNoise: y must be a Float32Array", &y, &ly) ||
      !finite(env, a.v[1], "addGaussianNoise: std must be a finite number", &sd) ||
      !typed(env, a.v[2], napi_uint32_array, "addGaussianNoise: uniform must be a Uint32Array", &u, &lu))
    return nullptr;
  if (sd < 0) return fail(env, "addGaussianNoise: std must not be negative"), nullptr;
  if (lu < 3 * ((ly + 1) / 2)) return fail(env, "addGaussianNoise: not enough random words"), nullptr;
  const CpuPath* path = a.ops->path;
  int parts = 1;
  if (a.ops->threads > 1 && ly >= kParallelMinNoise) parts = a.ops->env->pool.ensure(a.ops->threads);
  if (parts <= 1) {
    path->add_gaussian_noise(y, ly, sd, u);
    return nullptr;
  }
  // Whole pairs per part: part p owns pairs [P p / parts, P (p+1) / parts), their elements and words.
  const int64_t pairs = (ly + 1) / 2;
  std::function<void(int)> job = [&](int part) {
    const int64_t p0 = pairs * part / parts, p1 = pairs * (part + 1) / parts;
    if (p1 <= p0) return;
    const int64_t e0 = 2 * p0, e1 = 2 * p1 < ly ? 2 * p1 : ly;
    path->add_gaussian_noise(y + e0, e1 - e0, sd, u + 3 * p0);
  };
  a.ops->env->pool.run(parts, job);
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 1, a)) return nullptr;
  int64_t n;
  if (!dim(env, a.v[0], "setThreads: n must be an integer in [1, 64]", &n)) return nullptr;
  if (n < 1 || n > kMaxThreads) return fail(env, "setThreads: n must be an integer in [1, 64]"), nullptr;
  a.ops->threads = (int)n;
  return nullptr;
}

napi_value GetThreads(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 0, a)) return nullptr;
  napi_value r;
  napi_create_int32(env, a.ops->threads, &r);
  return r;
}

EnvState* env_state(napi_env env) {
  void* data = nullptr;
  if (napi_get_instance_data(env, &data) != napi_ok) return nullptr;
  return static_cast<EnvState*>(data);
}

// create(pathName, threads) -> object of bound kernel functions
napi_value Create(napi_env env, napi_callback_info info) {
  Args a;
  if (!get_args(env, info, 2, a)) return nullptr;
  EnvState* st = env_state(env);
  if (!st) return fail(env, "native kernels not initialised"), nullptr;
  char name[32];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, a.v[0], name, sizeof name, &len) != napi_ok)
    return fail(env, "create: path must be a string"), nullptr;
  int64_t threads;
  if (!dim(env, a.v[1], "create: threads must be an integer in [1, 64]", &threads)) return nullptr;
  if (threads < 1 || threads > kMaxThreads) return fail(env, "create: threads must be an integer in [1, 64]"), nullptr;
  size_t idx = 0;
  while (idx < st->paths.size() && std::strcmp(st->paths[idx]->name, name) != 0) ++idx;
  if (idx == st->paths.size()) return fail(env, "create: CPU path is not supported on this machine"), nullptr;
  Ops* ops = new (std::nothrow) Ops{st->paths[idx], st, (int)threads};
  if (!ops) return napi_throw_error(env, kNoMemory, "create: out of memory"), nullptr;
  st->ops.push_back(ops);

  napi_value obj, str;
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, ops->path->name, NAPI_AUTO_LENGTH, &str);
  napi_set_named_property(env, obj, "path", str);
  struct Fn {
    const char* name;
    napi_callback cb;
  };
  const Fn fns[] = {
      {"gemm", Gemm},
      {"rowSumSquares", RowSumSquares},
      {"addRowVector", AddRowVector},
      {"colSum", ColSum},
      {"scaleRows", ScaleRows},
      {"axpy", Axpy},
      {"activation", Activation},
      {"activationBackward", ActivationBackward},
      {"softmaxCrossEntropy", SoftmaxCrossEntropy},
      {"addGaussianNoise", AddGaussianNoise},
      {"temperedSigmoid", TemperedSigmoid},
      {"temperedSigmoidBackward", TemperedSigmoidBackward},
      {"im2col", Im2col},
      {"col2im", Col2im},
      {"maxPool2d", MaxPool2d},
      {"maxPool2dBackward", MaxPool2dBackward},
      {"transposeBlocks", TransposeBlocks},
      {"setThreads", SetThreads},
      {"threads", GetThreads},
  };
  for (const Fn& f : fns) {
    napi_value fn;
    if (napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, ops, &fn) != napi_ok ||
        napi_set_named_property(env, obj, f.name, fn) != napi_ok)
      return nullptr;
  }
  return obj;
}

napi_value Paths(napi_env env, napi_callback_info) {
  EnvState* st = env_state(env);
  napi_value arr;
  napi_create_array(env, &arr);
  if (!st) return arr;
  for (size_t i = 0; i < st->paths.size(); ++i) {
    napi_value s;
    napi_create_string_utf8(env, st->paths[i]->name, NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, (uint32_t)i, s);
  }
  return arr;
}

napi_value HardwareThreads(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_uint32(env, std::thread::hardware_concurrency(), &r);
  return r;
}

}  // namespace
}  // namespace enclave

NAPI_MODULE_INIT() {
  using namespace enclave;
  EnvState* st = new (std::nothrow) EnvState();
  if (!st || napi_set_instance_data(env, st, free_env_state, nullptr) != napi_ok) {
    delete st;
    napi_throw_error(env, kNoMemory, "native kernels: could not initialise");
    return nullptr;
  }
  st->paths = supported_paths();
  napi_property_descriptor props[] = {
      {"paths", nullptr, Paths, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"create", nullptr, Create, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"hardwareThreads", nullptr, HardwareThreads, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value abi;
  napi_create_int32(env, 3, &abi);
  napi_set_named_property(env, exports, "abi", abi);
  return exports;
}
