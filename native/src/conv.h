// Convolution unfolding (im2col / col2im) for the N-API addon; registered by addon.cc's create().
#pragma once
#include <node_api.h>

namespace enclave {

// im2col(x: Float32Array, rows, geometry: Int32Array(11), cols: Float32Array)
napi_value Im2col(napi_env env, napi_callback_info info);
// col2im(cols: Float32Array, rows, geometry: Int32Array(11), dx: Float32Array)
napi_value Col2im(napi_env env, napi_callback_info info);

}  // namespace enclave
