#!/bin/sh
# Install the Debian packages lathe builds and tests against, if any are missing
# (python3 only checks JSON output and PNG figures in the tests; `make test` adds
# tmux and librsvg2-bin, `make valgrind` valgrind, through LATHE_DEPS_EXTRA).
# As root it runs apt-get (update once, then install; waiting up to ten minutes
# for a lock another apt process holds); otherwise it names
# exactly what to install and exits 1.
set -e
PKGS="build-essential pkg-config libopenblas-dev liblua5.4-dev libuv1-dev liblmdb-dev libncurses-dev libjson-c-dev zlib1g-dev python3"
[ -n "$LATHE_DEPS_EXTRA" ] && PKGS="$PKGS $LATHE_DEPS_EXTRA"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  # another apt (unattended-upgrades, a second make) may hold the lock: wait for it
  lock="-o DPkg::Lock::Timeout=600"
  apt-get $lock update -qq >&2
  apt-get $lock install -y -qq $missing >&2
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: run: sudo apt-get install$missing" >&2
  exit 1
fi
