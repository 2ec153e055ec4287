"""The coreroll update server: Omaha v3 endpoint, channels, releases, groups with rollout policy,
instance registry, activity and a live SSE feed (see docs/api.md).

Modules: ``settings`` (ServerSettings), ``schema`` (tables), ``storage`` (engine, transactions, feed
log), ``catalog`` (channels, releases, groups), ``registry`` (instances and their history),
``policy`` (pure rollout policy), ``versions`` (CoreOS version scheme, channel order),
``omaha_handler``, ``api_read``, ``api_admin``, ``feed``, ``packages``, ``auth``, ``metrics``,
``app`` (``create_app``), ``runner`` (``run_server_in_thread``).
"""
