#!/bin/sh
# SeaweedFS in one process (master, volume server, filer, S3 gateway) with two S3 identities: an administrator,
# and the workers' own account, limited to the two buckets. The identities are written from the environment at
# every start, into the container only: no credential is in a file of the repository.
set -eu
: "${S3_ADMIN_ACCESS_KEY_ID:?}" "${S3_ADMIN_SECRET_ACCESS_KEY:?}" "${RS_S3_ACCESS_KEY_ID:?}" "${RS_S3_SECRET_ACCESS_KEY:?}"
: "${RS_BUCKET:?}" "${RS_WORK_BUCKET:?}"

# The values go into JSON unescaped: refuse anything but the characters S3 keys and bucket names use.
for value in "$S3_ADMIN_ACCESS_KEY_ID" "$S3_ADMIN_SECRET_ACCESS_KEY" "$RS_S3_ACCESS_KEY_ID" "$RS_S3_SECRET_ACCESS_KEY" \
    "$RS_BUCKET" "$RS_WORK_BUCKET"; do
  case "$value" in
    *[!A-Za-z0-9._~+/=-]*) echo "S3 keys and bucket names: letters, digits and ._~+/=- only" >&2; exit 1 ;;
  esac
done

umask 077
config=/tmp/s3-identities.json
cat >"$config" <<JSON
{
  "identities": [
    {
      "name": "admin",
      "credentials": [{"accessKey": "$S3_ADMIN_ACCESS_KEY_ID", "secretKey": "$S3_ADMIN_SECRET_ACCESS_KEY"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    },
    {
      "name": "rs-ondemand",
      "credentials": [{"accessKey": "$RS_S3_ACCESS_KEY_ID", "secretKey": "$RS_S3_SECRET_ACCESS_KEY"}],
      "actions": ["Read:$RS_BUCKET", "Write:$RS_BUCKET", "List:$RS_BUCKET",
                  "Read:$RS_WORK_BUCKET", "Write:$RS_WORK_BUCKET", "List:$RS_WORK_BUCKET"]
    }
  ]
}
JSON
# 1 GiB volumes, as many as the disk holds: each bucket is a collection of its own.
exec weed server -dir=/data -ip.bind=0.0.0.0 -master.volumeSizeLimitMB=1024 -volume.max=0 \
  -s3 -s3.port=8333 -s3.config="$config"
