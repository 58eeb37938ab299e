"""The workspace bucket: one prefix per workspace, private, encrypted, versioned, TLS only.

Where data must survive (`protect`), the bucket is protected and retained on delete: a change
that would delete or replace it makes `pulumi up` fail instead, and removing it from the
program leaves it in AWS. Nothing here ever sets `force_destroy`.

A bucket shared with the rest of the platform (`manage=False`) is only looked up by name:
S3 keeps one policy, one lifecycle, one notification configuration per bucket, and a put
replaces the whole of it, so writing any of them would silently undo what other services
set (the platform's workspace-services serve every workspace from this one bucket through
S3 access points).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from .iam_documents import bucket_tls_only_policy


@dataclass(frozen=True)
class WorkspaceBucketArgs:
    bucket: str
    """The bucket's exact name (validated by the settings)."""
    protect: bool = True
    """Protect and retain the bucket (production data safety)."""
    access_logs_bucket: str | None = None
    """Bucket receiving server access logs; None disables logging."""
    access_logs_prefix: str | None = None
    """Key prefix of the logs in that bucket; defaults to `<bucket>/`."""
    kms_key_arn: str | None = None
    """None: SSE-S3 (AES256, the platform's choice). Set: SSE-KMS with an S3 bucket key."""
    noncurrent_version_days: int = 30
    """Overwritten or deleted versions are kept this many days, then expire."""
    incomplete_upload_days: int = 7
    """Multipart uploads not completed within this many days are aborted."""
    manage: bool = True
    """False: the bucket exists and is shared; reference it by name, configure nothing."""

    def __post_init__(self) -> None:
        if not self.manage and self.access_logs_bucket:
            raise ValueError(
                "access logging is part of the bucket's configuration: a bucket this stack "
                "does not manage cannot have it set here"
            )
        if self.access_logs_bucket == self.bucket:
            raise ValueError("a bucket must not log its own access into itself")
        if self.noncurrent_version_days < 1 or self.incomplete_upload_days < 1:
            raise ValueError("lifecycle periods are whole days, at least 1")


class WorkspaceBucket(pulumi.ComponentResource):
    bucket: pulumi.Output[str]
    """The bucket's name (the Helm values' SINGLEUSER_WORKSPACE_BUCKET)."""
    arn: pulumi.Output[str]
    managed: bool
    """Whether this stack owns the bucket's configuration (else it only looks it up)."""

    def __init__(
        self, name: str, args: WorkspaceBucketArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("eodh:storage:WorkspaceBucket", name, None, opts)
        self.managed = args.manage
        if not args.manage:
            # An invoke, not a resource: nothing of the bucket enters this stack's state.
            found = aws.s3.get_bucket_output(
                bucket=args.bucket, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.bucket = found.bucket
            self.arn = found.arn
            self.register_outputs({"bucket": self.bucket, "arn": self.arn})
            return
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket,
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, retain_on_delete=args.protect
            ),
        )
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        encryption_rule: aws.s3.BucketServerSideEncryptionConfigurationRuleArgsDict
        if args.kms_key_arn is None:
            # S3 bucket keys exist only for SSE-KMS; with AES256 they do not apply.
            encryption_rule = {
                "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}
            }
        else:
            encryption_rule = {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": args.kms_key_arn,
                },
                "bucket_key_enabled": True,
            }
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id, rules=[encryption_rule], opts=child
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only-policy",
            bucket=bucket.id,
            policy=bucket.bucket.apply(lambda b: json.dumps(bucket_tls_only_policy(b))),
            # S3 refuses concurrent configuration changes to one bucket; the public-access
            # block also decides which policies S3 accepts.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    noncurrent_version_expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=args.noncurrent_version_days
                        )
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    abort_incomplete_multipart_upload=(
                        aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=args.incomplete_upload_days
                        )
                    ),
                ),
            ],
            # Noncurrent-version rules need versioning in place first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        if args.access_logs_bucket:
            aws.s3.BucketLogging(
                f"{name}-access-logging",
                bucket=bucket.id,
                target_bucket=args.access_logs_bucket,
                target_prefix=args.access_logs_prefix or f"{args.bucket}/",
                opts=child,
            )
        self.bucket = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"bucket": self.bucket, "arn": self.arn})
