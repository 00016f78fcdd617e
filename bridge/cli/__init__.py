"""The ``stembridge`` command line: :mod:`bridge.cli.main` is the one entry point."""
