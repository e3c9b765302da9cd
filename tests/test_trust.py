"""Never silently wrong: every offset gobt emits is proven against the bytes
it lands on, whatever a cache or a symbol table claims."""

import json
import os
import re
import shutil
import struct
import subprocess
import time

from conftest import gobt, no_traceback, write_program

PROGRAM = 'goret:{b}:main.classify {{ printf("%d\\n", retval); }}'


def emit(cache_home, *args, ok=True):
    proc = gobt("--emit", *args, env={"XDG_CACHE_HOME": str(cache_home)}, timeout=60)
    no_traceback(proc)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def fresh(binary, tmp_path, program=PROGRAM):
    return emit(tmp_path / "fresh", "--no-cache", "-e", program.format(b=binary)).stdout


def equal_size(a, b, tmp_path):
    """Copies of two binaries padded with zeros to one size (the ELF ignores
    bytes past its section headers)."""
    blobs = [open(a, "rb").read(), open(b, "rb").read()]
    size = max(map(len, blobs))
    out = []
    for name, blob in zip("ab", blobs):
        path = tmp_path / f"build-{name}"
        path.write_bytes(blob + bytes(size - len(blob)))
        out.append(path)
    return out


def rebuilt_in_place(target, other):
    """Overwrite target with other's bytes: same inode, same size, and the
    old mtime put back to the nanosecond."""
    st = os.stat(target)
    with open(other, "rb") as src, open(target, "r+b") as dst:
        dst.write(src.read())
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(target)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


def test_rebuilt_in_place_with_a_fixed_build_id(go_build, tmp_path):
    # Reproducible builds give every build the same Go build ID.
    a = go_build("go1.19", "tests/programs/multiret", ldflags="-buildid=fixed")
    b = go_build("go1.19", "tests/programs/multiret", ldflags="-buildid=fixed", gcflags="all=-N -l", tag="-noopt")
    pa, pb = equal_size(a, b, tmp_path)
    target = tmp_path / "app"
    shutil.copy(pa, target)
    first = emit(tmp_path, "-e", PROGRAM.format(b=target)).stdout
    rebuilt_in_place(target, pb)
    second = emit(tmp_path, "-e", PROGRAM.format(b=target)).stdout
    assert second == fresh(target, tmp_path)
    assert second != first


def _digit_changed(text, pattern):
    """text with the last digit of pattern's first group changed."""
    m = re.search(pattern, text)
    assert m, pattern
    i = m.end(1) - 1
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]


def test_one_changed_digit_in_a_cache_file_is_a_miss(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    program = PROGRAM.format(b=binary)
    good = emit(tmp_path, "-e", program).stdout
    # The per-binary cache: a RET offset of main.classify, still valid JSON.
    (entry,) = (tmp_path / "gobt" / "binaries").iterdir()
    entry.write_text(_digit_changed(entry.read_text(), r'"main\.classify": \[\d+, \[(\d+)'))
    shutil.rmtree(tmp_path / "gobt" / "programs")
    assert emit(tmp_path, "-e", program).stdout == good
    # The program cache: one offset in the program text.
    (entry,) = (tmp_path / "gobt" / "programs").iterdir()
    offset = re.search(r"(?:\+|:0x)([0-9a-f]+)", good).group(0)
    entry.write_text(entry.read_text().replace(offset, offset[:-1] + ("1" if offset[-1] != "1" else "2"), 1))
    assert emit(tmp_path, "-e", program).stdout == good


def test_a_resealed_cache_with_wrong_offsets_is_caught_by_the_proof(go_build, tmp_path):
    # A cache file whose checksum is right but whose offsets are not (a bug,
    # or a binary changed in a way the identity missed): the proof against
    # the binary's bytes drops it.
    from gobt.cache import read_sealed, write_atomic

    binary = go_build("go1.19", "tests/programs/multiret")
    program = PROGRAM.format(b=binary)
    good = emit(tmp_path, "-e", program).stdout
    shutil.rmtree(tmp_path / "gobt" / "programs")
    (entry,) = (tmp_path / "gobt" / "binaries").iterdir()
    data = json.loads(read_sealed(str(entry)))
    row = data["tables"]["code"]["main.classify"]
    row[1][0] += 1  # a RET offset one byte off
    write_atomic(str(entry), data)
    proc = emit(tmp_path, "-e", program)
    assert proc.stdout == good
    # The program cache: the proof it keeps must hold for the bytes.
    (entry,) = (tmp_path / "gobt" / "programs").iterdir()
    data = json.loads(read_sealed(str(entry)))
    points = data["proofs"]["functions"][0][7]
    assert points
    points[0][1] += 1  # [text, offset, ret]
    write_atomic(str(entry), data)
    assert emit(tmp_path, "-e", program).stdout == good


F_PROGRAM = """package main

import "fmt"

//go:noinline
func f(n int) int {
	if n > 3 {
		return n * 2
	}
	return n
}

func main() {
	fmt.Println(f(5))
}
"""


def _patch_symbol_size(path, name, factor):
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        for i, sym in enumerate(symtab.iter_symbols()):
            if sym.name == name:
                at = symtab["sh_offset"] + i * symtab["sh_entsize"] + 16  # st_size
                size = sym["st_size"]
                break
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<Q", data, at, size * factor)
    open(path, "wb").write(bytes(data))


def test_symtab_bounds_checked_against_pclntab(go_build, tmp_path):
    binary = go_build("go1.19", write_program("smallf", {"main.go": F_PROGRAM, "go.mod": "module smallf\n\ngo 1.15\n"}))
    program = 'goret:{b}:main.f {{ printf("%d\\n", retval); }}'
    good = fresh(binary, tmp_path, program)
    patched = tmp_path / "patched"
    shutil.copy(binary, patched)
    _patch_symbol_size(patched, "main.f", 4)
    proc = emit(tmp_path, "--no-cache", "-e", program.format(b=patched))
    assert "main.f" in proc.stderr and ".gopclntab" in proc.stderr, proc.stderr
    assert proc.stdout.replace(str(patched), binary) == good


def test_non_utf8_function_name_is_a_user_error(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    script = tmp_path / "bad.bt"
    script.write_bytes(b"goret:" + binary.encode() + b":main.cl\xffassify { exit(); }\n")
    proc = emit(tmp_path, str(script), ok=False)
    assert proc.returncode == 1, proc.stderr
    assert "UTF-8" in proc.stderr and "bad.bt:1:" in proc.stderr, proc.stderr


def test_elf_header_offsets_past_any_file(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    for field in (32, 40):  # e_phoff, e_shoff
        data = bytearray(open(binary, "rb").read())
        struct.pack_into("<Q", data, field, (1 << 64) - 16)
        path = tmp_path / f"corrupt-{field}"
        path.write_bytes(bytes(data))
        proc = emit(tmp_path, "-e", f"goret:{path}:main.classify {{ exit(); }}", ok=False)
        assert proc.returncode == 1 and "corrupt ELF headers" in proc.stderr, proc.stderr


def test_corrupt_debug_abbrev_is_a_user_error(go_build, tmp_path):
    from elftools.elf.elffile import ELFFile

    binary = go_build("go1.19", "tests/programs/multiret", ldflags="-compressdwarf=false")
    with open(binary, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".debug_abbrev")
        off, size = sec["sh_offset"], sec["sh_size"]
    data = bytearray(open(binary, "rb").read())
    data[off + 20 : off + size] = bytes(size - 20)  # abbreviation codes the DIEs use are gone
    path = tmp_path / "abbrev"
    path.write_bytes(bytes(data))
    proc = emit(tmp_path, "-e", f'goret:{path}:main.classify {{ printf("%d\\n", retval); }}', ok=False)
    assert proc.returncode == 1 and "DWARF" in proc.stderr, proc.stderr


def test_fifo_or_foreign_entries_in_the_cache_are_not_opened(go_build, tmp_path):
    binary = go_build("go1.19", "tests/programs/multiret")
    program = PROGRAM.format(b=binary)
    good = emit(tmp_path, "-e", program).stdout
    for folder in ("programs", "binaries"):
        (entry,) = (tmp_path / "gobt" / folder).iterdir()
        entry.unlink()
        os.mkfifo(entry, 0o600)
    started = time.monotonic()
    assert emit(tmp_path, "-e", program).stdout == good  # a FIFO would hang open()
    assert time.monotonic() - started < 30
    # A cache subfolder others can write to is not used.
    shutil.rmtree(tmp_path / "gobt" / "programs")
    os.mkdir(tmp_path / "gobt" / "programs")
    os.chmod(tmp_path / "gobt" / "programs", 0o777)
    assert emit(tmp_path, "-e", program).stdout == good
    assert not list((tmp_path / "gobt" / "programs").iterdir())


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ticking"), line + proc.stderr.read()
    return proc, int(line.split()[1])


def test_pid_probes_the_file_the_process_runs_after_a_deploy(go_build, bpf, tmp_path):
    old = go_build("go1.19", "tests/programs/ticker")
    new = go_build("go1.19", "tests/programs/ticker", gcflags="all=-N -l", tag="-noopt")
    app = tmp_path / "app"
    shutil.copy(old, app)
    proc_a, pid = start([str(app)])
    try:
        # The deploy: a new build renamed over the path while the old runs.
        shutil.copy(new, tmp_path / "app.new")
        os.rename(tmp_path / "app.new", app)
        script = tmp_path / "t.bt"
        script.write_text(
            f'goret:{app}:main.tick {{ @n = count(); printf("hit %d -> %d\\n", goarg(i), retval); }}\n'
            "interval:ms:500 { exit(); }\n")
        proc = gobt(str(script), "-p", str(pid), timeout=60)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        seen = [tuple(map(int, h)) for h in re.findall(r"^hit (\d+) -> (\d+)$", proc.stdout, re.M)]
        assert len(seen) >= 10, proc.stdout + proc.stderr
        assert all(r == 3 * i for i, r in seen)
        # And when the path names no file at all any more.
        os.unlink(app)
        proc = gobt(str(script), "-p", str(pid), timeout=60)
        no_traceback(proc)
        assert proc.returncode == 0, proc.stderr
        assert len(re.findall(r"^hit ", proc.stdout, re.M)) >= 10, proc.stdout + proc.stderr
    finally:
        proc_a.kill()
        proc_a.wait()


ENTRY_PROGRAM = ('goentry:{b}:main.classify {{ printf("%d\\n", goid); }} '
                 'goret:{b}:main.classify {{ printf("%d\\n", goelapsed); }}')


def test_a_resealed_binary_cache_is_checked_not_believed(go_build, tmp_path):
    # Claims a binary's cache can make that today's checks would take on
    # its word: an offset listed as already proven, and runtime.g's layout.
    # Each is resealed with the cache's own seal (write_atomic), as by a
    # gobt bug or the cache's owner; the run must give the fresh program.
    from gobt.cache import read_sealed, write_atomic

    binary = go_build("go1.19", "tests/programs/multiret")
    program = ENTRY_PROGRAM.format(b=binary)
    good = emit(tmp_path, "-e", program).stdout
    assert good == fresh(binary, tmp_path, ENTRY_PROGRAM)
    (entry,) = (tmp_path / "gobt" / "binaries").iterdir()
    clean = json.loads(read_sealed(str(entry)))

    def forged(edit):
        data = json.loads(json.dumps(clean))
        edit(data["tables"])
        write_atomic(str(entry), data)
        shutil.rmtree(tmp_path / "gobt" / "programs")
        return emit(tmp_path, "-e", program).stdout

    def entry_off_by_one(tables):
        code = tables["code"]["main.classify"]
        code[3] += 1  # the entry after the stack check, one byte into an instruction
        row = tables.setdefault("proof", {}).get("main.classify")
        if row:  # and the same offset listed as decoded before
            row[3].setdefault("insn", []).append(code[3])

    assert forged(entry_off_by_one) == good

    def goid_moved(tables):
        tables["goroutine"]["g"][1] += 8  # runtime.g's goid, a field later

    assert forged(goid_moved) == good


def _moved(text, by):
    """An attach point's text with its offset moved by `by` bytes."""
    m = re.search(r'(0x[0-9a-f]+|"\+[0-9]+)$', text)
    if m.group(1).startswith("0x"):
        return text[: m.start()] + hex(int(m.group(1), 16) + by)
    return text[: m.start()] + f'"+{int(m.group(1)[2:]) + by}'


def test_a_resealed_program_cache_is_proven_again(go_build, tmp_path):
    # The warm path reuses a whole program; its entry is resealed with an
    # attach point moved into an instruction, or runtime.g's goid moved, in
    # the program and in whatever the entry keeps to prove it. The run must
    # give the fresh program, not the edited one.
    from gobt.cache import read_sealed, write_atomic

    binary = go_build("go1.19", "tests/programs/multiret")
    program = ENTRY_PROGRAM.format(b=binary)
    good = emit(tmp_path, "-e", program).stdout
    (entry,) = (tmp_path / "gobt" / "programs").iterdir()
    clean = read_sealed(str(entry))
    # goentry's attach point: after the stack check, so not at the start.
    point = re.match(r"(uprobe:\S+?)[ ,]", good).group(1)
    assert re.search(r'(0x[0-9a-f]+|"\+[0-9]+)$', point), point
    goid = re.search(r'uptr\(reg\("r14"\) \+ ([0-9]+)\)\)\)', good).group(1)

    def forged(edit):
        data = json.loads(clean)
        edit(data)
        write_atomic(str(entry), data)
        return emit(tmp_path, "-e", program).stdout

    def into_an_instruction(data):
        moved = _moved(point, 1)
        data["rewritten"]["program"] = data["rewritten"]["program"].replace(point + " ", moved + " ")
        data["rewritten"]["program"] = data["rewritten"]["program"].replace(point + ",", moved + ",")
        for function in data["proofs"]["functions"] if isinstance(data["proofs"], dict) else ():
            for p in function[7]:
                if p[0] == point:
                    p[0], p[1] = moved, p[1] + 1

    def goid_moved(data):
        read = f'uptr(reg("r14") + {goid})'
        data["rewritten"]["program"] = data["rewritten"]["program"].replace(read, f'uptr(reg("r14") + {int(goid) + 8})')
        for row in data["proofs"]["runtime_g"] if isinstance(data["proofs"], dict) else ():
            row[2] += 8

    def function_moved(data):
        # The function said to start a few bytes in: its digest, size and
        # offsets all made to agree, and the entry probe put at a boundary
        # of the instructions decoded from there, which is none in truth.
        from gobt.binary.x86len import boundaries
        from gobt.cache import digest

        for function in data["proofs"]["functions"] if isinstance(data["proofs"], dict) else ():
            path, start, size, _, _, _, address, points = function
            code = open(path, "rb").read()[start : start + size]
            true = boundaries(code, size)
            for skew in range(1, 16):
                wrong = [o for o in boundaries(code[skew:], size) or () if o and o + skew not in true]
                if wrong:
                    wrong = wrong[0]
                    break
            function[1:4] = [start + skew, size - skew, digest(code[skew:])]
            function[6] = address + skew
            for p in function[7]:
                if p[0] == point:
                    text = re.sub(r'(0x[0-9a-f]+|"\+[0-9]+)$', lambda m: hex(start + skew + wrong)
                                  if m.group(1)[0] == "0" else f'"+{wrong}', point)
                    data["rewritten"]["program"] = data["rewritten"]["program"].replace(point, text)
                    p[:] = [text, wrong, False]
                else:
                    p[1] -= skew

    assert forged(into_an_instruction) == good
    assert forged(goid_moved) == good
    assert forged(function_moved) == good
