import { InvalidOptionError } from '../errors.ts';
import { conservesRecords } from './flow.ts';
import type { Stage } from './stage.ts';

type AnyStage = Stage<never, unknown>;
type Composed<I, O> = Stage<I, O> & { readonly conserves?: false };

/**
 * Folds several stages into one, usable anywhere a stage is. The inner stages share the
 * outer context (their rejections count against the composed stage); the name joins theirs
 * with "+" unless you spread a new one in: `{ ...compose(a, b), name: 'clean' }`.
 */
export function compose<A, B>(s1: Stage<A, B>): Composed<A, B>;
export function compose<A, B, C>(s1: Stage<A, B>, s2: Stage<B, C>): Composed<A, C>;
export function compose<A, B, C, D>(s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>): Composed<A, D>;
export function compose<A, B, C, D, E>(s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>): Composed<A, E>;
export function compose<A, B, C, D, E, F>(s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, s5: Stage<E, F>): Composed<A, F>;
export function compose(...stages: AnyStage[]): Composed<unknown, unknown>;
export function compose(...stages: AnyStage[]): Composed<unknown, unknown> {
  if (stages.length === 0) throw new InvalidOptionError('stages', 'compose needs at least one stage');
  stages.forEach((s, i) => {
    if (!s || typeof s.run !== 'function') throw new InvalidOptionError(`stages[${i}]`, 'is not a stage (no run function)');
  });
  const composed: { name: string; conserves?: false; run: Stage<unknown, unknown>['run'] } = {
    name: stages.map((s) => s.name).join('+'),
    run: (input, ctx) =>
      stages.reduce<AsyncIterable<unknown>>((it, s) => (s.run as Stage<unknown, unknown>['run'])(it, ctx), input),
  };
  if (!stages.every(conservesRecords)) composed.conserves = false;
  return composed;
}
