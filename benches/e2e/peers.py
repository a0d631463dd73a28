#!/usr/bin/env python3
"""The peer tools' conversions, one per invocation, written as a user of each tool would.

usage: peers.py TOOL TASK IN... OUT
  TOOL: pandas_c | pandas_pyarrow | pyarrow_stream | polars | duckdb
  TASK: 5311 (kokuhoren CSV: control record first, end record last, no header row, 80 fields)
        generic (header row, 21 fields)
        fwf (the 被保険者台帳 fixed-width file; pandas only; IN is the file, colspecs come from
             the byte ranges of mappings/insured_register_fixed.toml, given as JSON in $FWF_SPECS)
        diff (IN = old.parquet new.parquet; keyed diff on insured_no, history_no)
Every column is read as text (leading zeros kept) and written to zstd Parquet; CP932 input is
decoded by the tool where it can (pandas, pyarrow), or by `iconv` before it (Polars, DuckDB: the
caller passes the UTF-8 file).
"""
import json
import os
import sys


def names(task):
    return [f"f{i}" for i in range(1, 81)] if task == "5311" else None


def pandas_csv(engine, task, src, out):
    import pandas as pd
    kw = dict(encoding="cp932", dtype=str, keep_default_na=False, na_values=[""], engine=engine)
    if task == "5311":
        # Record 1 is the control record (12 fields); the end record has 2: keep kind 2.
        # The end record has 2 fields: the C engine pads it with nulls, pyarrow's must skip it.
        extra = {"on_bad_lines": "skip"} if engine == "pyarrow" else {}
        df = pd.read_csv(src, header=None, names=names(task), skiprows=1, **kw, **extra)
        df = df[df["f1"] == "2"]
    else:
        df = pd.read_csv(src, **kw)
    df.to_parquet(out, compression="zstd", index=False)


def pyarrow_stream(task, src, out):
    import pyarrow as pa
    import pyarrow.csv as pc
    import pyarrow.compute as pcc
    import pyarrow.parquet as pq
    if task == "5311":
        ro = pc.ReadOptions(encoding="cp932", skip_rows=1, column_names=names(task), block_size=1 << 22)
        cols = names(task)
        po = pc.ParseOptions(invalid_row_handler=lambda row: "skip")
    else:
        ro = pc.ReadOptions(encoding="cp932", block_size=1 << 22)
        with open(src, "rb") as f:
            cols = f.readline().decode("cp932").rstrip("\r\n").split(",")
        po = pc.ParseOptions()
    co = pc.ConvertOptions(column_types={c: pa.string() for c in cols}, strings_can_be_null=True)
    reader = pc.open_csv(src, read_options=ro, parse_options=po, convert_options=co)
    writer = None
    for batch in reader:
        if task == "5311":
            batch = batch.filter(pcc.equal(batch.column(0), "2"))
        if writer is None:
            writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
        writer.write_batch(batch)
    if writer is not None:
        writer.close()


def polars_csv(task, src, out):
    import polars as pl
    if task == "5311":
        df = pl.read_csv(src, has_header=False, new_columns=names(task), skip_rows=1, infer_schema=False,
                         truncate_ragged_lines=True)
        df = df.filter(pl.col("f1") == "2")
    else:
        df = pl.read_csv(src, infer_schema=False)
    df.write_parquet(out, compression="zstd")


def duckdb_csv(task, src, out):
    import duckdb
    con = duckdb.connect()
    if task == "5311":
        cols = "{" + ", ".join(f"'f{i}': 'VARCHAR'" for i in range(1, 81)) + "}"
        con.execute(f"COPY (SELECT * FROM read_csv('{src}', header=false, skip=1, null_padding=true, columns={cols}) "
                    f"WHERE f1 = '2') TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    else:
        con.execute(f"COPY (SELECT * FROM read_csv('{src}', header=true, all_varchar=true)) "
                    f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)")


def pandas_fwf(src, out):
    import pandas as pd
    specs = json.loads(os.environ["FWF_SPECS"])
    colspecs = [(s - 1, s - 1 + n) for _, s, n in specs]
    df = pd.read_fwf(src, colspecs=colspecs, names=[c for c, _, _ in specs], encoding="cp932", dtype=str,
                     skiprows=1, skipfooter=1, keep_default_na=False, na_values=[""])
    df = df[df[specs[0][0]] == "2"]
    df.to_parquet(out, compression="zstd", index=False)


DATA = ["name_kana_raw", "name_kana", "name_kanji", "birth_date", "sex", "postal_code", "address", "insured_category",
        "acquisition_date", "acquisition_reason", "loss_date", "loss_reason", "special_address_category",
        "facility_insurer_no", "special_address_from", "special_address_to", "certificate_issue_date"]
KEY = ["insured_no", "history_no"]


def duckdb_diff(old, new, out):
    import duckdb
    con = duckdb.connect()
    h = "hash(" + ", ".join(DATA) + ")"
    k = ", ".join(KEY)
    con.execute(f"""COPY (
        WITH o AS (SELECT {k}, {h} AS h FROM read_parquet('{old}')),
             n AS (SELECT *, {h} AS h FROM read_parquet('{new}'))
        SELECT CASE WHEN o.h IS NULL THEN 'I' WHEN n.h IS NULL THEN 'D' ELSE 'U' END AS op,
               coalesce(n.insured_no, o.insured_no) AS insured_no, coalesce(n.history_no, o.history_no) AS history_no,
               {", ".join("n." + c for c in DATA)}
        FROM o FULL OUTER JOIN n USING ({k}) WHERE o.h IS DISTINCT FROM n.h
    ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)""")


def polars_diff(old, new, out):
    import polars as pl
    o = pl.scan_parquet(old).select(KEY + [pl.struct(DATA).hash().alias("h")])
    n = pl.scan_parquet(new).select(KEY + DATA + [pl.struct(DATA).hash().alias("h")])
    j = o.join(n, on=KEY, how="full", coalesce=True, suffix="_new")
    j = j.filter(pl.col("h").ne_missing(pl.col("h_new")))
    j = j.with_columns(pl.when(pl.col("h").is_null()).then(pl.lit("I")).when(pl.col("h_new").is_null()).then(pl.lit("D"))
                       .otherwise(pl.lit("U")).alias("op"))
    j.select(["op"] + KEY + DATA).sink_parquet(out, compression="zstd")


def main():
    tool, task, *paths = sys.argv[1:]
    if task == "diff":
        {"duckdb": duckdb_diff, "polars": polars_diff}[tool](*paths)
    elif task == "fwf":
        pandas_fwf(*paths)
    elif tool in ("pandas_c", "pandas_pyarrow"):
        pandas_csv({"pandas_c": "c", "pandas_pyarrow": "pyarrow"}[tool], task, *paths)
    elif tool == "pyarrow_stream":
        pyarrow_stream(task, *paths)
    elif tool == "polars":
        polars_csv(task, *paths)
    elif tool == "duckdb":
        duckdb_csv(task, *paths)
    else:
        sys.exit(f"unknown tool {tool}")


if __name__ == "__main__":
    main()
