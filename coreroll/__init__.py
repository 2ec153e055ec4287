"""coreroll: CoreOS-style automatic updates with a live dashboard."""

__version__ = "0.1.0"
