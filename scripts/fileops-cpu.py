#!/usr/bin/env python3
"""The load generator's CPU per file operation of results folders of scenarios/bench/file-ops.toml
(docs/BENCHMARKS.md, "File operations: hyper's client"): usage: scripts/fileops-cpu.py DIR..."""
import json, sys
for d in sys.argv[1:]:
    s = json.load(open(d + '/summary.json'))
    ops = s['operations']['file_upload']['count'] + s['operations']['file_download']['count']
    g = s['resources']['generator']
    cpu_s = g['cpu_avg_pct'] / 100 * s['duration_s']
    print(f"{d}: {ops} file ops, generator {cpu_s:.2f} CPU-s = {1e3*cpu_s/ops:.3f} ms per op, RSS max {g['rss_max_bytes']/2**20:.1f} MiB")
