#!/usr/bin/env bash
# Creates (once) a Python venv with a pinned stock pipecat-ai for the Pipecat interop test and prints its python.
# Idempotent: when the venv already holds exactly Tests/EndToEndTests/pipecat/requirements.txt it only prints the path.
# Usage: scripts/pipecat-venv.sh            (PYTHON=/path/to/python3.11+ to choose the interpreter)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/Tests/EndToEndTests/pipecat/requirements.txt"
venv="$root/.build/pipecat-venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv/bin/python"
    exit 0
fi

# Pipecat needs Python >= 3.11 and the venv + ensurepip modules (Debian ships those in python3-venv).
python=""
for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
        python="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$python" ]; then
    echo "pipecat-venv: no python >= 3.11 with venv/ensurepip (on Debian: apt-get install python3-venv)" >&2
    exit 1
fi

echo "pipecat-venv: creating $venv with $python ($("$python" --version 2>&1))" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$requirements" >&2
"$venv/bin/python" -c 'import pipecat.transports.websocket.fastapi, pipecat.serializers.twilio, uvicorn' >&2
echo "$want" > "$stamp"
echo "$venv/bin/python"
