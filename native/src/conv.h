// Sliding-window kernels for the N-API addon (conv.cc); registered by addon.cc's create().
#pragma once
#include <node_api.h>

namespace enclave {

// im2col(x: Float32Array, rows, geometry: Int32Array(12), cols: Float32Array)
napi_value Im2col(napi_env env, napi_callback_info info);
// col2im(cols: Float32Array, rows, geometry: Int32Array(12), dx: Float32Array)
napi_value Col2im(napi_env env, napi_callback_info info);
// maxPool2d(x: Float32Array, rows, geometry: Int32Array(12), y: Float32Array, argmax: Int32Array)
napi_value MaxPool2d(napi_env env, napi_callback_info info);
// maxPool2dBackward(dy: Float32Array, rows, geometry: Int32Array(12), argmax: Int32Array, dx: Float32Array)
napi_value MaxPool2dBackward(napi_env env, napi_callback_info info);
// transposeBlocks(x: Float32Array, rows, a, b, out: Float32Array)
napi_value TransposeBlocks(napi_env env, napi_callback_info info);

}  // namespace enclave
