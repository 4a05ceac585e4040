import { Writable } from 'node:stream';
import test from 'ava';
import { createProgress, formatDuration, formatProgressLine } from '../../src/stream/progress.ts';
import { sleep } from './helpers.ts';

function memoryStream(isTTY: boolean): Writable & { text(): string; isTTY: boolean } {
  const chunks: string[] = [];
  const w = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } }) as Writable & { text(): string; isTTY: boolean };
  w.text = () => chunks.join('');
  w.isTTY = isTTY;
  return w;
}

test('progress line format with total, rate and ETA', (t) => {
  t.is(formatProgressLine({ name: 'vqav2', done: 12000, total: 50000, elapsedMs: 3429 }), '[vqav2] 12000/50000 (24%) 3500/s ETA 11s');
  t.is(formatProgressLine({ name: 'ppo', done: 3, unit: 'steps', elapsedMs: 2000, note: 'kl 0.02' }), '[ppo] 3 steps 1.50/s | kl 0.02');
  t.is(formatDuration(245), '4m05s');
  t.is(formatDuration(7380), '2h03m');
});

test('not a TTY: plain lines every interval and a final line on stop', async (t) => {
  const out = memoryStream(false);
  const p = createProgress(out, { intervalMs: 20 });
  const h = p.start('vqav2', { total: 100 });
  h.update(40, 'epoch 1');
  await sleep(50);
  t.regex(out.text(), /^\[vqav2\] 40\/100 \(40%\) [\d.]+\/s ETA \S+ \| epoch 1$/m);
  h.update(100);
  h.stop();
  t.regex(out.text(), /\[vqav2\] 100\/100 \(100%\) [\d.]+\/s \| epoch 1\n$/);
  const before = out.text().length;
  await sleep(50);
  t.is(out.text().length, before, 'stopped handles are not printed again');
  p.close();
});

test('TTY: a cli-progress multibar renders one bar per handle', async (t) => {
  const out = memoryStream(true);
  const p = createProgress(out, { tty: true });
  const a = p.start('a', { total: 10 });
  const b = p.start('b');
  a.update(5);
  b.update(7);
  await sleep(150);
  p.close();
  const text = out.text();
  t.regex(text, /\[a\] 5\/10 \(50%\)/);
  t.regex(text, /\[b\] 7 /);
});
