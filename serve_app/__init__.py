"""The Ray Serve application: REST routes, settings, start-up and the CLI."""
