"""docfn: serverless document-understanding functions."""

__version__ = "0.1.0"
