#!/usr/bin/env bash
# Installs the Debian packages Trunkline builds against and tests with. Idempotent: installs only what is
# missing, so a second run costs a dpkg query. Needs root or sudo.
set -euo pipefail
packages=(
    pkg-config
    libsofia-sip-ua-dev   # SIP stack
    libspandsp-dev        # G.711, DTMF
    libopus-dev           # Opus
    libsrtp2-dev          # SRTP
    libspeexdsp-dev       # resampling for wideband agent audio
    libssl-dev
    sip-tester            # sipp: the caller in tests and the README
    espeak-ng             # a call flow's `say` (text to speech at run time); prompt generation
    sox                   # prompt generation (scripts/make-prompts.sh)
    secsipidx             # STIR/SHAKEN peer in the Identity tests
    postgresql            # shared compliance store; the Compliance tests start their own server
    baresip               # softphone in the Opus and SRTP end-to-end tests
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
