"""One module per subcommand; each exposes functions taking the parsed arguments."""
