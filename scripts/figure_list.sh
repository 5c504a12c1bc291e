# Sourced by scripts/figures.sh and scripts/lesson_images.sh: the one list of which lesson figures the notes show.
# lesson -> the figures (output stems) its notes show
declare -A SHOWN=(
  [02-derivatives]="derivative_error"
  [04-matmul]="gemm_ladder"
  [06-modules]="loss boundaries"
  [07-attention]="scores attention"
  [08-stablemask]="p_matrix softmax_with_pseudo real_mass untrained_compare"
  [09-flagship]="loss sink_side_by_side sink_emergence first_token_share"
  [10-position]="accuracy"
  [11-extrapolation]="loss_per_position"
  [12-kvcache]="row_mass_vs_length"
  [13-fused-attention]="time_vs_T memory_vs_T"
  [14-sink-remedies]="remedies metrics"
)
# Every lesson with figures, in the order they run (the lessons that train models last).
FIGURE_LESSONS="02-derivatives 04-matmul 06-modules 07-attention 08-stablemask 11-extrapolation 12-kvcache 13-fused-attention 10-position 09-flagship 14-sink-remedies"
# Lessons whose notes show lessons/images/NN-<name>.png (lesson 10's note shows docs/figures/10-accuracy.png).
IN_IMAGES="02-derivatives 04-matmul 06-modules 07-attention 08-stablemask 09-flagship 11-extrapolation 12-kvcache 13-fused-attention 14-sink-remedies"
