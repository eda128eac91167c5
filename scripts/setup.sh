#!/usr/bin/env bash
# Installs everything the tests and benchmarks need: Debian packages (real third-party MQTT peers) and npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v mosquitto_pub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
[ -x /usr/bin/mosquitto_passwd ] || need+=(mosquitto)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need+=(python3-paho-mqtt)
[ -x /usr/bin/redis-server ] || need+=(redis-server)  # the Redis store tests start /usr/bin/redis-server
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/chromium ] || need+=(chromium)  # the dashboard tests drive /usr/bin/chromium with playwright-core (no browser download)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${need[@]}"
fi
npm ci
