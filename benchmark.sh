#!/usr/bin/env bash
# Runs the paper's experiment: every method on every game and seed. Each (game, seed) day runs once
# and saves a checkpoint; every method's night starts from it. Finished runs are skipped and killed
# ones resumed, so the same command can simply be started again. Prints each command as it starts it.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bash benchmark.sh [options] [-- flags passed to every script]

  --games "G ..."     ProcGen games (default: caveflyer chaser coinrun plunder)
  --seeds "S ..."     seeds (default: 1 2 3 4 5)
  --methods "M ..."   nights to run (default: all): rnd deepdream value full dreamer dreamer_real offline;
                      --methods "" runs the days alone. Not in the default, the other readings of the paper
                      (docs/choices.md): value_untransformed, dreamer_gamma997
  --workers N         runs at a time (default: 1); each gets nproc/N threads unless OMP_NUM_THREADS is set
  --log-dir DIR       where the runs go (default: runs/benchmark)
  --dry-run           print the commands, run nothing
  -h, --help          this text

Flags after -- go to every script, e.g. the README's quick CPU configuration with the paper's 200
nights, 100 + 100 evaluation episodes every 10th night epoch and 200 + 200 at the ends of the day
and of the night:
  bash benchmark.sh --games "coinrun caveflyer" --workers 2 -- --day-epochs 30 --night-epochs 200 \
      --night-eval-every 10 --eval-episodes 100 --final-eval-episodes 200 --wm-batch-size 16 --deter 256 \
      --units 256 --cnn-depth 16 --stoch 16 --classes 16 --fail-penalty 0
(The committed run in docs/benchmark predates --eval-episodes: it evaluated 10 + 10 episodes a point.)
EOF
}

games="caveflyer chaser coinrun plunder"
seeds="1 2 3 4 5"
methods="rnd deepdream value full dreamer dreamer_real offline"
workers=1
log_dir="runs/benchmark"
dry_run=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --games) games="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --log-dir) log_dir="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "error: unknown option $1; see bash benchmark.sh --help" >&2; exit 2 ;;
  esac
done
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "error: --workers must be a positive integer, got $workers" >&2; exit 2; }

# method name -> script and the flags that make it that method
declare -A script=([rnd]=dream_ppo_rnd.py [deepdream]=dream_ppo_deepdream.py [value]=dream_ppo_value.py
                   [full]=dream_ppo_full.py [dreamer]=dreamer_baseline.py [dreamer_real]=dreamer_baseline.py
                   [offline]=offline_ppo.py [value_untransformed]=dream_ppo_value.py
                   [dreamer_gamma997]=dreamer_baseline.py)
declare -A flags=([dreamer_real]="--init-states real --exp-name dreamer_real"
                  [value_untransformed]="--transform-credit untransformed --exp-name value_untransformed"
                  [dreamer_gamma997]="--night-gamma 0.997 --exp-name dreamer_gamma997")
for m in $methods; do
  [ -n "${script[$m]:-}" ] || { echo "error: unknown method $m; choose from: ${!script[*]}" >&2; exit 2; }
done

# run NAME CMD...: skip a finished run, resume a killed one, else start it
run() {
  local name="$1"; shift
  local dir="$log_dir/$name"
  if [ -f "$dir/summary.json" ]; then
    echo "# done: $name"
    return 0
  fi
  # the flags after -- come first, so that each run's own flags (a day's --night-epochs 0) win
  local cmd=(python "$1" "${extra[@]}")
  shift
  if [ -f "$dir/checkpoint.pt" ]; then  # killed: resume it (its checkpoint already holds the day)
    while [ $# -gt 0 ]; do
      if [ "$1" = --load-day-checkpoint ]; then shift 2; else cmd+=("$1"); shift; fi
    done
    cmd+=(--resume)
  else
    cmd+=("$@")
    local prev=""
    for arg in "$@"; do  # a fresh night needs its day's checkpoint: a day copied from kept logs has none
      if [ "$prev" = --load-day-checkpoint ] && [ "$dry_run" = 0 ] && [ ! -f "$arg" ]; then
        echo "error: $name needs $arg, which is missing; move $(dirname "$arg") away and run again to remake that day" >&2
        return 1
      fi
      prev="$arg"
    done
  fi
  cmd+=(--log-dir "$log_dir" --run-name "$name" --save-checkpoint)
  echo "${cmd[*]}"
  [ "$dry_run" = 1 ] && return 0
  mkdir -p "$log_dir"
  "${cmd[@]}" > "$log_dir/$name.log" 2>&1 || { echo "# failed: $name (see $log_dir/$name.log)" >&2; return 1; }
}

# launch CMD...: at most $workers at a time; a failed run fails the benchmark at the end, not at once
failed=0
launch() {
  if [ "$workers" = 1 ] || [ "$dry_run" = 1 ]; then
    "$@" || failed=1
    return 0
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$workers" ]; do
    wait -n || failed=1
  done
  "$@" &
}
drain() {
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do
    wait -n || failed=1
  done
}

# with several workers, share the cores out instead of letting every run start a thread per core
if [ "$workers" -gt 1 ]; then
  cores="$(nproc)"
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( cores / workers > 0 ? cores / workers : 1 ))}"
  echo "# $workers runs at a time, OMP_NUM_THREADS=$OMP_NUM_THREADS each"
fi

# 1. one day per (game, seed), shared by every method: the day is the same code in every script
for g in $games; do
  for s in $seeds; do
    launch run "${g}__day__${s}" dream_ppo_value.py --env-id "$g" --seed "$s" --exp-name day --night-epochs 0
  done
done
drain

# 2. every method's night from that day
for g in $games; do
  for s in $seeds; do
    day="$log_dir/${g}__day__${s}/day.pt"
    for m in $methods; do
      # shellcheck disable=SC2086
      launch run "${g}__${m}__${s}" "${script[$m]}" --env-id "$g" --seed "$s" --load-day-checkpoint "$day" ${flags[$m]:-}
    done
  done
done
drain
exit "$failed"
