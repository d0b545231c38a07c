#!/usr/bin/env bash
# Regenerates the area-code table the compliance gate ships (see scripts/make-area-codes.py for provenance).
# The phonenumbers library lives in a throwaway venv; only its output is committed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q "phonenumbers${PHONENUMBERS_VERSION:+==$PHONENUMBERS_VERSION}"
"$venv/bin/python" "$here/make-area-codes.py" > "$here/../Sources/Compliance/Data/area-codes.csv"
echo "wrote Sources/Compliance/Data/area-codes.csv"
