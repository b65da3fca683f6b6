// Sliding-window kernels: im2col / col2im (the data movement that turns a 2-D convolution into the
// existing gemm), max pooling with its adjoint, and the per-example block transpose between the
// conv gemm's position-major output and NCHW.
// Geometry (Int32Array of 12): channels, height, width, kernelH, kernelW, strideH, strideW,
// padH, padW, dilationH, dilationW, groups. Layouts as documented on Kernels (src/tensor/kernels.ts).
// The JavaScript side validates first; these checks are the memory-safety backstop.
#include "conv.h"

#include <cstdint>
#include <cstring>

#include "napi_args.h"

namespace enclave {
namespace {

struct Geometry {
  int64_t c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, groups, oh, ow;
};

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
  napi_value argv[8];
  if (!callback_args(env, info, 4, argv, kAdjoint ? "col2im: expected 4 arguments" : "im2col: expected 4 arguments"))
    return nullptr;
  float *image, *cols;
  int64_t li, lc, rows;
  Geometry g;
  napi_value image_v = kAdjoint ? argv[3] : argv[0];
  napi_value cols_v = kAdjoint ? argv[0] : argv[3];
  if (!f32(env, image_v, kAdjoint ? "col2im: dx must be a Float32Array" : "im2col: x must be a Float32Array", &image, &li) ||
      !f32(env, cols_v, kAdjoint ? "col2im: cols must be a Float32Array" : "im2col: cols must be a Float32Array", &cols, &lc) ||
      !dim(env, argv[1], kAdjoint ? "col2im: rows must be an integer in [0, 2^31)" : "im2col: rows must be an integer in [0, 2^31)", &rows) ||
      !geometry(env, argv[2], &g))
    return nullptr;
  const int64_t image_n = rows * g.c * g.h * g.w, cols_n = rows * g.c * g.kh * g.kw * g.oh * g.ow;
  if (li < image_n || lc < cols_n) return fail(env, kAdjoint ? "col2im: a buffer is too short" : "im2col: a buffer is too short"), nullptr;
  if (overlaps(image, 4 * image_n, cols, 4 * cols_n))
    return fail(env, kAdjoint ? "col2im: cols must not overlap the image" : "im2col: cols must not overlap the image"), nullptr;
  unfold<kAdjoint>(image, rows, g, cols);
  return nullptr;
}

}  // namespace

napi_value Im2col(napi_env env, napi_callback_info info) { return Unfold<false>(env, info); }
napi_value Col2im(napi_env env, napi_callback_info info) { return Unfold<true>(env, info); }

namespace {

// One candidate of a max-pool window: branch-free (with real data the winner's place is
// unpredictable); `>` keeps the first maximum and a NaN wins, so it propagates (as in PyTorch).
inline void take_max(float v, int32_t i, float* best, int32_t* at) {
  const bool take = (v > *best) | (v != v);
  *best = take ? v : *best;
  *at = take ? i : *at;
}

// An unpadded 2x2 window (every window inside the image): one output row, unrolled.
void max_pool_row_2x2(const float* x, int32_t a0, int64_t w, int64_t sw, int64_t ow, float* y, int32_t* argmax) {
  for (int64_t ox = 0; ox < ow; ++ox) {
    const int32_t i = a0 + (int32_t)(ox * sw);
    float best = x[i];
    int32_t at = i;
    take_max(x[i + 1], i + 1, &best, &at);
    take_max(x[i + w], i + (int32_t)w, &best, &at);
    take_max(x[i + w + 1], i + (int32_t)w + 1, &best, &at);
    y[ox] = best;
    argmax[ox] = at;
  }
}

// y[n, c, oy, ox] = max of the in-image window (padding is -inf); argmax = the index of the first
// maximum within the example's [c, h, w].
void max_pool(const float* x, int64_t rows, const Geometry& g, float* y, int32_t* argmax) {
  const int64_t HW = g.h * g.w;
  const bool fast = g.kh == 2 && g.kw == 2 && g.ph == 0 && g.pw == 0;
  int64_t o = 0;
  for (int64_t n = 0; n < rows; ++n) {
    const float* xn = x + n * g.c * HW;
    for (int64_t c = 0; c < g.c; ++c) {
      const int64_t base = c * HW;
      for (int64_t oy = 0; oy < g.oh; ++oy) {
        const int64_t ya = oy * g.sh - g.ph;
        if (fast) {
          max_pool_row_2x2(xn, (int32_t)(base + ya * g.w), g.w, g.sw, g.ow, y + o, argmax + o);
          o += g.ow;
          continue;
        }
        const int64_t y0 = ya < 0 ? 0 : ya, y1 = ya + g.kh < g.h ? ya + g.kh : g.h;
        for (int64_t ox = 0; ox < g.ow; ++ox, ++o) {
          const int64_t xa = ox * g.sw - g.pw;
          const int64_t x0 = xa < 0 ? 0 : xa, x1 = xa + g.kw < g.w ? xa + g.kw : g.w;
          int32_t at = (int32_t)(base + y0 * g.w + x0);
          float best = xn[at];
          for (int64_t r = y0; r < y1; ++r)
            for (int32_t i = (int32_t)(base + r * g.w + x0), end = (int32_t)(base + r * g.w + x1); i < end; ++i)
              take_max(xn[i], i, &best, &at);
          y[o] = best;
          argmax[o] = at;
        }
      }
    }
  }
}

}  // namespace

// maxPool2d(x, rows, geometry, y, argmax: Int32Array)
napi_value MaxPool2d(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!callback_args(env, info, 5, argv, "maxPool2d: expected 5 arguments")) return nullptr;
  float *x, *y;
  int32_t* arg;
  int64_t lx, ly, la, rows;
  Geometry g;
  if (!f32(env, argv[0], "maxPool2d: x must be a Float32Array", &x, &lx) ||
      !dim(env, argv[1], "maxPool2d: rows must be an integer in [0, 2^31)", &rows) || !geometry(env, argv[2], &g) ||
      !f32(env, argv[3], "maxPool2d: y must be a Float32Array", &y, &ly) ||
      !typed(env, argv[4], napi_int32_array, "maxPool2d: argmax must be an Int32Array", &arg, &la))
    return nullptr;
  if (g.dh != 1 || g.dw != 1 || g.groups != 1) return fail(env, "maxPool2d: dilation and groups must be 1"), nullptr;
  if (2 * g.ph > g.kh || 2 * g.pw > g.kw) return fail(env, "maxPool2d: padding must be at most half the kernel"), nullptr;
  const int64_t in_n = rows * g.c * g.h * g.w, out_n = rows * g.c * g.oh * g.ow;
  if (lx < in_n || ly < out_n || la < out_n) return fail(env, "maxPool2d: a buffer is too short"), nullptr;
  if (overlaps(x, 4 * in_n, y, 4 * out_n) || overlaps(x, 4 * in_n, arg, 4 * out_n) || overlaps(y, 4 * out_n, arg, 4 * out_n))
    return fail(env, "maxPool2d: buffers must not overlap"), nullptr;
  max_pool(x, rows, g, y, arg);
  return nullptr;
}

// maxPool2dBackward(dy, rows, geometry, argmax, dx): dx = 0, then dx[example's argmax] += dy.
napi_value MaxPool2dBackward(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!callback_args(env, info, 5, argv, "maxPool2dBackward: expected 5 arguments")) return nullptr;
  float *dy, *dx;
  int32_t* arg;
  int64_t ld, lx, la, rows;
  Geometry g;
  if (!f32(env, argv[0], "maxPool2dBackward: dy must be a Float32Array", &dy, &ld) ||
      !dim(env, argv[1], "maxPool2dBackward: rows must be an integer in [0, 2^31)", &rows) ||
      !geometry(env, argv[2], &g) ||
      !typed(env, argv[3], napi_int32_array, "maxPool2dBackward: argmax must be an Int32Array", &arg, &la) ||
      !f32(env, argv[4], "maxPool2dBackward: dx must be a Float32Array", &dx, &lx))
    return nullptr;
  const int64_t image = g.c * g.h * g.w, per = g.c * g.oh * g.ow;
  const int64_t in_n = rows * image, out_n = rows * per;
  if (lx < in_n || ld < out_n || la < out_n) return fail(env, "maxPool2dBackward: a buffer is too short"), nullptr;
  if (overlaps(dx, 4 * in_n, dy, 4 * out_n) || overlaps(dx, 4 * in_n, arg, 4 * out_n))
    return fail(env, "maxPool2dBackward: dx must not overlap dy or argmax"), nullptr;
  for (int64_t o = 0; o < out_n; ++o)
    if (arg[o] < 0 || arg[o] >= image) return fail(env, "maxPool2dBackward: every argmax must index its example"), nullptr;
  std::memset(dx, 0, sizeof(float) * in_n);
  for (int64_t n = 0, o = 0; n < rows; ++n) {
    float* d = dx + n * image;
    for (int64_t end = o + per; o < end; ++o) d[arg[o]] += dy[o];
  }
  return nullptr;
}

// transposeBlocks(x, rows, a, b, out): out[n][j][i] = x[n][i][j] for `rows` blocks of [a, b].
napi_value TransposeBlocks(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!callback_args(env, info, 5, argv, "transposeBlocks: expected 5 arguments")) return nullptr;
  float *x, *out;
  int64_t lx, lo, rows, a, b;
  if (!f32(env, argv[0], "transposeBlocks: x must be a Float32Array", &x, &lx) ||
      !dim(env, argv[1], "transposeBlocks: rows must be an integer in [0, 2^31)", &rows) ||
      !dim(env, argv[2], "transposeBlocks: a must be an integer in [0, 2^31)", &a) ||
      !dim(env, argv[3], "transposeBlocks: b must be an integer in [0, 2^31)", &b) ||
      !f32(env, argv[4], "transposeBlocks: out must be a Float32Array", &out, &lo))
    return nullptr;
  const int64_t n = rows * a * b;
  if (lx < n || lo < n) return fail(env, "transposeBlocks: a buffer is too short"), nullptr;
  if (overlaps(x, 4 * n, out, 4 * n)) return fail(env, "transposeBlocks: out must not overlap x"), nullptr;
  // Tiles of 8x8 keep both the reads and the writes within a few cache lines.
  const int64_t T = 8;
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = x + r * a * b;
    float* d = out + r * a * b;
    for (int64_t i0 = 0; i0 < a; i0 += T)
      for (int64_t j0 = 0; j0 < b; j0 += T) {
        const int64_t i1 = i0 + T < a ? i0 + T : a, j1 = j0 + T < b ? j0 + T : b;
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) d[j * a + i] = s[i * b + j];
      }
  }
  return nullptr;
}

}  // namespace enclave
