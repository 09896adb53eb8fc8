"""The FastAPI app and its routes."""
