import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it, vi } from "vitest";
import { nativeStatus } from "./native-kernels.js";

const ENV_KEYS = ["ENCLAVE_KERNELS", "ENCLAVE_KERNELS_CPU", "ENCLAVE_THREADS"] as const;
const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
const status = nativeStatus();

afterEach(() => {
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  vi.doUnmock("./native-kernels.js");
  vi.resetModules();
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

async function freshBackend() {
  vi.resetModules();
  return import("./backend.js");
}

describe("backend selection", () => {
  it("ENCLAVE_KERNELS=typescript selects the TypeScript kernels, for loadKernels() and the cached default", async () => {
    process.env.ENCLAVE_KERNELS = "typescript";
    const { loadKernels, kernels, describeKernels } = await freshBackend();
    expect(loadKernels().name).toBe("typescript");
    expect(kernels().name).toBe("typescript");
    expect(kernels()).toBe(kernels());
    expect(describeKernels().backend).toBe("typescript");
  });

  it("auto picks native when the addon loads, else TypeScript", async () => {
    delete process.env.ENCLAVE_KERNELS;
    const { loadKernels, describeKernels } = await freshBackend();
    const k = loadKernels();
    if (status.available) {
      expect(k.name).toBe(`native-${status.paths[0]}`);
      expect(describeKernels(k)).toMatchObject({ backend: "native", cpuPath: status.paths[0] });
    } else {
      expect(k.name).toBe("typescript");
    }
  });

  it("an explicit argument wins over the environment", async () => {
    process.env.ENCLAVE_KERNELS = "native";
    const { loadKernels } = await freshBackend();
    expect(loadKernels("typescript").name).toBe("typescript");
  });

  it.runIf(status.available)(
    "ENCLAVE_KERNELS_CPU pins the CPU path and ENCLAVE_THREADS the gemm threads",
    async () => {
      process.env.ENCLAVE_KERNELS = "native";
      process.env.ENCLAVE_KERNELS_CPU = "generic";
      process.env.ENCLAVE_THREADS = "3";
      const { loadKernels, describeKernels } = await freshBackend();
      const k = loadKernels();
      expect(k.name).toBe("native-generic");
      expect(describeKernels(k)).toMatchObject({ backend: "native", cpuPath: "generic", threads: 3 });
    },
  );

  it("rejects invalid settings with KERNEL_CONFIG_INVALID", async () => {
    const { loadKernels } = await freshBackend();
    process.env.ENCLAVE_KERNELS = "fast";
    expect(codeOf(() => loadKernels())).toBe("KERNEL_CONFIG_INVALID");
    delete process.env.ENCLAVE_KERNELS;
    process.env.ENCLAVE_THREADS = "0";
    expect(codeOf(() => loadKernels("auto"))).toBe("KERNEL_CONFIG_INVALID");
    process.env.ENCLAVE_THREADS = "two";
    expect(codeOf(() => loadKernels("auto"))).toBe("KERNEL_CONFIG_INVALID");
    delete process.env.ENCLAVE_THREADS;
    expect(codeOf(() => loadKernels("auto", { cpuPath: "sse9" }))).toBe("KERNEL_CONFIG_INVALID");
    expect(codeOf(() => loadKernels("gpu" as never))).toBe("KERNEL_CONFIG_INVALID");
  });

  it("forcing native where the addon is absent fails with KERNEL_BACKEND_UNAVAILABLE; auto falls back", async () => {
    vi.doMock("./native-kernels.js", () => ({
      nativeStatus: () => ({ available: false, reason: "native addon is not built (test)" }),
      NativeKernels: class {
        static create() {
          return null;
        }
      },
    }));
    const { loadKernels } = await freshBackend();
    let err: (Error & { code?: string }) | undefined;
    try {
      loadKernels("native");
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe("KERNEL_BACKEND_UNAVAILABLE");
    expect(err?.message).toContain("ENCLAVE_KERNELS=typescript");
    process.env.ENCLAVE_KERNELS = "native";
    expect(codeOf(() => loadKernels())).toBe("KERNEL_BACKEND_UNAVAILABLE");
    expect(loadKernels("auto").name).toBe("typescript");
  });
});

describe("install script", () => {
  const script = fileURLToPath(new URL("../../scripts/build-native.mjs", import.meta.url));
  it.each([
    ["without a working compiler", { CXX: "/bin/false" }],
    ["when skipped", { ENCLAVE_SKIP_NATIVE: "1" }],
  ])("never fails npm install %s: exit 0 and one line", (_what, env) => {
    const r = spawnSync(process.execPath, [script], { env: { ...process.env, ...env }, encoding: "utf8" });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^coreason-enclave: native kernels not (re)?built \(/);
  });
});
