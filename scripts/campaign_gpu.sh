#!/usr/bin/env bash
# Advance a campaign on a lent GPU machine (the device tool) for MINUTES and bring its milestones back.
#
# Usage, as the device tool's command (in the repository root there):
#   bash scripts/campaign_gpu.sh PLAN.toml MINUTES [JOBS_AT_ONCE]
# then, here: copy the returned files (files_at) into the plan's `state` folder and commit them; the
# CPU campaign resumes from them (python scripts/campaign.py PLAN.toml).
#
# What must travel with the call (`carry`): `.whl` with wheels of compressai==1.2.8 and
# constriction==0.5.0 for Python 3.12 (the device's image has torch but not these; see the device
# tool's README for the pip download line), and the plan's training photos under `.carry/train`
# (the plan's `data`, ../shared/train, does not travel). The 680 photos are 95 MB and a call carries
# 64 MiB in all, so they go in two calls (.carry/train-a, then .carry/train-b, kept there between
# calls while the machine stays warm) and this script joins them.
set -euo pipefail
plan=${1:?usage: campaign_gpu.sh PLAN.toml MINUTES [JOBS_AT_ONCE]}
minutes=${2:?usage: campaign_gpu.sh PLAN.toml MINUTES [JOBS_AT_ONCE]}
jobs=${3:-4}
out=${OUT:?the device tool sets OUT}
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
if [ -d .carry/train-a ]; then
    mkdir -p ../shared/train
    cp -n .carry/train-a/* .carry/train-b/* ../shared/train/ 2> /dev/null || true
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 scripts/campaign.py "$plan" --cores "$jobs" --minutes "$minutes" --export "$out" --quiet
