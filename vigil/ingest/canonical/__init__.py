"""Mapping each protocol's native series to Vigil's canonical metrics.

Every agent's data is stored under its native names (`node_cpu_seconds_total`,
`cpu.usage_idle`, collectd's `cpu/...`), and each protocol has a module here
with one pure function, `derive(items, lookup) -> items`, that returns the
canonical series (`cpu_usage_percent`, `filesystem_used_percent{mountpoint}`,
...; see the design contract) computed from them. The writer calls it after
counters have become per-second rates, inside the same transaction, so that
`lookup` also sees the samples just written (for protocols such as collectd
that send related values in separate requests).
"""
