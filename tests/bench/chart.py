#!/usr/bin/env python3
"""Draws the benchmark's main table (bench --json) as an SVG bar chart: records per second
of each system on a log scale, the same workload for all, each bar labelled with its rate
and its ratio to sluice. No plotting library: the SVG is written by hand.

    tests/bench/chart.py bench.json chart.svg
"""
import json
import math
import sys
from xml.sax.saxutils import escape

doc = json.load(open(sys.argv[1]))
runs = [r for r in doc["runs"] if r["records_per_s"] > 0]
sluice = next(r["records_per_s"] for r in runs if r["name"].startswith("sluice"))
W, bar_h, gap, left, right, top = 860, 34, 14, 270, 180, 70
H = top + len(runs) * (bar_h + gap) + 50
lo = 10 ** math.floor(math.log10(min(r["records_per_s"] for r in runs)))
hi = 10 ** math.ceil(math.log10(max(r["records_per_s"] for r in runs)))
span = W - left - right


def x(v):
    return left + span * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))


out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
       'font-family="sans-serif" font-size="13">' % (W, H),
       '<rect width="100%" height="100%" fill="white"/>',
       '<text x="20" y="28" font-size="16" font-weight="bold">%s</text>' % (
           escape("%s Avro page views, count + sum + avg by page (%s pages)" % (
               format(doc["records"], ","), format(doc["pages"], ",")))),
       '<text x="20" y="48" fill="#555">records per second, log scale; every output checked '
       'exact</text>']
d = lo
while d <= hi:
    out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (
        x(d), top - 6, x(d), H - 40))
    out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>' % (
        x(d), H - 22, format(int(d), ",")))
    d *= 10
for i, r in enumerate(runs):
    y = top + i * (bar_h + gap)
    colour = "#2a7" if r["name"].startswith("sluice") else "#999" if r["name"].startswith(
        "raw") else "#58b"
    rate = r["records_per_s"]
    out.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (
        left - 10, y + bar_h * 0.65, escape(r["name"].split(" (")[0])))
    out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (
        left, y, max(x(rate) - left, 1), bar_h, colour))
    label = "%s/s" % format(int(rate), ",")
    if not r["name"].startswith(("sluice", "raw")):
        label += "  (sluice %.1fx)" % (doc.get("sluice_median", sluice) / rate)
    out.append('<text x="%.1f" y="%d">%s</text>' % (x(rate) + 8, y + bar_h * 0.65,
                                                     escape(label)))
out.append("</svg>")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
