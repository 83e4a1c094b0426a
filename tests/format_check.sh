#!/usr/bin/env bash
# Fails when a C++ file of the tree is not formatted by clang-format (.clang-format at the top).
set -euo pipefail
cd "$1"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard '*.cc' '*.h')
else
  files=$(find services tests \( -name '*.cc' -o -name '*.h' \))
fi
[ -n "$files" ] || { echo "no C++ files found"; exit 1; }
bad=0
for f in $files; do
  if ! clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=1
  fi
done
exit $bad
