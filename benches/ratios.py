#!/usr/bin/env python3
"""Prints the `limit` bench's medians and Warden's ratio to the hand-written
baseline, from criterion's last run (target/criterion, or $CARGO_TARGET_DIR/criterion).

Run after `cargo bench -p warden-benches --bench limit`."""
import json, os, pathlib

root = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"

def median(group, bench):
    f = root / group / bench / "new" / "estimates.json"
    return json.loads(f.read_text())["median"]["point_estimate"] if f.exists() else None

def fmt(ns):
    return "-" if ns is None else (f"{ns:.1f} ns" if ns < 1000 else f"{ns / 1000:.2f} µs")

print("| set | input | hand-written | Warden | ratio |")
print("|---|---|---:|---:|---:|")
# Warden from a prebuilt input two ways: a serde_json::Value (read on each
# decision) and a request already read against the policy (Policy::read),
# both against the baseline's typed struct.
for group in ["limit_default", "limit_shaped_2", "limit_shaped_100", "limit_shaped_1000", "limit_shaped_10000"]:
    for kind, base, ours in [("prebuilt Value", "prebuilt", "prebuilt"), ("prebuilt, read", "prebuilt", "read"), ("JSON text", "json", "json")]:
        h, w = median(group, f"handwritten_{base}"), median(group, f"warden_{ours}")
        ratio = "-" if not (h and w) else f"{w / h:.1f}×"
        print(f"| {group.removeprefix('limit_')} | {kind} | {fmt(h)} | {fmt(w)} | {ratio} |")
