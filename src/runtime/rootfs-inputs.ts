import { execFile } from "node:child_process";
import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import { promisify } from "node:util";
import type { CpioEntry } from "./cpio.js";
import { RuntimeError, RuntimeErrorCode } from "./errors.js";
import {
  BUSYBOX_APPLETS,
  GUEST_APP_DIR,
  GUEST_ENTRY,
  GUEST_MODULES,
  GUEST_MODULE_LIST,
  INIT_SCRIPT,
  TETRAGON_POLICY,
} from "./guest-image.js";
import { elfHasInterpreter } from "./kernel-image.js";

const run = promisify(execFile);
const MAX_FILE_BYTES = 512 * 1024 * 1024;

/** What the rootfs is made of, all on the host. */
export interface RootfsInputs {
  /** A static busybox (Debian: busybox-static installs /bin/busybox). */
  busybox: string;
  /** The Node.js binary the guest runs (default: this process's). */
  node: string;
  /** The project's package root: package.json, dist/, the native addon, and its runtime dependencies. */
  packageRoot: string;
  /** The kernel's module tree (`/lib/modules/<release>`); the channel's modules come from it. */
  modulesDir: string;
}

/** The rootfs as archive entries, plus the SHA-256 of every regular file by guest path. */
export interface RootfsContent {
  entries: CpioEntry[];
  files: Map<string, Buffer>;
}

class Tree {
  readonly entries = new Map<string, CpioEntry>();
  readonly files = new Map<string, Buffer>();

  private dirs(path: string): void {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join("/");
      if (!this.entries.has(d)) this.entries.set(d, { path: d, type: "dir" });
    }
  }

  dir(path: string, mode = 0o755): void {
    this.dirs(path);
    this.entries.set(path, { path, type: "dir", mode });
  }

  add(entry: CpioEntry): void {
    const prior = this.entries.get(entry.path);
    if (prior && prior.type !== entry.type) {
      throw new RuntimeError(RuntimeErrorCode.HYDRATE_INPUT_INVALID, `two rootfs entries for /${entry.path}`);
    }
    this.dirs(entry.path);
    this.entries.set(entry.path, entry);
    if (entry.type === "file") this.files.set(entry.path, Buffer.from(entry.data));
  }

  text(path: string, text: string, mode = 0o644): void {
    this.add({ path, type: "file", data: Buffer.from(text, "utf8"), mode });
  }

  /** Copy a host file's content (symlinks followed) to `path`; only the execute bit of its mode is kept. */
  async copy(path: string, hostPath: string, what: string): Promise<Buffer> {
    let real: string;
    let st;
    try {
      real = await realpath(hostPath);
      st = await stat(real);
    } catch {
      throw new RuntimeError(RuntimeErrorCode.HYDRATE_INPUT_MISSING, `${what} not found: ${hostPath}`);
    }
    if (!st.isFile())
      throw new RuntimeError(
        RuntimeErrorCode.HYDRATE_INPUT_INVALID,
        `${what} is not a regular file: ${hostPath}`,
      );
    if (st.size > MAX_FILE_BYTES) {
      throw new RuntimeError(
        RuntimeErrorCode.HYDRATE_INPUT_INVALID,
        `${what} exceeds ${MAX_FILE_BYTES} bytes: ${hostPath}`,
      );
    }
    const data = await readFile(real);
    this.add({ path, type: "file", data, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    return data;
  }

  /** Copy a host directory tree under `path`, skipping names in `skip`; files in byte order. */
  async copyTree(path: string, hostDir: string, what: string, skip: Set<string> = new Set()): Promise<void> {
    const list = await readdir(hostDir, { withFileTypes: true });
    for (const e of list.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))) {
      if (skip.has(e.name)) continue;
      const host = join(hostDir, e.name);
      if (e.isDirectory()) await this.copyTree(`${path}/${e.name}`, host, what);
      else if (e.isFile() || e.isSymbolicLink()) await this.copy(`${path}/${e.name}`, host, what);
    }
  }
}

/** Shared libraries of a dynamic executable, as the host's loader resolves them (`ldd`). */
async function sharedLibraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run("ldd", [binary])).stdout;
  } catch {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `cannot list the shared libraries of ${binary} (ldd failed)`,
    );
  }
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]!);
    else if (/=>\s*not found/.test(line)) {
      throw new RuntimeError(
        RuntimeErrorCode.HYDRATE_INPUT_MISSING,
        `${binary} needs a library the host lacks: ${line.trim()}`,
      );
    }
  }
  return libs;
}

/** The runtime dependencies (dependencies and present optionalDependencies), found the way Node resolves them. */
async function dependencyDirs(packageRoot: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const visit = async (fromDir: string) => {
    const manifest = JSON.parse(await readFile(join(fromDir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const names = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }).sort();
    for (const name of names) {
      const dir = await resolvePackageDir(fromDir, name);
      if (!dir) {
        if (manifest.optionalDependencies?.[name]) continue;
        throw new RuntimeError(
          RuntimeErrorCode.HYDRATE_INPUT_MISSING,
          `dependency ${name} is not installed (run npm install)`,
        );
      }
      if ([...found.values()].includes(dir)) continue;
      found.set(guestModulePath(packageRoot, dir, name, found), dir);
      await visit(dir);
    }
  };
  await visit(packageRoot);
  return found;
}

async function resolvePackageDir(fromDir: string, name: string): Promise<string | undefined> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    try {
      if ((await stat(join(candidate, "package.json"))).isFile()) return await realpath(candidate);
    } catch {
      // not here: one level up
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** Inside the package root: the same relative path; hoisted above it: the guest's top node_modules. */
function guestModulePath(packageRoot: string, dir: string, name: string, taken: Map<string, string>): string {
  const rel = relative(packageRoot, dir).split(sep).join("/");
  const path = rel.startsWith("..") ? `node_modules/${name}` : rel;
  if (taken.has(path)) {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `two versions of ${name} would share /${GUEST_APP_DIR}/${path}`,
    );
  }
  return path;
}

/** Kernel modules in load order (dependencies first), from modules.dep; built-in ones need nothing. */
async function moduleLoadOrder(modulesDir: string): Promise<string[]> {
  let dep: string;
  let builtin = "";
  try {
    dep = await readFile(join(modulesDir, "modules.dep"), "utf8");
  } catch {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_MISSING,
      `modules.dep not found in ${modulesDir} (pass --modules DIR)`,
    );
  }
  try {
    builtin = await readFile(join(modulesDir, "modules.builtin"), "utf8");
  } catch {
    // no built-in list: every module must then be loadable
  }
  const deps = new Map<string, string[]>();
  for (const line of dep.split("\n")) {
    const [mod, rest] = line.split(":");
    if (mod && rest !== undefined) deps.set(mod.trim(), rest.trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map(
    [...deps.keys()].map((p) => [p.slice(p.lastIndexOf("/") + 1).replace(/\.ko(\..*)?$/, ""), p]),
  );
  const order: string[] = [];
  const place = (path: string) => {
    if (order.includes(path)) return;
    for (const d of [...(deps.get(path) ?? [])].reverse()) place(d);
    order.push(path);
  };
  for (const name of GUEST_MODULES) {
    const path = byName.get(name);
    if (path) place(path);
    else if (!new RegExp(`/${name}\\.ko`).test(builtin)) {
      throw new RuntimeError(
        RuntimeErrorCode.HYDRATE_INPUT_MISSING,
        `kernel module ${name} is neither in ${modulesDir} nor built in`,
      );
    }
  }
  const compressed = order.find((p) => !p.endsWith(".ko"));
  if (compressed) {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `compressed kernel module not supported by busybox insmod: ${compressed}`,
    );
  }
  return order;
}

/** Collect the guest's files: busybox, /init, Node.js and its libraries, the project, modules, policy. */
export async function collectRootfs(inputs: RootfsInputs): Promise<RootfsContent> {
  const t = new Tree();
  for (const d of ["dev", "proc", "sys", "etc/tetragon/tetragon.tp.d", "lib/modules", "usr/bin"]) t.dir(d);
  t.dir("tmp", 0o1777);
  t.add({ path: "dev/console", type: "chardev", major: 5, minor: 1 });
  t.add({ path: "dev/null", type: "chardev", major: 1, minor: 3, mode: 0o666 });

  const busybox = await t.copy("bin/busybox", inputs.busybox, "busybox");
  if (elfHasInterpreter(busybox)) {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `busybox is not a static ELF executable: ${inputs.busybox} (Debian: busybox-static)`,
    );
  }
  for (const applet of BUSYBOX_APPLETS) t.add({ path: `bin/${applet}`, type: "symlink", target: "busybox" });
  t.text("init", INIT_SCRIPT, 0o755);
  t.text("etc/tetragon/tetragon.tp.d/enclave-no-network.yaml", TETRAGON_POLICY);

  await t.copy("usr/bin/node", inputs.node, "node");
  // Every native addon of the build (kernels, vsock); each is optional, as at install time.
  const releaseDir = join(inputs.packageRoot, "native/build/Release");
  const addons = (await readdir(releaseDir).catch(() => [] as string[]))
    .filter((n) => n.endsWith(".node"))
    .sort();
  const libs = new Set(await sharedLibraries(inputs.node));
  for (const a of addons) for (const l of await sharedLibraries(join(releaseDir, a))) libs.add(l);
  for (const lib of [...libs].sort()) await t.copy(lib.slice(1), lib, "shared library");

  const app = GUEST_APP_DIR;
  await t.copy(`${app}/package.json`, join(inputs.packageRoot, "package.json"), "package.json");
  await t.copyTree(`${app}/dist`, join(inputs.packageRoot, "dist"), "dist/");
  if (!t.files.has(`${app}/${GUEST_ENTRY}`)) {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_MISSING,
      `the build has no ${GUEST_ENTRY} (run npm run build)`,
    );
  }
  for (const a of addons)
    await t.copy(`${app}/native/build/Release/${a}`, join(releaseDir, a), "native addon");
  for (const [path, dir] of await dependencyDirs(inputs.packageRoot)) {
    await t.copyTree(`${app}/${path}`, dir, `dependency ${path}`, new Set(["node_modules"]));
  }

  const modules = await moduleLoadOrder(inputs.modulesDir);
  for (const m of modules)
    await t.copy(
      `lib/modules/${m.slice(m.lastIndexOf("/") + 1)}`,
      join(inputs.modulesDir, m),
      "kernel module",
    );
  t.text(GUEST_MODULE_LIST, modules.map((m) => m.slice(m.lastIndexOf("/") + 1) + "\n").join(""));
  return { entries: [...t.entries.values()], files: t.files };
}
