#!/usr/bin/env bash
# install-deps.sh — installs the Debian packages sketchgn's build and tests need. Idempotent:
# asks dpkg (and python3) first and installs only what is missing, so it is silent when all is there.
set -euo pipefail

packages=(build-essential make pkg-config libopenblas-dev liblapacke-dev libfftw3-dev
          zlib1g-dev libcriterion-dev dataset-fashion-mnist python3 python3-numpy python3-pytest
          python3-matplotlib python3-sklearn python3-pandas)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
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
fi

# The Python binding needs NumPy, and its tests pytest, scikit-learn (check_estimator) and pandas
# (DataFrame inputs), in the python3 that is first on PATH; Debian's packages serve
# /usr/bin/python3, pip serves another python3 (pyenv, venv).
if command -v python3 >/dev/null 2>&1; then
  need=()
  for m in numpy:numpy pytest:pytest sklearn:scikit-learn pandas:pandas; do
    python3 -c "import ${m%%:*}" 2>/dev/null || need+=("${m#*:}")
  done
  if [ ${#need[@]} -gt 0 ]; then
    echo "install-deps.sh: installing ${need[*]} for $(command -v python3)" >&2
    python3 -m pip install --quiet "${need[@]}"
  fi
fi
