#!/usr/bin/env bash
# Checks that every ```cpp block of README.md is copied verbatim from a snippet region
# (between the lines `// [snippet]` and `// [/snippet]`) of an examples/*.cpp file, so the
# README cannot drift from the compiled and tested examples. Also checks that the snippet
# markers are well formed. Exits 0 when all is well; lists the offending blocks otherwise.
#
#   usage: bash tools/check-readme-snippets.sh [README] [EXAMPLES_DIR]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readme="${1:-README.md}"
examples_dir="${2:-examples}"

status=0

# ---- the snippet regions of the examples, each ending with a separator line ----------
separator=$'\x01'
regions=$'\n'
shopt -s nullglob
example_files=("$examples_dir"/*.cpp)
if [ "${#example_files[@]}" -eq 0 ]; then
  echo "check-readme-snippets: no $examples_dir/*.cpp files" >&2
  exit 1
fi
for file in "${example_files[@]}"; do
  # Well-formed markers: alternate open/close, none left open.
  if ! awk -v file="$file" '
      /^[[:space:]]*\/\/ \[snippet\][[:space:]]*$/  { if (open) { printf "%s:%d: [snippet] inside a snippet\n", file, NR; bad = 1 } open = 1; next }
      /^[[:space:]]*\/\/ \[\/snippet\][[:space:]]*$/ { if (!open) { printf "%s:%d: [/snippet] without [snippet]\n", file, NR; bad = 1 } open = 0; next }
      END { if (open) { printf "%s: unterminated [snippet]\n", file; bad = 1 } exit bad }
    ' "$file" >&2; then
    status=1
  fi
  regions+="$(awk -v sep="$separator" '
      /^[[:space:]]*\/\/ \[snippet\][[:space:]]*$/  { open = 1; next }
      /^[[:space:]]*\/\/ \[\/snippet\][[:space:]]*$/ { open = 0; print sep; next }
      open { print }
    ' "$file")"$'\n'
done

# ---- the ```cpp blocks of the README ---------------------------------------------------
if [ ! -f "$readme" ]; then
  echo "check-readme-snippets: $readme not found" >&2
  exit 1
fi

blocks=0
block=""
in_block=0
start_line=0
line_no=0
while IFS= read -r line || [ -n "$line" ]; do
  line_no=$((line_no + 1))
  if [ "$in_block" -eq 0 ]; then
    if [[ "$line" =~ ^\`\`\`(cpp|c\+\+)[[:space:]]*$ ]]; then
      in_block=1
      block=""
      start_line=$line_no
    fi
    continue
  fi
  if [[ "$line" =~ ^\`\`\`[[:space:]]*$ ]]; then
    in_block=0
    blocks=$((blocks + 1))
    # Verbatim: whole lines (the match starts after a newline) inside one region (a region
    # never contains the separator line, so a match cannot straddle two regions).
    if [ -z "$block" ]; then
      echo "$readme:$start_line: empty cpp block" >&2
      status=1
    elif [[ "$regions" != *$'\n'"$block"* ]]; then
      echo "$readme:$start_line: this cpp block is not in any [snippet] region of $examples_dir/*.cpp:" >&2
      printf '%s' "$block" | sed 's/^/    | /' >&2
      status=1
    fi
    continue
  fi
  block+="$line"$'\n'
done < "$readme"

if [ "$in_block" -ne 0 ]; then
  echo "$readme:$start_line: unterminated cpp block" >&2
  status=1
fi
if [ "$blocks" -eq 0 ]; then
  echo "check-readme-snippets: no cpp blocks in $readme" >&2
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "check-readme-snippets: all $blocks cpp blocks of $readme are verbatim copies of example snippets"
fi
exit "$status"
