"""Omaha v3 as CoreOS/Flatcar update_engine speaks it.

- ``coreroll.omaha.codes``: event types/results, update_engine error codes, instance and update statuses.
- ``coreroll.omaha.protocol``: hardened request parsing and response building (server side), and the
  update_engine-exact request builder and response parser (client side).
- ``coreroll.omaha.payload``: the signed payload container, keys, and hashes of opaque payloads.
"""
