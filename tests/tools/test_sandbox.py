"""The Python sandbox: a red-team suite of escape attempts, each contained with the host unharmed.

Every attack runs under each backend that works on this machine (bubblewrap, unshare); a backend that does not
work skips its tests with the reason. After each test, ``host_unharmed`` checks that no process of the
sandbox survived and that the host canary file is intact.
"""

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from llmlab.errors import LlmlabError
from llmlab.tools import sandbox as sb
from llmlab.tools.sandbox import SandboxConfig, run_python

SANDBOX_UID_MIN = 1 << 30  # run by root, the code gets a fresh uid at or above this


@pytest.fixture(params=sb.BACKENDS, scope="module")
def backend(request):
    reason = sb.probe(request.param)
    if reason is not None:
        pytest.skip(f"the {request.param} sandbox does not work here: {reason}")
    return request.param


def _sandbox_pids() -> list[int]:
    """Host pids of processes running as a sandbox uid (root hosts only)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = os.stat(f"/proc/{d}")
            except OSError:
                continue
            if st.st_uid >= SANDBOX_UID_MIN:
                out.append(int(d))
    return out


def _processes_with(marker: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(d))
            except OSError:
                continue
    return out


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A canary file and a fake secret in the environment; afterwards: canary intact, no sandbox process left
    (root hosts: none at a sandbox uid), none of our children a zombie."""
    canary = tmp_path / "canary.txt"
    canary.write_text("host data\n")
    secret = "sk-llmlab-test-" + uuid.uuid4().hex
    monkeypatch.setenv("LLMLAB_FAKE_SECRET", secret)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # would plant code into a non-isolated interpreter
    (tmp_path / "sitecustomize.py").write_text(f"print({secret!r})\n")
    yield {"canary": canary, "secret": secret, "dir": tmp_path}
    assert canary.read_text() == "host data\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["canary.txt", "sitecustomize.py"]
    if os.geteuid() == 0:
        assert _sandbox_pids() == []
    try:
        assert os.waitpid(-1, os.WNOHANG) == (0, 0)  # a child of ours that exited and was never reaped
    except ChildProcessError:
        pass


def run(code: str, backend: str, **kw) -> sb.SandboxResult:
    kw.setdefault("timeout_s", 10)
    kw.setdefault("memory_mb", 256)
    return run_python(textwrap.dedent(code), SandboxConfig(backend=backend, **kw))


def contained(r: sb.SandboxResult, *, stdout: str | None = None):
    """The program ran to completion inside (no traceback) and printed what the checks expect."""
    assert r.exit_code == 0, r
    assert r.limit is None, r
    if stdout is not None:
        assert r.stdout == stdout, r


# ----------------------------------------------------------------------------------------------------------
# The baseline: ordinary code runs and its output comes back


def test_ordinary_code_runs(backend, host):
    r = run("import math, os\nprint(math.factorial(20))\nprint(os.getcwd())\n", backend)
    contained(r, stdout="2432902008176640000\n/scratch\n")
    assert r.backend == backend and r.cpu_s is not None and r.max_rss_mb > 0


def test_exceptions_and_exit_codes_are_reported(backend, host):
    r = run("import sys\nprint('before')\nsys.exit(3)\n", backend)
    assert (r.exit_code, r.signal, r.limit, r.stdout) == (3, None, None, "before\n")
    r = run("1/0\n", backend)
    assert r.exit_code == 1 and r.limit is None and r.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert 'File "/sandbox/main.py", line 1' in r.stderr


def test_scratch_is_writable_and_fresh_each_run(backend, host):
    code = ("import os\nprint(sorted(os.listdir('.')))\nopen('note.txt', 'w').write('x')\n"
            "print(open('/tmp/note.txt').read())\n")
    contained(run(code, backend), stdout="[]\nx\n")
    contained(run(code, backend), stdout="[]\nx\n")  # the note of the first run is gone


# ----------------------------------------------------------------------------------------------------------
# Network


def test_tcp_to_a_host_listener_fails(backend, host):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.setblocking(False)
    port = srv.getsockname()[1]
    r = run(f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2)
            print("connected")
        except OSError as e:
            print("refused", e.errno)
        """, backend)
    contained(r)
    assert r.stdout.startswith("refused")
    with pytest.raises(BlockingIOError):
        srv.accept()  # nothing reached the host's listener
    srv.close()


def test_tcp_to_the_internet_fails(backend, host):
    r = run("""
        import socket
        for addr in [("1.1.1.1", 53), ("8.8.8.8", 443), ("2606:4700:4700::1111", 53)]:
            try:
                socket.create_connection(addr, timeout=2)
                print("connected", addr)
            except OSError:
                pass
        print("done")
        """, backend)
    contained(r, stdout="done\n")


def test_udp_to_the_host_is_not_delivered(backend, host):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    port = rx.getsockname()[1]
    r = run(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"exfiltrated", ("127.0.0.1", {port}))
            print("sent")
        except OSError as e:
            print("unsent", e.errno)
        """, backend)
    contained(r)
    time.sleep(0.05)
    with pytest.raises(BlockingIOError):
        rx.recv(100)
    rx.close()


def test_dns_resolution_fails(backend, host):
    r = run("""
        import socket
        for name in ("example.com", "pypi.org", "localhost"):
            try:
                print(name, socket.getaddrinfo(name, 80)[0][4])
            except OSError:
                pass
        print("done")
        """, backend)
    contained(r)
    assert "example.com" not in r.stdout and "pypi.org" not in r.stdout


def test_only_the_sandboxs_own_loopback(backend, host):
    # bwrap brings the new namespace's loopback up, unshare leaves it down; either way it is the sandbox's own.
    r = run("""
        import socket
        print([n for _, n in socket.if_nameindex()])
        print(open("/proc/net/route").read().splitlines()[1:])                 # no IPv4 route at all
        print({line.split()[-1] for line in open("/proc/net/ipv6_route")} <= {"lo"})  # IPv6: loopback only
        """, backend)
    contained(r, stdout="['lo']\n[]\nTrue\n")


def test_unix_sockets_of_the_host_are_unreachable(backend, host):
    path = str(host["dir"] / "host.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    abstract = socket.socket(socket.AF_UNIX)
    name = "\0llmlab-test-" + uuid.uuid4().hex
    abstract.bind(name)
    abstract.listen(1)
    try:
        r = run(f"""
            import socket
            for addr in ({path!r}, {name!r}, "/run/dbus/system_bus_socket", "/var/run/docker.sock"):
                try:
                    socket.socket(socket.AF_UNIX).connect(addr)
                    print("connected", repr(addr))
                except OSError:
                    pass
            print("done")
            """, backend)
        contained(r, stdout="done\n")
    finally:
        srv.close()
        abstract.close()
        os.unlink(path)


# ----------------------------------------------------------------------------------------------------------
# Files outside scratch


def test_host_files_are_invisible(backend, host):
    r = run(f"""
        import os
        for p in ({str(host["canary"])!r}, "/etc/shadow", "/etc/passwd", "/root/.bashrc", {__file__!r},
                  "/home", "/work", "/var/log", "/sys/kernel", "/boot"):
            try:
                print("READ", p, open(p).read()[:20] if os.path.isfile(p) else os.listdir(p))
            except OSError:
                pass
        print(sorted(os.listdir("/")))
        """, backend)
    contained(r)
    assert "READ" not in r.stdout
    assert "host data" not in r.stdout


def test_writes_outside_scratch_fail(backend, host):
    r = run(f"""
        import os
        for p in ("/pwned", "/usr/pwned", "/etc/pwned", "/sandbox/main.py", "/dev/pwned", "/proc/pwned",
                  {str(host["dir"] / "pwned")!r}, {str(host["canary"])!r}, "/bin/sh"):
            try:
                with open(p, "a") as f:
                    f.write("x")
                print("WROTE", p)
            except OSError:
                pass
        try:
            os.mkdir("/usr/lib/pwned")
            print("WROTE mkdir")
        except OSError:
            pass
        print("done")
        """, backend)
    contained(r, stdout="done\n")


def test_symlink_escapes_stay_inside(backend, host):
    r = run(f"""
        import os
        os.symlink({str(host["canary"])!r}, "to_canary")
        os.symlink("/etc/shadow", "to_shadow")
        os.symlink("../../../../../../../../..", "up")
        os.symlink("/proc/self/root/..", "proc_root")
        for p in ("to_canary", "to_shadow", "up/etc/shadow", "up" + {str(host["canary"])!r}):
            try:
                print("READ", p, open(p).read()[:20] if os.path.isfile(p) else os.listdir(p))
            except OSError:
                pass
        print(sorted(os.listdir("up")) == sorted(os.listdir("proc_root")) == sorted(os.listdir("/")))
        """, backend)
    contained(r, stdout="True\n")


def test_hard_links_and_renames_cannot_reach_the_host(backend, host):
    r = run("""
        import os
        for src, dst in (("/sandbox/main.py", "main_link"), ("/usr/bin/python3", "py_link")):
            try:
                os.link(src, dst)   # another mount: EXDEV, so no writable alias of a read-only file
                print("LINKED", src)
            except OSError:
                pass
        try:
            os.rename("/sandbox/main.py", "stolen.py")
            print("RENAMED")
        except OSError:
            pass
        print("done")
        """, backend)
    contained(r, stdout="done\n")


# ----------------------------------------------------------------------------------------------------------
# Processes, /proc and signals


def test_proc_shows_only_the_sandbox(backend, host):
    r = run(f"""
        import os
        def read(path):
            try:
                return open(path, "rb").read().decode(errors="replace")
            except OSError:
                return ""
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
        print(len(pids) <= 4, any("pytest" in read(f"/proc/{{p}}/cmdline") for p in pids))
        print(any({host["secret"]!r} in read(f"/proc/{{p}}/environ") for p in pids + ["self", "1"]))
        print(sorted(os.listdir("/proc/self/root")) == sorted(os.listdir("/")))
        """, backend)
    contained(r, stdout="True False\nFalse\nTrue\n")


def test_environment_secrets_are_not_visible(backend, host):
    r = run(f"""
        import os, sys
        print(sorted(os.environ))
        print({host["secret"]!r} in open("/proc/self/environ", "rb").read().decode(errors="replace"))
        print(any({str(host["dir"])!r} in p for p in sys.path))
        """, backend)
    contained(r, stdout="['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR', 'USER']\nFalse\nFalse\n")
    assert host["secret"] not in r.stdout + r.stderr  # sitecustomize.py on the host's PYTHONPATH never ran


def test_signals_to_the_parent_and_everyone_stay_inside(backend, host):
    canary = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        r = run(f"""
            import os, signal
            for pid in (os.getppid(), 1, {os.getpid()}, {canary.pid}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill(-1, signal.SIGKILL)   # every process this uid may signal (but itself)
            print("still here")
            """, backend)
        assert isinstance(r, sb.SandboxResult)  # whatever it reached inside, the host got its report back
        assert canary.poll() is None
        os.kill(os.getpid(), 0)  # this test process is alive (trivially, but it is the point)
    finally:
        canary.kill()
        canary.wait()


def test_killing_the_reporter_still_returns_a_result(backend, host):
    r = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('after')\n", backend)
    assert isinstance(r, sb.SandboxResult)  # no exception escaped; the host was not the one killed


def test_no_process_outlives_the_run(backend, host):
    marker = "llmlab-orphan-" + uuid.uuid4().hex
    r = run(f"""
        import os, sys
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:   # double fork: an orphan in a new session, reparented away from us
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", {marker!r}])
            os._exit(0)
        if os.fork() == 0:
            os._exit(0)          # a zombie nobody reaps
        print("parent exits")
        """, backend)
    contained(r, stdout="parent exits\n")
    assert _processes_with(marker) == []


def test_subprocesses_run_inside_the_same_walls(backend, host):
    r = run(f"""
        import subprocess
        script = "cat /etc/shadow {str(host['canary'])} 2>&1; id -u; echo $LLMLAB_FAKE_SECRET"
        out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
        print(out.stdout)
        """, backend)
    contained(r)
    assert "host data" not in r.stdout and host["secret"] not in r.stdout
    assert "No such file" in r.stdout


@pytest.mark.slow
def test_fork_bomb(backend, host):
    r = run("""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """, backend, timeout_s=2, cpu_s=2, processes=16)
    assert r.limit in ("wall_time", "cpu_time"), r


def test_fork_bomb_hits_the_process_limit(backend, host):
    r = run("""
        import os
        children = 0
        while True:
            if os.fork() == 0:
                import time; time.sleep(30)
            children += 1
        """, backend, processes=8)
    assert r.limit == "processes" and "BlockingIOError" in r.stderr, r


def test_thread_bomb_hits_the_process_limit(backend, host):
    r = run("""
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        """, backend, processes=8)
    assert r.limit == "processes", r


# ----------------------------------------------------------------------------------------------------------
# Privileges and the kernel


def test_no_privilege_can_be_regained(backend, host):
    r = run("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        results = []
        other = 0 if os.getuid() else 1   # root-in-a-user-namespace runs as uid 0: try another one
        for name, call in [("setuid", lambda: os.setuid(other)), ("setgid", lambda: os.setgid(other)),
                           ("setgroups", lambda: os.setgroups([0])),
                           ("chroot", lambda: os.chroot("/scratch"))]:
            try:
                call()
                results.append(name)
            except OSError:
                pass
        for name, rc in [("unshare-user", libc.unshare(0x10000000)), ("unshare-net", libc.unshare(0x40000000)),
                         ("mount", libc.mount(b"tmpfs", b"/scratch", b"tmpfs", 0, None)),
                         ("umount", libc.umount2(b"/proc", 2)),
                         ("ptrace", libc.ptrace(16, 1, 0, 0)),   # PTRACE_ATTACH to pid 1
                         ("keyctl", libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, -3, 0, 0)),
                         ("io_uring", libc.syscall(425, 8, None))]:
            if rc >= 0:
                results.append(name)
        caps = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
        print(results, all(int(l.split()[1], 16) == 0 for l in caps))
        """, backend)
    contained(r, stdout="[] True\n")


def test_root_host_runs_code_as_a_fresh_uid(backend, host):
    if os.geteuid() != 0:
        pytest.skip("run as a user, the code keeps that uid inside a user namespace without capabilities")
    r1 = run("import os; print(os.getuid(), os.getgid(), os.getgroups())", backend)
    r2 = run("import os; print(os.getuid())", backend)
    uid = int(r1.stdout.split()[0])
    assert uid >= SANDBOX_UID_MIN and r1.stdout.split()[1] == str(uid) and r1.stdout.split()[2] == "[]"
    assert r2.stdout.split()[0] != str(uid)


def test_kernel_interfaces_are_closed(backend, host):
    r = run("""
        import os
        for p, mode in (("/proc/sysrq-trigger", "w"), ("/proc/sys/kernel/hostname", "w"), ("/proc/kcore", "rb"),
                        ("/dev/mem", "rb"), ("/dev/sda", "rb"), ("/dev/kmsg", "rb"), ("/sys/kernel/notes", "rb")):
            try:
                open(p, mode).close()
                print("OPENED", p)
            except OSError:
                pass
        print("done")
        """, backend)
    contained(r, stdout="done\n")


def test_ctypes_crash_is_only_the_programs_own(backend, host):
    r = run("import ctypes\nprint('before', flush=True)\nctypes.string_at(0)\n", backend)
    assert r.signal == "SIGSEGV" and r.exit_code is None and r.stdout == "before\n", r


def test_no_host_descriptor_leaks_in(backend, host):
    keep = open(host["canary"])  # an open file of the host's
    try:
        r = run("""
            import os
            print(sorted(int(fd) for fd in os.listdir("/proc/self/fd")))
            print(repr(open(0).read()))
            """, backend)
    finally:
        keep.close()
    # 0-2, plus the descriptor listdir itself has open; stdin is empty.
    contained(r)
    fds = eval(r.stdout.splitlines()[0])  # noqa: S307 -- a list of ints we printed ourselves
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4, r
    assert r.stdout.splitlines()[1] == "''"


# ----------------------------------------------------------------------------------------------------------
# Resources


def test_huge_allocation_is_a_memory_error(backend, host):
    r = run("x = bytearray(10**10)\n", backend)
    assert r.limit == "memory" and r.stderr.rstrip().endswith("MemoryError"), r


def test_growing_allocation_stops_at_the_limit(backend, host):
    r = run("chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n", backend, memory_mb=128)
    assert r.limit == "memory", r
    assert r.max_rss_mb < 128 + 16


def test_mmap_bomb(backend, host):
    r = run("import mmap\nm = mmap.mmap(-1, 1 << 34)\n", backend)
    assert r.limit == "memory", r


def test_infinite_loop_hits_the_cpu_limit(backend, host):
    r = run("while True:\n    pass\n", backend, cpu_s=1, timeout_s=10)
    assert r.limit == "cpu_time" and r.signal == "SIGXCPU", r


def test_sleeping_forever_hits_the_wall_clock(backend, host):
    r = run("import time\nprint('start', flush=True)\ntime.sleep(1000)\n", backend, timeout_s=1)
    assert r.limit == "wall_time" and r.signal == "SIGKILL" and r.stdout == "start\n", r


def test_closing_the_pipes_does_not_dodge_the_wall_clock(backend, host):
    r = run("import os, time\nprint('bye', flush=True)\nos.close(1)\nos.close(2)\ntime.sleep(1000)\n", backend,
            timeout_s=1)
    assert r.limit == "wall_time" and r.signal == "SIGKILL" and r.stdout == "bye\n", r


def test_cpu_spinning_children_all_die(backend, host):
    marker = "llmlab-spin-" + uuid.uuid4().hex
    r = run(f"""
        import os, sys
        for _ in range(3):
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "while True: pass", {marker!r}])
        import time; time.sleep(1000)
        """, backend, timeout_s=1)
    assert r.limit == "wall_time", r
    assert _processes_with(marker) == []


def test_huge_output_is_capped(backend, host):
    r = run("print('x' * 10**8)\n", backend, max_output_bytes=1000)
    assert r.limit == "output" and r.stdout_truncated and r.stdout == "x" * 1000, r


def test_endless_output_is_stopped(backend, host):
    r = run("import sys\nwhile True:\n    sys.stderr.write('y' * 1000)\n", backend, max_output_bytes=5000)
    assert r.limit == "output" and r.stderr_truncated and len(r.stderr) == 5000 and not r.stdout_truncated, r


def test_invalid_utf8_output_is_replaced(backend, host):
    r = run("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe')\n", backend)
    contained(r, stdout="ok \ufffd\ufffd")


def test_file_size_bomb(backend, host):
    r = run("with open('big', 'wb') as f:\n    f.write(b'x' * (8 << 20))\n", backend, file_size_mb=1)
    assert r.limit == "file_size", r


def test_filling_scratch(backend, host):
    r = run("""
        for i in range(10):
            with open(f"f{i}", "wb") as f:
                f.write(b"x" * (900 << 10))
        """, backend, scratch_mb=2, file_size_mb=1)
    assert r.limit == "scratch_full", r


def test_inode_bomb(backend, host):
    r = run("import os\nfor i in range(10**6):\n    open(f'f{i}', 'w').close()\n", backend, scratch_files=200)
    assert r.limit == "scratch_full", r


def test_too_many_open_files(backend, host):
    r = run("fs = []\nwhile True:\n    fs.append(open('/dev/null'))\n", backend, open_files=32)
    assert r.limit == "open_files", r


@pytest.mark.slow
def test_runaway_recursion_is_the_programs_own_crash(backend, host):
    r = run("import sys\nsys.setrecursionlimit(10**7)\ndef f(n): return f(n + 1)\nf(0)\n", backend)
    assert r.exit_code != 0 and r.limit is None  # a segfault or RecursionError of its own; nothing else


# ----------------------------------------------------------------------------------------------------------
# Refusing to run without a sandbox


def test_refuses_without_a_sandbox(monkeypatch):
    sb.probe.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")  # neither bwrap nor unshare can be found
    try:
        with pytest.raises(sb.SandboxError, match="no sandbox works here.*--unsafe-no-sandbox"):
            run_python("print(1)")
        with pytest.raises(sb.SandboxError, match="bwrap sandbox does not work here"):
            run_python("print(1)", SandboxConfig(backend="bwrap"))
        r = run_python("import os; print(os.getcwd() != '/scratch')", SandboxConfig(allow_unsandboxed=True))
        assert r.backend == "none" and r.stdout == "True\n"
    finally:
        sb.probe.cache_clear()


def test_unsafe_backend_needs_the_explicit_flag():
    with pytest.raises(LlmlabError, match="allow_unsandboxed"):
        SandboxConfig(backend="none")
    r = run_python("import os\nprint(sorted(os.environ), flush=True)\nwhile True: pass\n",
                   SandboxConfig(backend="none", allow_unsandboxed=True, cpu_s=1))
    assert r.backend == "none" and r.limit == "cpu_time"
    assert r.stdout == "['HOME', 'LANG', 'LC_ALL', 'PATH', 'TMPDIR', 'USER']\n"


@pytest.mark.parametrize("field,value", [("timeout_s", 0), ("memory_mb", 8), ("open_files", 2), ("processes", 0),
                                          ("backend", "docker"), ("max_output_bytes", True), ("cpu_s", -1)])
def test_config_checks(field, value):
    with pytest.raises(LlmlabError, match=field):
        SandboxConfig(**{field: value})


def test_code_size_is_bounded():
    with pytest.raises(LlmlabError, match="at most 10"):
        run_python("x" * 11, SandboxConfig(max_code_bytes=10))


def test_signal_handlers_cannot_outlast_the_wall_clock(backend, host):
    r = run("""
        import signal, time
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
            signal.signal(s, signal.SIG_IGN)
        while True:
            time.sleep(0.01)
        """, backend, timeout_s=1)
    assert r.limit == "wall_time" and r.signal == "SIGKILL", r
