#!/bin/sh
# The parts of the official redis entrypoint the stack relies on.
set -eu

# Options alone are arguments to redis-server.
if [ "${1#-}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
  shift
  # No config file: listen on every interface, protected mode off; later arguments win.
  set -- redis-server --protected-mode no "$@"
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
