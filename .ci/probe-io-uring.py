#!/usr/bin/env python3
"""Which io_uring setups this kernel accepts, found without Torii's or monoio's code.

Calls io_uring_setup(2) through ctypes with the flags of each setup Torii's runtime tries
(engine/src/runtime.rs `RingSetup`), with the same queue size, and prints the names of the
accepted ones, comma-separated, best first (an empty line when io_uring is unavailable:
ENOSYS, or EPERM from seccomp or the io_uring_disabled sysctl). `.ci/test` exports the result
as TORII_EXPECT_RING_SETUPS and TORII_EXPECT_DRIVER, which the tests then assert.
"""
import ctypes
import os
import platform
import sys

# io_uring_setup has number 425 on every architecture that uses the generic syscall table
# (x86_64, aarch64, riscv64, and the 32-bit ones since Linux 5.1).
SYSCALLS = {"x86_64": 425, "aarch64": 425, "riscv64": 425, "armv7l": 425, "i686": 425}
ENTRIES = 1024  # URING_ENTRIES in engine/src/runtime.rs

IORING_SETUP_COOP_TASKRUN = 1 << 8
IORING_SETUP_TASKRUN_FLAG = 1 << 9
IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13

SETUPS = [
    ("deferred", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN),
    ("cooperative", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG),
    ("plain", 0),
]


def accepted(libc, number, flags):
    # struct io_uring_params: 10 u32 (sq_entries, cq_entries, flags, sq_thread_cpu,
    # sq_thread_idle, features, wq_fd, resv[3]) then two 40-byte offset structs: 120 bytes.
    params = (ctypes.c_uint32 * 30)()
    params[2] = flags
    fd = libc.syscall(number, ctypes.c_uint32(ENTRIES), ctypes.byref(params))
    if fd < 0:
        return False
    os.close(fd)
    return True


def main():
    number = SYSCALLS.get(platform.machine())
    if number is None:
        sys.stderr.write(f"probe-io-uring: unknown architecture {platform.machine()}\n")
        return 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    names = [name for name, flags in SETUPS if accepted(libc, number, flags)]
    print(",".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
