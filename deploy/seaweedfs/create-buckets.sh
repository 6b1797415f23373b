#!/bin/sh
# One-shot (SeaweedFS image): the two buckets of the workers, created with SeaweedFS's own shell. Idempotent.
set -eu
: "${RS_BUCKET:?}" "${RS_WORK_BUCKET:?}"
MASTER=seaweedfs:9333

listed() { echo "s3.bucket.list" | weed shell -master="$MASTER" | grep -qw -- "$1"; }

for bucket in "$RS_BUCKET" "$RS_WORK_BUCKET"; do
  if listed "$bucket"; then
    echo "bucket $bucket exists"
  else
    echo "s3.bucket.create -name $bucket" | weed shell -master="$MASTER"
    listed "$bucket" || { echo "bucket $bucket was not created" >&2; exit 1; }
  fi
done
echo "buckets $RS_BUCKET and $RS_WORK_BUCKET ready"
