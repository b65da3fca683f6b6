// Argument checks shared by the kernel translation units (addon.cc, conv.cc). The JavaScript side
// validates first; these are the memory-safety backstop. Messages name the argument and the rule,
// never a data value; every failure throws a RangeError with code KERNEL_ARGUMENT_INVALID.
#pragma once
#include <node_api.h>

#include <cmath>
#include <cstdint>

namespace enclave {

inline constexpr const char* kBadArgument = "KERNEL_ARGUMENT_INVALID";
inline constexpr int64_t kMaxDim = 2147483647;

inline bool fail(napi_env env, const char* msg) {
  napi_throw_range_error(env, kBadArgument, msg);
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

inline bool f32(napi_env env, napi_value v, const char* msg, float** d, int64_t* len) {
  return typed(env, v, napi_float32_array, msg, d, len);
}

// An integer in [0, 2^31).
inline bool dim(napi_env env, napi_value v, const char* msg, int64_t* out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > (double)kMaxDim || d != std::floor(d))
    return fail(env, msg);
  *out = (int64_t)d;
  return true;
}

inline bool finite(napi_env env, napi_value v, const char* msg, double* out) {
  if (napi_get_value_double(env, v, out) != napi_ok || !std::isfinite(*out)) return fail(env, msg);
  return true;
}

inline bool boolean(napi_env env, napi_value v, const char* msg, bool* out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return fail(env, msg);
  return true;
}

// Whether byte ranges [p, p+pn) and [q, q+qn) intersect.
inline bool overlaps(const void* p, int64_t pn, const void* q, int64_t qn) {
  const char* a = static_cast<const char*>(p);
  const char* b = static_cast<const char*>(q);
  return pn > 0 && qn > 0 && a < b + qn && b < a + pn;
}

// At least `expected` arguments into argv (room for 8); `msg` names the function.
inline bool callback_args(napi_env env, napi_callback_info info, size_t expected, napi_value* argv, const char* msg) {
  size_t argc = 8;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < expected) return fail(env, msg);
  return true;
}

}  // namespace enclave
