#!/bin/sh
# Copies the front-end libraries installed by npm into the git-ignored static
# folder that Django serves. Nothing third-party is committed.
set -eu
cd "$(dirname "$0")/.."
dest=vigil/web/static/vendor
mkdir -p "$dest"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$dest/"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/"
echo "front-end libraries copied to $dest"
