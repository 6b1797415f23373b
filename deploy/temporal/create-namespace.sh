#!/bin/sh
# One-shot (temporalio/admin-tools): create the namespace and register the custom search attributes the
# workflows upsert. Idempotent: existing ones are left alone.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${RS_SEARCH_ATTRIBUTES:?}"
RETENTION=${TEMPORAL_NAMESPACE_RETENTION:-168h}

# As in Temporal's own compose scripts: dial the resolved address, the CLI's own lookup misbehaves there.
host=${TEMPORAL_ADDRESS%:*}
port=${TEMPORAL_ADDRESS##*:}
ip=$(getent ahosts "$host" | awk '/STREAM/ { print $1; exit }') || true
case "$ip" in *:*) ip="[$ip]" ;; esac
ADDRESS=${ip:-$host}:$port

# retry N COMMAND...: the frontend, then a new namespace, take a few seconds to be usable.
retry() {
  n=$1
  shift
  i=0
  until "$@"; do
    i=$((i + 1))
    [ "$i" -lt "$n" ] || { echo "gave up after $n tries: $*" >&2; return 1; }
    sleep 2
  done
}

retry 60 temporal operator cluster health --address "$ADDRESS"

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1; then
  echo "namespace $TEMPORAL_NAMESPACE exists"
else
  retry 5 temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "$RETENTION" \
    --address "$ADDRESS"
fi

created=0
existing=" $(retry 15 temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" --address "$ADDRESS" \
  | awk '{ print $1 }' | tr '\n' ' ') "
for entry in $RS_SEARCH_ATTRIBUTES; do
  name=${entry%%=*}
  kind=${entry#*=}
  case "$existing" in
    *" $name "*) echo "search attribute $name exists" ;;
    *) retry 15 temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" \
         --type "$kind" --address "$ADDRESS"
       created=1 ;;
  esac
done
if [ "$created" = 1 ]; then
  # Each Temporal service caches the search attributes and refreshes the cache once a minute: until then a
  # workflow that sets a new one fails ("search attribute ... is not defined"). The workers start after this job.
  echo "waiting 65 s for every Temporal service to see the new search attributes"
  sleep "65"
fi
echo "namespace $TEMPORAL_NAMESPACE ready"
