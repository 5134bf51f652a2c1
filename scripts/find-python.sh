#!/bin/sh
# Prints the first Python interpreter that is 3.11 or newer.
for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
        "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        command -v "$py"
        exit 0
    fi
done
exit 1
