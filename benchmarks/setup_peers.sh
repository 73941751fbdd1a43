#!/usr/bin/env bash
# Install the peers for `make bench`: one virtual environment per peer under .peers/ (their
# redis-py pins conflict: arq, saq and taskiq-redis each want another version), a "tools"
# environment for the raw-Redis ceiling and the chart (matplotlib), and node_modules/ here
# for BullMQ. Nothing goes into the project's own environment. Re-running is cheap: each
# environment carries a stamp of its requirement line and is rebuilt only when that changes.
#
#   benchmarks/setup_peers.sh [peer ...]     # default: all
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

declare -A REQS=(
  [tools]="redis[hiredis]==8.1.0 matplotlib==3.11.2 py-spy==0.4.3"
  [celery]="celery[redis]==5.7.0 hiredis"
  [rq]="rq==2.12.0 hiredis"
  [arq]="arq==0.28.0 hiredis"
  [dramatiq]="dramatiq[redis]==2.2.1 hiredis"
  [saq]="saq[redis]==0.26.4 typing_extensions hiredis"
  [taskiq]="taskiq==0.13.0 taskiq-redis==1.2.4 hiredis"
)

python_env() {
  local name=$1 reqs=${REQS[$1]}
  local dir=.peers/$name stamp
  stamp="$dir/.stamp-$(echo "$reqs" | cksum | cut -d' ' -f1)"
  if [[ -f $stamp ]]; then return; fi
  echo "setup: $name ($reqs)" >&2
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
  # shellcheck disable=SC2086 # the requirement line is a word list on purpose
  "$dir/bin/python" -m pip install --quiet $reqs 2> >(grep -v "is ignored: it is neither" >&2)
  touch "$stamp"
}

node_env() {
  local stamp
  stamp="node_modules/.stamp-$(cksum < package.json | cut -d' ' -f1)"
  if [[ -f $stamp ]]; then return; fi
  echo "setup: node (bullmq, ioredis)" >&2
  npm install --silent --no-audit --no-fund --no-package-lock
  touch "$stamp"
}

mkdir -p .peers
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(tools node "${!REQS[@]}")
fi
for target in "${targets[@]}"; do
  case $target in
    node | bullmq) node_env ;;
    redis) python_env tools ;;
    *) python_env "$target" ;;
  esac
done
