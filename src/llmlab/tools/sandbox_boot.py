"""The first program that runs inside the Python sandbox: it finishes the isolation, then runs the user's code.

Never imported by llmlab: ``tools/sandbox.py`` passes this file's text to the sandbox's interpreter as
``python -I -S -c <this file> <spec as JSON>``, so it uses only the standard library and reads nothing from
the host. What it does, in order:

1. (``unshare`` backend only, ``spec["root"]`` set) build the filesystem ``bwrap`` would otherwise build: a
   private mount namespace whose new root is a small tmpfs holding read-only bind mounts of the directories
   Python needs, ``/dev/{null,zero,full,random,urandom}``, a fresh ``/proc`` of the new pid namespace and
   ``/sandbox/main.py``; then ``pivot_root`` into it and detach the old root, so no path leads back to the
   host's files. Both backends: mount ``/scratch``, a fresh tmpfs bounded in bytes and in files (bwrap's own
   tmpfs cannot bound the files), the only writable place.
2. Fork. The parent stays behind as the reporter (in the ``unshare`` backend it is pid 1 of the sandbox's pid
   namespace, whose exit kills every process left inside): it waits for the child and writes the child's
   raw wait status, CPU seconds and peak RSS as JSON to ``spec["status_fd"]``.
3. The child sets the resource limits (set here, inside the namespaces, so the process-count limit counts
   only this sandbox's processes), drops privileges -- to ``spec["uid"]`` when the host runs us as root (a
   fresh uid per run, so nothing else on the machine shares its process count or its files), or, inside a
   user namespace, by emptying its capability sets -- sets no-new-privileges, closes every inherited
   descriptor, installs a seccomp filter (``install_seccomp``: no new namespaces, mounts, ptrace, keyrings,
   BPF, io_uring, modules...), and execs ``python -I /sandbox/main.py`` with the scrubbed environment.

Exit status 125 with a ``sandbox:`` line on stderr means this bootstrap failed (the sandbox did not work).
"""

import ctypes
import json
import os
import platform
import resource
import signal
import socket
import sys

PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 16384, 1 << 18, 1 << 21
MNT_DETACH = 2
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 1, 2, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYS_MOUNT_SETATTR = 442  # the same number on every architecture
LIMITS = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
          "nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC, "core": resource.RLIMIT_CORE,
          "memlock": resource.RLIMIT_MEMLOCK, "msgqueue": resource.RLIMIT_MSGQUEUE}

libc = ctypes.CDLL(None, use_errno=True)


def fail(msg):
    os.write(2, f"sandbox: {msg}\n".encode())
    os._exit(125)


def check(ret, what):
    if ret != 0:
        e = ctypes.get_errno()
        fail(f"{what}: {os.strerror(e)}")


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def bind_readonly(src, dst):
    mount(src, dst, None, MS_BIND | MS_REC)
    attr = MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
    ret = libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, dst.encode(), AT_RECURSIVE, ctypes.byref(attr),
                       ctypes.sizeof(attr))
    if ret == 0:
        return
    # An older kernel (< 5.12): remount the top mount read-only, keeping the flags a user namespace may not
    # clear (the kernel refuses a remount that drops them).
    st = os.statvfs(dst).f_flag
    keep = 0
    for st_bit, ms_bit in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                           (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                           (os.ST_RELATIME, MS_RELATIME)):
        if st & st_bit:
            keep |= ms_bit
    mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | keep)


def makedirs(path):
    os.makedirs(path, mode=0o755, exist_ok=True)
    os.chmod(path, 0o755)


def build_root(spec):
    """Step 1 (``unshare`` backend): the new root, then pivot into it."""
    root = spec["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount may propagate back to the host
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    for kind, src, dst in spec["binds"]:
        target = root + dst
        if kind == "symlink":
            os.symlink(src, target)
        elif kind == "dir":
            makedirs(target)
            bind_readonly(src, target)
        elif kind == "file":
            makedirs(os.path.dirname(target))
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
            bind_readonly(src, target)
        elif kind == "dev":
            makedirs(os.path.dirname(target))
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o666))
            mount(src, target, None, MS_BIND)
    makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in ("fd", "stdin", "stdout", "stderr"):
        src = "/proc/self/fd" if name == "fd" else f"/proc/self/fd/{('stdin', 'stdout', 'stderr').index(name)}"
        os.symlink(src, f"{root}/dev/{name}")
    makedirs(root + spec["scratch"])  # mount_scratch mounts it once we are inside
    os.symlink(spec["scratch"].lstrip("/"), root + "/tmp")
    makedirs(os.path.dirname(root + spec["main"]))
    with os.fdopen(spec["code_fd"], "rb") as f:
        code = f.read()
    fd = os.open(root + spec["main"], os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o444)
    os.write(fd, code)
    os.close(fd)
    os.chdir(root)
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is not None and libc.syscall(nr, b".", b".") == 0:
        # pivot_root(".", "."): the old root now sits under the new one; detach it so no path leads back.
        check(libc.umount2(b".", MNT_DETACH), "detach the old root")
    else:
        os.chroot(".")  # unknown architecture: chroot; the child loses the capability to undo it below
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    try:
        socket.sethostname("sandbox")
    except OSError:
        pass


def mount_scratch(spec):
    """The only writable place: a fresh tmpfs, bounded in bytes and in files (an unbounded number of empty
    files would cost the host kernel memory that no size= limit counts)."""
    mount("tmpfs", spec["scratch"], "tmpfs", MS_NOSUID | MS_NODEV,
          f"mode=1777,size={spec['scratch_bytes']},nr_inodes={spec['scratch_files']}")


def drop_bounding_set():
    try:
        last = int(open("/proc/sys/kernel/cap_last_cap").read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # needs CAP_SETPCAP; without it the set stays (harmless)


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges(spec):
    drop_bounding_set()
    uid = spec.get("uid")
    if uid is not None:
        # The host ran us as root: become a fresh unprivileged uid; the kernel clears every capability.
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if uid is not None or spec.get("clear_caps"):
        # Inside a user namespace the uid stays 0 (the only one mapped): hold no capability at all. After a
        # setuid this only clears the inheritable set, which setuid leaves behind.
        data = (CapData * 2)()
        check(libc.capset(ctypes.byref(CapHeader(0x20080522, 0)), data), "capset")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if uid is None and not spec.get("clear_caps"):
        return  # the unsafe no-sandbox mode: nothing to verify
    status = open("/proc/self/status").read()
    eff = [line for line in status.splitlines() if line.startswith(("CapEff:", "CapPrm:", "CapInh:"))]
    if any(int(line.split()[1], 16) for line in eff):
        fail("could not drop capabilities")
    if uid is not None and (os.getuid(), os.geteuid()) != (uid, uid):
        fail("could not change uid")


# seccomp: the system calls the sandboxed code never needs and that only widen what it can reach of the
# kernel -- new namespaces (a user namespace would give it capabilities over fresh ones), mounts, ptrace,
# keyrings, BPF, io_uring (whose operations no filter sees), kernel modules, kexec, swap, reboot.
SECCOMP = {
    "x86_64": (0xC000003E, 56, {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "keyctl": 250, "add_key": 248,
        "request_key": 249, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298, "kexec_load": 246,
        "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176, "swapon": 167,
        "swapoff": 168, "reboot": 169, "acct": 163, "quotactl": 179, "open_by_handle_at": 304,
        "name_to_handle_at": 303}),
    "aarch64": (0xC00000B7, 220, {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "keyctl": 219, "add_key": 217, "request_key": 218,
        "bpf": 280, "userfaultfd": 282, "perf_event_open": 241, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "swapon": 224, "swapoff": 225,
        "reboot": 142, "acct": 89, "quotactl": 60, "open_by_handle_at": 265, "name_to_handle_at": 264}),
}
# The same numbers on every architecture (the unified table from 424 on).
SECCOMP_COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
                  "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                  "mount_setattr": 442}
SYS_CLONE3 = 435  # answered ENOSYS: glibc then falls back to clone, whose flags a filter can read
CLONE_NEW_ANY = 0x10000000 | 0x00020000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000 | 0x02000000
EPERM, ENOSYS = 1, 38


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def install_seccomp():
    """A classic-BPF filter (``PR_SET_SECCOMP``): the calls above fail with EPERM, as does any call made
    through another ABI (i386 or x32 on x86_64, which would dodge a table of native numbers)."""
    arch = SECCOMP.get(platform.machine())
    if arch is None:
        return False
    audit_arch, sys_clone, table = arch
    ld = lambda off: SockFilter(0x20, 0, 0, off)  # noqa: E731  BPF_LD|BPF_W|BPF_ABS
    jeq = lambda k, jt, jf: SockFilter(0x15, jt, jf, k)  # noqa: E731
    ret = lambda k: SockFilter(0x06, 0, 0, k)  # noqa: E731
    allow, deny = 0x7FFF0000, 0x00050000 | EPERM
    prog = [ld(4), jeq(audit_arch, 1, 0), ret(deny), ld(0)]  # seccomp_data: nr at 0, arch at 4, args at 16
    if audit_arch == 0xC000003E:
        prog += [SockFilter(0x35, 0, 1, 0x40000000), ret(deny)]  # BPF_JGE: x32 system calls
    for nr in sorted(set(table.values()) | set(SECCOMP_COMMON.values())):
        prog += [jeq(nr, 0, 1), ret(deny)]
    prog += [jeq(SYS_CLONE3, 0, 1), ret(0x00050000 | ENOSYS)]
    prog += [jeq(sys_clone, 0, 3), ld(16), SockFilter(0x45, 0, 1, CLONE_NEW_ANY), ret(deny), ret(allow)]
    filters = (SockFilter * len(prog))(*prog)
    fprog = SockFprog(len(prog), filters)
    check(libc.prctl(22, 2, ctypes.byref(fprog), 0, 0), "seccomp")  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    return True


def child(spec):
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    for name, value in spec["limits"].items():
        soft, hard = value if isinstance(value, list) else (value, value)
        resource.setrlimit(LIMITS[name], (soft, hard))
    drop_privileges(spec)
    if spec.get("seccomp", True):
        install_seccomp()
    os.chdir(spec["scratch"])
    os.closerange(3, 1 << 20)  # close_range(2): nothing the host opened reaches the user's code
    python = spec["python"]
    os.execve(python, [python, "-I", spec["main"]], spec["env"])


def main():
    spec = json.loads(sys.argv[1])
    if spec.get("root"):
        build_root(spec)
    if spec.get("mount_scratch"):
        mount_scratch(spec)
    for path in spec.get("remount_ro", ()):
        # bwrap's /dev is a writable tmpfs (owned by the sandbox's uid under a user namespace): close it.
        mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    status_fd = spec["status_fd"]
    os.set_inheritable(status_fd, False)
    pid = os.fork()
    if pid == 0:
        try:
            child(spec)
        except BaseException as e:  # noqa: BLE001 -- anything here means the sandbox did not start
            fail(f"{type(e).__name__}: {e}")
    # The reporter: not ptrace-able, not interruptible from inside, waits only for its child.
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    while True:
        try:
            wpid, status, ru = os.wait4(-1, 0)
        except ChildProcessError:
            fail("lost the child")
        except InterruptedError:
            continue
        if wpid == pid:
            break
    report = {"status": status, "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}
    os.write(status_fd, json.dumps(report).encode())
    os.close(status_fd)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


if __name__ == "__main__":
    main()
