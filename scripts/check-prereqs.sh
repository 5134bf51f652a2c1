#!/bin/sh
# Says clearly what is missing before anything is installed.
ok=1
if ! "$(dirname "$0")/find-python.sh" >/dev/null; then
    echo "Python 3.11 or newer is missing: install it (e.g. apt-get install python3 python3-venv)."
    ok=0
elif ! py=$("$(dirname "$0")/find-python.sh") || ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "Python's venv module is missing: install it (e.g. apt-get install python3-venv)."
    ok=0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "npm is missing: install Node.js 18+ with npm (e.g. apt-get install nodejs npm)."
    ok=0
fi
[ "$ok" = 1 ] || exit 1
