# Shared by scripts/demo and scripts/test: system packages and the cargo target directory.
# shellcheck shell=bash
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the build and tests need, installed when missing: pcsc-lite's headers and
# pkg-config to build the card reader support (cargo feature `pcsc`, on by default; see the
# README to build without it).
KIBAN_APT_PACKAGES=(libpcsclite-dev pkg-config ${KIBAN_APT_PACKAGES:-})
ensure_packages() {
  local missing=()
  for p in "${KIBAN_APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
}

command -v cargo >/dev/null 2>&1 || { echo "cargo is not installed: install Rust 1.94 or newer (rustup)" >&2; exit 2; }
ensure_packages
# Builds go outside the clone, so a fresh clone reuses earlier work; override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kiban/target}"
