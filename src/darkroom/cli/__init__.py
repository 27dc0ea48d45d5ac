"""The `darkroom` command line, one module per resource, all on `darkroom.client.Client`."""
