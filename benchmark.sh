#!/usr/bin/env bash
# Runs the paper's experiment: every method on every game and seed. Each (game, seed) day runs once
# and saves a checkpoint; every method's night starts from it. Finished runs are skipped and killed
# ones resumed, so the same command can simply be started again. Prints each command as it starts it.
# Beyond one machine: --task runs one run of the plan (for any array-job system), --slurm submits the
# plan as two SLURM job arrays, --gpus gives each local worker its own GPU.
set -euo pipefail

usage() {
  cat <<'EOF_USAGE'
usage: bash benchmark.sh [options] [-- flags passed to every script]

  --games "G ..."     ProcGen games (default: caveflyer chaser coinrun plunder)
  --seeds "S ..."     seeds (default: 1 2 3 4 5)
  --methods "M ..."   nights to run (default: all): rnd deepdream value full dreamer dreamer_real offline;
                      --methods "" runs the days alone. Not in the default, the other readings of the paper
                      (docs/choices.md): value_untransformed, dreamer_gamma997
  --workers N         runs at a time (default: 1); each gets nproc/N threads unless OMP_NUM_THREADS is set
  --gpus "G ..."      GPU ids for the local workers, one each in turn (CUDA_VISIBLE_DEVICES), e.g. --gpus "0 1"
  --log-dir DIR       where the runs go (default: runs/benchmark)
  --task I            run only the I-th run of the plan that --dry-run prints, counting from 0: the days first
                      (0 to days-1), then the nights; for array jobs, one run a task (a night needs its day done)
  --slurm TEMPLATE    submit the plan to SLURM with sbatch: one job array of the days, one of the nights, each
                      night waiting for its own day; TEMPLATE is a job script with the #SBATCH resources (see
                      slurm/template.sbatch), to which the task's command is appended
  --dry-run           print the commands, run nothing (with --slurm: print the sbatch commands, submit nothing)
  -h, --help          this text

Flags after -- go to every script, e.g. the README's quick CPU configuration with the paper's 200
nights, 100 + 100 evaluation episodes every 10th night epoch and 200 + 200 at the ends of the day
and of the night:
  bash benchmark.sh --games "coinrun caveflyer" --workers 2 -- --day-epochs 30 --night-epochs 200 \
      --night-eval-every 10 --eval-episodes 100 --final-eval-episodes 200 --wm-batch-size 16 --deter 256 \
      --units 256 --cnn-depth 16 --stoch 16 --classes 16 --fail-penalty 0
(The committed run in docs/benchmark predates --eval-episodes: it evaluated 10 + 10 episodes a point.)
Submitting the same command again (local or --slurm) skips finished runs and resumes killed ones.
EOF_USAGE
}

games="caveflyer chaser coinrun plunder"
seeds="1 2 3 4 5"
methods="rnd deepdream value full dreamer dreamer_real offline"
workers=1
gpus=""
log_dir="runs/benchmark"
task=""
template=""
dry_run=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --games) games="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --methods) methods="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --gpus) gpus="$2"; shift 2 ;;
    --log-dir) log_dir="$2"; shift 2 ;;
    --task) task="$2"; shift 2 ;;
    --slurm) template="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "error: unknown option $1; see bash benchmark.sh --help" >&2; exit 2 ;;
  esac
done
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "error: --workers must be a positive integer, got $workers" >&2; exit 2; }
read -r -a gpu_list <<< "$gpus"
for gpu in "${gpu_list[@]}"; do
  [[ "$gpu" =~ ^[0-9]+$ ]] || { echo "error: --gpus takes GPU ids (integers), got $gpu" >&2; exit 2; }
done
if [ -n "$template" ] && [ -n "$task" ]; then
  echo "error: use either --slurm (which submits every run) or --task (which runs one), not both" >&2; exit 2
fi
if [ -n "$template" ] && [ -n "$gpus" ]; then
  echo "error: --gpus is for local workers; with --slurm, ask for a GPU in the template (#SBATCH --gres=gpu:1)" >&2
  exit 2
fi

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

# the plan: one day per (game, seed), then every method's night from that day; entry i is run i of --task
plan=()
for g in $games; do
  for s in $seeds; do
    plan+=("$g $s day")
  done
done
days=${#plan[@]}
for g in $games; do
  for s in $seeds; do
    for m in $methods; do
      plan+=("$g $s $m")
    done
  done
done
if [ -n "$task" ]; then
  [[ "$task" =~ ^[0-9]+$ ]] && [ "$task" -lt "${#plan[@]}" ] || {
    echo "error: --task must be 0 to $(( ${#plan[@]} - 1 )) (this plan has ${#plan[@]} runs), got $task" >&2; exit 2; }
fi

# name_of I: the run folder's name of plan entry I
name_of() {
  local g s m
  read -r g s m <<< "${plan[$1]}"
  echo "${g}__${m}__${s}"
}

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
  if [ "${#gpu_list[@]}" -gt 0 ]; then
    echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES ${cmd[*]}"
  else
    echo "${cmd[*]}"
  fi
  [ "$dry_run" = 1 ] && return 0
  mkdir -p "$log_dir"
  "${cmd[@]}" > "$log_dir/$name.log" 2>&1 || { echo "# failed: $name (see $log_dir/$name.log)" >&2; return 1; }
}

# run_task I: plan entry I, a day or a night
run_task() {
  local g s m
  read -r g s m <<< "${plan[$1]}"
  if [ "$m" = day ]; then
    run "${g}__day__${s}" dream_ppo_value.py --env-id "$g" --seed "$s" --exp-name day --night-epochs 0
  else
    # shellcheck disable=SC2086
    run "${g}__${m}__${s}" "${script[$m]}" --env-id "$g" --seed "$s" \
      --load-day-checkpoint "$log_dir/${g}__day__${s}/day.pt" ${flags[$m]:-}
  fi
}

if [ -n "$task" ]; then
  [ "${#gpu_list[@]}" -gt 0 ] && export CUDA_VISIBLE_DEVICES="${gpu_list[0]}"
  run_task "$task"
  exit
fi

# --slurm: the days' array, then the nights' array held until each night depends on its own day's task
if [ -n "$template" ]; then
  [ -f "$template" ] || { echo "error: no SLURM template at $template; start from slurm/template.sbatch" >&2; exit 2; }
  if [ "$dry_run" = 0 ]; then
    for tool in sbatch scontrol; do
      command -v "$tool" > /dev/null || { echo "error: no $tool here; submit from a SLURM login node" >&2; exit 2; }
    done
  fi
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  mkdir -p "$log_dir"
  log_dir="$(cd "$log_dir" && pwd)"  # the tasks run elsewhere: every path absolute
  todo_days=() todo_nights=()
  declare -A day_pending=()  # day's plan index -> whether it is submitted now
  for i in "${!plan[@]}"; do
    [ -f "$log_dir/$(name_of "$i")/summary.json" ] && { echo "# done: $(name_of "$i")"; continue; }
    if [ "$i" -lt "$days" ]; then todo_days+=("$i"); day_pending[$i]=1; else todo_nights+=("$i"); fi
  done
  if [ $(( ${#todo_days[@]} + ${#todo_nights[@]} )) = 0 ]; then
    echo "# nothing to submit: every run of the plan has finished"
    exit 0
  fi
  job="$log_dir/slurm/benchmark.sbatch"
  mkdir -p "$log_dir/slurm"
  {
    cat "$template"
    echo
    echo "# appended by benchmark.sh --slurm: run this array task's run of the plan"
    printf 'cd %q\n' "$root"
    echo 'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"'
    printf 'exec bash benchmark.sh --games %q --seeds %q --methods %q --log-dir %q --task "$SLURM_ARRAY_TASK_ID"' \
      "$games" "$seeds" "$methods" "$log_dir"
    [ "${#extra[@]}" -gt 0 ] && printf ' --' && printf ' %q' "${extra[@]}"
    echo
  } > "$job"
  echo "# job script: $job"
  # submit NAME INDICES OPTIONS...: print the sbatch command and run it (not under --dry-run); sets $job_id
  submit() {
    local name="$1" indices="$2"; shift 2
    local cmd=(sbatch --parsable --job-name "$name" --array "$indices" --output "$log_dir/slurm/%x_%a.out" "$@" "$job")
    echo "${cmd[*]}"
    if [ "$dry_run" = 1 ]; then job_id="$name"; else job_id="$("${cmd[@]}")"; job_id="${job_id%%;*}"; fi
  }
  day_job=""
  if [ "${#todo_days[@]}" -gt 0 ]; then
    indices="$(IFS=,; echo "${todo_days[*]}")"
    submit benchmark_days "$indices"
    day_job="$job_id"
    echo "# days: job $day_job, tasks $indices"
  fi
  if [ "${#todo_nights[@]}" -gt 0 ]; then
    indices="$(IFS=,; echo "${todo_nights[*]}")"
    submit benchmark_nights "$indices" --hold --kill-on-invalid-dep=yes
    night_job="$job_id"
    methods_per_day=$(( (${#plan[@]} - days) / days ))
    waiting=0
    for i in "${todo_nights[@]}"; do
      d=$(( (i - days) / methods_per_day ))  # the night's day: the plan's nights go day by day
      if [ -n "${day_pending[$d]:-}" ]; then  # a night whose day is done starts at once
        cmd=(scontrol update "JobId=${night_job}_$i" "Dependency=afterok:${day_job}_$d")
        echo "${cmd[*]}"
        [ "$dry_run" = 1 ] || "${cmd[@]}"
        waiting=$(( waiting + 1 ))
      fi
    done
    echo "scontrol release $night_job"
    [ "$dry_run" = 1 ] || scontrol release "$night_job"
    echo "# nights: job $night_job, tasks $indices ($waiting of them after their day's task)"
  fi
  exit 0
fi

# launch I: plan entry I on a free worker (with its GPU, if --gpus); a failed run fails the benchmark at the end
failed=0
worker_pid=()  # the pid of the run each worker has
launch() {
  local w
  if [ "$workers" = 1 ] || [ "$dry_run" = 1 ]; then
    if [ "${#gpu_list[@]}" -gt 0 ]; then  # a dry run shows the GPUs the first runs get, worker by worker
      w=$(( launched++ % workers ))
      CUDA_VISIBLE_DEVICES="${gpu_list[$(( w % ${#gpu_list[@]} ))]}" run_task "$1" || failed=1
    else
      run_task "$1" || failed=1
    fi
    return 0
  fi
  while [ "$(jobs -rp | wc -l)" -ge "$workers" ]; do
    wait -n || failed=1
  done
  for (( w = 0; w < workers; w++ )); do  # the first worker whose run has ended
    if [ -z "${worker_pid[$w]:-}" ] || ! kill -0 "${worker_pid[$w]}" 2> /dev/null; then break; fi
  done
  if [ "${#gpu_list[@]}" -gt 0 ]; then
    CUDA_VISIBLE_DEVICES="${gpu_list[$(( w % ${#gpu_list[@]} ))]}" run_task "$1" &
  else
    run_task "$1" &
  fi
  worker_pid[$w]=$!
}
launched=0
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

# 1. the days, shared by every method: the day is the same code in every script; 2. every method's night
for (( i = 0; i < days; i++ )); do
  launch "$i"
done
drain
for (( i = days; i < ${#plan[@]}; i++ )); do
  launch "$i"
done
drain
exit "$failed"
