/**
 * Reads a source `epochs` times over, each pass shuffled by a seeded buffer shuffle with its own
 * seed (as HF datasets' `IterableDataset.shuffle` + `set_epoch`): training sees every record once
 * per epoch, in an order that differs between epochs but is the same for the same run seed, so a
 * resumed run can skip exactly the batches it already trained on. Memory: `shuffleBuffer` records.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { Rng, deriveSeed } from '../src/stream/random.ts';
import type { Source, SourceContext } from '../src/stream/stage.ts';

export interface RepeatEpochsOptions<T> {
  source: Source<T>;
  /** Passes over the source (a positive integer). */
  epochs: number;
  /** Records held by each pass's shuffle; 0 keeps the source order. Default 10 000. */
  shuffleBuffer?: number;
  /** Default: derived from the run seed. */
  seed?: number;
  name?: string;
  /**
   * Records the consumer will take at most (a trainer stopping after steps x batch): progress
   * then counts towards this rather than towards every epoch, so its ETA is the training's.
   */
  expectedRecords?: number;
}

async function* shuffled<T>(input: AsyncIterable<T>, size: number, rng: Rng): AsyncGenerator<T> {
  const buf: T[] = [];
  for await (const x of input) {
    if (buf.length < size) { buf.push(x); continue; }
    const j = rng.int(size);
    const out = buf[j]!;
    buf[j] = x;
    yield out;
  }
  yield* rng.shuffle(buf);
}

export function repeatEpochs<T>(options: RepeatEpochsOptions<T>): Source<T> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object');
  const { source, epochs } = options;
  if (!source || typeof source.read !== 'function') throw new InvalidOptionError('source', 'expected a Source');
  if (!Number.isInteger(epochs) || epochs < 1) throw new InvalidOptionError('epochs', `must be a positive integer, got ${epochs}`);
  const buffer = options.shuffleBuffer ?? 10_000;
  if (!Number.isInteger(buffer) || buffer < 0) throw new InvalidOptionError('shuffleBuffer', `must be a non-negative integer, got ${buffer}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${options.seed}`);
  const expected = options.expectedRecords;
  if (expected !== undefined && !(Number.isInteger(expected) && expected > 0)) throw new InvalidOptionError('expectedRecords', `must be a positive integer, got ${expected}`);
  const name = options.name ?? source.name;
  const repeated: Source<T> = {
    name,
    async *read(ctx: SourceContext) {
      const seed = options.seed ?? deriveSeed(ctx.seed, `epochs:${name}`);
      const inner: SourceContext = { ...ctx, name: source.name, setTotal: (total) => ctx.setTotal(expected === undefined ? total * epochs : Math.min(total * epochs, expected)) };
      for (let e = 0; e < epochs; e++) {
        ctx.note(`epoch ${e + 1}/${epochs}`);
        const records = source.read(inner);
        yield* buffer > 0 ? shuffled(records, buffer, new Rng(deriveSeed(seed, `epoch:${e}`))) : records;
      }
    },
  };
  if (source.inputs) repeated.inputs = () => source.inputs!();
  return repeated;
}
