"""The peers of `make bench`: polars and DuckDB doing wc-host's split-space
count (`text.split(" ")`; an empty or missing field counts as one empty
string) over the same CSV files, with the same number of threads.

    python bench_peers.py ENGINE THREADS OUT.json FILE...

ENGINE: polars (in-memory engine), polars-streaming, or duckdb.

Prints one JSON line as soon as the counts are in memory:
    {"engine": ..., "version": ..., "seconds": S, "distinct": N}
where S is the count alone (CSV parsing included; imports and the write-out
excluded), then writes the counts to OUT.json as one JSON object (key ->
count) for the bench to compare, key by key, with wc-host's, and prints
{"written": true}. The bench times the process too, from its start to the
first line.
"""

import json
import os
import sys
import time


def main():
    engine, threads, out, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    if engine.startswith("polars"):
        # Read once, when polars is imported.
        os.environ["POLARS_MAX_THREADS"] = str(threads)
        import polars as pl

        assert pl.thread_pool_size() == threads, pl.thread_pool_size()
        version = pl.__version__
        started = time.perf_counter()
        lazy = (
            pl.scan_csv(
                files,
                has_header=True,
                separator=",",
                quote_char='"',
                eol_char="\n",
                infer_schema=False,  # every column a string, as the csv crate reads them
                encoding="utf8",
            )
            .select(pl.col("text").fill_null("").str.split(" ").alias("w"))
            .explode("w")
            .group_by("w")
            .len()
        )
        frame = lazy.collect(engine="streaming" if engine == "polars-streaming" else "in-memory")
        seconds = time.perf_counter() - started
        emit({"engine": engine, "version": version, "seconds": seconds, "distinct": frame.height})
        counts = dict(zip(frame["w"].to_list(), frame["len"].to_list()))
    elif engine == "duckdb":
        import duckdb

        version = duckdb.__version__
        con = duckdb.connect()
        con.execute(f"SET threads={threads}")
        con.execute("SET preserve_insertion_order=false")
        file_list = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        # The dialect spelled out (the sniffer only reads the header): RFC 4180 quoting, as the csv
        # crate reads it; quoted fields may hold line breaks (\n and \r\n).
        query = f"""
            CREATE TEMP TABLE counts AS
            SELECT w, count(*) AS n FROM (
                SELECT unnest(string_split(coalesce(text, ''), ' ')) AS w
                FROM read_csv({file_list}, all_varchar=true, header=true, delim=',', quote='"',
                              escape='"', new_line='\\n', strict_mode=true)
            ) GROUP BY w
        """
        started = time.perf_counter()
        con.execute(query)
        seconds = time.perf_counter() - started
        distinct = con.execute("SELECT count(*) FROM counts").fetchone()[0]
        emit({"engine": engine, "version": version, "seconds": seconds, "distinct": distinct})
        counts = dict(con.execute("SELECT w, n FROM counts").fetchall())
    else:
        sys.exit(f"unknown engine {engine}")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(counts, f, ensure_ascii=False)
    emit({"written": True})


def emit(obj):
    print(json.dumps(obj), flush=True)


if __name__ == "__main__":
    main()
