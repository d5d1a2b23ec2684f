"""One module per `ontap-rekey` subcommand; each exposes a click `command`."""
