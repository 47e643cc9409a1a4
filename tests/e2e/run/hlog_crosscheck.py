"""Read a chatcap histograms.hlog with the Python HdrHistogram package (`hdrhistogram`,
module `hdrh`) and print, per tag, the intervals' merged count and percentiles as JSON.

The e2e test tests/e2e/run/hlog.rs compares these with chatcap's own figures: another
implementation reads the interval log and gets the same numbers.

Usage: python3 hlog_crosscheck.py HISTOGRAMS.HLOG
"""

import json
import math
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

# chatcap records 1 µs .. 60 s with 3 significant digits.
LOWEST, HIGHEST, DIGITS = 1, 60_000_000, 3


def at_rank(h, q):
    """The value at quantile q as HdrHistogram's Rust and Java implementations define it:
    the highest value equivalent to the first recorded value whose cumulative count
    reaches ceil(q x total), at least 1. (The package's own get_value_at_percentile
    rounds the rank to the nearest count instead; both are printed.)"""
    rank = max(1, math.ceil(q * h.get_total_count()))
    seen = 0
    for item in h.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= rank:
            return h.get_highest_equivalent_value(item.value_iterated_to)
    return 0


def intervals(path):
    """Each interval of the log, with its start in seconds after the log's base time."""
    reader = HistogramLogReader(path, HdrHistogram(LOWEST, HIGHEST, DIGITS))
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            return
        yield h, h.get_start_time_stamp() / 1000.0 - reader.base_time_sec


def main(path):
    merged = {}
    for h, _ in intervals(path):
        total = merged.setdefault(h.get_tag(), HdrHistogram(LOWEST, HIGHEST, DIGITS))
        total.add(h)
    out = {}
    for tag, h in sorted(merged.items()):
        out[tag] = {
            "count": h.get_total_count(),
            "p50_us": at_rank(h, 0.5),
            "p90_us": at_rank(h, 0.9),
            "p99_us": at_rank(h, 0.99),
            "p999_us": at_rank(h, 0.999),
            "max_us": h.get_max_value(),
            "package_percentiles_us": {
                str(p): h.get_value_at_percentile(p) for p in (50.0, 90.0, 99.0, 99.9)
            },
        }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
