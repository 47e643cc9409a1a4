"""A soak run's figures per window (default 5 minutes), and its growth once warm: what
docs/BENCHMARKS.md ("Soak") quotes for `chatcap run scenarios/soak.toml`.

Per window: the chat server's peak RSS and open descriptors, the database's size at the
window's end (resources.csv), posts and deliveries (timeline.csv), and post->ack and
delivery p99 over the whole window (histograms.hlog, merged with the Python HdrHistogram
package that scripts/test installs into target/py-venv).

Usage: target/py-venv/bin/python scripts/soak-table.py RESULTS [--window SECONDS] [--warm SECONDS]
"""

import argparse
import csv
import math
import os
import sys

from hdrh.histogram import HdrHistogram

# The percentile as chatcap computes it, and its histogram bounds: shared with the
# cross-check of tests/e2e/run/hlog.rs.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e", "run"))
from hlog_crosscheck import DIGITS, HIGHEST, LOWEST, at_rank, intervals  # noqa: E402


def windows_of_hlog(path, window, tags):
    """{tag: {window index: merged histogram}} of the interval log."""
    out = {t: {} for t in tags}
    for h, start in intervals(path):
        if h.get_tag() in out:
            w = int(start // window)
            merged = out[h.get_tag()].setdefault(w, HdrHistogram(LOWEST, HIGHEST, DIGITS))
            merged.add(h)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--window", type=float, default=300.0)
    ap.add_argument("--warm", type=float, default=600.0, help="seconds after which growth is judged")
    ap.add_argument("--process", default="server")
    a = ap.parse_args()
    rows = {}
    with open(os.path.join(a.results, "resources.csv")) as f:
        for r in csv.DictReader(f):
            if r["process"] != a.process:
                continue
            w = int(float(r["t_s"]) // a.window)
            x = rows.setdefault(w, {"rss": 0, "fds": 0, "db": 0, "t": 0.0})
            x["rss"] = max(x["rss"], int(r["rss_bytes"]))
            x["fds"] = max(x["fds"], int(r["fds"]))
            if float(r["t_s"]) >= x["t"]:
                x["t"], x["db"] = float(r["t_s"]), int(r["db_bytes"])
    with open(os.path.join(a.results, "timeline.csv")) as f:
        for r in csv.DictReader(f):
            w = int(float(r["t_s"]) // a.window)
            x = rows.setdefault(w, {"rss": 0, "fds": 0, "db": 0, "t": 0.0})
            x["users"] = int(r["users"])
            x["posts"] = x.get("posts", 0) + int(r["posts"])
            x["deliveries"] = x.get("deliveries", 0) + int(r["deliveries"])
    hist = windows_of_hlog(
        os.path.join(a.results, "histograms.hlog"),
        a.window,
        ["post_ack.response", "delivery.response"],
    )
    mib = 1024 * 1024
    print(f"| minutes | users | posts | deliveries | {a.process} RSS MiB | fds | database MiB | post->ack p99 ms | delivery p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for w in sorted(rows):
        x = rows[w]
        p = hist["post_ack.response"].get(w)
        d = hist["delivery.response"].get(w)
        fmt = lambda h: f"{at_rank(h, 0.99) / 1000:.1f}" if h else "-"
        lo, hi = w * a.window / 60, (w + 1) * a.window / 60
        print(
            f"| {lo:.0f}-{hi:.0f} | {x.get('users', 0):,} | {x.get('posts', 0):,} | "
            f"{x.get('deliveries', 0):,} | {x['rss'] / mib:.1f} | {x['fds']} | "
            f"{x['db'] / mib:.1f} | {fmt(p)} | {fmt(d)} |"
        )
    warm = [w for w in sorted(rows) if w * a.window >= a.warm]
    full = [w for w in warm if rows[w].get("posts")]
    if len(full) < 2:
        sys.exit("not enough windows after --warm to judge growth")
    first, last = rows[full[0]], rows[full[-1]]
    posts = sum(rows[w].get("posts", 0) for w in full[1:])
    print()
    print(f"once warm ({a.warm / 60:.0f} min on), first full window to last:")
    print(f"  RSS {first['rss'] / mib:.1f} -> {last['rss'] / mib:.1f} MiB ({(last['rss'] / first['rss'] - 1) * 100:+.1f} %)")
    print(f"  descriptors {first['fds']} -> {last['fds']} ({last['fds'] - first['fds']:+d})")
    if posts:
        print(f"  database +{(last['db'] - first['db']) / mib:.1f} MiB for {posts:,} posts ({(last['db'] - first['db']) / posts:.0f} bytes per post)")


if __name__ == "__main__":
    main()
