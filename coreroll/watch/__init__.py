"""The dashboard's fleet model (pure) and the sources that feed it (etcd watch, server feed).

No Textual here: `coreroll.watch.model.FleetModel` holds the state, `coreroll.watch.updates` the
messages sources send it, `etcd_source.EtcdSource` / `feed_source.FeedSource` produce them, and
`actions.Actions` performs the operator's interventions.
"""
