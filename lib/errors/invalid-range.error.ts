/** A `@RangeLoader` returned something that cannot be handed out; nothing from that call was. */
export class InvalidRangeError extends Error {
  override readonly name = 'InvalidRangeError';

  constructor(
    readonly job: string,
    readonly value: unknown,
    message: string,
  ) {
    super(message);
  }
}
