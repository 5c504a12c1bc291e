#!/usr/bin/env bash
# The teacher's figure pack: regenerates every image that the lesson notes and the README show. The notes show
# lessons/images/NN-<name>.png, the lesson's own PNG (the files scripts/lesson_images.sh also writes); the pack
# adds docs/figures/NN-<name>.svg (as the lesson drew it) and docs/figures/NN-<name>.png (the SVG rendered at
# twice the lesson's pixel size, for slides). Lesson 10's chart is not in lessons/images: its note shows the
# pack's PNG. docs/figures/manifest.tsv lists each file by its path from the repository root, with the
# lesson, the command and the seed that made it. Each lesson runs with its default settings and seed, so the numbers the
# notes quote match the figures. Lessons 09 and 10 train models: the whole pack takes a while (the manifest's
# header records how long the last run took, and on what).
#
#   scripts/figures.sh                    # every lesson that has figures; build folder: build (Release)
#   scripts/figures.sh 07 08              # only these lessons (their rows of the manifest are replaced)
#   BUILD=build-x JOBS=2 scripts/figures.sh
#
# PNG rendering needs rsvg-convert (Debian package librsvg2-bin); pngquant (package pngquant) then reduces each PNG
# to a 256-colour palette where that keeps the quality (about half the bytes). Both come through scripts/deps.sh.
# The test course/figures-manifest checks that every image a note links is in the manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
FIGURES=docs/figures
IMAGES=lessons/images
MANIFEST=$FIGURES/manifest.tsv
LIMIT_KB=600  # per lesson, PNG and SVG together: keep the repository small

source scripts/figure_list.sh
ALL=$FIGURE_LESSONS

chosen=()
if [ $# -eq 0 ]; then
  read -r -a chosen <<<"$ALL"
else
  for want in "$@"; do
    [[ $want =~ ^[0-9]{2}$ ]] || { echo "figures.sh: got '$want', expected a two-digit lesson number" >&2; exit 2; }
    found=""
    for l in $ALL; do [ "${l%%-*}" = "$want" ] && found=$l; done
    [ -n "$found" ] || { echo "figures.sh: lesson $want has no figures in the notes; lessons with figures: $ALL" >&2; exit 2; }
    chosen+=("$found")
  done
fi

bash scripts/deps.sh librsvg2-bin pngquant
for tool in rsvg-convert pngquant; do
  command -v $tool >/dev/null || { echo "figures.sh: $tool is missing (scripts/deps.sh librsvg2-bin pngquant)" >&2; exit 1; }
done

cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DGRADLAB_BUILD_LESSONS=ON >/dev/null
targets=()
for l in "${chosen[@]}"; do targets+=(--target "lesson-$l"); done
cmake --build "$BUILD" -j"$JOBS" "${targets[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$FIGURES" "$IMAGES"
# Keep the manifest rows of lessons not run this time.
rows="$tmp/rows.tsv"
: >"$rows"
if [ -f "$MANIFEST" ]; then
  grep -v '^#' "$MANIFEST" | while IFS=$'\t' read -r file lesson rest; do
    keep=1
    for l in "${chosen[@]}"; do [ "$lesson" = "$l" ] && keep=0; done
    [ $keep -eq 0 ] || printf '%s\t%s\t%s\n' "$file" "$lesson" "$rest"
  done >"$rows"
fi

status=0
start_all=$(date +%s)
for l in "${chosen[@]}"; do
  nn=${l%%-*}
  echo "== lesson $l"
  t0=$(date +%s)
  if ! "./$BUILD/lessons/$l" --no-pause --out "$tmp/$l" >"$tmp/$l.log" 2>&1 </dev/null; then
    echo "lesson $l failed; its output:" >&2
    tail -30 "$tmp/$l.log" >&2
    status=1
    continue
  fi
  seed=$(sed -nE 's/^[[:space:]]*seed ([0-9]+).*/\1/p' "$tmp/$l.log" | head -1)
  total=0
  for f in ${SHOWN[$l]}; do
    svg="$tmp/$l/$f.svg"
    [ -f "$svg" ] || { echo "lesson $l wrote no $f.svg" >&2; status=1; continue; }
    cp "$svg" "$FIGURES/$nn-$f.svg"
    rsvg-convert --zoom 2 --format png --output "$tmp/$f.png" "$svg"
    # exit 98/99: the palette would not meet the quality floor; keep the full-colour rendering then
    pngquant --quality 70-95 --speed 1 --force --output "$FIGURES/$nn-$f.png" "$tmp/$f.png" ||
      cp "$tmp/$f.png" "$FIGURES/$nn-$f.png"
    for ext in png svg; do
      size=$(stat -c %s "$FIGURES/$nn-$f.$ext")
      total=$((total + size))
      printf '%s\t%s\t%s\t%s\n' "$FIGURES/$nn-$f.$ext" "$l" "./$BUILD/lessons/$l --no-pause --out DIR ($f.svg$([ $ext = png ] && echo ', rendered at 2x by rsvg-convert --zoom 2, then pngquant --quality 70-95'))" "${seed:-none}" >>"$rows"
      echo "   $FIGURES/$nn-$f.$ext  $((size / 1024)) KB"
    done
    if [[ " $IN_IMAGES " == *" $l "* ]]; then
      [ -f "$tmp/$l/$f.png" ] || { echo "lesson $l wrote no $f.png" >&2; status=1; continue; }
      cp "$tmp/$l/$f.png" "$IMAGES/$nn-$f.png"
      printf '%s\t%s\t%s\t%s\n' "$IMAGES/$nn-$f.png" "$l" "./$BUILD/lessons/$l --no-pause --out DIR ($f.png, as the lesson wrote it)" "${seed:-none}" >>"$rows"
      echo "   $IMAGES/$nn-$f.png  $(( $(stat -c %s "$IMAGES/$nn-$f.png") / 1024)) KB (the notes' image)"
    fi
  done
  if [ "$l" = 09-flagship ]; then
    cp "$tmp/$l/summary.json" "$IMAGES/09-summary.json"
    grep -E "Seed|effect|Mean over layers|Validation loss difference" "$tmp/$l.log" | sed 's/^/   /' || true
  fi
  echo "   lesson $l: $(( $(date +%s) - t0 )) s, seed ${seed:-none}"
  if [ $((total / 1024)) -gt $LIMIT_KB ]; then
    echo "warning: lesson $l's figures take $((total / 1024)) KB (> $LIMIT_KB KB)" >&2
  fi
done

{
  echo "# The figure pack, written by scripts/figures.sh: file (from the repository root), lesson, command (DIR: a temporary folder), seed."
  echo "# Last run: lessons ${chosen[*]} in $(( $(date +%s) - start_all )) s on $(nproc) cores ($(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average at the end $(cut -d' ' -f1-3 /proc/loadavg))."
  sort -t$'\t' -k1,1 "$rows"
} >"$MANIFEST"
echo "manifest: $MANIFEST ($(grep -vc '^#' "$MANIFEST") files)"
exit $status
