#!/usr/bin/env bash
# checksrc.sh - house rules that a compiler does not check (see HACKING.md):
# banned unbounded or unchecked libc calls, and a purpose paragraph at the
# top of every C file.  Exit 1 listing every violation.
set -u
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 2>/dev/null || find src tests -name '*.[ch]')
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|strtok|strncpy)[[:space:]]*\('
# a number read without looking where it ended: tg_parse_* reads it whole
unchecked='\bstrto(l|ll|ul|ull|d|f)[[:space:]]*\([^;]*,[[:space:]]*NULL'
srcfiles=$(echo "$files" | tr ' ' '\n' | grep '^src/')
hits=$( (grep -nE "$banned" $files; grep -nE "$unchecked" $srcfiles) | grep -v 'checksrc:allow')
if [ -n "$hits" ]; then
  echo "banned calls (use snprintf, tg_strlcpy, tg_parse_*, tg_buf_*; strto* with an end pointer):"
  echo "$hits"
  status=1
fi
for f in $files; do
  if ! head -3 "$f" | grep -q '^/\*'; then
    echo "$f: must open with a comment saying what the file is"
    status=1
  fi
done
[ $status -eq 0 ] && echo "checksrc: $(echo $files | wc -w) files clean"
exit $status
