"""Objects in an S3 bucket (AWS, MinIO, moto's server...) through boto3."""

from __future__ import annotations

from typing import BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from app.config import Settings
from app.storage.hashing import HashingReader, StoredObject

# Multipart upload in 8 MB parts, two at a time, at most 4 parts read ahead: memory per
# upload stays bounded whatever the file size (bench/large_artifact.py --s3).
TRANSFER = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
TRANSFER.max_in_memory_upload_chunks = 4  # s3transfer's knob; boto3's __init__ lacks it


def s3_client(settings: Settings):  # type: ignore[no-untyped-def]
    """A boto3 S3 client from the S3_* settings; keys are optional (instance roles)."""
    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL or None,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
        region_name=settings.S3_REGION_NAME,
        config=Config(signature_version="s3v4", retries={"max_attempts": 3}),
    )


class S3Store:
    def __init__(self, settings: Settings):
        self.bucket = settings.S3_BUCKET
        self.expires = settings.S3_PRESIGN_EXPIRES_SECONDS
        self.client = s3_client(settings)

    def put_stream(self, key: str, stream: BinaryIO) -> StoredObject:
        reader = HashingReader(stream)
        self.client.upload_fileobj(reader, self.bucket, key, Config=TRANSFER)
        return reader.result()

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]

    def presigned_url(self, key: str, filename: str) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=self.expires,
        )

    def delete_prefix(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
