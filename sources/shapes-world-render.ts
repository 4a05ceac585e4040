/**
 * Rendering of shapes-world scenes: an SVG string per scene, turned into a small JPEG by
 * sharp (librsvg + mozjpeg). Output is byte-identical for the same scene and sharp build.
 */
import sharp from 'sharp';
import type { ShapeObject } from '../schemas/shapes-world.ts';
import { COLOR_RGB, IMAGE_SIZE, type Scene } from './shapes-world-scene.ts';

export const JPEG_QUALITY = 90;

function hex(rgb: readonly number[]): string {
  return '#' + rgb.map((c) => Math.max(0, Math.min(255, Math.round(c))).toString(16).padStart(2, '0')).join('');
}

function num(x: number): string {
  return (Math.round(x * 100) / 100).toString();
}

function polygon(points: readonly (readonly [number, number])[], fill: string): string {
  return `<polygon points="${points.map(([x, y]) => `${num(x)},${num(y)}`).join(' ')}" fill="${fill}"/>`;
}

function regular(cx: number, cy: number, radii: readonly number[], count: number, startDeg: number): [number, number][] {
  const pts: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const a = ((startDeg + (360 * i) / count) * Math.PI) / 180;
    const r = radii[i % radii.length]!;
    pts.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]);
  }
  return pts;
}

/** SVG element drawing one object inside its box. */
export function shapeSvg(o: ShapeObject): string {
  const [x0, y0, x1, y1] = o.box;
  const fill = hex(COLOR_RGB[o.color]);
  const w = x1 - x0;
  const h = y1 - y0;
  const cx = x0 + w / 2;
  const cy = y0 + h / 2;
  switch (o.shape) {
    case 'circle':
      return `<circle cx="${num(cx)}" cy="${num(cy)}" r="${num(w / 2)}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="${fill}"/>`;
    case 'triangle':
      return polygon([[x0, y1], [cx, y0], [x1, y1]], fill);
    case 'diamond':
      return polygon([[cx, y0], [x1, cy], [cx, y1], [x0, cy]], fill);
    case 'hexagon':
      return polygon(regular(cx, cy, [w / 2], 6, 0), fill);
    case 'star':
      // Outer points touch the box top; the centre is lowered a little so the star fills it.
      return polygon(regular(cx, y0 + h * 0.525, [w / 2, w * 0.21], 10, -90), fill);
  }
}

/** The whole scene as an SVG document. */
export function sceneSvg(scene: Scene): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${IMAGE_SIZE}" height="${IMAGE_SIZE}" viewBox="0 0 ${IMAGE_SIZE} ${IMAGE_SIZE}">` +
    `<rect width="${IMAGE_SIZE}" height="${IMAGE_SIZE}" fill="${hex(scene.backgroundRgb)}"/>` +
    scene.objects.map(shapeSvg).join('') +
    '</svg>'
  );
}

/** Renders a scene to a JPEG file. */
export async function renderScene(scene: Scene, file: string): Promise<void> {
  await sharp(Buffer.from(sceneSvg(scene))).jpeg({ quality: JPEG_QUALITY }).toFile(file);
}

/**
 * A bounded pool of in-flight async jobs (rendering, small file writes). `add` waits while the
 * pool is full, so the producer slows to the pool's pace; the first failure is rethrown by the
 * next `add` or by `drain`.
 */
export interface TaskPool {
  add(job: () => Promise<void>): Promise<void>;
  drain(): Promise<void>;
}

export function createTaskPool(concurrency: number): TaskPool {
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  const check = (): void => {
    if (failure) throw failure.error;
  };
  return {
    async add(job) {
      check();
      while (running.size >= concurrency) {
        await Promise.race(running);
        check();
      }
      const p: Promise<void> = job()
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => {
          running.delete(p);
        });
      running.add(p);
    },
    async drain() {
      while (running.size > 0) await Promise.race(running);
      check();
    },
  };
}
