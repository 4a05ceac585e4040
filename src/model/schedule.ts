/**
 * Learning-rate schedule: linear warmup to the peak, then cosine decay to `minLr` at `totalSteps`
 * (constant afterwards). Steps count from 0.
 */
import { InvalidOptionError } from '../errors.ts';

export interface CosineScheduleOptions {
  peakLr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor reached at totalSteps. Default 0. */
  minLr?: number;
}

export type LrSchedule = (step: number) => number;

export function cosineSchedule(options: CosineScheduleOptions): LrSchedule {
  const { peakLr, warmupSteps, totalSteps } = options;
  const minLr = options.minLr ?? 0;
  if (!(peakLr > 0)) throw new InvalidOptionError('schedule.peakLr', `must be positive, got ${peakLr}`);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) throw new InvalidOptionError('schedule.warmupSteps', `must be a non-negative integer, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps <= 0) throw new InvalidOptionError('schedule.totalSteps', `must be a positive integer, got ${totalSteps}`);
  if (!(minLr >= 0 && minLr <= peakLr)) throw new InvalidOptionError('schedule.minLr', `must be in [0, peakLr], got ${minLr}`);
  return (step) => {
    if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
    if (step >= totalSteps) return minLr;
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
  };
}
