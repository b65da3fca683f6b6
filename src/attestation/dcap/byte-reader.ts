import { EvidenceFormatError, type EvidenceKind } from "../types.js";

/**
 * A bounds-checked little-endian cursor over quote bytes. Every read names the field it is
 * reading, so a short or inconsistent quote fails with an error that says which field broke
 * (offsets and sizes only, never the bytes themselves).
 */
export class ByteReader {
  private position = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly kind: EvidenceKind,
    /** Absolute offset of `bytes[0]` in the whole quote, so error offsets point into the quote. */
    private readonly base = 0,
  ) {}

  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.bytes.length - this.position;
  }

  /** A copy-free view of the next `length` bytes. */
  take(length: number, field: string): Uint8Array {
    if (!Number.isInteger(length) || length < 0 || length > this.remaining) {
      throw new EvidenceFormatError(
        this.kind,
        `${field}: needs ${length} bytes at offset ${this.base + this.position}, only ${this.remaining} remain`,
      );
    }
    const view = this.bytes.subarray(this.position, this.position + length);
    this.position += length;
    return view;
  }

  u16(field: string): number {
    const b = this.take(2, field);
    return b[0] | (b[1] << 8);
  }

  u32(field: string): number {
    const b = this.take(4, field);
    return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 0x1000000;
  }

  /** A reader over the next `length` bytes, for a nested structure whose size the parent declares. */
  sub(length: number, field: string): ByteReader {
    const start = this.base + this.position;
    return new ByteReader(this.take(length, field), this.kind, start);
  }

  /** The nested structure must use exactly the bytes its parent declared for it. */
  expectEnd(field: string): void {
    if (this.remaining !== 0) {
      throw new EvidenceFormatError(
        this.kind,
        `${field}: ${this.remaining} unexpected byte(s) after the structure at offset ${this.base + this.position}`,
      );
    }
  }
}
