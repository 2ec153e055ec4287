"""coreroll: CoreOS-style automatic updates with a live dashboard."""

import os

# gRPC's C core logs TLS handshake failures to stderr by itself, and reads this once, when grpc is
# first imported; every coreroll module imports this package first, so set it here: a failing
# command must print one line.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

__version__ = "0.1.0"
