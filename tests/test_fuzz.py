"""Fuzzing: mutated scripts and broken binaries end in a clear error or a program.

Never a Python traceback. Runs in-process (gobt.cli.run with --emit) so
that hundreds of cases take seconds; a few go through the real command.
"""

import json
import os
import random
import re
import shutil
import subprocess

import pytest

from conftest import gobt, no_traceback
from gobt import cache
from gobt.cli import BpftraceSaid, run
from gobt.errors import GobtError

SEED = 20261125
SYNTAX = '{}()/"*:,@$;[]~.+-\n #!='


def base_scripts(multiret, matrix):
    return [
        f'goret:{multiret}:main.classify /goarg(n) > 3/ {{ @[retval] = count(); printf("%d\\n", goelapsed); }}',
        f"goentry:{multiret}:main.classify {{ @g[goid] = count(); }}\n"
        f"uprobe:{multiret}:main.classify {{ printf(\"%d\\n\", goarg(n)); }}",
        f'goret:{matrix}:main.Mixed {{ printf("%s %d %d\\n", goarg(~r1), goarg(~r0), goarg(a)); }}',
        f'uprobe:{matrix}:main.(*T).PtrMethod {{ printf("%s %d\\n", goarg(t.B), goarg(t.A)); }}',
        f'uprobe:{matrix}:main.NestedPointers {{ printf("%s\\n", goarg(n.In.Name)); }}',
        f"goret:{matrix}:main.Slices, goret:{matrix}:main.ArrayOne {{ @ = count(); }}",
        "#include <linux/sched.h>\nstruct S { int a; };\nBEGIN { printf(\"{}\\n\"); exit(); }",
    ]


def mutate(rng, text):
    ops = rng.randint(1, 3)
    for _ in range(ops):
        if not text:
            break
        i = rng.randrange(len(text))
        op = rng.randrange(5)
        if op == 0:
            text = text[:i] + text[i + 1 :]
        elif op == 1:
            text = text[:i] + rng.choice(SYNTAX) + text[i:]
        elif op == 2:
            j = min(len(text), i + rng.randint(1, 12))
            text = text[:i] + text[i:j] * 2 + text[j:]
        elif op == 3:
            text = text[:i]
        else:
            j = rng.randrange(len(text))
            text = text[:i] + text[j] + text[i + 1 :]
    return text


def emit(argv):
    """'ok' or 'error'; anything else raises out of the test."""
    try:
        code = run(["--emit", *argv])
    except GobtError as e:
        e.render()
        return "error"
    except BpftraceSaid:  # bpftrace's own syntax error, passed on as it said it
        return "error"
    except SystemExit as e:  # exec'd nothing: --emit returns before exec
        raise AssertionError(f"unexpected exit {e.code} for {argv!r}")
    assert code == 0
    return "ok"


@pytest.fixture(scope="module")
def binaries(go_build, matrix_src):
    return go_build("go1.19", "tests/programs/multiret"), go_build("go1.19", matrix_src)


# Per pass (0.17's emission, then 0.23's): ~3 s a hundred. GOBT_FUZZ_CASES for more.
CASES = int(os.environ.get("GOBT_FUZZ_CASES", "300"))


def test_mutated_scripts(binaries, capsys):
    cache.disable()  # every case from scratch
    rng = random.Random(SEED)
    outcomes = {"ok": 0, "error": 0}
    bases = base_scripts(*binaries)
    for n in range(CASES):
        text = mutate(rng, rng.choice(bases))
        try:
            outcomes[emit(["-e", text])] += 1
        except Exception as e:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"case {n}: {type(e).__name__}: {e}\n--- script ---\n{text}") from e
        capsys.readouterr()
    assert sum(outcomes.values()) == CASES
    # The mutations must exercise both paths, or the test proves little.
    assert outcomes["ok"] > CASES // 12 and outcomes["error"] > CASES // 3, outcomes


def broken_binaries(src, tmp):
    data = open(src, "rb").read()
    rng = random.Random(SEED)
    cases = {"empty": b"", "magic-only": b"\x7fELF", "garbage": b"\x7fELF\x02\x01\x01" + bytes(rng.randrange(256) for _ in range(5000))}
    for size in (64, 200, 3000, 65536, len(data) // 3, len(data) // 2, len(data) - 100):
        cases[f"cut-{size}"] = data[:size]
    flipped = bytearray(data)
    for _ in range(200):
        flipped[rng.randrange(64, 4096)] ^= 0xFF  # headers and section table
    cases["flipped-headers"] = bytes(flipped)
    paths = {}
    for name, blob in cases.items():
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(blob)
        paths[name] = path
    script = os.path.join(tmp, "script.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    paths["shell-script"] = script
    paths["directory"] = tmp
    return paths


def test_broken_binaries(binaries, tmp_path, capsys):
    cache.disable()
    for name, path in broken_binaries(binaries[0], str(tmp_path)).items():
        for program in (
            f"goret:{path}:main.classify {{ exit(); }}",
            f"goentry:{path}:main.* {{ @[goid] = count(); }}",
            f'uprobe:{path}:main.classify {{ printf("%d\\n", goarg(n)); }}',
        ):
            try:
                emit(["-e", program])
            except Exception as e:  # noqa: BLE001
                raise AssertionError(f"{name}: {type(e).__name__}: {e}") from e
        capsys.readouterr()


def test_through_the_command(binaries, tmp_path):
    # A sample through the real entry point: errors are one line, never a traceback.
    rng = random.Random(SEED + 1)
    bases = base_scripts(*binaries)
    for _ in range(15):
        text = mutate(rng, rng.choice(bases))
        proc = gobt("--emit", "-e", text)
        no_traceback(proc)
        assert proc.returncode in (0, 1), proc.stderr
        if proc.returncode:
            assert proc.stderr.startswith("gobt: "), proc.stderr


def _emit_text(argv, capsys):
    assert emit(argv) == "ok"
    return capsys.readouterr().out


def _attach_points(program):
    return set(re.findall(r"uprobe:[^ ,{]+", program))


def test_corrupt_caches(binaries, tmp_path, monkeypatch, capsys):
    """Cache files damaged at random are misses; ones damaged and sealed
    again (a bug, a disk) never put a probe where the bytes have none."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(cache, "_disabled", False)
    program = f'goret:{binaries[0]}:main.classify {{ printf("%d\\n", retval); }}'
    good = _emit_text(["-e", program], capsys)
    folders = [tmp_path / "gobt" / "binaries", tmp_path / "gobt" / "programs"]
    pristine = {p: p.read_bytes() for d in folders for p in d.iterdir()}
    rng = random.Random(SEED + 2)
    for n in range(80):
        for path, blob in pristine.items():
            path.write_bytes(blob)
        path, blob = rng.choice(sorted(pristine.items()))
        if n % 2:
            # Raw damage: a byte changed, bytes lost, a digit changed.
            data = bytearray(blob)
            i = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[i] ^= 1 << rng.randrange(8)
            elif op == 1:
                del data[i : i + rng.randint(1, 40)]
            else:
                digits = [j for j, c in enumerate(data) if chr(c).isdigit()]
                j = rng.choice(digits)
                data[j] = ord(str((int(chr(data[j])) + rng.randint(1, 9)) % 10))
            path.write_bytes(bytes(data))
            assert _emit_text(["-e", program], capsys) == good, (n, path.name)
        else:
            # Sealed again: any number of what gobt learnt about the binary
            # may move. (A cached program's own text is gobt's output and
            # only its seal guards it; what it was proven on may move.)
            text = cache.read_sealed(str(path))
            end = text.find('"rewritten"')
            nums = [m for m in re.finditer(r"\d+", text) if end == -1 or m.start() < end]
            m = rng.choice(nums)
            text = text[: m.start()] + str(int(m.group()) + rng.choice((-2, -1, 1, 2, 4))) + text[m.end() :]
            try:
                data = json.loads(text)
            except ValueError:
                continue
            cache.write_atomic(str(path), data)
            out = _emit_text(["-e", program], capsys)
            assert _attach_points(out) <= _attach_points(good), (n, path.name, out)


def test_rebuilt_in_place(go_build, tmp_path, monkeypatch, capsys):
    """Builds written over one another's inode, size and mtime: the warm
    answer is always the fresh one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_disabled", False)
    builds = [go_build("go1.19", "tests/programs/multiret", ldflags="-buildid=fixed", gcflags=g, tag=t)
              for g, t in (("", ""), ("all=-N -l", "-noopt"), ("all=-l", "-noinline"))]
    blobs = [open(b, "rb").read() for b in builds]
    size = max(map(len, blobs))
    blobs = [b + bytes(size - len(b)) for b in blobs]
    target = tmp_path / "app"
    target.write_bytes(blobs[0])
    target.chmod(0o755)
    program = f'goret:{target}:main.classify {{ printf("%d\\n", retval); }}'
    fresh = {}
    rng = random.Random(SEED + 3)
    for n in range(12):
        i = rng.randrange(len(blobs))
        st = os.stat(target)
        with open(target, "r+b") as f:
            f.write(blobs[i])
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        if rng.randrange(2):
            shutil.rmtree(tmp_path / "cache" / "gobt" / "programs", ignore_errors=True)
        out = _emit_text(["-e", program], capsys)
        if i not in fresh:
            cache._disabled = True
            fresh[i] = _emit_text(["-e", program], capsys)
            cache._disabled = False
        assert out == fresh[i], (n, i)
    # The builds differ where it shows: not every pair (a "sym"+offset form
    # can coincide), but the test must have told some apart.
    assert len(set(blobs)) == len(blobs) and len(set(fresh.values())) >= 2


def _damaged_dwarf(src, tmp, section, rng, n, near=()):
    """n copies of src, each with a few bytes of `section` changed: anywhere
    in it, or (every other copy) close to one of the byte strings `near`,
    where the DIEs gobt reads are."""
    from elftools.elf.elffile import ELFFile

    with open(src, "rb") as f:
        found = ELFFile(f).get_section_by_name(section)
        assert found is not None, (src, section)
        start, size = found["sh_offset"], found["sh_size"]
    data = open(src, "rb").read()
    body = data[start : start + size]
    spots = [body.find(s) for s in near if body.find(s) != -1]
    out = []
    for k in range(n):
        blob = bytearray(data)
        for _ in range(rng.choice((1, 2, 8, 64))):
            if spots and k % 2:
                i = start + min(size - 1, max(0, rng.choice(spots) + rng.randrange(-256, 256)))
            else:
                i = start + rng.randrange(size)
            blob[i] = rng.randrange(256) if rng.randrange(2) else blob[i] ^ (1 << rng.randrange(8))
        path = os.path.join(tmp, f"copy-{k}")
        with open(path, "wb") as f:
            f.write(blob)
        os.chmod(path, 0o755)
        out.append(path)
    return out


@pytest.mark.parametrize("section", [".debug_abbrev", ".debug_info", ".debug_str"])
def test_damaged_dwarf_sections(go_build, tmp_path, capsys, section):
    """Byte damage in a DWARF section is an error naming the binary and the
    section, or a run without what the DWARF would have said: never an
    internal error. A cgo program, whose C units bring a .debug_str (Go
    writes its strings inline), built with its DWARF uncompressed so that
    the damage reaches the readers rather than only zlib."""
    cache.disable()
    src = go_build("go1.19", "tests/programs/cgocall", ldflags="-compressdwarf=false", cgo=True, tag="-plaindwarf")
    rng = random.Random(SEED + 4)
    outcomes = {"ok": 0, "error": 0}
    for path in _damaged_dwarf(src, str(tmp_path), section, rng, 16, near=(b"main.scale\0", b"c_triple\0")):
        for program in (
            f'goret:{path}:main.scale {{ printf("%s\\n", goarg(~r1)); }}',
            f'uprobe:{path}:main.scale {{ printf("%d %s\\n", goarg(n), goarg(label)); }}',
            f"goentry:{path}:main.* {{ @[goid] = count(); }}",
            f"uprobe:{path}:c_triple {{ @ = count(); }}",
        ):
            try:
                run(["--emit", "-e", program])
                outcomes["ok"] += 1
                said = capsys.readouterr().err
            except GobtError as e:
                outcomes["error"] += 1
                said = e.render()
            except Exception as e:  # noqa: BLE001 - the point of the test
                raise AssertionError(f"{os.path.basename(path)}: {type(e).__name__}: {e}\n{program}") from e
            for line in said.splitlines():
                if line.startswith("gobt:") and "unreadable DWARF" in line:
                    assert path in line and re.search(r"\.debug_(info|abbrev|str)", line), line
    capsys.readouterr()
    assert outcomes["ok"] + outcomes["error"] == 64
    print(section, outcomes)


# Each example's arguments for a short run (examples/X/X.gbt's header).
EXAMPLE_ARGS = {"stacker": "1000", "swapper": "hello go", "httpserver": "2", "errors": "3", "latency": "2",
                "goroutines": "3"}


def test_byte_flipped_examples_through_bpftrace(go_build, bpf, tmp_path):
    """The example scripts with bytes that are not UTF-8 (0xf8, 0xff, a lone
    0xc3) in their probes, run as their headers say with real bpftrace: the
    bytes go to bpftrace as they are, and its messages quoting them (its
    stack dry run's too) never crash gobt."""
    from conftest import GOBT_CMD, ON_TRIXIE
    from toolchains import ROOT

    rng = random.Random(SEED + 5)
    warned = 0
    for name, args in sorted(EXAMPLE_ARGS.items()):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(go_build("go1.19", f"examples/{name}", gcflags="-l" if name != "httpserver" else ""),
                    folder / name)
        text = open(os.path.join(ROOT, "examples", name, f"{name}.gbt"), "rb").read()
        code = text.index(b"*/") + 2  # the probes, past the header comment
        for k in range(3):
            blob = bytearray(text)
            for _ in range(1 + k):
                blob[rng.randrange(code, len(blob))] = rng.choice((0xF8, 0xFF, 0xC3))
            script = folder / f"flipped{k}.gbt"
            script.write_bytes(bytes(blob))
            # GOBT_NOTES=all: the string-size warning is said once per bpftrace otherwise.
            proc = subprocess.run([*GOBT_CMD, script.name, "-c", f"./{name} {args}"], cwd=folder,
                                  capture_output=True, timeout=120, env={**os.environ, "GOBT_NOTES": "all"})
            err = proc.stderr.decode("utf-8", "replace")
            assert proc.returncode != 70 and "internal error" not in err and "Traceback" not in err, (
                f"{name} {script.name}: {err[-2000:]}")
            warned += b"bpftrace keeps at most" in proc.stderr
    # bpftrace 0.17 keeps strings on the BPF stack: gobt's dry run of the
    # program (--emit-elf) then reads bpftrace's messages about those bytes.
    assert warned or ON_TRIXIE, "no case reached the string check: the bpftrace dry run went untested"
