"""The Go function table wherever the linker put it: PIE, external linking
(cgo), stripped, and Debian's own Go programs (Go 1.19, stripped; `age` is
a PIE whose pclntab has no section of its own)."""

import json
import re
import shutil
import subprocess

import pytest

from conftest import gobt, need, no_traceback

GOS = ["go1.15", "go1.19", "go1.23", "newest"]
MODES = {"exe": {}, "pie": {"buildmode": "pie"}, "cgo": {"cgo": True}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("go", GOS)
def test_scanned_pclntab_agrees_with_symtab(go, mode, go_build):
    # Found without its section name (as in `age`), the table must give
    # every Go function at the address .symtab gives it, and its text start
    # must be Go's own, not .text's (cgo puts C code first).
    from gobt.binary.gobinary import GoBinary
    from gobt.binary.pclnlocate import locate
    from gobt.binary.pclntab import PclnSymbols

    program = "tests/programs/cgocall" if mode == "cgo" else "tests/programs/multiret"
    binary = GoBinary(go_build(go, program, tag=f"-{mode}", **MODES[mode]))
    table = locate(binary, by_section=False)
    pcln = PclnSymbols(table.data, table.text_start, binary.path)
    symtab = {f.start: f.name for f in binary.symbols.all_functions()}
    found = pcln.all_functions()
    assert len(found) > 1000
    for fn in found:
        name = symtab.get(fn.start)
        assert name is not None, fn
        # compiler-made helpers (type..eq.*) are named differently there
        if not name.startswith("type"):
            assert name == fn.name or name == fn.name + ".abi0", (name, fn)
    assert {"main.main", "runtime.main"} <= {f.name for f in found}


@pytest.mark.parametrize("go", GOS)
def test_stripped_pie_is_listed_and_probed(go, go_build, bpf):
    binary = go_build(go, "tests/programs/multiret", ldflags="-s -w", tag="-stripped-pie", buildmode="pie")
    from gobt.binary.gobinary import GoBinary

    b = GoBinary(binary)
    assert b.stripped and not b.has_section(".gopclntab") or go == "newest"
    proc = gobt("-l", f"goret:{binary}:main.*")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r":main\.classify  6 RETs$", proc.stdout, re.M), proc.stdout
    proc = gobt("-e", f"goret:{binary}:main.classify {{ @rets = count(); }} "
                      f"goentry:{binary}:main.classify {{ @entries = count(); }}", "-c", f"{binary} 300")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^@entries: 300$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^@rets: 300$", proc.stdout, re.M), proc.stdout


def debian(name):
    path = shutil.which(name)
    need(path is not None, f"Debian's {name} is not installed (run scripts/setup)")
    return path


def test_debian_age_pclntab_inside_data_rel_ro(bpf, tmp_path):
    from gobt.binary.gobinary import GoBinary

    age = debian("age")
    binary = GoBinary(age)
    assert binary.stripped and not binary.has_section(".gopclntab")
    assert binary.pclntab.vaddr  # found by scanning
    key = tmp_path / "key"
    subprocess.run([debian("age-keygen"), "-o", str(key)], check=True, capture_output=True)
    recipient = re.search(r"age1[0-9a-z]+", key.read_text()).group(0)
    plain = tmp_path / "plain"
    plain.write_text("hello\n")
    proc = gobt("-e", f"goret:{age}:filippo.io/age.Encrypt {{ @enc[goid] = count(); "
                      f"if (retval != 0) {{ @ok = count(); }} @slow = max(goelapsed); }}",
                "-c", f"{age} -r {recipient} -o {tmp_path / 'enc'} {plain}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^@enc\[\d+\]: 1$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^@ok: 1$", proc.stdout, re.M), proc.stdout  # a non-nil *Writer
    assert re.search(r"^@slow: [1-9]\d*$", proc.stdout, re.M), proc.stdout


def test_debian_gron_counts_every_key(bpf, tmp_path):
    # gron asks validIdentifier about every object key; retval says which
    # are bare identifiers.
    gron = debian("gron")
    doc = {"a": 1, "b-c": 2, "d": {"e": [1, 2, {"f g": 3, "h": None}]}, "i j": [{"k": True}]}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    keys = []

    def walk(v):
        if isinstance(v, dict):
            keys.extend(v)
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    valid = sum(1 for k in keys if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", k))
    proc = gobt("-e", f"goret:{gron}:main.validIdentifier {{ @r[retval] = count(); }}", "-c", f"{gron} {path}")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "json.d.e[2][\"f g\"] = 3;" in proc.stdout
    seen = {int(k): int(v) for k, v in re.findall(r"^@r\[(\d+)\]: (\d+)$", proc.stdout, re.M)}
    assert seen == {1: valid, 0: len(keys) - valid}, proc.stdout


def test_debian_fzf_is_listed_and_probed(bpf):
    # fzf pushes each line it reads into its chunk list, once.
    fzf = debian("fzf")
    push = "github.com/junegunn/fzf/src.(*ChunkList).Push"
    proc = gobt("-l", f"goret:{fzf}:github.com/junegunn/fzf/src.(*ChunkList).*")
    no_traceback(proc)
    assert re.search(r":%s  \d+ RETs?$" % re.escape(push), proc.stdout, re.M), proc.stdout
    lines = [f"line{i}" for i in range(400)]
    proc = gobt("-e", f'goret:{fzf}:"{push}" {{ @pushed = count(); @goroutines[goid] = count(); '
                      "@slowest = max(goelapsed); }",
                "-c", f"{fzf} --filter 7", input="\n".join(lines) + "\n")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert set(re.findall(r"^line\d+$", proc.stdout, re.M)) == {x for x in lines if "7" in x}
    assert re.search(r"^@pushed: 400$", proc.stdout, re.M), proc.stdout
    per_goroutine = re.findall(r"^@goroutines\[(\d+)\]: (\d+)$", proc.stdout, re.M)
    assert sum(int(n) for _, n in per_goroutine) == 400 and all(int(g) > 0 for g, _ in per_goroutine)
    assert re.search(r"^@slowest: [1-9]\d*$", proc.stdout, re.M), proc.stdout
