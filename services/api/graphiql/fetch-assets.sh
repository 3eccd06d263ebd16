#!/usr/bin/env bash
# Refreshes the vendored GraphiQL assets that graphiql.go embeds.
#
# The appliance has no internet access, so the GraphiQL page cannot load
# anything from a CDN: the browser bundles are committed under assets/ and
# compiled into the binary. This script is only needed when bumping a version;
# the build itself never runs it.
#
# Versions are pinned exactly and every tarball is checked against a pinned
# integrity hash, so re-running the script reproduces the committed files
# byte for byte (it is idempotent) and a changed upstream tarball is caught.
#
# Why these versions:
#   graphiql 3.9.0 is the newest 3.x release; its UMD bundle
#   (graphiql.min.js, ~1 MB, graphql-js and CodeMirror included) takes React
#   from window globals, so plain <script> tags work without a bundler.
#   react/react-dom 18.x is the last major line with UMD builds (19 dropped
#   them); 18.3.1 is the newest 18.x release.
#
# Requires: npm and node (npm's own runtime). Uses `npm pack`, which downloads
# the tarball without running any package scripts.
set -euo pipefail

GRAPHIQL_VERSION=3.9.0
REACT_VERSION=18.3.1

# Expected "dist.integrity" of each tarball, as published in the registry.
declare -A INTEGRITY=(
	["graphiql@${GRAPHIQL_VERSION}"]="sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
	["react@${REACT_VERSION}"]="sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
	["react-dom@${REACT_VERSION}"]="sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)

# package spec -> "path-in-package:name-in-assets ..."
declare -A FILES=(
	["graphiql@${GRAPHIQL_VERSION}"]="graphiql.min.js:graphiql.min.js graphiql.min.css:graphiql.min.css LICENSE:LICENSE.graphiql"
	["react@${REACT_VERSION}"]="umd/react.production.min.js:react.production.min.js LICENSE:LICENSE.react"
	["react-dom@${REACT_VERSION}"]="umd/react-dom.production.min.js:react-dom.production.min.js LICENSE:LICENSE.react-dom"
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${here}/assets"

for tool in npm node tar; do
	command -v "$tool" >/dev/null || {
		echo "fetch-assets: $tool is required" >&2
		exit 1
	}
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="${work}/assets"
mkdir -p "$stage"

for spec in "graphiql@${GRAPHIQL_VERSION}" "react@${REACT_VERSION}" "react-dom@${REACT_VERSION}"; do
	pkgdir="${work}/${spec}"
	mkdir -p "$pkgdir"
	# Run from the temp dir so no project npm config or package.json applies.
	tarball="$(cd "$work" && npm pack --silent --pack-destination "$pkgdir" "$spec" | tail -n 1)"
	tarball="${pkgdir}/${tarball}"
	[[ -f "$tarball" ]] || {
		echo "fetch-assets: npm pack $spec produced no tarball" >&2
		exit 1
	}

	got="sha512-$(node -e 'const c=require("crypto"),fs=require("fs");process.stdout.write(c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")"
	if [[ "$got" != "${INTEGRITY[$spec]}" ]]; then
		echo "fetch-assets: integrity mismatch for $spec" >&2
		echo "  want ${INTEGRITY[$spec]}" >&2
		echo "  got  $got" >&2
		exit 1
	fi

	tar -xzf "$tarball" -C "$pkgdir"
	for pair in ${FILES[$spec]}; do
		src="${pkgdir}/package/${pair%%:*}"
		[[ -f "$src" ]] || {
			echo "fetch-assets: $spec has no ${pair%%:*}" >&2
			exit 1
		}
		install -m 0644 "$src" "${stage}/${pair##*:}"
	done
done

# Replace assets/ wholesale so it holds exactly the files listed above and
# nothing stale from an earlier version is left to be embedded.
rm -rf "$dest"
mv "$stage" "$dest"

echo "fetch-assets: wrote ${dest}:"
(cd "$dest" && ls -l)
du -sh "$dest"
