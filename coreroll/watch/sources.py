"""The dashboard's two sources, imported from one place (see each module)."""

from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource

__all__ = ["EtcdSource", "FeedSource"]
