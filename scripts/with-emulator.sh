# Sourced by scripts/test and scripts/bench-aws (never run directly): installs the pinned emulator into .venv, starts it
# on a free loopback port, exports SENDY_TEST_EMULATOR and SENDY_TEST_PYTHON, and stops it by its PID
# when the calling script exits.

# shellcheck source=scripts/venv.sh
. scripts/venv.sh

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
.venv/bin/python tests/emulator/serve.py -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
export SENDY_TEST_EMULATOR="http://127.0.0.1:$port"
export SENDY_TEST_PYTHON="$PWD/.venv/bin/python"
echo "emulator (moto_server, pid $moto_pid) on $SENDY_TEST_EMULATOR"
