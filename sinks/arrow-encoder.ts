/**
 * Records -> Arrow IPC file bytes (apache-arrow's RecordBatchFileWriter), one record
 * batch per `add`. The schema metadata names the record schema and its version.
 */
import { AsyncByteQueue, RecordBatchFileWriter } from 'apache-arrow';
import { arrowSchemaOf, recordsToRecordBatch } from '../schemas/arrow-schema.ts';
import type { FieldSpec } from '../schemas/field.ts';
import type { ShardEncoder, ShardEncoding } from './shard-sink.ts';

/** The writer's byte queue, drained synchronously so each batch's bytes reach the file at once. */
class DrainableByteQueue extends AsyncByteQueue {
  drain(): Uint8Array {
    const chunks = this._values.splice(0);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }
}

export interface ArrowEncoderOptions {
  fields: readonly FieldSpec[];
  schemaName: string;
  schemaVersion: number;
}

export function arrowEncoder(options: ArrowEncoderOptions): ShardEncoder {
  const { fields } = options;
  const arrowSchema = arrowSchemaOf({ name: options.schemaName, version: options.schemaVersion, fields });
  return {
    format: 'arrow',
    ext: 'arrow',
    codec: 'uncompressed',
    open(): ShardEncoding {
      const queue = new DrainableByteQueue();
      const writer = new RecordBatchFileWriter();
      writer.reset(queue, arrowSchema);
      return {
        add(records: readonly unknown[]): Uint8Array {
          if (records.length === 0) return new Uint8Array(0);
          writer.write(recordsToRecordBatch(fields, arrowSchema, records));
          return queue.drain();
        },
        finish(): Uint8Array {
          writer.finish();
          return queue.drain();
        },
      };
    },
  };
}

/** Encodes records into one Arrow IPC file in memory. */
export function encodeArrow(options: ArrowEncoderOptions & { records: readonly unknown[]; batchRows?: number }): Uint8Array {
  const enc = arrowEncoder(options).open();
  const parts: Uint8Array[] = [];
  const step = options.batchRows ?? 10_000;
  for (let i = 0; i < options.records.length; i += step) parts.push(enc.add(options.records.slice(i, i + step)));
  parts.push(enc.finish());
  return Buffer.concat(parts);
}
