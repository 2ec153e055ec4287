"""Channel pins: a pinned channel stays at the operator's version while the upstream sync goes on.

``await pin(catalog, channel, version)`` points ``channel`` at ``version`` (a release stored here)
and records the pin; ``await unpin(catalog, channel)`` removes it. Both write a ``ChannelPinned`` /
``ChannelUnpinned`` activity and a ``channel`` feed event (its ``pinned`` field), in one transaction.
While pinned, ``release point``/``promote`` and a publish with ``channel`` are refused (409,
``Catalog.refuse_if_pinned``) and the sync records new upstream releases without moving the channel.
After ``unpin`` the next sync pass moves it to what upstream offers (``coreroll.server.sync``).
Errors: ``CatalogError`` 404 (no channel, no release), 409 (unpin of a channel that is not pinned).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert

from coreroll.server import schema
from coreroll.server.catalog import Catalog, CatalogError, check_name
from coreroll.server.records import channel_json


def _channel(catalog: Catalog, channel: str) -> dict[str, Any]:
    check_name("channel", channel)
    found = catalog.channels.get(channel)
    if found is None:
        raise CatalogError(404, f"no channel {channel!r} (channels: {', '.join(sorted(catalog.channels))})")
    return found


async def pin(catalog: Catalog, channel: str, version: str) -> dict[str, Any]:
    """Point ``channel`` at ``version`` and keep it there; returns the channel object."""
    _channel(catalog, channel)
    if version not in catalog.releases:
        raise CatalogError(404, f"no release {version!r}")
    table = schema.channel_pins
    async with catalog.storage.write() as tx:
        await catalog.refresh_under_lock()
        await tx.conn.execute(table.delete().where(table.c.channel == channel))
        await tx.conn.execute(insert(table).values(channel=channel, version=version, created_at=tx.now))
        catalog.pins[channel] = version  # read by point_in below; rolled back with the transaction
        try:
            if catalog.channel_version(channel) != version:
                obj = await catalog.point_in(tx, channel, version, " (pinned)")
            else:
                obj = channel_json(catalog.channels[channel], version)
                tx.emit("channel", obj)
            await tx.activity("ChannelPinned", "info",
                              f"channel {channel} pinned at {version}: the upstream sync will not move it",
                              channel=channel, version=version)  # fmt: skip
        except BaseException:
            await catalog.load()  # the transaction did not commit: forget the pin set above
            raise
    return obj


async def unpin(catalog: Catalog, channel: str) -> dict[str, Any]:
    """Let ``channel`` follow upstream again; returns the channel object."""
    row = _channel(catalog, channel)
    table = schema.channel_pins
    async with catalog.storage.write() as tx:
        await catalog.refresh_under_lock()
        was = catalog.pins.get(channel)
        if was is None:
            raise CatalogError(409, f"channel {channel} is not pinned")
        await tx.conn.execute(table.delete().where(table.c.channel == channel))
        obj = channel_json(row, None)
        tx.emit("channel", obj)
        await tx.activity("ChannelUnpinned", "info",
                          f"channel {channel} unpinned (was at {was}): it follows upstream again",
                          channel=channel, version=row["version"])  # fmt: skip
        tx.after_commit.append(lambda: catalog.pins.pop(channel, None))
    return obj
