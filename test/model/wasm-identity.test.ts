import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/model/backend.ts';

test.serial('on wasm, a clone shares its buffer, outlives its source, and gradients that save tensors still come out right', async (t) => {
  await selectBackend('wasm');
  try {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const before = tf.memory().numDataBuffers;
    const y = tf.clone(x);
    t.is(y.dataId, x.dataId);
    t.is(tf.memory().numDataBuffers, before, 'no new buffer for the clone');
    x.dispose();
    t.deepEqual(Array.from(await y.data()), [1, 2, 3, 4, 5, 6]);
    y.dispose();
    // customGrad clones the tensors it saves through Identity
    const square = tf.customGrad((a, save) => {
      (save as tf.GradSaveFunc)([a as tf.Tensor]);
      return { value: tf.square(a as tf.Tensor), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.mul(saved[0]!, 2)) };
    });
    const g = tf.grad((a: tf.Tensor) => tf.sum(square(a) as tf.Tensor))(tf.tensor1d([1, -2, 3]));
    t.deepEqual(Array.from(await g.data()), [2, -4, 6]);
  } finally {
    await tf.setBackend('cpu');
  }
});
