"""The AWS Lambda entry point."""
