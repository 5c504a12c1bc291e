#!/usr/bin/env bash
# Regenerates the images that the lesson notes (lessons/NN-name.md) show, into lessons/images/NN-<file>.png.
# Each lesson runs with its default settings (lesson 09 trains two models: a few minutes on 2 cores), into a
# temporary folder; only the pictures the notes use are copied. Lessons 09's and 14's summary.json are kept
# beside them so the numbers quoted in their notes can be traced to a run.
#
#   scripts/lesson_images.sh              # build dir: build (Release)
#   BUILD=build-x scripts/lesson_images.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
IMAGES=lessons/images
LIMIT_KB=300

source scripts/figure_list.sh
# the lessons whose notes show lessons/images/ pictures, in FIGURE_LESSONS order
ORDER=""
for l in $FIGURE_LESSONS; do [[ " $IN_IMAGES " == *" $l "* ]] && ORDER+="$l "; done

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGRADLAB_BUILD_LESSONS=ON >/dev/null
targets=()
for l in $ORDER; do targets+=(--target "lesson-$l"); done
cmake --build "$BUILD" -j"$JOBS" "${targets[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$IMAGES"
status=0
for l in $ORDER; do
  nn=${l%%-*}
  echo "== lesson $l"
  if ! "./$BUILD/lessons/$l" --no-pause --out "$tmp/$l" >"$tmp/$l.log" 2>&1; then
    echo "lesson $l failed; its output:" >&2
    tail -30 "$tmp/$l.log" >&2
    status=1
    continue
  fi
  total=0
  for f in ${SHOWN[$l]}; do
    cp "$tmp/$l/$f.png" "$IMAGES/$nn-$f.png"
    size=$(stat -c %s "$IMAGES/$nn-$f.png")
    total=$((total + size))
    echo "   $IMAGES/$nn-$f.png  $((size / 1024)) KB"
  done
  if [ "$l" = 14-sink-remedies ]; then
    cp "$tmp/$l/summary.json" "$IMAGES/14-summary.json"
  fi
  if [ "$l" = 09-flagship ]; then
    cp "$tmp/$l/summary.json" "$IMAGES/09-summary.json"
    grep -E "Seed|effect|Mean over layers|Validation loss difference" "$tmp/$l.log" | sed 's/^/   /'
  fi
  if [ $((total / 1024)) -gt $LIMIT_KB ]; then
    echo "warning: lesson $l's images take $((total / 1024)) KB (> $LIMIT_KB KB)" >&2
  fi
done
exit $status
