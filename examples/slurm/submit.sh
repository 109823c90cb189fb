#!/bin/bash
# Queues N extraction shards as one Slurm array, then the merge, which runs
# only if every task succeeded (afterok). A failed index is named by the
# merge; rerun just that one with
#   SHARDS=N sbatch --array=K examples/slurm/extract-shards.sbatch
# and then `ovr --config "$OVR_CONFIG" extract --merge` again.
#
#   OVR_CONFIG=/shared/run.toml OVR_CACHE=/shared/ovr-cache examples/slurm/submit.sh 16
set -euo pipefail

N=${1:?usage: submit.sh N (the number of shards)}
: "${OVR_CONFIG:?set OVR_CONFIG to the run config (TOML)}"
: "${OVR_CACHE:?set OVR_CACHE to the shared cache directory}"
here=$(cd "$(dirname "$0")" && pwd)
OVR=${OVR:-ovr}

array=$(sbatch --parsable --export=ALL,SHARDS="$N" --array="0-$((N - 1))" \
    "$here/extract-shards.sbatch")
echo "extraction array: job $array (tasks 0..$((N - 1)))"
merge=$(sbatch --parsable --export=ALL --dependency="afterok:${array}" \
    --job-name=ovr-merge --cpus-per-task=2 --mem=8G --output="ovr-merge-%j.log" \
    --wrap "$OVR --config '$OVR_CONFIG' extract --merge")
echo "merge: job $merge (after every task of $array succeeds)"
