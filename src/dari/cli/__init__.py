"""The `dari` command line (Typer + rich)."""
