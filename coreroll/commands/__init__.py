"""One module per `coreroll` subcommand; each defines `register(subparsers)`."""
