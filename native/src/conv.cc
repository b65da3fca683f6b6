// im2col / col2im: the data movement that turns a 2-D convolution into the existing gemm.
// Geometry (Int32Array of 12): channels, height, width, kernelH, kernelW, strideH, strideW,
// padH, padW, dilationH, dilationW, groups. Layout as documented on Kernels.im2col (src/tensor/kernels.ts).
// The JavaScript side validates first; these checks are the memory-safety backstop.
#include "conv.h"

#include <cstdint>
#include <cstring>

namespace enclave {
namespace {

const char* const kBadArgument = "KERNEL_ARGUMENT_INVALID";
const int64_t kMaxDim = 2147483647;

struct Geometry {
  int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow;
};

bool fail(napi_env env, const char* msg) {
  napi_throw_error(env, kBadArgument, msg);
  return false;
}

template <typename T>
bool typed(napi_env env, napi_value v, napi_typedarray_type want, const char* msg, T** data, int64_t* len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return fail(env, msg);
  napi_typedarray_type type;
  size_t length = 0;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, nullptr, nullptr) != napi_ok || type != want)
    return fail(env, msg);
  *data = static_cast<T*>(ptr);
  *len = (int64_t)length;
  return true;
}

bool geometry(napi_env env, napi_value v, Geometry* g) {
  int32_t* a;
  int64_t n;
  if (!typed(env, v, napi_int32_array, "conv: geometry must be an Int32Array of 12 entries", &a, &n)) return false;
  if (n != 12) return fail(env, "conv: geometry must be an Int32Array of 12 entries");
  for (int i = 0; i < 12; ++i)
    if (a[i] < (i == 7 || i == 8 ? 0 : 1)) return fail(env, "conv: geometry entries out of range");
  *g = Geometry{a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], 0, 0};
  if (g->c % g->groups != 0) return fail(env, "conv: groups must divide channels");
  g->oh = (g->h + 2 * g->ph - g->dh * (g->kh - 1) - 1) / g->sh + 1;
  g->ow = (g->w + 2 * g->pw - g->dw * (g->kw - 1) - 1) / g->sw + 1;
  // Integer division truncates toward zero: a negative numerator smaller than the stride still
  // yields 1, so check the window fits directly.
  if (g->h + 2 * g->ph < g->dh * (g->kh - 1) + 1 || g->w + 2 * g->pw < g->dw * (g->kw - 1) + 1)
    return fail(env, "conv: the window does not fit the padded image");
  if (g->c * g->h * g->w > kMaxDim || g->c * g->kh * g->kw * g->oh * g->ow > kMaxDim)
    return fail(env, "conv: the geometry is too large");
  return true;
}

// Valid outputs o satisfy 0 <= o*stride + offset < size.
inline void valid_range(int64_t out, int64_t stride, int64_t offset, int64_t size, int64_t* lo, int64_t* hi) {
  *lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t last = size - 1 - offset;
  *hi = last < 0 ? 0 : last / stride + 1;
  if (*hi > out) *hi = out;
  if (*hi < *lo) *hi = *lo;
}

// Per example and group, a [P, (channels/groups)·kh·kw] block: row = output position.
template <bool kAdjoint>
void unfold(float* image, int64_t rows, const Geometry& g, float* cols) {
  const int64_t P = g.oh * g.ow, HW = g.h * g.w, image_size = g.c * HW;
  const int64_t cg = g.c / g.groups, kg = cg * g.kh * g.kw;
  if (kAdjoint) std::memset(image, 0, sizeof(float) * rows * image_size);
  else std::memset(cols, 0, sizeof(float) * rows * g.c * g.kh * g.kw * P);
  for (int64_t n = 0; n < rows; ++n) {
    float* x = image + n * image_size;
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t grp = c / cg;
      float* block = cols + (n * g.groups + grp) * P * kg;
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t off_y = ky * g.dh - g.ph;
        int64_t y0, y1;
        valid_range(g.oh, g.sh, off_y, g.h, &y0, &y1);
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          const int64_t off_x = kx * g.dw - g.pw;
          int64_t x0, x1;
          valid_range(g.ow, g.sw, off_x, g.w, &x0, &x1);
          const int64_t j = ((c - grp * cg) * g.kh + ky) * g.kw + kx;
          for (int64_t oy = y0; oy < y1; ++oy) {
            float* src = x + c * HW + (oy * g.sh + off_y) * g.w + off_x;
            float* dst = block + (oy * g.ow) * kg + j;
            if (kAdjoint) {
              for (int64_t ox = x0; ox < x1; ++ox) src[ox * g.sw] += dst[ox * kg];
            } else {
              for (int64_t ox = x0; ox < x1; ++ox) dst[ox * kg] = src[ox * g.sw];
            }
          }
        }
      }
    }
  }
}

template <bool kAdjoint>
napi_value Unfold(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 4)
    return fail(env, kAdjoint ? "col2im: expected 4 arguments" : "im2col: expected 4 arguments"), nullptr;
  float *image, *cols;
  int64_t li, lc;
  double rows_d = 0;
  Geometry g;
  napi_value image_v = kAdjoint ? argv[3] : argv[0];
  napi_value cols_v = kAdjoint ? argv[0] : argv[3];
  if (!typed(env, image_v, napi_float32_array, kAdjoint ? "col2im: dx must be a Float32Array" : "im2col: x must be a Float32Array", &image, &li) ||
      !typed(env, cols_v, napi_float32_array, kAdjoint ? "col2im: cols must be a Float32Array" : "im2col: cols must be a Float32Array", &cols, &lc))
    return nullptr;
  if (napi_get_value_double(env, argv[1], &rows_d) != napi_ok || !(rows_d >= 0) || rows_d > kMaxDim || rows_d != (double)(int64_t)rows_d)
    return fail(env, kAdjoint ? "col2im: rows must be an integer in [0, 2^31)" : "im2col: rows must be an integer in [0, 2^31)"), nullptr;
  if (!geometry(env, argv[2], &g)) return nullptr;
  const int64_t rows = (int64_t)rows_d;
  const int64_t image_n = rows * g.c * g.h * g.w, cols_n = rows * g.c * g.kh * g.kw * g.oh * g.ow;
  if (li < image_n || lc < cols_n) return fail(env, kAdjoint ? "col2im: a buffer is too short" : "im2col: a buffer is too short"), nullptr;
  const char* a = reinterpret_cast<const char*>(image);
  const char* b = reinterpret_cast<const char*>(cols);
  if (image_n > 0 && cols_n > 0 && a < b + 4 * cols_n && b < a + 4 * image_n)
    return fail(env, kAdjoint ? "col2im: cols must not overlap the image" : "im2col: cols must not overlap the image"), nullptr;
  unfold<kAdjoint>(image, rows, g, cols);
  return nullptr;
}

}  // namespace

napi_value Im2col(napi_env env, napi_callback_info info) { return Unfold<false>(env, info); }
napi_value Col2im(napi_env env, napi_callback_info info) { return Unfold<true>(env, info); }

}  // namespace enclave
