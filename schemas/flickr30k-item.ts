/**
 * One Flickr30k Entities image: its five annotated captions (`Sentences/<id>.txt`) and
 * its boxes (`Annotations/<id>.xml`), as `sources/flickr30k-entities.ts` emits them and
 * `transforms/flickr30k-spotting.ts` consumes them. In flight only (no Arrow schema).
 */

/** A box as the XML gives it: 1-based pixel corners, both ends inclusive. */
export interface Flickr30kBox {
  readonly xmin: number;
  readonly ymin: number;
  readonly xmax: number;
  readonly ymax: number;
}

/** One bracketed phrase: `[/EN#<chainId>/<type>[/<type2>...] <text>]`. */
export interface Flickr30kPhrase {
  /** Entity (coreference chain) id; "0" marks `notvisual` phrases, which never have boxes. */
  readonly chainId: string;
  readonly types: readonly string[];
  readonly text: string;
}

/** A caption as plain text pieces and phrases, in order. */
export type Flickr30kPart = string | Flickr30kPhrase;

export interface Flickr30kSentence {
  /** 1-based line in the Sentences file. */
  readonly line: number;
  readonly parts: readonly Flickr30kPart[];
  /** The caption without annotation markup, spaces as in the file. */
  readonly text: string;
}

export interface Flickr30kItem {
  /** The image id (file stem), e.g. `4945942737`. */
  readonly id: string;
  readonly width: number;
  readonly height: number;
  readonly sentences: readonly Flickr30kSentence[];
  /** Boxes by chain id; an entity may have several boxes, and one box may serve several chains. */
  readonly boxes: Readonly<Record<string, readonly Flickr30kBox[]>>;
  /** Chain ids annotated as having no box (`<nobndbox>1</nobndbox>`). */
  readonly nobndbox: readonly string[];
  /** Chain ids annotated as the whole scene (`<scene>1</scene>`). */
  readonly scene: readonly string[];
  /** The two files read (paths or URLs), for error messages. */
  readonly files: { readonly sentences: string; readonly annotations: string };
}
