import { DROP, mapStage, type MapCallOptions, type MapOptions } from './map.ts';
import type { Stage } from './stage.ts';

/**
 * Keeps records for which `predicate` is true (built on map: same ordering, concurrency and
 * BadRecordError handling). Records failing the predicate are dropped on purpose, not
 * rejected, so the stage carries `conserves: false`; throw a BadRecordError from the
 * predicate instead when a record should go to the dead letters.
 */
export function filter<T>(
  predicate: (record: T, options: MapCallOptions) => boolean | Promise<boolean>,
  options: MapOptions = {},
): Stage<T, T> & { readonly conserves: false } {
  const stage = mapStage<T, T>(async (x, o) => ((await predicate(x, o)) ? x : DROP), options, 'filter');
  return { ...stage, conserves: false };
}
