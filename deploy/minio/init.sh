#!/bin/sh
# One-shot (minio/mc): the two buckets, and a worker account limited to them (the worker never gets root keys).
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${RS_BUCKET:?}" "${RS_WORK_BUCKET:?}"
: "${RS_S3_ACCESS_KEY_ID:?}" "${RS_S3_SECRET_ACCESS_KEY:?}"

mc alias set rs http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "rs/$RS_BUCKET" "rs/$RS_WORK_BUCKET"

policy=/tmp/rs-ondemand-policy.json
cat >"$policy" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$RS_BUCKET", "arn:aws:s3:::$RS_WORK_BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                 "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$RS_BUCKET/*", "arn:aws:s3:::$RS_WORK_BUCKET/*"]
    }
  ]
}
JSON
mc admin policy create rs rs-ondemand "$policy"
mc admin user add rs "$RS_S3_ACCESS_KEY_ID" "$RS_S3_SECRET_ACCESS_KEY"
# attach fails when the policy is already attached (a re-run): only that case is fine.
if ! out=$(mc admin policy attach rs rs-ondemand --user "$RS_S3_ACCESS_KEY_ID" 2>&1); then
  case "$out" in
    *"already in effect"*) echo "policy rs-ondemand already attached" ;;
    *) echo "$out" >&2; exit 1 ;;
  esac
fi
echo "buckets $RS_BUCKET and $RS_WORK_BUCKET ready"
