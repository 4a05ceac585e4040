/**
 * tfjs-wasm's Identity kernel copies its input into a new buffer. tfjs tensors are immutable and
 * the wasm backend counts references per buffer (its Reshape shares the input's), so an
 * Identity can share too. It matters because tf.customGrad clones every tensor a gradient saves
 * through Identity: the default training step copied ~26 ms of saved activations per step
 * (48 clones of [4096, 128] and [4096, 512], tf.profile), about 4% of the step.
 */
import * as tf from '@tensorflow/tfjs';

interface RefCounting {
  incRef(dataId: object): void;
}

let shared = false;

/** Replaces the wasm backend's Identity with one that shares the buffer (once per thread). */
export function shareWasmIdentity(): void {
  if (shared) return;
  const copying = tf.getKernel('Identity', 'wasm');
  if (!copying) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const backend = args.backend as Partial<RefCounting>;
      // strings, or a backend without reference counts: the original copy
      if (x.dtype === 'string' || typeof backend.incRef !== 'function') return copying.kernelFunc(args);
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  shared = true;
}
