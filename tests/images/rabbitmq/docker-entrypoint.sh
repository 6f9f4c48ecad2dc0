#!/bin/sh
# The parts of the official rabbitmq entrypoint the stack relies on.
set -eu

if [ "$1" = rabbitmq-server ]; then
  # RabbitMQ reads the default user and vhost from its configuration and creates them
  # only on the first start of an empty data directory, as the official image does.
  {
    echo "loopback_users.guest = false"
    echo "listeners.tcp.default = 5672"
    echo "management.tcp.port = 15672"
    if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
    if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
    if [ -n "${RABBITMQ_DEFAULT_VHOST:-}" ]; then echo "default_vhost = $RABBITMQ_DEFAULT_VHOST"; fi
  } > /etc/rabbitmq/rabbitmq.conf
  shift
  # Debian's wrapper in /usr/sbin sends the server's output to files; the image logs to stdout.
  set -- /usr/lib/rabbitmq/bin/rabbitmq-server "$@"
fi
exec "$@"
