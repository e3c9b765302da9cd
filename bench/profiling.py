"""Where a cold gobt spends its time: cProfile and -X importtime, one run each.
(Not named profile.py: that would shadow the standard library's profile,
which cProfile imports, for every script in bench/.)"""

import json
import os
import re
import tempfile

from common import Run, gobt_env, python_cmd


PROFILE = r"""
import cProfile, json, os, pstats, sys
sys.argv = ["gobt"] + json.loads(os.environ["BENCH_ARGS"])
prof = cProfile.Profile()
prof.enable()
try:
    from gobt.cli import main
    main()
except SystemExit:
    pass
prof.disable()
st = pstats.Stats(prof)
rows = []
for (path, line, func), (cc, nc, tt, ct, callers) in st.stats.items():
    rows.append({"where": f"{os.path.basename(path)}:{line}({func})", "ncalls": nc, "tottime": tt, "cumtime": ct})
json.dump(rows, open(os.environ["BENCH_OUT"], "w"))
"""


def bench_profile(python, args, tmp, top=15):
    """Where gobt's cold time goes: cProfile and -X importtime, one run each."""
    if not python:
        return None
    out = os.path.join(tmp, "profile.json")
    env = gobt_env(tempfile.mkdtemp(prefix="prof-", dir=tmp))
    env.update(BENCH_ARGS=json.dumps(["--no-cache", *args]), BENCH_OUT=out)
    r = Run(python_cmd(python, PROFILE), env=env, timeout=600)
    if r.rc != 0 or not os.path.exists(out):
        return {"error": r.text("err")[-2000:]}
    with open(out) as f:
        rows = json.load(f)
    wrappers = ("core.py:", "<frozen", "__main__.py", "cli.py:", "<string>", "~:0(<built-in method builtins.exec>)")
    by_cum = sorted((x for x in rows if not x["where"].startswith(wrappers)), key=lambda x: -x["cumtime"])[:top]
    by_tot = sorted(rows, key=lambda x: -x["tottime"])[:top]
    imp = Run(python_cmd(python, "import gobt.cli", flags=["-X", "importtime"]), env=env)
    modules = []
    for line in imp.text("err").splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            modules.append({"module": m.group(4), "self_us": int(m.group(1)), "cumulative_us": int(m.group(2)),
                            "depth": len(m.group(3)) // 2})
    top_imports = sorted([m for m in modules if m["depth"] <= 1], key=lambda x: -x["cumulative_us"])[:10]
    return {"args": args, "wall_s": r.wall, "by_cumtime": by_cum, "by_tottime": by_tot,
            "import_total_us": sum(m["cumulative_us"] for m in modules if m["depth"] == 0),
            "top_imports": top_imports}
