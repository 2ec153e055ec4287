"""The node: A/B USR partitions (gptprio), update engine, reboot manager (locksmithd), update.conf,
and the agent that runs one node. See each module's docstring for its API."""
