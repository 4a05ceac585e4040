/**
 * Worker side of data-parallel training (data-parallel.ts): a model replica that, for each
 * `step` message, loads the current weights from the shared buffer, computes the gradients of its
 * part of the batch and writes them to its shared gradient buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendChoice } from './backend.ts';
import type { GradWorkerData, GradWorkerReply } from './data-parallel.ts';
import { createModel } from './multimodal-model.ts';
import { computeGradients, disposeGradients, supervisedLoss, trainableParameters, type TrainBatch } from './train-step.ts';

const port = parentPort!;
const data = workerData as GradWorkerData;
const reply = (r: GradWorkerReply): void => port.postMessage(r);

try {
  await selectBackend(data.backend as BackendChoice);
  const model = createModel(data.config, { seed: 0, label: 'replica' });
  const params = model.parameters();
  const trainable = trainableParameters(model, data.frozen ?? []);
  const weights = new Float32Array(data.weights);
  const grads = new Float32Array(data.grads);
  const index = new Map(data.names.map((n, i) => [n, i]));
  port.on('message', async (msg: { type: 'step'; batch: TrainBatch }) => {
    try {
      tf.tidy(() => {
        params.forEach((p) => {
          const i = index.get(p.name)!;
          p.variable.assign(tf.tensor(weights.subarray(data.offsets[i]!, data.offsets[i]! + data.sizes[i]!), p.shape as number[], 'float32'));
        });
      });
      let tokens = 0;
      const r = await computeGradients(model, () => {
        const s = supervisedLoss(model, msg.batch);
        tokens = s.tokens;
        return s.loss;
      }, trainable);
      const has = new Uint8Array(data.names.length);
      for (const [name, g] of r.grads) {
        const i = index.get(name)!;
        grads.set(g.dataSync() as Float32Array, data.offsets[i]!);
        has[i] = 1;
      }
      disposeGradients(r.grads);
      reply({ type: 'done', loss: r.loss, tokens, has });
    } catch (e) {
      reply({ type: 'error', message: (e as Error).message, stack: (e as Error).stack });
    }
  });
  reply({ type: 'ready' });
} catch (e) {
  reply({ type: 'error', message: (e as Error).message, stack: (e as Error).stack });
}
