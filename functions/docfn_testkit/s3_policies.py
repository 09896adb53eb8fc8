"""An S3 that says AccessDenied: moto's server with IAM enforced, and a user who may read one prefix.

moto authorises nothing by default. ``INITIAL_NO_AUTH_ACTION_COUNT`` makes its server enforce IAM
after that many requests, so the setup below (exactly ``SETUP_REQUESTS`` requests, as the test
credentials) runs unchecked and every later request is signed by a real moto IAM user and judged by
its policy: a GetObject outside the allowed prefix answers 403 AccessDenied, as AWS does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .servers import S3Server

SETUP_REQUESTS = 6  # create_user, put_user_policy, create_access_key, create_bucket, 2 x put_object


@dataclass(frozen=True)
class Reader:
    """A moto IAM user allowed ``s3:GetObject`` on ``bucket/prefix*`` only."""

    access_key_id: str
    secret_access_key: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


def enforcing_s3() -> S3Server:
    """A moto server (not started) that enforces IAM once ``with_reader`` has set it up."""
    return S3Server({"INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)})


def with_reader(server: S3Server, bucket: str, prefix: str, objects: Mapping[str, bytes]) -> Reader:
    """The bucket with two ``objects`` in it, and a reader of ``prefix``: the unchecked setup."""
    assert len(objects) == 2, "the setup is counted: exactly two objects"
    iam = server.client("iam")
    iam.create_user(UserName="docfn-reader")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{prefix}*"}
        ],
    }
    iam.put_user_policy(UserName="docfn-reader", PolicyName="read-prefix", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="docfn-reader")["AccessKey"]
    s3 = server.client()
    s3.create_bucket(Bucket=bucket)
    for name, data in objects.items():
        s3.put_object(Bucket=bucket, Key=name, Body=data, ContentType="image/png")
    return Reader(key["AccessKeyId"], key["SecretAccessKey"])
