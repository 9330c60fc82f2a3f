"""Benchmarks of tierstream: throughput, latency, scale-out, memory, re-scoring, recovery.

`python -m bench` (./dev bench) runs every part and writes bench/results.json;
`--quick` runs each part smaller. Absolute figures are noisy on a shared
machine, so the figures that matter are ratios measured in the same run.
"""
