/**
 * factflow's public API, listed by hand (as undici's index.js): each export is written out.
 * Runner internals (run context, file naming helpers), encoders and fixtures stay out.
 * The model and RL code (tfjs) is not re-exported here, so importing this entry never loads tfjs.
 */

// errors: one base, a code per subclass
export {
  FactflowError,
  BadRecordError,
  BadInputError,
  SchemaMismatchError,
  InvalidOptionError,
  AbortedError,
  HttpError,
  CheckpointError,
  BackendError,
  isFactflowError,
} from './errors.ts';
export type { ErrorLocation, FactflowErrorOptions } from './errors.ts';

// pipelines: define, resolve, run, partition, merge
export { definePipeline } from './pipeline/define-pipeline.ts';
export type {
  ParamSpec,
  ParamSpecs,
  ParamValues,
  FlowSpec,
  FlowResult,
  PipelineContext,
  PipelineConfig,
  RunSummary,
} from './pipeline/define-pipeline.ts';
export { resolveParams, resolvePipeline, BACKENDS } from './pipeline/resolve-params.ts';
export type { RawParams, PipelineOptions, ResolvedPipeline, BackendName } from './pipeline/resolve-params.ts';
export { loadPipeline } from './pipeline/load-pipeline.ts';
export type { LoadedPipeline } from './pipeline/load-pipeline.ts';
export { listPipelines } from './pipeline/list-pipelines.ts';
export type { PipelineListing } from './pipeline/list-pipelines.ts';
export { runPipeline, readRunSummary } from './pipeline/run-pipeline.ts';
export type { RunOptions } from './pipeline/run-pipeline.ts';
export { parsePartition, inPartition } from './pipeline/partition.ts';
export type { Partition } from './pipeline/partition.ts';
export { mergeManifests } from './pipeline/merge.ts';
export type { MergeResult } from './pipeline/merge.ts';

// inspecting shards
export { inspectShards } from './inspect/inspect-shards.ts';
export type { ShardsReport, ShardSummary, InspectOptions } from './inspect/inspect-shards.ts';
export { inspectSchema } from './inspect/inspect-schema.ts';
export type { SchemaReport } from './inspect/inspect-schema.ts';
export { headRecords } from './inspect/head-records.ts';
export type { HeadOptions, HeadResult } from './inspect/head-records.ts';
export { validateShards } from './inspect/validate-shards.ts';
export type { ValidationReport, ValidationFailure } from './inspect/validate-shards.ts';
export { renderBoxes } from './inspect/render-boxes.ts';
export type { RenderBoxesOptions, RenderedImage } from './inspect/render-boxes.ts';
export { findBoxes } from './inspect/find-boxes.ts';
export type { Box, GroundedPhrase } from './inspect/find-boxes.ts';
export { readRecords } from './inspect/read-records.ts';
export type { RecordAt } from './inspect/read-records.ts';

// the streaming backbone
export type { Stage, StageContext, StageCounts, Source, SourceContext, Sink, SinkContext, ErrorPolicy, InputFingerprint } from './stream/stage.ts';
export { runFlow } from './stream/flow.ts';
export type { RunFlowOptions } from './stream/flow.ts';
export { map } from './stream/map.ts';
export { filter } from './stream/filter.ts';
export { batch, unbatch } from './stream/batch.ts';
export { compose } from './stream/compose.ts';
export { tee } from './stream/tee.ts';
export { mixSources } from './stream/mix.ts';
export { dedup } from './stream/dedup.ts';
export { shuffle } from './stream/shuffle.ts';
export { split } from './stream/split.ts';
export { withOrigin, originOf } from './stream/origin.ts';
export type { Origin } from './stream/origin.ts';
export { hash32, hashUnit, Rng, deriveSeed } from './stream/random.ts';
export { createProgress, silentProgress } from './stream/progress.ts';
export type { ProgressSink, ProgressHandle } from './stream/progress.ts';
export { formatSummaryTable } from './stream/summary-table.ts';

// record schemas and shard manifests
export type { FieldSpec, FieldType, ScalarType, RecordSchema } from '../schemas/field.ts';
export { conversationSchema } from '../schemas/conversation.ts';
export type { Conversation } from '../schemas/conversation.ts';
export { preferenceSchema } from '../schemas/preference.ts';
export type { Preference } from '../schemas/preference.ts';
export { rlPromptSchema } from '../schemas/rl-prompt.ts';
export type { RlPrompt } from '../schemas/rl-prompt.ts';
export { rolloutSchema } from '../schemas/rollout.ts';
export type { Rollout } from '../schemas/rollout.ts';
export { evalSchema } from '../schemas/eval.ts';
export type { EvalRecord } from '../schemas/eval.ts';
export { SCHEMAS, schemaByName } from '../schemas/registry.ts';
export { readManifest } from '../schemas/manifest.ts';
export type { Manifest, ManifestShard, ShardFormat } from '../schemas/manifest.ts';

// sources
export { shardSource, shardFileInfo, listShardFiles } from '../sources/shards.ts';
export type { ShardSourceOptions, ShardFileInfo } from '../sources/shards.ts';
export { vqav2Source } from '../sources/vqav2.ts';
export { aokvqaSource } from '../sources/aokvqa.ts';
export { flickr30kEntitiesSource } from '../sources/flickr30k-entities.ts';
export { cocoCaptionsSource } from '../sources/coco-captions.ts';
export { llavaInstructSource } from '../sources/llava-instruct.ts';
export { preferenceJsonSource } from '../sources/preference-json.ts';
export { popeQuestionsSource } from '../sources/pope-questions.ts';
export { mmhalTemplateSource } from '../sources/mmhal-template.ts';
export { generateShapesWorld } from '../sources/shapes-world.ts';
export { fetchToCache } from '../sources/http-fetch.ts';

// transforms
export { vqav2Multiround } from '../transforms/vqav2-multiround.ts';
export { aokvqaMultichoice } from '../transforms/aokvqa-multichoice.ts';
export { flickr30kSpotting } from '../transforms/flickr30k-spotting.ts';
export { attachFacts } from '../transforms/attach-facts.ts';
export { holdout } from '../transforms/holdout.ts';
export { imageCheck } from '../transforms/image-check.ts';
export { toPreference } from '../transforms/to-preference.ts';
export { toRlPrompt } from '../transforms/to-rl-prompt.ts';
export { tokenLength } from '../transforms/token-length.ts';

// sinks
export { shardSink } from '../sinks/shard-sink.ts';
export type { ShardSinkOptions } from '../sinks/shard-sink.ts';
export { llavaJsonSink } from '../sinks/llava-json-sink.ts';

// evaluation
export { popeMetrics } from './eval/pope.ts';
export { mmhalMetrics } from './eval/mmhal-metrics.ts';
