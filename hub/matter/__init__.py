"""Matter through the Open Home Foundation's matter-server: the companion process, the client, the device model.

The hub never speaks Matter itself. matter-server (python-matter-server's ``[server]`` extra, the CHIP SDK)
runs beside it in its own venv (:mod:`.server`: installed by ``qilu-hub matter server install``, started and
supervised by the hub when ``matter: {server: managed}``, or reached at ``matter: {url: ws://...}``); the hub
holds one WebSocket client of it (:mod:`.controller`, the ``matter`` component), which commissions nodes and
maps them to devices and entities through the capability table in :mod:`.mapping`. Commissionable appliances
reach the inbox through the ``matter`` driver (``drivers/matter``: mDNS ``_matterc._udp`` and BLE service data
0xFFF6); setup codes are read by :mod:`.codes`. Only :mod:`.controller` imports python-matter-server, and only
when Matter is configured.
"""
