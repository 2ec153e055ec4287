"""`coreroll report`: the node side for real Flatcar hosts (update_engine + locksmithd, no Python
on the host). It reads the machine as it is (files under a root directory, update_engine over
D-Bus, `cgpt show`), publishes the same status document and alive lease as the simulated agent,
and runs the dashboard's queued commands with the real tools. It never reboots: locksmithd does.
"""
