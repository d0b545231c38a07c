#!/usr/bin/env bash
# Regenerates the spoken prompts in prompts/ (8 kHz mono 16-bit PCM WAV) with espeak-ng and sox.
# The WAVs are committed so the gateway needs neither at run time; run this after changing a text.
set -euo pipefail
cd "$(dirname "$0")/.."
out=prompts
mkdir -p "$out"
say() {  # name text
    local tmp
    tmp=$(mktemp --suffix=.wav)
    espeak-ng -v en-us -s 165 -w "$tmp" "$2"
    sox "$tmp" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1.wav" norm -3
    rm -f "$tmp"
}
say greeting "Welcome to Trunkline. Press any digits and I will read them back. Press the pound key to hang up."
say goodbye "Goodbye."
say fallback "Sorry, the assistant is not available. Goodbye."
for d in 0 1 2 3 4 5 6 7 8 9; do say "digit-$d" "$d"; done
say digit-star "star"
say digit-pound "pound"
say digit-a "A"
say digit-b "B"
say digit-c "C"
say digit-d "D"
# The tone before a flow's `record` step (flows/demo.yaml): 0.4 s at 1 kHz.
sox -n -r 8000 -c 1 -b 16 -e signed-integer "$out/beep.wav" synth 0.4 sine 1000 vol 0.5
# Campaign calls (compliance.disclosure): a placeholder to replace with the seller's own wording, reviewed by counsel.
say disclosure "Automated call from Example Seller, 5 5 5, 2 3 4, 0 0 0 0. Press 9 to stop these calls."
say opt-out "You will not be called again. Goodbye."
echo "prompts written to $out/"
