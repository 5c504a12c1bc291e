#!/usr/bin/env bash
# The course kit: graded exercises cut from the engine itself (lessons/README.md, "The course kit").
#
# An exercise is a function body in the engine between a comment pair that the build ignores:
#     // exercise 05.2 begin: layernorm backward ...
#     ...the engine's own code...
#     // exercise 05.2 end
# Its tests carry the CTest label exercise-05.2 (tests/exercises.cmake says which tests those are).
#
#   scripts/course.sh list                          the exercises: id, lesson, file, title
#   scripts/course.sh init DIR [--lessons 05,07]    copy the repository (git-tracked files) to DIR, with the marked
#                                                   bodies of those lessons (default: every lesson) replaced by a stub
#   scripts/course.sh grade [ID...]                 (in DIR) build the tests the exercises need, run them, print a table;
#                                                   exit 0 only when every graded exercise passes
#   scripts/course.sh solve ID...                   (in DIR) put the engine's body back (the current one is kept
#                                                   in .course/attempts/ first)
#
# Environment: BUILD (build folder, default build), JOBS (default 2). ccache is used when it is installed.
# Exit codes: 0 ok, 1 a failed exercise or build, 2 bad usage or input.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)  # physical, as git reports its top
ENGINE_DIRS=(tensor autograd nn data train viz cli)
MARK_RE='// exercise [0-9][0-9]\.[0-9]+ (begin|end)'

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die_usage() { echo "course.sh: $*" >&2; exit 2; }
die() { echo "course.sh: $*" >&2; exit 1; }

# The lesson notes of an exercise: 05.2 -> lessons/05-backprop.md (relative to $1).
lesson_note() {
  local root=$1 id=$2 note
  note=$(cd "$root" && ls lessons/"${id%%.*}"-*.md 2>/dev/null | head -1)
  [ -n "$note" ] || die "exercise $id: no lesson notes lessons/${id%%.*}-*.md"
  echo "$note"
}

# Every marker in the engine of $1, checked: one begin and one end per id, in one file, begin first, no nesting.
# Prints "id<TAB>file<TAB>begin line<TAB>end line<TAB>title", sorted by id.
scan_markers() {
  local root=$1
  (cd "$root" && grep -rnE --include='*.cpp' --include='*.h' "$MARK_RE" "${ENGINE_DIRS[@]}" 2>/dev/null || true) |
    awk -F: '
      {
        file = $1; line = $2; text = substr($0, length($1) + length($2) + 3)
        if (!match(text, /exercise [0-9][0-9]\.[0-9]+ (begin|end)/)) next
        split(substr(text, RSTART, RLENGTH), w, " ")
        id = w[2]; kind = w[3]
        title = substr(text, RSTART + RLENGTH); sub(/^: */, "", title)
        if (kind == "begin") {
          if (id in bfile) { printf "two begin markers for exercise %s (%s:%s and %s:%s)\n", id, bfile[id], bline[id], file, line > "/dev/stderr"; bad = 1 }
          if (open[file] != "") { printf "exercise %s begins inside exercise %s (%s:%s)\n", id, open[file], file, line > "/dev/stderr"; bad = 1 }
          bfile[id] = file; bline[id] = line; btitle[id] = title; open[file] = id
        } else {
          if (!(id in bfile) || bfile[id] != file || open[file] != id) { printf "end marker of exercise %s without its begin (%s:%s)\n", id, file, line > "/dev/stderr"; bad = 1; next }
          if (id in eline) { printf "two end markers for exercise %s (%s:%s)\n", id, file, line > "/dev/stderr"; bad = 1 }
          eline[id] = line; open[file] = ""
        }
      }
      END {
        for (id in bfile) {
          if (!(id in eline)) { printf "exercise %s has no end marker (%s:%s)\n", id, bfile[id], bline[id] > "/dev/stderr"; bad = 1; continue }
          printf "%s\t%s\t%s\t%s\t%s\n", id, bfile[id], bline[id], eline[id], btitle[id]
        }
        exit bad
      }' | sort -t. -k1,1n -k2,2n
  [ "${PIPESTATUS[1]}" -eq 0 ] || die "the exercise markers in $root are malformed (see above)"
}

# The CTest names graded by one exercise, from tests/exercises.cmake: gradlab_exercise_test(05.2 "folder/name")
exercise_tests() {
  local root=$1 id=$2
  sed -nE "s/^[[:space:]]*gradlab_exercise_test\([[:space:]]*${id//./\\.}[[:space:]]+\"(.*)\"[[:space:]]*\)[[:space:]]*$/\1/p" \
    "$root/tests/exercises.cmake"
}

# The exercises a workspace grades: those init stubbed (.course/exercises), or every marked one in an untouched engine.
graded_ids() {
  local root=$1
  if [ -f "$root/.course/exercises" ]; then cat "$root/.course/exercises"; else scan_markers "$root" | cut -f1; fi
}

# Replace lines (begin, end) exclusive of file $1 with the contents of file $4 (a region between markers).
replace_region() {
  local file=$1 b=$2 e=$3 body=$4 tmp
  tmp=$(mktemp "$file.XXXXXX")
  { head -n "$b" "$file"; cat "$body"; tail -n +"$e" "$file"; } >"$tmp"
  chmod --reference="$file" "$tmp"
  mv "$tmp" "$file"
}

cmd_list() {
  printf '%-9s %-24s %-30s %s\n' exercise lesson file title
  scan_markers "$ROOT" | while IFS=$'\t' read -r id file b e title; do
    printf '%-9s %-24s %-30s %s\n' "$id" "$(basename "$(lesson_note "$ROOT" "$id")" .md)" "$file" "$title"
  done
}

cmd_init() {
  local dir="" lessons=""
  while [ $# -gt 0 ]; do
    case $1 in
      --lessons|--lessons=*)
        if [ "$1" = --lessons ]; then [ $# -ge 2 ] || die_usage "--lessons needs a value, e.g. --lessons 05,07"; lessons=$2; shift; else lessons=${1#*=}; fi ;;
      -h|--help) usage ;;
      -*) die_usage "init: unknown option '$1' (expected --lessons NN,NN)" ;;
      *) [ -z "$dir" ] || die_usage "init: got a second folder '$1', expected one DIR"; dir=$1 ;;
    esac
    shift
  done
  [ -n "$dir" ] || die_usage "init: expected a folder: scripts/course.sh init DIR [--lessons 05,07]"
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die_usage "init: $dir exists and is not empty; choose a new folder (nothing was written)"
  fi
  command -v git >/dev/null || die "init: needs git to list the repository's files"
  [ ! -d "$ROOT/.course" ] || die_usage "init: $ROOT is a workspace; run init from the repository it came from"
  [ "$(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null)" = "$ROOT" ] || die "init: $ROOT is not the top of a git checkout"

  local markers; markers=$(scan_markers "$ROOT")
  local available; available=$(cut -f1 <<<"$markers" | cut -d. -f1 | sort -u | tr '\n' ' ')
  local chosen=()
  if [ -z "$lessons" ] || [ "$lessons" = all ]; then
    read -r -a chosen <<<"$available"
  else
    local l
    for l in ${lessons//,/ }; do
      [[ $l =~ ^[0-9]+$ ]] || die_usage "init: got lesson '$l' in --lessons $lessons, expected two-digit numbers like 05,07"
      l=$(printf '%02d' "$((10#$l))")
      grep -qw "$l" <<<"$available" || die_usage "init: lesson $l has no exercises; lessons with exercises: $available"
      chosen+=("$l")
    done
  fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The git-tracked files as they are in the working tree (a file deleted there but still tracked is skipped).
  (cd "$ROOT" && git ls-files -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | (cd "$dir" && tar -xf -)
  [ -f "$dir/CMakeLists.txt" ] || die "init: copying the tracked files of $ROOT to $dir failed"
  mkdir -p "$dir/.course/solutions"
  echo "copied from $ROOT at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" >"$dir/.course/origin"
  : >"$dir/.course/exercises"
  local id file b e title note stub n=0
  # Bottom-up per file, so that earlier line numbers stay valid while regions shrink.
  while IFS=$'\t' read -r id file b e title; do
    grep -qw "${id%%.*}" <<<"${chosen[*]}" || continue
    note=$(lesson_note "$ROOT" "$id")
    sed -n "$((b + 1)),$((e - 1))p" "$ROOT/$file" >"$dir/.course/solutions/$id"
    local indent; indent=$(sed -n "${b}p" "$ROOT/$file" | sed -E 's/^([[:space:]]*).*/\1/')
    stub=$(mktemp)
    printf '%sthrow std::logic_error("not implemented: exercise %s (see %s)");\n' "$indent" "$id" "$note" >"$stub"
    replace_region "$dir/$file" "$b" "$e" "$stub"
    rm -f "$stub"
    echo "$id" >>"$dir/.course/exercises"
    echo "  stubbed exercise $id  $file  ($title)"
    n=$((n + 1))
  done < <(sort -t$'\t' -k2,2 -k3,3nr <<<"$markers")
  sort -t. -k1,1n -k2,2n -o "$dir/.course/exercises" "$dir/.course/exercises"
  echo "workspace $dir: $n exercises from lessons ${chosen[*]}"
  echo "next: cd $dir && scripts/course.sh grade      (builds the tests, prints what fails)"
}

# Builds the test programs that the exercises' tests live in.
build_tests() {
  local root=$1; shift
  local build=${BUILD:-build} jobs=${JOBS:-2} folders=() targets=() id
  for id in "$@"; do
    while IFS= read -r t; do folders+=("${t%%/*}"); done < <(exercise_tests "$root" "$id")
  done
  [ ${#folders[@]} -gt 0 ] || die "no tests are listed for exercises $* in tests/exercises.cmake"
  local f
  for f in $(printf '%s\n' "${folders[@]}" | sort -u); do targets+=(--target "test_$f"); done
  local launcher=()
  # ccache only for a fresh build folder: changing the launcher of a configured one would rebuild everything
  if command -v ccache >/dev/null && [ ! -f "$root/$build/CMakeCache.txt" ]; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  mkdir -p "$root/$build"
  cmake -S "$root" -B "$root/$build" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >"$root/$build/course-configure.log" 2>&1 ||
    { tail -20 "$root/$build/course-configure.log" >&2; return 1; }
  cmake --build "$root/$build" -j"$jobs" "${targets[@]}" >"$root/$build/course-build.log" 2>&1 ||
    { grep -E 'error|Error' "$root/$build/course-build.log" | head -20 >&2; return 1; }
}

# The first failing check of a ctest run's output, as one line: a stub's message, or doctest's first failed
# check with what the test logged (its sentence: input, expected and actual) and the values it compared.
first_failure() {
  local out=$1 line
  line=$(grep -m1 -oE 'not implemented: exercise [0-9.]+ \(see [^)]*\)' "$out" || true)
  if [ -z "$line" ]; then
    line=$(awk '
      function flush() { gsub(/[[:space:]]+/, " ", text); print text; done = 1; exit }
      /: MESSAGE: / && note == "" { note = $0; sub(/^.*: MESSAGE: /, "", note) }
      /: ERROR: / { err = $0; sub(/^.*: ERROR: /, "", err); mode = "error"; next }
      mode == "error" && /^[[:space:]]*values: / {
        v = $0; sub(/^[[:space:]]*values: /, "", v)
        if (v !~ /^[A-Z_]+\( *(true|false) *\)$/) values = v  # a bare boolean says nothing
        next
      }
      mode == "error" && /^[[:space:]]*logged: / { l = $0; sub(/^[[:space:]]*logged: /, "", l); logged = l; mode = "logged"; next }
      mode == "logged" && /^[[:space:]][[:space:]][[:space:]][[:space:]][[:space:]][[:space:]]+[^[:space:]]/ { l = $0; sub(/^[[:space:]]+/, "", l); logged = logged "; " l; next }
      mode != "" && (/^[[:space:]]*$/ || /^=+$/) {
        text = (logged != "" ? logged : err)
        if (note != "") text = note " -- " text
        if (values != "" && logged != "") text = text " [" values "]"
        else if (values != "") text = text " " values
        flush()
      }
      END { if (!done && mode != "") { text = (logged != "" ? logged : err) " " values; gsub(/[[:space:]]+/, " ", text); print text } }
    ' "$out")
  fi
  [ -n "$line" ] || line=$(grep -m1 -iE 'failed|error|exception' "$out" || echo "see $out")
  echo "${line:0:220}"
}

cmd_grade() {
  local ids=() id
  if [ $# -gt 0 ]; then
    for id in "$@"; do
      [[ $id =~ ^[0-9]{2}\.[0-9]+$ ]] || die_usage "grade: got '$id', expected an exercise id like 05.2"
      graded_ids "$ROOT" | grep -qxF "$id" || die_usage "grade: exercise $id is not one of this workspace's: $(graded_ids "$ROOT" | tr '\n' ' ')"
      ids+=("$id")
    done
  else
    mapfile -t ids < <(graded_ids "$ROOT")
  fi
  [ ${#ids[@]} -gt 0 ] || die "grade: no exercises to grade"
  local build=${BUILD:-build}
  echo "course.sh: building the tests of ${#ids[@]} exercises in $ROOT/$build (log: $build/course-build.log)"
  local built=1
  build_tests "$ROOT" "${ids[@]}" || built=0
  local logs="$ROOT/$build/course-grade"
  mkdir -p "$logs"
  local failed=0 result why note
  printf '\n%-9s %-24s %-7s %s\n' exercise lesson result "first failing check"
  for id in "${ids[@]}"; do
    note=$(basename "$(lesson_note "$ROOT" "$id")" .md)
    local out="$logs/$id.log"
    if [ $built -eq 0 ]; then
      result=failed; why="the build failed: see $build/course-build.log"
    elif (cd "$ROOT/$build" && ctest -L "^exercise-${id//./\\.}\$" --output-on-failure --timeout 300) >"$out" 2>&1; then
      if grep -qE '^100% tests passed, 0 tests failed out of [1-9]' "$out"; then
        result=passed; why=""
      else
        result=failed; why="no test carries the label exercise-$id (tests/exercises.cmake)"
      fi
    else
      result=failed; why=$(first_failure "$out")
    fi
    [ $result = passed ] || failed=$((failed + 1))
    printf '%-9s %-24s %-7s %s\n' "$id" "$note" "$result" "$why"
  done
  echo
  if [ $failed -eq 0 ]; then
    echo "all ${#ids[@]} exercises pass"
    return 0
  fi
  echo "$failed of ${#ids[@]} exercises fail; the full test output is in $build/course-grade/ID.log"
  return 1
}

cmd_solve() {
  [ $# -gt 0 ] || die_usage "solve: expected exercise ids, e.g. scripts/course.sh solve 05.2"
  [ -d "$ROOT/.course/solutions" ] || die_usage "solve: $ROOT is not a workspace made by 'course.sh init'"
  local id markers file b e title stamp
  markers=$(scan_markers "$ROOT")
  stamp=$(date +%Y%m%d-%H%M%S)
  for id in "$@"; do
    [ -f "$ROOT/.course/solutions/$id" ] || die_usage "solve: exercise $id was not stubbed in this workspace; these were: $(tr '\n' ' ' <"$ROOT/.course/exercises")"
    IFS=$'\t' read -r _ file b e title < <(awk -F'\t' -v id="$id" '$1 == id' <<<"$markers") || true
    [ -n "${file:-}" ] || die "solve: the markers of exercise $id are gone from the engine; put back '// exercise $id begin' and '// exercise $id end'"
    mkdir -p "$ROOT/.course/attempts"
    local keep="$ROOT/.course/attempts/$id.$stamp"
    sed -n "$((b + 1)),$((e - 1))p" "$ROOT/$file" >"$keep"
    replace_region "$ROOT/$file" "$b" "$e" "$ROOT/.course/solutions/$id"
    echo "solved exercise $id in $file (your version is kept in .course/attempts/$id.$stamp)"
    markers=$(scan_markers "$ROOT")
  done
}

[ $# -gt 0 ] || usage
command=$1; shift
case $command in
  list) cmd_list "$@" ;;
  init) cmd_init "$@" ;;
  grade) cmd_grade "$@" ;;
  solve) cmd_solve "$@" ;;
  -h|--help|help) usage ;;
  *) die_usage "unknown command '$command' (expected list, init, grade or solve)" ;;
esac
