/**
 * The fixed text files of the guest image: `/init`, the Tetragon policy, and the busybox applets
 * `/init` uses. Kept apart from the collector so the image's behaviour reads in one place.
 */

/** Where the project lives inside the guest. */
export const GUEST_APP_DIR = "opt/enclave";
/** The guest's entry point, relative to the project root (the build of src/runtime/guest/guest-main.ts). */
export const GUEST_ENTRY = "dist/runtime/guest/guest-main.js";
/** Module load order, one file name a line, read by `/init`. */
export const GUEST_MODULE_LIST = "etc/enclave/modules";

export const BUSYBOX_APPLETS = [
  "cat",
  "cpio",
  "echo",
  "ifconfig",
  "insmod",
  "ip",
  "ls",
  "mkdir",
  "mount",
  "poweroff",
  "reboot",
  "sh",
  "sleep",
];

/**
 * PID 1: mount the kernel filesystems, load the virtio/vsock modules, bring loopback up (the only
 * interface: the VMM adds no network device), run the guest agent, and reset the machine whatever
 * happens (the VMM runs with -no-reboot, so a reset ends it). Its own lines go to the console only.
 */
export const INIT_SCRIPT = `#!/bin/sh
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
while read -r m; do
  [ -n "$m" ] && insmod "/lib/modules/$m" 2>/dev/null
done < /${GUEST_MODULE_LIST}
ip link set lo up
# The task's dataset: a read-only disk holding a cpio archive, unpacked into a tmpfs that is then
# remounted read-only. The disk itself is read-only at the VMM: nothing in the guest can change it.
case " $(cat /proc/cmdline) " in *" enclave.data=1 "*)
  mkdir -p /data
  mount -t tmpfs -o mode=0755 tmpfs /data
  for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 1; done
  (cd /data && cpio -i -d < /dev/vda) 2>/dev/null
  mount -o remount,ro /data
  echo "enclave-init: data mounted read-only"
esac
echo "enclave-init: up"
/usr/bin/node --max-old-space-size=256 /${GUEST_APP_DIR}/${GUEST_ENTRY}
echo "enclave-init: guest exited $?"
reboot -f
`;

/**
 * Tetragon policy for the guest (loaded by a Tetragon agent when one runs there): any attempt to
 * open a TCP connection kills the process. The guest has no network device; this names the intent.
 */
export const TETRAGON_POLICY = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: enclave-no-network
spec:
  kprobes:
    - call: tcp_connect
      syscall: false
      args:
        - index: 0
          type: sock
      selectors:
        - matchActions:
            - action: Sigkill
`;

/**
 * Modules the guest needs (virtio-mmio transport, virtio-serial and virtio vsock for the channel,
 * virtio-blk for the read-only dataset disk), in the kernel's names.
 */
export const GUEST_MODULES = ["virtio_mmio", "virtio_console", "vmw_vsock_virtio_transport", "virtio_blk"];
