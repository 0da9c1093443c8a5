#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages sketchgn's build and tests need. Idempotent:
# asks dpkg first and touches apt only for what is missing, so it is silent when all are there.
set -euo pipefail

packages=(build-essential make pkg-config libopenblas-dev liblapacke-dev libfftw3-dev
          zlib1g-dev libcriterion-dev dataset-fashion-mnist python3 python3-numpy python3-pytest)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps.sh: missing ${missing[*]}; run as root or install sudo" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
${sudo[@]+"${sudo[@]}"} apt-get update -qq
${sudo[@]+"${sudo[@]}"} apt-get install -y -qq --no-install-recommends "${missing[@]}"
