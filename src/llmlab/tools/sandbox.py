"""The Python tool's sandbox: run untrusted code in a separate, isolated, resource-limited process.

    echo 'print(6*7)' | llmlab tool python --timeout 5 --memory 256        # prints JSON
    from llmlab.tools.sandbox import SandboxConfig, run_python
    r = run_python("print(6*7)")          # r.stdout == "42\\n", r.exit_code == 0, r.limit is None
    r = run_python("while True: pass", SandboxConfig(timeout_s=1))          # r.limit == "cpu_time" or "wall_time"

What holds the code in (every backend):

* **namespaces** -- network (only the sandbox's own loopback: no TCP, UDP, DNS or abstract unix sockets), pid
  (the code sees only its own processes and cannot signal anything outside; when the sandbox's first process
  dies the kernel kills every process left inside, so nothing survives a run), mount, IPC, UTS;
* **filesystem** -- a new root holding read-only views of ``/usr``, ``/lib*``, ``/bin`` and the interpreter's
  own prefix, a fresh ``/proc`` of the sandbox's pid namespace and a minimal ``/dev``; the only writable place
  is ``/scratch`` (cwd, ``$HOME``, ``$TMPDIR``; ``/tmp`` links to it), a fresh tmpfs of ``scratch_mb`` with at
  most ``scratch_files`` entries, gone when the run ends; the code itself is a read-only ``/sandbox/main.py``;
* **identity** -- run by root, the code runs as a fresh unprivileged uid (one per run, so no other process
  shares its files or its process count); run by a user, the user namespace holds no capability; always
  no-new-privileges, so no setuid binary gives anything back; a seccomp filter refuses new namespaces,
  mounts, ptrace, keyrings, BPF, io_uring and the like (``sandbox_boot.install_seccomp``; x86_64, aarch64);
* **rlimits** -- CPU seconds, address space (memory), file size, open files, processes (threads count),
  no core dumps, no locked memory, no POSIX message queues;
* **wall clock** -- past ``timeout_s`` the host SIGKILLs the first process of the sandbox's pid namespace;
  the kernel kills every other process inside; the host then waits until that init is gone, which the
  kernel allows only once every process inside has been reaped: when ``run_python`` returns, nothing of the
  run is left;
* **environment** -- exactly ``PATH HOME TMPDIR LANG LC_ALL USER``: nothing of the host's reaches the code;
  Python runs isolated (``-I``: no user site, no ``PYTHON*`` variables, no cwd on ``sys.path``);
* **output** -- stdout and stderr are capped at ``max_output_bytes`` each; past the cap the run is stopped.

Backends: ``bwrap`` (bubblewrap, Debian package ``bubblewrap``) builds the namespaces and the filesystem;
``unshare`` (util-linux, in every Debian) makes the namespaces and ``sandbox_boot.py`` builds the same
filesystem itself (mount, pivot_root). ``auto`` takes the first that works here (checked once per process by
running a one-line program). With neither, ``run_python`` refuses -- unless the caller passes
``allow_unsandboxed=True`` (CLI ``--unsafe-no-sandbox``), which runs the code with the rlimits, the clean
environment and a temporary working directory only: no isolation at all.

The result says which limit stopped the code, if one did (``SandboxResult.limit``): ``wall_time`` and
``output`` (the host stopped it), ``cpu_time`` (SIGXCPU), and, read from the last line of a traceback that
ended the program, ``memory`` (MemoryError), ``file_size`` (EFBIG), ``scratch_full`` (ENOSPC),
``open_files`` (EMFILE) and ``processes`` (EAGAIN from fork, "can't start new thread"). The last group is a
report, not a security decision: code can print such a line itself.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from llmlab.errors import LlmlabError

BACKENDS = ("bwrap", "unshare")
LIMITS = ("wall_time", "cpu_time", "memory", "file_size", "scratch_full", "open_files", "processes", "output")
SCRATCH, MAIN = "/scratch", "/sandbox/main.py"
BOOT_SOURCE_PATH = Path(__file__).with_name("sandbox_boot.py")
# Read-only inside the sandbox: what any Python needs (Debian's merged /usr makes most of these symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache",)
DEVICES = ("null", "zero", "full", "random", "urandom")
DRAIN_S = 5.0  # after a kill, how long the pipes may take to close (the kernel tearing the namespace down)
FAILED_TO_START = 125  # sandbox_boot.py's exit status when the sandbox itself did not come up


class SandboxError(LlmlabError):
    """The sandbox itself did not work (no backend here, or it failed to start) -- not the user's code."""


@dataclass(frozen=True)
class SandboxConfig:
    """Limits and choices for one sandboxed run (``llmlab tool python`` flags in brackets)."""

    timeout_s: float = 10.0  # [--timeout] wall clock; the whole process tree is killed past it
    cpu_s: float | None = None  # CPU seconds (RLIMIT_CPU); None = the wall-clock timeout
    memory_mb: int = 512  # [--memory] address space (RLIMIT_AS); Python itself needs ~30 MB
    file_size_mb: int = 16  # largest file the code may write (RLIMIT_FSIZE)
    scratch_mb: int = 64  # size of the /scratch tmpfs
    scratch_files: int = 4096  # files and directories /scratch may hold (tmpfs inodes)
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 32  # RLIMIT_NPROC: processes and threads of the sandbox's uid
    max_output_bytes: int = 64 * 1024  # [--max-output] each of stdout and stderr; past it the run is stopped
    max_code_bytes: int = 1 << 20  # the program's source
    backend: str = "auto"  # [--backend] auto | bwrap | unshare | none (none needs allow_unsandboxed)
    allow_unsandboxed: bool = False  # [--unsafe-no-sandbox] without a working backend, run with rlimits only
    python: str | None = None  # interpreter to run inside; None = the one running llmlab (its base install)

    def __post_init__(self):
        def need(cond: bool, msg: str):
            if not cond:
                raise LlmlabError(f"SandboxConfig: {msg}")

        need(isinstance(self.timeout_s, (int, float)) and 0 < self.timeout_s <= 3600,
             f"timeout_s must be in (0, 3600] seconds, got {self.timeout_s!r}")
        need(self.cpu_s is None or (isinstance(self.cpu_s, (int, float)) and 0 < self.cpu_s <= 3600),
             f"cpu_s must be in (0, 3600] seconds or None, got {self.cpu_s!r}")
        for name, lo in (("memory_mb", 32), ("file_size_mb", 1), ("scratch_mb", 1), ("scratch_files", 16),
                         ("open_files", 8), ("processes", 1), ("max_output_bytes", 1), ("max_code_bytes", 1)):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= lo,
                 f"{name} must be an integer >= {lo}, got {v!r}")
        need(self.backend in ("auto", "none") + BACKENDS,
             f"backend must be one of auto, {', '.join(BACKENDS)}, none; got {self.backend!r}")
        need(self.backend != "none" or self.allow_unsandboxed,
             "backend 'none' runs code without any isolation; it needs allow_unsandboxed=True")

    @property
    def cpu_limit_s(self) -> int:
        return max(1, math.ceil(self.cpu_s if self.cpu_s is not None else self.timeout_s))


@dataclass
class SandboxResult:
    """What a run produced. ``exit_code`` is the program's exit status (None when a signal ended it, then
    ``signal`` names it); ``limit`` names the limit that stopped it, if one did (see the module doc)."""

    stdout: str
    stderr: str
    exit_code: int | None
    signal: str | None
    limit: str | None
    backend: str
    duration_s: float
    cpu_s: float | None = None
    max_rss_mb: float | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit is None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------------------
# The interpreter and the read-only filesystem view


@functools.lru_cache(maxsize=8)
def _interpreter(python: str | None) -> tuple[str, str]:
    """(real path of the interpreter, its installation prefix) -- the prefix is bound read-only inside."""
    if python is None:
        exe = getattr(sys, "_base_executable", None) or sys.executable
        prefix = sys.base_prefix
    else:
        exe = shutil.which(python) or python
        if not os.path.isfile(exe):
            raise LlmlabError(f"SandboxConfig: python {python!r} not found")
        prefix = None
    exe = os.path.realpath(exe)
    if prefix is None:
        prefix = str(Path(exe).parent.parent)  # <prefix>/bin/python3.x
    return exe, os.path.realpath(prefix)


def _binds(prefix: str) -> list[tuple[str, str, str]]:
    """``(kind, source, destination)`` for the read-only view: kind is dir, file, symlink or dev."""
    out: list[tuple[str, str, str]] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            out.append(("symlink", os.readlink(d), d))
        elif os.path.isdir(d):
            out.append(("dir", d, d))
    out += [("file", f, f) for f in SYSTEM_FILES if os.path.isfile(f)]
    covered = [dst for kind, _, dst in out if kind == "dir"]
    real_covered = [os.path.realpath(d) for d in SYSTEM_DIRS if os.path.exists(d)]
    if not any(prefix == c or prefix.startswith(c + "/") for c in covered + real_covered):
        out.append(("dir", prefix, prefix))
    return out


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _limits(cfg: SandboxConfig) -> dict[str, list[int]]:
    cpu = cfg.cpu_limit_s
    return {
        "cpu": [cpu, cpu + 1],  # SIGXCPU at the soft limit, SIGKILL one second later
        "as": [cfg.memory_mb << 20] * 2,
        "fsize": [cfg.file_size_mb << 20] * 2,
        "nofile": [cfg.open_files] * 2,
        "nproc": [cfg.processes] * 2,
        "core": [0, 0],
        "memlock": [0, 0],
        "msgqueue": [0, 0],
    }


def _env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": SCRATCH, "TMPDIR": SCRATCH, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "USER": "sandbox"}


# ----------------------------------------------------------------------------------------------------------
# Backends: the command line that starts sandbox_boot.py inside the isolation


def _bwrap_command(cfg, exe, prefix, spec, code_fd) -> list[str]:
    root = os.geteuid() == 0
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
           "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent", "--new-session", "--clearenv"]
    # The bootstrap mounts /scratch itself (bwrap's tmpfs cannot cap the number of files), so it keeps
    # CAP_SYS_ADMIN over its own mount namespace until it drops everything; SETPCAP lets it empty the
    # bounding set; SETUID/SETGID let it become the run's fresh uid.
    caps = ["CAP_SYS_ADMIN", "CAP_SETPCAP"] + (["CAP_SETUID", "CAP_SETGID"] if root else [])
    if not root:
        cmd += ["--unshare-user", "--uid", "0", "--gid", "0"]
    cmd += ["--cap-drop", "ALL"] + [a for c in caps for a in ("--cap-add", c)]
    made: set[str] = set()
    for kind, src, dst in _binds(prefix):
        for a in _ancestors(dst):
            if a not in made and not any(a == d or a.startswith(d + "/") for d in SYSTEM_DIRS):
                cmd += ["--perms", "0755", "--dir", a]
                made.add(a)
        cmd += ["--symlink", src, dst] if kind == "symlink" else ["--ro-bind", src, dst]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", SCRATCH, "--symlink", SCRATCH[1:], "/tmp",
            "--perms", "0755", "--dir", os.path.dirname(MAIN), "--perms", "0444", "--ro-bind-data", str(code_fd), MAIN,
            "--remount-ro", "/", "--chdir", "/"]
    return cmd + [exe, "-I", "-S", "-c", BOOT_SOURCE_PATH.read_text(), json.dumps(spec)]


def _unshare_command(cfg, exe, prefix, spec) -> list[str]:
    cmd = [shutil.which("unshare") or "unshare"]
    if os.geteuid() != 0:
        cmd += ["--user", "--map-root-user"]
    cmd += ["--net", "--pid", "--fork", "--kill-child", "--mount", "--ipc", "--uts", "--propagation", "private"]
    return cmd + [exe, "-I", "-S", "-c", BOOT_SOURCE_PATH.read_text(), json.dumps(spec)]


# ----------------------------------------------------------------------------------------------------------
# Running


_TRACEBACK_LIMITS = [
    (re.compile(r"^MemoryError\b|\[Errno 12\]|Cannot allocate memory"), "memory"),
    (re.compile(r"\[Errno 27\]|File too large"), "file_size"),
    (re.compile(r"\[Errno 28\]|No space left on device"), "scratch_full"),
    (re.compile(r"\[Errno 24\]|Too many open files"), "open_files"),
    (re.compile(r"\[Errno 11\]|can't start new thread|Resource temporarily unavailable"), "processes"),
]


def _limit_from_stderr(stderr: str) -> str | None:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1]
    for pattern, name in _TRACEBACK_LIMITS:
        if pattern.search(last):
            return name
    return None


def _kill_sandbox(proc: subprocess.Popen, isolated: bool, killed: list[int]) -> None:
    """SIGKILL the first process of the sandbox's pid namespace (the outer bwrap/unshare's child): the kernel
    then kills every process inside. Its host pid goes to ``killed`` so ``_wait_gone`` can wait for the
    teardown. Without a namespace (backend none), or if the kernel does not list children, kill the
    process group."""
    kids: list[int] = []
    if isolated:
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            pass
    for k in kids:
        try:
            os.kill(k, signal.SIGKILL)
            killed.append(k)
        except ProcessLookupError:
            pass
    if not kids:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Wait until each pid (the init of a sandbox's pid namespace) is gone or a zombie. The kernel makes a
    namespace's init a zombie only after every other process inside has been reaped, so afterwards nothing
    of the run is left -- bwrap's outer process exits as soon as it learns the code's exit status, while
    the namespace may still be tearing down."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.002)


def _drain(proc: subprocess.Popen, deadline: float, cap: int, isolated: bool,
           killed: list[int]) -> tuple[dict[int, bytearray], dict[int, bool], str | None]:
    """Read stdout and stderr until both close. Past ``deadline`` or ``cap`` bytes, kill the sandbox
    (``_kill_sandbox``) and keep reading until the pipes close."""
    sel = selectors.DefaultSelector()
    fds = [proc.stdout.fileno(), proc.stderr.fileno()]
    for fd in fds:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    bufs = {fd: bytearray() for fd in fds}
    truncated = {fd: False for fd in fds}
    stopped: str | None = None

    def kill(reason: str):
        nonlocal stopped, deadline
        if stopped is None:
            stopped = reason
            deadline = time.monotonic() + DRAIN_S
        _kill_sandbox(proc, isolated, killed)

    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if stopped is not None:
                    break  # the namespace did not close the pipes in time; give up reading (reported below)
                kill("wall_time")
                continue
            for key, _ in sel.select(remaining):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                buf = bufs[key.fd]
                room = cap - len(buf)
                if room > 0:
                    buf += chunk[:room]
                if len(chunk) > room:
                    truncated[key.fd] = True
                    kill("output")
    finally:
        sel.close()
    return bufs, truncated, stopped


def _run(code: str, cfg: SandboxConfig, backend: str) -> SandboxResult:
    exe, prefix = _interpreter(cfg.python)
    root_host = os.geteuid() == 0
    status_r, status_w = os.pipe()
    code_fd = os.memfd_create("sandbox-code")  # read by bwrap or by the bootstrap, never a file on disk
    os.write(code_fd, code.encode("utf-8", "surrogatepass"))
    os.lseek(code_fd, 0, os.SEEK_SET)
    tmp_dirs: list[str] = []
    spec = {"status_fd": status_w, "limits": _limits(cfg), "scratch": SCRATCH, "main": MAIN, "python": exe,
            "env": _env(), "scratch_bytes": cfg.scratch_mb << 20, "scratch_files": cfg.scratch_files,
            "uid": (1 << 30) + secrets.randbelow((1 << 30) - 2) if root_host and backend != "none" else None,
            "clear_caps": not root_host and backend != "none", "mount_scratch": backend != "none"}
    info_r = info_w = None
    pass_fds = [status_w, code_fd]
    if backend == "bwrap":
        spec["remount_ro"] = ["/dev"]
        info_r, info_w = os.pipe()  # bwrap writes {"child-pid": host pid of the namespace's init} here
        pass_fds.append(info_w)
        cmd = _bwrap_command(cfg, exe, prefix, spec, code_fd)
        cmd[1:1] = ["--info-fd", str(info_w)]
    elif backend == "unshare":
        new_root = tempfile.mkdtemp(prefix="llmlab-sandbox-root-")  # a mount point, only inside the namespace
        tmp_dirs.append(new_root)
        spec.update(root=new_root, binds=_binds(prefix) + [("dev", f"/dev/{d}", f"/dev/{d}") for d in DEVICES],
                    code_fd=code_fd)
        cmd = _unshare_command(cfg, exe, prefix, spec)
    else:  # none: rlimits, clean environment, a temporary cwd -- no isolation (allow_unsandboxed only)
        scratch = tempfile.mkdtemp(prefix="llmlab-unsafe-scratch-")
        tmp_dirs.append(scratch)
        main = os.path.join(scratch, "main.py")
        Path(main).write_text(code, encoding="utf-8", errors="surrogatepass")
        env = _env() | {"HOME": scratch, "TMPDIR": scratch}
        spec.update(scratch=scratch, main=main, env=env)
        cmd = [exe, "-I", "-S", "-c", BOOT_SOURCE_PATH.read_text(), json.dumps(spec)]
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=pass_fds, env={}, cwd="/", start_new_session=True)
    except OSError as e:
        for fd in [status_r, info_r] + pass_fds:
            if fd is not None:
                os.close(fd)
        raise SandboxError(f"could not start the {backend} sandbox: {e}") from None
    for fd in pass_fds:
        os.close(fd)
    isolated, killed = backend != "none", []
    try:
        bufs, truncated, stopped = _drain(proc, t0 + cfg.timeout_s, cfg.max_output_bytes, isolated, killed)
        if stopped is None:
            # Both pipes closed, but code that closed its stdout and stderr may still be running: the wall
            # clock still holds.
            try:
                proc.wait(timeout=max(0.0, t0 + cfg.timeout_s - time.monotonic()))
            except subprocess.TimeoutExpired:
                stopped = "wall_time"
                _kill_sandbox(proc, isolated, killed)
        try:
            proc.wait(timeout=DRAIN_S)
        except subprocess.TimeoutExpired:
            _kill_sandbox(proc, isolated, killed)
            try:
                proc.wait(timeout=DRAIN_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if info_r is not None:
            info = _read_status(info_r) or {}
            if isinstance(info.get("child-pid"), int):
                killed.append(info["child-pid"])
        _wait_gone(killed, DRAIN_S)
        duration = time.monotonic() - t0
        report = _read_status(status_r)
    finally:
        os.close(status_r)
        if info_r is not None:
            os.close(info_r)
        for fd in (proc.stdout, proc.stderr):
            fd.close()
        for d in tmp_dirs:
            shutil.rmtree(d, ignore_errors=True)
    stdout, stderr = (bytes(b).decode("utf-8", "replace") for b in bufs.values())
    if report is None and stopped is None:
        if proc.returncode == FAILED_TO_START and "sandbox: " in stderr:
            line = next(ln for ln in stderr.splitlines() if "sandbox: " in ln)
            raise SandboxError(f"the {backend} sandbox failed to start: {line.split('sandbox: ', 1)[1]}")
        if backend == "bwrap" and proc.returncode == 1 and stderr.startswith("bwrap: "):
            raise SandboxError(f"the bwrap sandbox failed to start: {stderr.splitlines()[0][7:]}")
        if backend == "unshare" and stderr.startswith("unshare: "):
            raise SandboxError(f"the unshare sandbox failed to start: {stderr.splitlines()[0][9:]}")
    exit_code: int | None
    sig: str | None = None
    cpu = rss = None
    if report is not None:
        status = report["status"]
        cpu, rss = report["cpu_s"], report["maxrss_kb"] / 1024
        if os.WIFSIGNALED(status):
            exit_code, sig = None, _signame(os.WTERMSIG(status))
        else:
            exit_code = os.WEXITSTATUS(status)
    elif stopped is not None:
        exit_code, sig = None, "SIGKILL"
    else:  # the reporter itself was killed (by code running as the same uid); say what the host saw
        exit_code = proc.returncode if proc.returncode >= 0 else None
        sig = _signame(-proc.returncode) if proc.returncode < 0 else None
    limit = stopped
    if limit is None and (sig == "SIGXCPU" or (sig == "SIGKILL" and cpu is not None and cpu >= cfg.cpu_limit_s)):
        limit = "cpu_time"
    if limit is None and exit_code not in (0, None):
        limit = _limit_from_stderr(stderr)
    fds = list(bufs)
    return SandboxResult(stdout=stdout, stderr=stderr, exit_code=exit_code, signal=sig, limit=limit,
                         backend=backend, duration_s=round(duration, 4),
                         cpu_s=None if cpu is None else round(cpu, 4),
                         max_rss_mb=None if rss is None else round(rss, 2),
                         stdout_truncated=truncated[fds[0]], stderr_truncated=truncated[fds[1]])


def _signame(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _read_status(fd: int) -> dict | None:
    sel = selectors.DefaultSelector()
    sel.register(fd, selectors.EVENT_READ)
    data = b""
    deadline = time.monotonic() + DRAIN_S
    try:
        while time.monotonic() < deadline:
            if not sel.select(deadline - time.monotonic()):
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    finally:
        sel.close()
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------------------
# Choosing a backend


@functools.lru_cache(maxsize=16)
def probe(backend: str, python: str | None = None) -> str | None:
    """None when ``backend`` runs a one-line program here, else the reason it does not (cached per process)."""
    tool = {"bwrap": "bwrap", "unshare": "unshare"}[backend]
    if shutil.which(tool) is None:
        return f"{tool} is not installed" + (" (Debian: apt-get install bubblewrap)" if tool == "bwrap" else "")
    try:
        r = _run("print('ok')", SandboxConfig(timeout_s=20, python=python), backend)
    except LlmlabError as e:
        return str(e)
    if r.exit_code != 0 or r.stdout != "ok\n":
        return f"{backend} ran a test program with exit status {r.exit_code}: {r.stderr.strip()[-200:]}"
    return None


def available_backends(python: str | None = None) -> dict[str, str | None]:
    """Every backend and why it does not work here (None when it does)."""
    return {b: probe(b, python) for b in BACKENDS}


def choose_backend(cfg: SandboxConfig) -> str:
    """The backend ``cfg`` asks for, checked; ``SandboxError`` when no isolation works and the caller did not
    opt out of it."""
    if cfg.backend == "none":
        return "none"
    if cfg.backend in BACKENDS:
        reason = probe(cfg.backend, cfg.python)
        if reason is None:
            return cfg.backend
        if not cfg.allow_unsandboxed:
            raise SandboxError(f"the {cfg.backend} sandbox does not work here: {reason}")
        return "none"
    reasons = available_backends(cfg.python)
    for b in BACKENDS:
        if reasons[b] is None:
            return b
    if cfg.allow_unsandboxed:
        return "none"
    why = "; ".join(f"{b}: {r}" for b, r in reasons.items())
    raise SandboxError(f"no sandbox works here ({why}); install bubblewrap, or pass allow_unsandboxed=True "
                       "(--unsafe-no-sandbox) to run the code with resource limits only and no isolation")


def run_python(code: str, config: SandboxConfig | None = None) -> SandboxResult:
    """Run ``code`` (Python source) in the sandbox and return what it did. Raises ``SandboxError`` only when
    the sandbox itself does not work; anything the code does (errors, crashes, limits) is in the result."""
    cfg = config or SandboxConfig()
    if not isinstance(code, str):
        raise LlmlabError(f"code must be a string, got {type(code).__name__}")
    size = len(code.encode("utf-8", "surrogatepass"))
    if size > cfg.max_code_bytes:
        raise LlmlabError(f"the program is {size} bytes; the sandbox takes at most {cfg.max_code_bytes}")
    return _run(code, cfg, choose_backend(cfg))
