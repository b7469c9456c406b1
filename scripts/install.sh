#!/bin/sh
# Installs the rivet binary of a GitHub release: picks the asset for this OS and CPU, downloads it
# with SHA256SUMS, checks the SHA-256, and only then moves it into place (atomically, with a
# rename inside the target folder). It never runs what it downloads.
#
#   sh install.sh                                  # latest release into ~/.local/bin
#   RIVET_VERSION=v0.2.0 sh install.sh             # a given release (the "v" is optional)
#   RIVET_INSTALL_DIR=/usr/local/bin sh install.sh # another folder (must be writable)
#
# Environment:
#   RIVET_VERSION         release tag to install; default: the latest release
#   RIVET_INSTALL_DIR     where to put `rivet`; default: $HOME/.local/bin
#   RIVET_DOWNLOAD_BASE   releases URL of a mirror, default https://github.com/$RIVET_REPO/releases;
#                         files are read from <base>/download/<tag>/<file>, or
#                         <base>/latest/download/<file> without RIVET_VERSION. Must be https
#                         (plain http only for a loopback address: a local mirror or a test)
#   RIVET_REPO            GitHub owner/name the default base points at (default: DEFAULT_REPO below)
#
# Needs: curl or wget, sha256sum or shasum, and the usual POSIX tools (uname, mktemp, awk).
# Exit status: 0 installed, 1 on any problem (the message says which and what to do).
set -eu

# The GitHub repository that publishes the releases. Set on publication; RIVET_REPO overrides it.
DEFAULT_REPO="OWNER/REPO"
repo="${RIVET_REPO:-$DEFAULT_REPO}"
base="${RIVET_DOWNLOAD_BASE:-https://github.com/$repo/releases}"
base="${base%/}"
version="${RIVET_VERSION:-}"
install_dir="${RIVET_INSTALL_DIR:-}"

die() {
  printf 'rivet install: error: %s\n' "$*" >&2
  exit 1
}

say() {
  printf 'rivet install: %s\n' "$*" >&2
}

# --- platform → release asset (the targets scripts/compile.ts builds) -----------------------
os=$(uname -s 2>/dev/null) || die "cannot run 'uname -s' to detect the operating system"
arch=$(uname -m 2>/dev/null) || die "cannot run 'uname -m' to detect the CPU"
case "$os" in
  Linux) os_part=unknown-linux-gnu ;;
  Darwin) os_part=apple-darwin ;;
  *) die "unsupported operating system '$os': release binaries exist for Linux and macOS (x86_64, aarch64); elsewhere run rivet with Deno (see the README)" ;;
esac
case "$arch" in
  x86_64 | amd64) arch_part=x86_64 ;;
  aarch64 | arm64) arch_part=aarch64 ;;
  *) die "unsupported CPU '$arch' on $os: release binaries exist for x86_64 and aarch64; elsewhere run rivet with Deno (see the README)" ;;
esac
# An Intel shell on Apple silicon (Rosetta) reports x86_64; the native binary is the better fit.
if [ "$os_part" = apple-darwin ] && [ "$arch_part" = x86_64 ] &&
  [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || true)" = 1 ]; then
  arch_part=aarch64
fi
asset="rivet-$arch_part-$os_part"

# --- where from, where to ---------------------------------------------------------------------
if [ -z "${RIVET_DOWNLOAD_BASE:-}" ] && [ "$repo" = "OWNER/REPO" ]; then
  die "this copy of install.sh names no GitHub repository; set RIVET_REPO=owner/name (or RIVET_DOWNLOAD_BASE)"
fi
case "$repo" in
  */*) ;;
  *) die "RIVET_REPO must be owner/name, got '$repo'" ;;
esac
case "$base" in
  https://*) secure=1 ;;
  http://127.0.0.1:* | http://127.0.0.1/* | http://localhost:* | http://localhost/* | http://\[::1\]:* | http://\[::1\]/*)
    secure=0 ;;
  *) die "RIVET_DOWNLOAD_BASE must be an https:// URL (plain http only on a loopback address), got '$base'" ;;
esac
case "$version" in
  "") url_dir="$base/latest/download" ;;
  v*) url_dir="$base/download/$version" ;;
  *) version="v$version"; url_dir="$base/download/$version" ;;
esac
case "$version" in
  *[!A-Za-z0-9._+-]*) die "RIVET_VERSION '$version' is not a release tag (letters, digits, '.', '-', '+', e.g. v0.2.0)" ;;
esac
if [ -z "$install_dir" ]; then
  [ -n "${HOME:-}" ] || die "HOME is not set; set RIVET_INSTALL_DIR to the folder to install into"
  install_dir="$HOME/.local/bin"
fi

# --- tools ------------------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
  fetcher=curl
elif command -v wget >/dev/null 2>&1; then
  fetcher=wget
else
  die "neither curl nor wget is installed; install one of them and run this again"
fi
if command -v sha256sum >/dev/null 2>&1; then
  hasher="sha256sum"
elif command -v shasum >/dev/null 2>&1; then
  hasher="shasum -a 256"
else
  die "neither sha256sum nor shasum is installed; install coreutils (or perl's shasum) and run this again"
fi

# fetch URL FILE: downloads URL into FILE, failing on any HTTP error.
fetch() {
  if [ "$fetcher" = curl ]; then
    if [ "$secure" = 1 ]; then
      curl -fsSL --proto '=https' --proto-redir '=https' --retry 3 --connect-timeout 20 -o "$2" "$1"
    else
      curl -fsSL --retry 3 --connect-timeout 20 -o "$2" "$1"
    fi
  else
    if [ "$secure" = 1 ]; then
      wget -q --https-only --tries=3 --timeout=20 -O "$2" "$1"
    else
      wget -q --tries=3 --timeout=20 -O "$2" "$1"
    fi
  fi
}

# --- download and verify in a private temp folder ---------------------------------------------
tmp=$(mktemp -d 2>/dev/null || mktemp -d -t rivet-install) || die "cannot create a temporary folder"
staged=""
cleanup() {
  rm -rf "$tmp"
  if [ -n "$staged" ]; then rm -f "$staged"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

say "downloading $asset (${version:-latest release}) from $url_dir"
fetch "$url_dir/SHA256SUMS" "$tmp/SHA256SUMS" ||
  die "cannot download $url_dir/SHA256SUMS (no such release, or no network?); check RIVET_VERSION and your connection"
# Lines are "<64 hex>  <file>" (or "<hex> *<file>" from binary-mode tools).
expected=$(awk -v f="$asset" '($2 == f || $2 == "*" f) && $1 ~ /^[0-9a-fA-F]+$/ && length($1) == 64 { print tolower($1); exit }' "$tmp/SHA256SUMS")
[ -n "$expected" ] ||
  die "SHA256SUMS of ${version:-the latest release} lists no checksum for $asset: this release has no binary for $os $arch (or a broken checksum file); nothing was installed"
fetch "$url_dir/$asset" "$tmp/$asset" || die "cannot download $url_dir/$asset; nothing was installed"
actual=$(cd "$tmp" && $hasher "$asset" | awk '{ print tolower($1) }')
[ "$actual" = "$expected" ] ||
  die "checksum mismatch for $asset: expected $expected, got $actual; the download is damaged or was tampered with, nothing was installed"

# --- install atomically: a temp file in the target folder, then rename ------------------------
mkdir -p "$install_dir" || die "cannot create $install_dir; set RIVET_INSTALL_DIR to a folder you can write"
[ -w "$install_dir" ] || die "$install_dir is not writable; set RIVET_INSTALL_DIR to a folder you can write"
staged="$install_dir/.rivet.install.$$"
cp "$tmp/$asset" "$staged" || die "cannot write into $install_dir"
chmod 755 "$staged" || die "cannot make $staged executable"
mv -f "$staged" "$install_dir/rivet" || die "cannot move the binary to $install_dir/rivet"
staged=""

say "installed $install_dir/rivet ($asset ${version:-latest}, sha256 $actual)"
case ":${PATH:-}:" in
  *":$install_dir:"*) ;;
  *) say "$install_dir is not on your PATH; add it, e.g.: export PATH=\"$install_dir:\$PATH\"" ;;
esac
