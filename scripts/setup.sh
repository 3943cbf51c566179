#!/usr/bin/env bash
# One idempotent setup step for a fresh Debian 12 machine (run as root):
#   Debian packages the lab, the tests and the targets need,
#   a virtual environment (.venv) with the controller-side Python packages and the ecosystem tools the tests
#   drive (requirements/ecosystem.txt: ansible-builder, ansible-lint, ansible-runner),
#   and the collection linked where ansible finds it from any directory.
# Quick when already done: each part checks before it acts.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PACKAGES=(
  nftables iptables firewalld ufw python3-firewall python3-nftables python3-scapy python3-dbus
  python3-yaml python3-venv python3-pip dbus openssh-server openssh-client iproute2 iputils-ping
  traceroute tcpdump nmap hping3 socat netcat-openbsd procps make git chromium chromium-driver tshark
  shellcheck
)
if [ -n "${NETDIAG_EXTRA_APT:-}" ]; then
  read -r -a extra_apt <<< "$NETDIAG_EXTRA_APT"
  APT_PACKAGES+=("${extra_apt[@]}")
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The controller venv is built on Debian's python3 with system site packages, so the
# firewalld bindings, libnftables and dbus (which no PyPI package provides) import in it too.
req_hash=$(cat requirements/*.txt | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.req-hash 2>/dev/null)" != "$req_hash" ]; then
  echo "setup: building .venv"
  [ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/test.txt -r requirements/ecosystem.txt
  echo "$req_hash" > .venv/.req-hash
fi

# Make `netdiag.reachability.*` resolvable from any directory: ansible's default
# collections path is ~/.ansible/collections; link this checkout there.
dest="${HOME}/.ansible/collections/ansible_collections/netdiag"
mkdir -p "$dest"
if [ "$(readlink -f "$dest/reachability" 2>/dev/null)" != "$here" ]; then
  rm -rf "$dest/reachability"
  ln -s "$here" "$dest/reachability"
fi
# ansible-test needs the collection under a path .../ansible_collections/netdiag/reachability.
mkdir -p .collections/ansible_collections/netdiag
[ -L .collections/ansible_collections/netdiag/reachability ] || ln -s ../../.. .collections/ansible_collections/netdiag/reachability
