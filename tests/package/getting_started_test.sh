#!/usr/bin/env bash
# Runs docs/getting-started.md as a script (package_getting_started_test): every fenced
# block of the document, in order, in an empty work directory:
#   ```<lang> file=PATH   written to PATH (relative to the work directory)
#   ```sh                 run (all blocks in one shell: exports and cd carry over);
#                         a failing command fails the test with the block's output
#   ```text output        the output (stdout and stderr) the preceding ```sh block must
#                         print, line for line; a line `...` stands for any lines
# Other blocks are prose. The document's commands use STRATA_SRC, STRATA_BUILD and
# STRATA_PREFIX; this script sets them to the source tree, the current build and a
# prefix under the work directory, and builds the project with ccache when given.
#
# Usage: getting_started_test.sh DOC STRATA_SRC STRATA_BUILD WORK_DIR CXX [CCACHE]
set -euo pipefail

if [ $# -lt 5 ]; then
  echo "usage: $0 DOC STRATA_SRC STRATA_BUILD WORK_DIR CXX [CCACHE]" >&2
  exit 2
fi
doc=$1
work=$4
rm -rf "$work"
mkdir -p "$work/project" "$work/steps"
steps=$work/steps

export STRATA_SRC=$2 STRATA_BUILD=$3 STRATA_PREFIX=$work/prefix CXX=$5
if [ -n "${6:-}" ]; then export CMAKE_CXX_COMPILER_LAUNCHER=$6; fi

# The document as a script of `doc_file PATH`, `doc_step N` and `doc_expect N` calls,
# each fed its block as a here-document.
awk -v eof=STRATA_GETTING_STARTED_EOF '
  function open_block(call) { print call " <<'"'"'" eof "'"'"'"; inside = 1 }
  /^```/ && inside { print eof; inside = 0; skipping = 0; next }
  /^```/ && skipping { skipping = 0; next }
  /^```/ {
    info = substr($0, 4)
    if (info ~ /(^| )file=/) {
      path = info; sub(/.*file=/, "", path); sub(/ .*/, "", path)
      files++; open_block("doc_file \"" path "\"")
    } else if (info ~ /^(sh|bash|shell)( |$)/) {
      n++; open_block("doc_step " n)
    } else if (info ~ /^text +output( |$)/) {
      if (n == 0) { print "echo \"an output block before any command\" >&2; exit 1"; exit 1 }
      outputs++; open_block("doc_expect " n)
    } else {
      skipping = 1
    }
    next
  }
  inside { print }
  END {
    if (inside) { print "echo \"unterminated block\" >&2; exit 1" }
    printf "doc_done %d %d %d\n", files, n, outputs
  }
' "$doc" > "$work/doc-script.sh"

current=""
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "$current" ]; then
    echo "FAILED at step $current of $doc (exit $rc):" >&2
    sed 's/^/  $ /' "$steps/$current.sh" >&2
    echo "its output:" >&2
    cat "$steps/$current.out" >&2 || true
  fi
}
trap on_exit EXIT

doc_file() {
  mkdir -p "$(dirname "$1")"
  cat > "$1"
  echo "== wrote $1 ($(wc -l < "$1") lines)"
}

# Sourced (not run in a subshell), so that exports and cd carry over like in a reader's
# shell; set -e stops at the first failing command.
doc_step() {
  current=$1
  cat > "$steps/$1.sh"
  echo "== step $1"
  sed 's/^/  $ /' "$steps/$1.sh"
  # shellcheck disable=SC1090
  source "$steps/$1.sh" > "$steps/$1.out" 2>&1 < /dev/null
  current=""
}

# Whether the lines of $2 match those of $1, where a line `...` of $1 matches any lines.
matches() {
  local -a want got
  mapfile -t want < "$1"
  mapfile -t got < "$2"
  local i=0 j=0
  while [ $i -lt ${#want[@]} ]; do
    if [ "${want[i]}" = "..." ]; then
      i=$((i + 1))
      [ $i -lt ${#want[@]} ] || return 0
      while [ $j -lt ${#got[@]} ] && [ "${got[j]}" != "${want[i]}" ]; do j=$((j + 1)); done
      [ $j -lt ${#got[@]} ] || return 1
    else
      [ $j -lt ${#got[@]} ] && [ "${got[j]}" = "${want[i]}" ] || return 1
      i=$((i + 1))
      j=$((j + 1))
    fi
  done
  [ $j -eq ${#got[@]} ]
}

doc_expect() {
  cat > "$steps/$1.want"
  if ! matches "$steps/$1.want" "$steps/$1.out"; then
    echo "FAILED: the output of step $1 of $doc differs from the document's" >&2
    sed 's/^/  $ /' "$steps/$1.sh" >&2
    echo "the document shows:" >&2
    cat "$steps/$1.want" >&2
    echo "it printed:" >&2
    cat "$steps/$1.out" >&2
    exit 1
  fi
  echo "   output as shown"
}

doc_done() {
  echo "== $doc: $1 files, $2 command blocks, $3 outputs checked"
  if [ "$1" -lt 1 ] || [ "$2" -lt 1 ] || [ "$3" -lt 1 ]; then
    echo "FAILED: expected files, commands and outputs in $doc" >&2
    exit 1
  fi
}

cd "$work/project"
# shellcheck disable=SC1091
source "$work/doc-script.sh"
echo "getting started: every step of $doc ran as shown"
