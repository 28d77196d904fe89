"""The one Typer CLI: thin modules that parse, call the library and print."""
