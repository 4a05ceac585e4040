/**
 * Image tags from captions, the labels of vision pretraining (our stand-in for CLIP, which
 * LLaVA-RLHF starts from and we cannot download): an image's tags are the vocabulary entries its
 * captions mention. Entries are words or word pairs ("red", "circle", "red circle"), matched as
 * whole words, case-insensitively, singular or plural.
 */
import { InvalidOptionError } from '../errors.ts';
import { COLORS, SHAPES } from '../../schemas/shapes-world.ts';

/** The shapes world's tags: every colour, every shape, every colour+shape kind. */
export function shapesWorldTags(): string[] {
  return [...COLORS, ...SHAPES, ...COLORS.flatMap((c) => SHAPES.map((s) => `${c} ${s}`))];
}

/** Columns of `shapesWorldTags()` per group: colour words, shape words, colour+shape kinds. */
export function shapesWorldTagGroups(): Record<'color' | 'shape' | 'kind', number[]> {
  const tags = shapesWorldTags();
  const columns = (keep: (tag: string) => boolean): number[] => tags.flatMap((t, i) => (keep(t) ? [i] : []));
  return {
    color: columns((t) => (COLORS as readonly string[]).includes(t)),
    shape: columns((t) => (SHAPES as readonly string[]).includes(t)),
    kind: columns((t) => /\s/.test(t)),
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Compiles a vocabulary into a function from captions to a 0/1 vector (one entry per tag). */
export function captionTagger(vocabulary: readonly string[]): (captions: readonly string[]) => Float32Array {
  if (!Array.isArray(vocabulary) || vocabulary.length === 0) throw new InvalidOptionError('vocabulary', 'must be a non-empty list of tags');
  const res = vocabulary.map((tag, i) => {
    if (typeof tag !== 'string' || tag.trim() === '') throw new InvalidOptionError(`vocabulary[${i}]`, 'must be a non-empty string');
    return new RegExp(`\\b${tag.trim().split(/\s+/).map(escape).join('\\s+')}(?:s|es)?\\b`, 'i');
  });
  return (captions) => {
    const y = new Float32Array(res.length);
    res.forEach((re, i) => {
      if (captions.some((c) => re.test(c))) y[i] = 1;
    });
    return y;
  };
}
