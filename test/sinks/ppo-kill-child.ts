/**
 * Child process for the PPO kill -9 test: the toy PPO run of the resume test, slowed down after
 * each step so the parent can SIGKILL it midway. Args: <out> <delayMs>.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { makeToy, RESUME_RUN, runToy } from './ppo-toy.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');
const [out, delay] = [process.argv[2]!, Number(process.argv[3])];
await runToy({
  ...RESUME_RUN, toy: makeToy(), out,
  trainer: { ...RESUME_RUN.trainer, afterStep: () => new Promise((resolve) => setTimeout(resolve, delay)) },
});
