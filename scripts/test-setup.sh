#!/usr/bin/env bash
# What the suite needs beyond npm: Debian packages, Python Celery 5.6.3 in a venv, and Redis and RabbitMQ
# answering. Installs and starts what is missing when it can (root, or sudo without a password); otherwise
# prints one line saying what is missing and how to get it, and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

REDIS_URL="${CELERIAC_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
AMQP_URL="${CELERIAC_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}"
CELERY56="${CELERIAC_TEST_CELERY56:-/opt/celery-5.6/bin/python}"
SYSTEM_PYTHON=/usr/bin/python3 # Debian's python3-celery lives here, not in the python3 first on PATH

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo "$@"
  else return 1
  fi
}

missing() { # what, how to get it
  echo "npm test: missing $1; $2 (CELERIAC_TEST_SUBSET=unit npm test needs none of it)" >&2
  exit 1
}

# 1. Debian packages
pkgs=()
command -v redis-server >/dev/null 2>&1 || pkgs+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || pkgs+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || pkgs+=(redis-tools)
command -v rabbitmq-server >/dev/null 2>&1 || pkgs+=(rabbitmq-server)
command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
# Debian's Chromium for test/browser (playwright-core drives it; it downloads no browser of its own)
[ -x "${CELERIAC_TEST_CHROMIUM:-/usr/bin/chromium}" ] || pkgs+=(chromium)
for mod in celery redis amqp msgpack; do
  "$SYSTEM_PYTHON" -c "import $mod" >/dev/null 2>&1 || pkgs+=("python3-$mod")
done
"$SYSTEM_PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs+=(python3-venv)
if [ "${#pkgs[@]}" -gt 0 ]; then
  echo "== apt-get install ${pkgs[*]}" >&2
  if ! command -v apt-get >/dev/null 2>&1 || ! { as_root apt-get update -qq && as_root apt-get install -y -qq "${pkgs[@]}" >/dev/null; }; then
    missing "the Debian packages ${pkgs[*]}" "install them with: sudo apt-get install -y ${pkgs[*]}"
  fi
fi

# 2. Python Celery 5.6.3 in a venv (the newest Celery, next to Debian's 5.2.6)
if ! "$CELERY56" -c 'import celery, redis, sys; sys.exit(celery.__version__ != "5.6.3")' >/dev/null 2>&1; then
  venv="$(dirname "$(dirname "$CELERY56")")"
  # PIP_RETRIES: an index that cannot be reached (no DNS, a local mirror beside it) is given up on at once.
  make_venv="$SYSTEM_PYTHON -m venv --system-site-packages $venv && PIP_RETRIES=${PIP_RETRIES:-1} $venv/bin/pip install celery==5.6.3 && PIP_RETRIES=${PIP_RETRIES:-1} $venv/bin/pip install --no-deps redis==8.1.0"
  echo "== making $venv (Celery 5.6.3)" >&2
  if [ -w "$(dirname "$venv")" ]; then run=(bash -c); else run=(as_root bash -c); fi
  if ! "${run[@]}" "$make_venv" >/dev/null; then
    missing "Celery 5.6.3 at $CELERY56" "make it with: $make_venv (or point CELERIAC_TEST_CELERY56 at one)"
  fi
fi

# 3. Redis and RabbitMQ answering
is_local() { case "$1" in 127.0.0.1|localhost|::1|'') return 0;; *) return 1;; esac; }
host_of() { node -e 'const u = new URL(process.argv[1]); console.log(u.hostname.replace(/^\[|\]$/g, ""))' "$1"; }
port_of() { node -e 'const u = new URL(process.argv[1]); console.log(u.port || process.argv[2])' "$1" "$2"; }
answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

rhost="$(host_of "$REDIS_URL")"; rport="$(port_of "$REDIS_URL" 6379)"
if ! redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1; then
  is_local "$rhost" || missing "Redis at $rhost:$rport (CELERIAC_TEST_REDIS_URL)" "start it there, or unset CELERIAC_TEST_REDIS_URL to use a local one"
  echo "== starting redis-server on 127.0.0.1:$rport" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$rport" --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

ahost="$(host_of "$AMQP_URL")"; aport="$(port_of "$AMQP_URL" 5672)"
if ! answers "${ahost:-127.0.0.1}" "$aport"; then
  is_local "$ahost" || missing "RabbitMQ at $ahost:$aport (CELERIAC_TEST_AMQP_URL)" "start it there, or unset CELERIAC_TEST_AMQP_URL to use a local one"
  echo "== starting rabbitmq-server" >&2
  as_root rabbitmq-server -detached >/dev/null 2>&1 || missing "RabbitMQ on port $aport" "start it with: sudo rabbitmq-server -detached"
  for _ in $(seq 1 120); do answers 127.0.0.1 "$aport" && break; sleep 1; done
  as_root rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
