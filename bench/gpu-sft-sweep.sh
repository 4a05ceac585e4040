#!/usr/bin/env bash
# Several sft-train configurations at once on one GPU machine (each its own process; the default
# size is launch-bound, so four processes share an H200 at ~112 ms/step each against 77 alone).
# Training is cut at T_TRAIN seconds; a cut run is evaluated from its last checkpoint (resume it
# later by running the same command with a larger STEPS). Prepare here, run there:
#   bash ../shared/gpu/prepare.sh bench/gpu-sft.ts sharp
#   tar czf .device/img.tgz -C node_modules @img detect-libc semver   # sharp's native parts
#   cp bench/gpu-sft-sweep.sh .device/exp.sh
#   # on the device, with carry [".device"]:  STEPS=2000 T_TRAIN=390 bash .device/exp.sh
# Edit CFG below for the configurations. LOCAL=1 BACKEND=cpu tries the script here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/exp-out}; mkdir -p "$OUT"
STEPS=${STEPS:-2000}; T_TRAIN=${T_TRAIN:-400}; BACKEND=${BACKEND:-webgpu}; LOCAL=${LOCAL:-0}
tar xzf "$here/img.tgz" -C "$here/node_modules"
NODE=node
if [ "$LOCAL" = 0 ]; then
  # boot.sh's steps, done once here: several boot.sh at once would unpack the same files together
  for f in "$here"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig
  icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES=$icd __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  xz -d -c "$here/node.xz" > /tmp/node; chmod +x /tmp/node; NODE=/tmp/node
  (nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 10 > "$OUT/smi.log" 2>&1 &)
fi
common() { echo --backend "$BACKEND" --out /tmp/r-$1 --set world=/tmp/w-$1 --set world_images=3000 --set mix=/tmp/m-$1 --set eval_images=200 --set checkpoint_every=250 --set eval_every=500 --set vision_pretrain_steps=${VSTEPS:-800}; }
BIG="--set width=256 --set layers=4 --set heads=8 --set lr=0.001"
declare -A CFG=(
  [A-default-reasoning]="--set aokvqa_mode=reasoning"
  [B-big-direct]="$BIG"
  [C-big-reasoning]="$BIG --set aokvqa_mode=reasoning"
  [D-default-direct]=""
)
t0=$(date +%s)
for name in "${!CFG[@]}"; do
  timeout "$T_TRAIN" "$NODE" "$here/bundle.mjs" --steps "$STEPS" $(common $name) ${CFG[$name]} > "$OUT/$name.log" 2>&1 &
done
wait
echo "training phase $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
for name in "${!CFG[@]}"; do
  if ! grep -q '^| '"$BACKEND" "$OUT/$name.log"; then
    st=$(sed -n 's/.*"step": *\([0-9]*\).*/\1/p' /tmp/r-$name/checkpoint/trainer_state.json 2>/dev/null | head -1)
    echo "$name cut short; evaluating checkpoint step ${st:-none}" | tee -a "$OUT/times.txt"
    [ -n "$st" ] && "$NODE" "$here/bundle.mjs" --steps "$st" $(common $name) ${CFG[$name]} > "$OUT/$name.eval.log" 2>&1 &
  fi
done
wait
echo "all $(( $(date +%s) - t0 )) s" | tee -a "$OUT/times.txt"
# one archive: the device returns only a limited count of files from $OUT
(cd /tmp && tar czf "$OUT/runs.tgz" $(ls -d r-*/summary.json r-*/metrics.jsonl r-*/vision_metrics.jsonl r-*/heldout_answers.jsonl 2>/dev/null))
for name in "${!CFG[@]}"; do
  grep -h -E '^sft-train:|^\| ' "$OUT/$name.log" "$OUT/$name.eval.log" 2>/dev/null | sed "s/^/$name: /"
done
cat "$OUT/times.txt"; tail -3 "$OUT/smi.log" 2>/dev/null
