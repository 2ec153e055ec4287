"""What coreroll puts on the wire in etcd, defined once: every key with its builder and its parser
(`coreroll.wire.keys`), the node status document as one field table (`coreroll.wire.status`), the
command and audit records (`coreroll.wire.records`) and the timestamp format (`coreroll.wire.times`).

No other module spells a key prefix, splits a key or lists the status fields: writers (`coreroll.node`,
`coreroll.host`), readers (`coreroll.watch`), widgets, tests and benchmarks import them from
here; tests/wire/test_no_stray_prefixes.py fails on a prefix string anywhere else, and
tests/wire/test_golden.py pins the bytes locksmith, airlock and older coreroll nodes expect.

Adding a column over a new status field touches two files:
1. coreroll/wire/status.py: a row in `STATUS_FIELDS`, e.g.
   `Field("update.eta", INT, None, 0, "eta")`. The writer then writes it (null until a producer
   passes it: `build_status(..., more={"update.eta": 90})`), the reader checks it by kind (an UNREADABLE row naming
   `update.eta` when it is wrong) into `NodeReport.extra["update.eta"]`, and fixtures carry the
   sample. `NodeRow.field("update.eta")` returns it.
2. widgets/node_columns.py: `field_column("update.eta", priority=5)` in `COLUMNS` (title and
   formatting come from the row's title and kind).
"""
