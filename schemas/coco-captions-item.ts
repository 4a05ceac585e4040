/**
 * One COCO image with its captions (`captions_{train,val}{2014,2017}.json`): what
 * `sources/coco-captions.ts` emits. In flight only (no Arrow schema).
 */
export interface CocoCaptionsItem {
  readonly image_id: number;
  /** As in the file, e.g. `COCO_val2014_000000318219.jpg` (2014) or `000000318219.jpg` (2017). */
  readonly file_name: string;
  readonly width: number;
  readonly height: number;
  /** The image's captions in file order, trimmed, inner whitespace runs collapsed. */
  readonly captions: readonly string[];
}
