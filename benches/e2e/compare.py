#!/usr/bin/env python3
"""End-to-end comparison of kiban with the tools a municipality could use instead.

Run by `benches/e2e/run` (which installs the peers and builds kiban); see benches/e2e/README.md.
Every command is a separate process run under GNU time: CPU time (user + system, children
included) and peak RSS (the largest of the process and the children it waited for); its wall
time is the shell's `time` of the command, in milliseconds.
After each comparison the outputs are checked to hold the same data: row counts and, per
column, an order-independent digest (DuckDB's hash of the canonical text of each value, summed)
of the columns every tool produced. kiban stores dates as dates and a few codes normalised; the
canonical text undoes that (YYYYMMDD, 99999999 for an open end), so equal digests mean equal
values.

usage: compare.py KIBAN WORKDIR [--rows N] [--sections csv,fwf,diff,rss,full]
"""
import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable
INSURER = "141309"
# Runs per tool of the diff section (the median is reported).
DIFF_RUNS = 7


class Result:
    def __init__(self, tool, wall, cpu, rss_kb, rc, note=""):
        self.tool, self.wall, self.cpu, self.rss_kb, self.rc, self.note = tool, wall, cpu, rss_kb, rc, note


def measure(tool, cmd, env=None, log=None):
    """Runs `cmd` (a shell command line) under GNU time: CPU (user + system of the shell and
    everything it waited for) and peak RSS (the largest of them). Not wait4 from here: a child
    forked from this Python process would start with its resident pages counted. Wall time is
    the shell's `time` of `cmd` alone, in milliseconds (GNU time's is in hundredths, ±3 % of a
    ratio for a 0.15 s diff, and counts the shell's start)."""
    stats = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"kiban-e2e-time-{os.getpid()}")
    wall = stats + ".wall"
    with open(log or os.devnull, "ab") as out:
        out.write(f"\n$ {cmd}\n".encode())
        out.flush()
        # The command's stderr goes on to the log (fd 3); only `time`'s line goes to `wall`.
        timed = f"TIMEFORMAT=%3R; {{ time {{ {cmd} ; }} 2>&3 ; }} 3>&2 2> {wall}"
        p = subprocess.run(["/usr/bin/time", "-o", stats, "-f", "%e %U %S %M", "bash", "-c", timed],
                           stdout=out, stderr=out, env={**os.environ, **(env or {})})
    with open(stats) as f:
        last = f.read().strip().splitlines()[-1].split()
    user, system, rss = float(last[1]), float(last[2]), int(last[3])
    with open(wall) as f:
        elapsed = float(f.read().split()[-1])
    return Result(tool, elapsed, user + system, rss, p.returncode)


def measure_interleaved(specs, times, log=None):
    """Each (tool, setup, cmd) of `specs` `times` times, the tools taking turns round by round, so
    a drift of the machine's speed falls on every tool alike; `setup` (removing the last run's
    output) runs before each run, untimed. For sub-second commands, where one run is at the mercy
    of the machine's noise. Per tool, the run of median wall time (its CPU and RSS with it)."""
    runs = {tool: [] for tool, _, _ in specs}
    for _ in range(times):
        for tool, setup, cmd in specs:
            sh(setup)
            runs[tool].append(measure(tool, cmd, log=log))
    out = []
    for tool, _, _ in specs:
        rs = sorted(runs[tool], key=lambda r: r.wall)
        failed = [r for r in rs if r.rc != 0]
        out.append(failed[0] if failed else rs[len(rs) // 2])
    return out


def sh(cmd):
    subprocess.run(["bash", "-c", cmd], check=True)


def duck():
    import duckdb
    return duckdb.connect()


# ----------------------------------------------------------------------------- digests

def mapping_fields(name):
    """field number, type, date format, ends_period of every field of a mapping, by field name."""
    path = name if name.endswith(".toml") else os.path.join(ROOT, "mappings", name + ".toml")
    with open(path, "rb") as f:
        m = tomllib.load(f)
    return m, {x["name"]: x for x in m["fields"]}


def canon_peer(col, field):
    """SQL for the canonical text of a peer's column (all text as read from the file)."""
    v = f"NULLIF(\"{col}\", '')"
    if field.get("type") == "int":
        return f"CAST(TRY_CAST(trim({v}) AS BIGINT) AS VARCHAR)"
    # kiban reads an all-zero date as none, and 99999999 as an open end where the field ends a period.
    if field.get("type") == "date" and field.get("ends_period"):
        return f"NULLIF(NULLIF({v}, '00000000'), '99999999')"
    if field.get("type") == "date":
        return f"NULLIF({v}, '00000000')"
    return v


def canon_kiban(col, field):
    if field.get("type") == "date":
        return f"strftime(\"{col}\", '%Y%m%d')"
    return f"CAST(\"{col}\" AS VARCHAR)"


def digests(con, source, columns):
    """rows and {name: (non-null count, hash sum)} of `columns` = [(name, sql)] over `source`."""
    sel = ", ".join(f"count({sql}), sum(hash({sql}))::HUGEINT" for _, sql in columns)
    row = con.execute(f"SELECT count(*), {sel} FROM {source}").fetchone()
    return row[0], {name: (row[1 + 2 * i], row[2 + 2 * i]) for i, (name, _) in enumerate(columns)}


def compare_digests(ref, other):
    """Names of the columns whose digests differ (and 'rows' when the counts do)."""
    bad = [] if ref[0] == other[0] else [f"rows {other[0]} ≠ {ref[0]}"]
    bad += [k for k in ref[1] if ref[1][k] != other[1].get(k)]
    return bad


# ----------------------------------------------------------------------------- jobs

def write_job(path, store, sources, platform=None):
    lines = ['name = "e2e"', f'insurer_no = "{INSURER}"', f'store = "{store}"', 'on_file_error = "fail_load"']
    for p, m in sources:
        lines += ["", "[[sources]]", f'path = "{p}"', f'mapping = "{m}"']
    if platform:
        lines += ["", "[platform]"] + [f'{k} = "{v}"' for k, v in platform.items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def kiban_run(kiban, work, name, sources, platform=None):
    store = os.path.join(work, "stores", name)
    sh(f"rm -rf {shlex.quote(store)}")
    job = os.path.join(work, f"job-{name}.toml")
    write_job(job, store, sources, platform)
    return f"{shlex.quote(kiban)} run {shlex.quote(job)}", store


def set_files(store, rset, version=1):
    return f"read_parquet('{store}/{rset}/insurer_no={INSURER}/version={version}/*.parquet')"


# ----------------------------------------------------------------------------- sections

def section_csv(args, table, checks):
    kiban, work = args.kiban, args.work
    inputs = {
        "5311": (args.f5311, "kokuhoren_5311", "recipient"),
        "generic": (args.generic, os.path.join(HERE, "generic_register_csv.toml"), "insured_person"),
    }
    for task, (src, mapping, rset) in inputs.items():
        size = os.path.getsize(src)
        log = os.path.join(work, f"log-{task}.txt")
        out = os.path.join(work, "out", task)
        sh(f"rm -rf {out} && mkdir -p {out}")
        utf8 = os.path.join(out, "utf8.csv")
        results = [
            measure("cat (floor)", f"cat {src} > /dev/null", log=log),
            measure("iconv (floor)", f"iconv -f CP932 -t UTF-8 {src} > {out}/iconv.csv", log=log),
        ]
        peers = [
            ("pandas (C engine)", f"{PY} {HERE}/peers.py pandas_c {task} {src} {out}/pandas_c.parquet"),
            ("pandas (pyarrow engine)", f"{PY} {HERE}/peers.py pandas_pyarrow {task} {src} {out}/pandas_pyarrow.parquet"),
            ("pyarrow streaming CSV", f"{PY} {HERE}/peers.py pyarrow_stream {task} {src} {out}/pyarrow_stream.parquet"),
            ("Polars after iconv", f"iconv -f CP932 -t UTF-8 {src} > {utf8} && {PY} {HERE}/peers.py polars {task} {utf8} {out}/polars.parquet"),
            ("DuckDB after iconv", f"iconv -f CP932 -t UTF-8 {src} > {utf8} && {PY} {HERE}/peers.py duckdb {task} {utf8} {out}/duckdb.parquet"),
        ]
        for tool, cmd in peers:
            results.append(measure(tool, cmd, log=log))
        cmd, store = kiban_run(kiban, work, f"csv-{task}", [(src, mapping)])
        k = measure("kiban (validated, all sets)", cmd, log=log)
        results.append(k)
        table.append((f"CP932 CSV → zstd Parquet: {task} ({size / 1e6:.0f} MB)", results, k))

        # Same data? The peers' columns that kiban stores, canonicalised.
        m, fields = mapping_fields(mapping)
        out_cols = next(o for o in m["outputs"] if o["record_set"] == rset)["columns"]
        pairs = [(col, fields[src_f]) for col, src_f in out_cols.items() if isinstance(src_f, str) and col != "insurer_no"]
        con = duck()
        ref = digests(con, set_files(store, rset), [(c, canon_kiban(c, f)) for c, f in pairs])
        for tool, fname in [("pandas (C engine)", "pandas_c"), ("pandas (pyarrow engine)", "pandas_pyarrow"),
                            ("pyarrow streaming CSV", "pyarrow_stream"), ("Polars after iconv", "polars"),
                            ("DuckDB after iconv", "duckdb")]:
            path = f"{out}/{fname}.parquet"
            if not os.path.exists(path):
                checks.append((task, tool, "no output"))
                continue
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
            cols = [(c, canon_peer(names[f["field"] - 1], f)) for c, f in pairs]
            bad = compare_digests(ref, digests(con, f"read_parquet('{path}')", cols))
            checks.append((task, tool, "same rows and column digests as kiban" if not bad else "DIFFERENT: " + ", ".join(bad)))


def section_fwf(args, table, checks):
    kiban, work, src = args.kiban, args.work, args.register
    m, fields = mapping_fields("insured_register_fixed")
    specs = [(f["name"], f["bytes"][0], f["bytes"][1]) for f in m["fields"]]
    out = os.path.join(work, "out", "fwf")
    sh(f"rm -rf {out} && mkdir -p {out}")
    log = os.path.join(work, "log-fwf.txt")
    results = [measure("cat (floor)", f"cat {src} > /dev/null", log=log)]
    results.append(measure("pandas read_fwf", f"{PY} {HERE}/peers.py pandas fwf {src} {out}/pandas_fwf.parquet",
                           env={"FWF_SPECS": json.dumps(specs)}, log=log))
    cmd, store = kiban_run(kiban, work, "fwf", [(src, "insured_register_fixed")])
    k = measure("kiban (validated, 和暦 → dates)", cmd, log=log)
    results.append(k)
    table.append((f"fixed-width CP932 → zstd Parquet ({os.path.getsize(src) / 1e6:.0f} MB)", results, k))
    # Text columns only: pandas leaves 和暦 dates as text. pad = space/zenkaku trimmed by both.
    con = duck()
    outputs = next(o for o in m["outputs"] if o["record_set"] == "insured_person")["columns"]
    texts = [(col, src_f) for col, src_f in outputs.items()
             if isinstance(src_f, str) and fields[src_f].get("type") == "text" and col != "insurer_no"]
    ref = digests(con, set_files(store, "insured_person"), [(col, f"CAST(\"{col}\" AS VARCHAR)") for col, _ in texts])
    got = digests(con, f"read_parquet('{out}/pandas_fwf.parquet')", [(col, f"NULLIF(\"{f}\", '')") for col, f in texts])
    bad = compare_digests(ref, got)
    checks.append(("fwf", "pandas read_fwf", "same text columns as kiban" if not bad else
                   "WRONG output (read_fwf counts characters, the layout counts bytes): columns " + ", ".join(bad)))


def section_diff(args, table, checks):
    kiban, work = args.kiban, args.work
    log = os.path.join(work, "log-diff.txt")
    store = os.path.join(work, "stores", "diff")
    sh(f"rm -rf {store}")
    job1, job2 = os.path.join(work, "job-diff-1.toml"), os.path.join(work, "job-diff-2.toml")
    mapping = os.path.join(HERE, "generic_register_csv.toml")
    write_job(job1, store, [(args.generic, mapping)])
    write_job(job2, store, [(args.generic_v2, mapping)])
    # Two loads: version 1, then version 2 (the run diffs it too; the diff is timed alone below).
    for job in (job1, job2):
        r = measure("kiban run", f"{kiban} run {job}", log=log)
        if r.rc != 0:
            raise SystemExit(f"kiban run {job} failed (rc {r.rc}); see {log}")
    out = os.path.join(work, "out", "diff")
    sh(f"rm -rf {out} && mkdir -p {out}")
    old, new = set_files(store, "insured_person", 1), set_files(store, "insured_person", 2)
    old_glob = f"{store}/insured_person/insurer_no={INSURER}/version=1/*.parquet"
    new_glob = f"{store}/insured_person/insurer_no={INSURER}/version=2/*.parquet"
    # Each diff takes well under a second: every tool runs DIFF_RUNS times, the tools taking
    # turns, and the median counts; the last run's output is removed before a run, untimed.
    results = measure_interleaved([
        ("DuckDB keyed diff", f"rm -f {out}/duckdb.parquet", f"{PY} {HERE}/peers.py duckdb diff '{old_glob}' '{new_glob}' {out}/duckdb.parquet"),
        ("Polars keyed diff", f"rm -f {out}/polars.parquet", f"{PY} {HERE}/peers.py polars diff '{old_glob}' '{new_glob}' {out}/polars.parquet"),
        ("kiban diff", f"rm -rf {out}/kiban", f"{kiban} diff --store {store} --from 1 --to 2 --set insured_person --out {out}/kiban"),
    ], DIFF_RUNS, log=log)
    k = results[-1]
    con = duck()
    rows = con.execute(f"SELECT count(*) FROM {new}").fetchone()[0]
    table.append((f"diff of {rows / 1e6:.1f}M rows, 1 % changed (insured_person v1 → v2), median of {DIFF_RUNS} runs", results, k))
    ref = con.execute(f"SELECT op, count(*), sum(hash(insured_no, history_no))::HUGEINT FROM read_parquet('{out}/kiban/insured_person.parquet') "
                      "GROUP BY op ORDER BY op").fetchall()
    ref = {r[0][0].upper(): (r[1], r[2]) for r in ref}
    for tool, f in [("DuckDB keyed diff", "duckdb"), ("Polars keyed diff", "polars")]:
        got = con.execute(f"SELECT op, count(*), sum(hash(insured_no, history_no))::HUGEINT FROM read_parquet('{out}/{f}.parquet') "
                          "GROUP BY op ORDER BY op").fetchall()
        got = {r[0]: (r[1], r[2]) for r in got}
        checks.append(("diff", tool, f"same changes as kiban {ref}" if got == ref else f"DIFFERENT: {got} vs kiban {ref}"))


def section_rss(args, table, checks):
    kiban, work = args.kiban, args.work
    log = os.path.join(work, "log-rss.txt")
    mapping = os.path.join(HERE, "generic_register_csv.toml")
    results = []
    for label, src in [("1×", args.generic), ("10×", args.generic_10x)]:
        cmd, _ = kiban_run(kiban, work, f"rss-{label}", [(src, mapping)])
        r = measure(f"kiban, generic {label} ({os.path.getsize(src) / 1e6:.0f} MB)", cmd, log=log)
        results.append(r)
    table.append(("peak RSS as the input grows (CSV → validated Parquet)", results, None))


def section_full(args, table, checks):
    kiban, work, sample = args.kiban, args.work, args.full_sample
    log = os.path.join(work, "log-full.txt")
    certs = os.path.join(work, "certs")
    sh(f"{kiban} certs demo --out {certs} > /dev/null")
    platform_cfg = os.path.join(work, "platform.toml")
    sh(f"rm -f {work}/platform.sqlite*")
    with open(platform_cfg, "w") as f:
        f.write(f'listen = "127.0.0.1:18543"\ndatabase = "{work}/platform.sqlite"\ncertificate = "{certs}/server.pem"\n'
                f'key = "{certs}/server.key"\nclient_ca = "{certs}/ca.pem"\n')
    with open(os.path.join(sample, "job.toml"), "rb") as f:
        job = tomllib.load(f)
    sources = [(os.path.join(sample, s["path"]), s["mapping"]) for s in job["sources"]]
    platform = {"url": "https://localhost:18543", "ca": f"{certs}/ca.pem", "certificate": f"{certs}/terminal-{INSURER}.pem",
                "key": f"{certs}/terminal-{INSURER}.key", "serve": platform_cfg}
    cmd, _ = kiban_run(kiban, work, "full", sources, platform)
    # The job file lives in WORK; sample paths are absolute.
    r = measure("kiban run (ingest → receipt)", cmd, log=log)
    size = sum(os.path.getsize(f) for p, _ in sources for f in glob.glob(p))
    table.append((f"full initial load, {args.persons / 1e6:g}M persons, all record sets, ingest → platform receipt ({size / 1e6:.0f} MB)", [r], None))


# ----------------------------------------------------------------------------- output

def fmt_table(table, checks):
    lines = []
    for title, results, k in table:
        lines += [f"\n### {title}\n", "| tool | wall s | CPU s | peak RSS MB | kiban faster by | exit |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in results:
            ratio = "" if k is None or r is k else f"{r.wall / k.wall:.2f}×"
            lines.append(f"| {r.tool} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_kb / 1024:.0f} | {ratio} | {r.rc} |")
    lines += ["\n### Same data?\n", "| input | tool | check |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in checks]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kiban")
    ap.add_argument("work")
    ap.add_argument("--f5311", required=True)
    ap.add_argument("--generic", required=True)
    ap.add_argument("--generic-v2", required=True)
    ap.add_argument("--generic-10x")
    ap.add_argument("--register", required=True)
    ap.add_argument("--full-sample", required=True)
    ap.add_argument("--persons", type=int, default=1_000_000, help="persons of --full-sample")
    ap.add_argument("--sections", default="csv,fwf,diff,rss,full")
    args = ap.parse_args()
    table, checks = [], []
    for s in args.sections.split(","):
        print(f"== {s}", file=sys.stderr, flush=True)
        {"csv": section_csv, "fwf": section_fwf, "diff": section_diff, "rss": section_rss, "full": section_full}[s](args, table, checks)
    text = fmt_table(table, checks)
    print(text)
    with open(os.path.join(args.work, "results.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
