"""Layer 5: cloud bindings, the only code that talks to AWS SDKs: boto3 clients and error
classification, the S3 object store, S3 pack fetching, Secrets Manager, X-Ray."""
