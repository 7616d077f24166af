#!/usr/bin/env bash
# Makes sure the services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 and Mosquitto on
# 127.0.0.1:1883 (tests also start private mosquitto processes of their own). Starts a stopped one
# the way this machine's images start them; says what to do when one is missing altogether.
set -uo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! listening 5432; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql >/dev/null 2>&1; then
    echo "ensure-services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! listening 1883; then
  if command -v mosquitto >/dev/null; then
    echo "ensure-services: starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  fi
fi
for _ in $(seq 1 50); do
  listening 5432 && listening 1883 && exit 0
  sleep 0.2
done
listening 5432 || echo "ensure-services: PostgreSQL is not listening on 127.0.0.1:5432; install and start it (apt-get install postgresql), or set RM_TEST_POSTGRES_URL" >&2
listening 1883 || echo "ensure-services: Mosquitto is not listening on 127.0.0.1:1883; install and start it (apt-get install mosquitto)" >&2
exit 1
