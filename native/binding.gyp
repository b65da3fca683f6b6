# Built by scripts/build-native.mjs (node-gyp, run in this directory; output in native/build).
# No -march=native: each x86-64 CPU path is its own static library compiled for that ISA, and
# the addon picks one at load time from what the CPU and OS support.
{
  "target_defaults": {
    "cflags": ["-O3", "-fno-math-errno", "-fno-strict-aliasing"],
    "cflags_cc": ["-std=gnu++17", "-fexceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++1y"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "gnu++17",
      "OTHER_CFLAGS": ["-O3", "-fno-math-errno"]
    }
  },
  "targets": [
    {
      "target_name": "enclave_kernels",
      "sources": ["src/addon.cc", "src/conv.cc", "src/path_generic.cc"],
      "conditions": [
        ["target_arch=='x64'", {
          "defines": ["ENCLAVE_HAVE_X86_PATHS"],
          "dependencies": ["enclave_path_avx2", "enclave_path_avx512"]
        }]
      ]
    },
    {
      "target_name": "enclave_vsock",
      "sources": ["src/vsock.cc"]
    }
  ],
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "enclave_path_avx2",
          "type": "static_library",
          "sources": ["src/path_avx2.cc"],
          "cflags": ["-fPIC", "-mavx2", "-mfma"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-mavx2", "-mfma"] }
        },
        {
          "target_name": "enclave_path_avx512",
          "type": "static_library",
          "sources": ["src/path_avx512.cc"],
          "cflags": ["-fPIC", "-mavx512f", "-mavx2", "-mfma", "-Wno-maybe-uninitialized"],
          "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-fno-math-errno", "-mavx512f", "-mavx2", "-mfma"] }
        }
      ]
    }]
  ]
}
