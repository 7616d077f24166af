"""Fleet management on the scanner: desired/reported configuration and commands from the server.

`handler.FleetHandler` is the agent's `CommandHandler`; `settings` is the whitelist of settings
the server may change, `shadow` keeps the applied version on disk, `journal` remembers commands
and their results, `commands` lists the commands and their args, `diagnostics` builds the blob
of ``upload_diagnostics``.
"""
