"""Event sources (after Mangum): one module per source, one protocol, one registry."""
