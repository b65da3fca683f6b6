// AF_VSOCK for confidential inference (Nitro Enclaves talk to their parent over vsock).
//
// Node's net.Socket cannot wrap an AF_VSOCK descriptor (libuv only knows TCP and Unix sockets),
// so each vsock connection is bridged to one end of an AF_UNIX socketpair by a relay thread, and
// JavaScript gets the other end as a file descriptor for `new net.Socket({ fd })`. The relay
// copies bytes both ways, passes a half-close on as shutdown(SHUT_WR), and closes both ends once
// neither direction can carry more. Everything that blocks (connect, accept, the copies) runs off
// the JavaScript thread.
//
// Exports (a separate addon, enclave_vsock.node, so the kernels addon is untouched):
//   available(): string | null           null when AF_VSOCK works here, else the reason
//   localCid(): number                   this machine's CID (or -1 with errno text thrown)
//   connect(cid, port, timeoutMs): Promise<number>   fd of the local end; rejects with {code}
//   listen(cid, port, onConnection(fd)): { port, close() }
//   nsmRequest(path, request): Buffer   one CBOR request to the Nitro Secure Module through the
//                                        NSM driver's raw ioctl (the enclave's other device), the
//                                        CBOR response back; throws {code} with the errno name

#include <node_api.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#ifdef __linux__
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace enclave_vsock {
namespace {

const char* errno_code(int e) {
  switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENODEV: return "ENODEV";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOENT: return "ENOENT";
    case ENOTTY: return "ENOTTY";
    case EFAULT: return "EFAULT";
    case ENOMEM: return "ENOMEM";
    default: return "EIO";
  }
}

napi_value make_error(napi_env env, const char* code, const char* what) {
  napi_value c, m, err;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  std::string text = std::string("vsock ") + what + " failed (" + code + ")";
  napi_create_string_utf8(env, text.c_str(), NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, c, m, &err);
  return err;
}

void throw_error(napi_env env, const char* code, const char* what) { napi_throw(env, make_error(env, code, what)); }

bool get_u32(napi_env env, napi_value v, uint32_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 4294967295.0 || d != static_cast<uint32_t>(d))
    return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

#ifdef __linux__

void write_all_or_stop(int fd, const char* p, ssize_t n, bool* ok) {
  while (n > 0) {
    ssize_t w = send(fd, p, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      *ok = false;
      return;
    }
    p += w;
    n -= w;
  }
}

// Copies both ways between a and b until both directions have ended, then closes both.
void relay(int a, int b) {
  char buf[64 * 1024];
  bool open_ab = true, open_ba = true;  // a->b and b->a still flowing
  while (open_ab || open_ba) {
    pollfd fds[2] = {{a, static_cast<short>(open_ab ? POLLIN : 0), 0}, {b, static_cast<short>(open_ba ? POLLIN : 0), 0}};
    int r = poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    bool failed = false;
    for (int i = 0; i < 2 && !failed; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      ssize_t n = recv(from, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0) failed = true;
        shutdown(to, SHUT_WR);  // pass the half-close on
        (i == 0 ? open_ab : open_ba) = false;
        continue;
      }
      bool ok = true;
      write_all_or_stop(to, buf, n, &ok);
      if (!ok) failed = true;
    }
    if (failed) break;
  }
  close(a);
  close(b);
}

// Bridge a connected vsock fd to a new socketpair; returns the JavaScript end, or -1 (errno set).
int bridge(int vsock_fd) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    int e = errno;
    close(vsock_fd);
    errno = e;
    return -1;
  }
  try {
    std::thread(relay, vsock_fd, pair[1]).detach();
  } catch (...) {
    close(vsock_fd);
    close(pair[0]);
    close(pair[1]);
    errno = EMFILE;
    return -1;
  }
  return pair[0];
}

// ---- connect (async work) ----

struct ConnectWork {
  uint32_t cid, port, timeout_ms;
  int fd = -1;
  int err = 0;
  napi_deferred deferred;
  napi_async_work work;
};

void connect_execute(napi_env, void* data) {
  auto* w = static_cast<ConnectWork*>(data);
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) {
    w->err = errno;
    return;
  }
  sockaddr_vm addr;
  std::memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = w->cid;
  addr.svm_port = w->port;
  int r = connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (r != 0 && errno == EINPROGRESS) {
    pollfd p = {s, POLLOUT, 0};
    int pr;
    do pr = poll(&p, 1, static_cast<int>(w->timeout_ms)); while (pr < 0 && errno == EINTR);
    if (pr == 0) {
      close(s);
      w->err = ETIMEDOUT;
      return;
    }
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len);
    r = soerr == 0 ? 0 : -1;
    errno = soerr;
  }
  if (r != 0) {
    w->err = errno;
    close(s);
    return;
  }
  fcntl(s, F_SETFL, fcntl(s, F_GETFL) & ~O_NONBLOCK);
  w->fd = bridge(s);
  if (w->fd < 0) w->err = errno;
}

void connect_complete(napi_env env, napi_status, void* data) {
  auto* w = static_cast<ConnectWork*>(data);
  if (w->fd >= 0) {
    napi_value v;
    napi_create_int32(env, w->fd, &v);
    napi_resolve_deferred(env, w->deferred, v);
  } else {
    napi_reject_deferred(env, w->deferred, make_error(env, errno_code(w->err), "connect"));
  }
  napi_delete_async_work(env, w->work);
  delete w;
}

napi_value Connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t cid, port, timeout;
  if (argc < 3 || !get_u32(env, argv[0], &cid) || !get_u32(env, argv[1], &port) || !get_u32(env, argv[2], &timeout)) {
    throw_error(env, "EINVAL", "connect(cid, port, timeoutMs) arguments");
    return nullptr;
  }
  auto* w = new (std::nothrow) ConnectWork();
  if (!w) {
    throw_error(env, "ENOMEM", "connect");
    return nullptr;
  }
  w->cid = cid;
  w->port = port;
  w->timeout_ms = timeout > 600000 ? 600000 : timeout;
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "vsock.connect", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, nullptr, name, connect_execute, connect_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

// ---- listen (accept thread + threadsafe callback) ----

struct Listener {
  int fd = -1;
  int wake[2] = {-1, -1};
  std::thread thread;
  napi_threadsafe_function tsfn = nullptr;
  std::atomic<bool> closed{false};
};

void call_js(napi_env env, napi_value cb, void*, void* data) {
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(data));
  if (!env) {  // the function is being torn down: nobody will take this connection
    close(fd);
    return;
  }
  napi_value arg, undef;
  napi_create_int32(env, fd, &arg);
  napi_get_undefined(env, &undef);
  napi_call_function(env, undef, cb, 1, &arg, nullptr);
}

void accept_loop(Listener* l) {
  for (;;) {
    pollfd fds[2] = {{l->fd, POLLIN, 0}, {l->wake[0], POLLIN, 0}};
    int r = poll(fds, 2, -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents) break;
    if (!(fds[0].revents & POLLIN)) continue;
    int c = accept4(l->fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    int js = bridge(c);
    if (js < 0) continue;
    if (napi_call_threadsafe_function(l->tsfn, reinterpret_cast<void*>(static_cast<intptr_t>(js)), napi_tsfn_blocking) !=
        napi_ok)
      close(js);
  }
}

void stop(Listener* l) {
  if (l->closed.exchange(true)) return;
  if (write(l->wake[1], "x", 1) < 0) { /* the loop also ends when the listen fd is closed */ }
  if (l->thread.joinable()) l->thread.join();
  close(l->fd);
  close(l->wake[0]);
  close(l->wake[1]);
  napi_release_threadsafe_function(l->tsfn, napi_tsfn_release);
}

napi_value Close(napi_env env, napi_callback_info info) {
  void* data;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  stop(static_cast<Listener*>(data));
  return nullptr;
}

void finalize_listener(napi_env, void* data, void*) {
  auto* l = static_cast<Listener*>(data);
  stop(l);
  delete l;
}

napi_value Listen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  uint32_t cid, port;
  napi_valuetype t = napi_undefined;
  if (argc >= 3) napi_typeof(env, argv[2], &t);
  if (argc < 3 || !get_u32(env, argv[0], &cid) || !get_u32(env, argv[1], &port) || t != napi_function) {
    throw_error(env, "EINVAL", "listen(cid, port, onConnection) arguments");
    return nullptr;
  }
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    throw_error(env, errno_code(errno), "socket");
    return nullptr;
  }
  sockaddr_vm addr;
  std::memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(s, 128) != 0) {
    int e = errno;
    close(s);
    throw_error(env, errno_code(e), "listen");
    return nullptr;
  }
  socklen_t len = sizeof addr;
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  auto* l = new (std::nothrow) Listener();
  if (!l || pipe2(l->wake, O_CLOEXEC) != 0) {
    close(s);
    delete l;
    throw_error(env, "EMFILE", "listen");
    return nullptr;
  }
  l->fd = s;
  napi_value name;
  napi_create_string_utf8(env, "vsock.accept", NAPI_AUTO_LENGTH, &name);
  napi_create_threadsafe_function(env, argv[2], nullptr, name, 0, 1, nullptr, nullptr, nullptr, call_js, &l->tsfn);
  l->thread = std::thread(accept_loop, l);

  napi_value handle, port_v, close_fn;
  napi_create_object(env, &handle);
  napi_create_uint32(env, addr.svm_port, &port_v);
  napi_set_named_property(env, handle, "port", port_v);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, Close, l, &close_fn);
  napi_set_named_property(env, handle, "close", close_fn);
  napi_wrap(env, handle, l, finalize_listener, nullptr, nullptr);
  return handle;
}

napi_value Available(napi_env env, napi_callback_info) {
  napi_value r;
  int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    std::string why = std::string("AF_VSOCK sockets are not available (") + errno_code(errno) + ")";
    napi_create_string_utf8(env, why.c_str(), NAPI_AUTO_LENGTH, &r);
    return r;
  }
  close(s);
  napi_get_null(env, &r);
  return r;
}

napi_value LocalCid(napi_env env, napi_callback_info) {
  int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
  unsigned int cid = 0;
  if (fd < 0 || ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    throw_error(env, errno_code(e), "local CID lookup");
    return nullptr;
  }
  close(fd);
  napi_value r;
  napi_create_uint32(env, cid, &r);
  return r;
}

// The NSM driver's uapi (linux/misc/nsm.h): one raw request, the response written in place and
// its length updated. NSM_RESPONSE_MAX_SIZE bounds what the device writes.
struct NsmIovec {
  uint64_t addr;
  uint64_t len;
};
struct NsmRaw {
  NsmIovec request;
  NsmIovec response;
};
constexpr unsigned long kNsmIoctlRaw = _IOWR(0x0A, 0x0, NsmRaw);
constexpr size_t kNsmResponseMax = 0x3000;

// Synchronous: an NSM request is answered in milliseconds by the hypervisor, one per attestation.
napi_value NsmRequest(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  char path[256];
  size_t path_len = 0;
  bool is_buffer = false;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len) != napi_ok ||
      path_len == 0 || path_len >= sizeof path - 1 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok ||
      !is_buffer) {
    throw_error(env, "EINVAL", "NSM request (path, Buffer)");
    return nullptr;
  }
  void* data = nullptr;
  size_t len = 0;
  napi_get_buffer_info(env, argv[1], &data, &len);
  if (len == 0 || len > kNsmResponseMax) {
    throw_error(env, "EINVAL", "NSM request size");
    return nullptr;
  }
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw_error(env, errno_code(errno), "NSM open");
    return nullptr;
  }
  std::string out(kNsmResponseMax, '\0');
  NsmRaw raw{{reinterpret_cast<uint64_t>(data), len}, {reinterpret_cast<uint64_t>(&out[0]), out.size()}};
  int rc = ioctl(fd, kNsmIoctlRaw, &raw);
  int e = errno;
  close(fd);
  if (rc != 0) {
    throw_error(env, errno_code(e), "NSM request");
    return nullptr;
  }
  if (raw.response.len == 0 || raw.response.len > out.size()) {
    throw_error(env, "EIO", "NSM response length");
    return nullptr;
  }
  napi_value result;
  void* copy = nullptr;
  napi_create_buffer_copy(env, raw.response.len, out.data(), &copy, &result);
  return result;
}

#else  // not Linux: AF_VSOCK is Linux's

napi_value Available(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_string_utf8(env, "AF_VSOCK is only supported on Linux", NAPI_AUTO_LENGTH, &r);
  return r;
}
napi_value Unsupported(napi_env env, napi_callback_info) {
  throw_error(env, "EAFNOSUPPORT", "call");
  return nullptr;
}
#define Connect Unsupported
#define Listen Unsupported
#define LocalCid Unsupported
#define NsmRequest Unsupported

#endif

}  // namespace
}  // namespace enclave_vsock

NAPI_MODULE_INIT() {
  using namespace enclave_vsock;
  napi_property_descriptor props[] = {
      {"available", nullptr, Available, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"localCid", nullptr, LocalCid, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"connect", nullptr, Connect, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"listen", nullptr, Listen, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"nsmRequest", nullptr, NsmRequest, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value abi;
  napi_create_int32(env, 1, &abi);
  napi_set_named_property(env, exports, "abi", abi);
  return exports;
}
