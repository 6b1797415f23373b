#!/bin/sh
# Runs before nginx starts (the image runs /docker-entrypoint.d/*.sh in order, and stops at the first failure):
# an empty or short catalog key would let anyone write, and the values are written into nginx's files as they
# are, so they are limited to characters that need no quoting there.
set -eu
check() {
  name=$1 value=$2 min=$3
  if [ "${#value}" -lt "$min" ]; then
    echo "gateway: $name must be at least $min characters" >&2
    exit 1
  fi
  case "$value" in
    *[!A-Za-z0-9._+/=-]*) echo "gateway: $name may hold letters, digits and ._+/=- only" >&2; exit 1 ;;
  esac
}
check CATALOG_API_KEY "${CATALOG_API_KEY:-}" 16
check RS_OPS_USER "${RS_OPS_USER:-}" 1
check RS_OPS_PASSWORD "${RS_OPS_PASSWORD:-}" 12
