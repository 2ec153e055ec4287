"""The fleet simulator: many node agents in one process with a shared scaled clock and fault
injection (`coreroll.fleet.sim.Fleet`), the scenarios that shape them (`coreroll.fleet.scenario`),
and the reboot-lock safety checks over etcd's history (`coreroll.fleet.history`)."""
