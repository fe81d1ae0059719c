#!/bin/sh
# Renders deploy/varnish/default.vcl for a host other than the one machine it is written for (compose):
# the origin's address and who may PURGE/BAN come from the environment.
#   VARNISH_BACKEND_HOST  origin host name or address (one address: Varnish resolves it once, at load)
#   VARNISH_BACKEND_PORT  origin port
#   VARNISH_PURGERS       space-separated addresses or CIDRs added to `acl purgers` (the workers' network)
# Usage: render-vcl.sh TEMPLATE OUTPUT
set -eu
template="$1"
output="$2"
: "${VARNISH_BACKEND_HOST:?set VARNISH_BACKEND_HOST}"
: "${VARNISH_BACKEND_PORT:?set VARNISH_BACKEND_PORT}"

acl=""
for entry in ${VARNISH_PURGERS:-}; do
  case "$entry" in
    */*) acl="$acl    \"${entry%/*}\"/${entry#*/};\\n" ;;
    *) acl="$acl    \"$entry\";\\n" ;;
  esac
done

# The template's backend is 127.0.0.1:8000 (deploy/local/stack replaces the port the same way).
sed -e "s|\.host = \"127\.0\.0\.1\";|.host = \"$VARNISH_BACKEND_HOST\";|" \
    -e "s|\.port = \"8000\";|.port = \"$VARNISH_BACKEND_PORT\";|" \
    -e "s|^acl purgers {\$|acl purgers {\\n$acl|" \
    "$template" > "$output"
grep -q "\.host = \"$VARNISH_BACKEND_HOST\";" "$output" || { echo "render-vcl: backend host not replaced" >&2; exit 1; }
grep -q "\.port = \"$VARNISH_BACKEND_PORT\";" "$output" || { echo "render-vcl: backend port not replaced" >&2; exit 1; }
