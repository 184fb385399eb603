"""The ``drivelab`` command: thin typer commands over the library layers."""
