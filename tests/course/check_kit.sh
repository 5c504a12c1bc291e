#!/usr/bin/env bash
# CI check of the course kit (scripts/course.sh), end to end:
#   1. init a workspace with every exercise stubbed
#   2. grading it (which builds only the test programs that hold the exercises' tests, not the lessons, bench or
#      fuzz targets, and runs them by their CTest label exercise-NN.M) fails every exercise, each with its own
#      stub's message
#   3. (only with --lessons) every lesson builds in the workspace and runs (--quick) or stops at a stub's message
#   4. solve restores every body byte for byte, and grading then passes every exercise (an incremental rebuild
#      of the solved files)
#   5. grading the untouched engine (this checkout, BUILD=build as scripts/test.sh left it) passes
# Each exercise needs at least one test in tests/exercises.cmake, and each named test must exist.
#   tests/course/check_kit.sh [--lessons] [WORKDIR]      (default build/kit-check; JOBS=2)
# CI runs it without --lessons (the 13 lessons would double the stubbed build); scripts/test.sh builds and runs
# the lessons of the untouched engine.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
LESSONS=0
if [ "${1:-}" = --lessons ]; then LESSONS=1; shift; fi
case ${1:-} in -*) echo "check_kit: unknown option '$1' (expected --lessons, then an optional WORKDIR)" >&2; exit 2 ;; esac
WORK=${1:-build/kit-check}
export JOBS=${JOBS:-2}
fail() { echo "check_kit: FAILED: $*" >&2; exit 1; }
step() { echo "== check_kit: $* ($(date +%T))"; }

rm -rf "$WORK"
mkdir -p "$WORK"
WS=$(cd "$WORK" && pwd)/ws
mapfile -t ids < <(scripts/course.sh list | awk 'NR > 1 { print $1 }')
[ ${#ids[@]} -ge 12 ] || fail "expected 12 to 15 exercises, found ${#ids[@]}"
for id in "${ids[@]}"; do
  grep -qE "^gradlab_exercise_test\\(${id//./\\.} " tests/exercises.cmake || fail "exercise $id has no test in tests/exercises.cmake"
done

step "1. init $WS with all ${#ids[@]} exercises stubbed"
scripts/course.sh init "$WS" >"$WORK/init.log" || { cat "$WORK/init.log"; fail "init"; }
for id in "${ids[@]}"; do
  grep -rq "not implemented: exercise $id (see lessons/" "$WS"/{tensor,autograd,nn,data,train,viz,cli} ||
    fail "the workspace has no stub for exercise $id"
done

step "2. grade the stubbed workspace (builds the exercises' test programs)"
set +e
(cd "$WS" && scripts/course.sh grade) >"$WORK/grade-stubbed.log" 2>&1
rc=$?
set -e
cat "$WORK/grade-stubbed.log"
[ $rc -eq 1 ] || fail "grading the stubbed workspace exited $rc, expected 1"
for id in "${ids[@]}"; do
  row=$(grep -E "^${id//./\\.} " "$WORK/grade-stubbed.log") || fail "no row for exercise $id in the grade table"
  grep -q " failed " <<<"$row" || fail "exercise $id did not fail on its stub: $row"
  grep -qF "not implemented: exercise $id (see lessons/" <<<"$row" || fail "exercise $id failed without its stub's message: $row"
  want=$(grep -cE "^gradlab_exercise_test\\(${id//./\\.} " tests/exercises.cmake)
  got=$(cd "$WS/build" && ctest -N -L "^exercise-${id//./\\.}\$" | sed -nE 's/^Total Tests: ([0-9]+)/\1/p')
  [ "$got" = "$want" ] || fail "exercise $id: tests/exercises.cmake names $want tests, CTest labels $got (a renamed test?)"
done

if [ $LESSONS -eq 1 ]; then
step "3. build every lesson in the workspace and run it --quick"
cmake --build "$WS/build" -j"$JOBS" --target $(cd "$WS/lessons" && ls [0-9][0-9]-*.cpp | sed 's/\.cpp$//; s/^/lesson-/') \
  >"$WORK/lessons-build.log" 2>&1 || { tail -30 "$WORK/lessons-build.log"; fail "the stubbed workspace's lessons do not build"; }
for exe in "$WS"/build/lessons/[0-9][0-9]-*; do
  name=$(basename "$exe")
  set +e
  timeout 600 "$exe" --quick --no-pause --out "$WORK/lesson-out/$name" </dev/null >"$WORK/lesson-$name.log" 2>&1
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    echo "   lesson $name runs without the missing pieces"
  elif [ $rc -eq 1 ] && grep -qE 'not implemented: exercise [0-9.]+' "$WORK/lesson-$name.log"; then
    echo "   lesson $name needs $(grep -m1 -oE 'exercise [0-9.]+' "$WORK/lesson-$name.log") (stops with its message)"
  else
    tail -20 "$WORK/lesson-$name.log"
    fail "lesson $name exited $rc in the stubbed workspace without a stub's message"
  fi
done
else
  step "3. skipped: the lessons in the stubbed workspace (pass --lessons)"
fi

step "4. solve every exercise; the engine must come back byte for byte, and grade must pass"
(cd "$WS" && scripts/course.sh solve "${ids[@]}") >"$WORK/solve.log"
while IFS= read -r -d '' f; do
  cmp -s "$ROOT/$f" "$WS/$f" || fail "solve did not restore $f exactly"
done < <(git ls-files -z -- tensor autograd nn data train viz cli)
(cd "$WS" && scripts/course.sh grade) >"$WORK/grade-solved.log" 2>&1 || { cat "$WORK/grade-solved.log"; fail "grading the solved workspace"; }
tail -3 "$WORK/grade-solved.log"

step "5. grade the untouched engine in $ROOT (BUILD=${BUILD:-build})"
scripts/course.sh grade >"$WORK/grade-engine.log" 2>&1 || { cat "$WORK/grade-engine.log"; fail "grading the untouched engine"; }
tail -3 "$WORK/grade-engine.log"
echo "check_kit: passed"
